"""Settlement detail reports: one line per settled item, as CSV and Parquet, plus a summary.

Rows arrive in chunks and are appended to both files as they come, so memory is bounded by the
chunk size whatever the settlement's size. Output depends only on the rows (no timestamps, fixed
Parquet writer options), so re-running a date writes byte-identical files.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import operator
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from clearport.core.errors import invariant
from clearport.settlement.domain import ItemLine, ReportFiles, ReportSummary
from clearport.storage.ports import ObjectStorage

COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("settlement_id", pa.string()),
    ("merchant_id", pa.string()),
    ("payment_id", pa.string()),
    ("source_id", pa.string()),
    ("reference", pa.string()),
    ("type", pa.string()),
    ("brand", pa.string()),
    ("currency", pa.string()),
    ("gross_minor", pa.int64()),
    ("interchange_minor", pa.int64()),
    ("scheme_fee_minor", pa.int64()),
    ("markup_minor", pa.int64()),
    ("commission_minor", pa.int64()),
    ("net_minor", pa.int64()),
    ("flags", pa.string()),
)
SCHEMA = pa.schema([pa.field(name, typ) for name, typ in COLUMNS])
_FIELDS = [f.name for f in dataclasses.fields(ItemLine)]
_ROW = operator.attrgetter(*_FIELDS)
invariant([name for name, _ in COLUMNS] == _FIELDS, "report columns follow ItemLine")


class ReportSink:
    """Streams ItemLines (`add`) or raw CSV rows (`add_csv`, e.g. straight from PostgreSQL's
    COPY) to a CSV file; `finish` writes the Parquet file and publishes both to storage (the
    network: call it after the transaction that fed the rows has ended).

    In CSV mode Python never touches individual items: the database writes the CSV and
    pyarrow's C++ reader converts it to Parquet in bounded blocks.
    """

    def __init__(self, storage: ObjectStorage, prefix: str, scratch_dir: str | None = None):
        self.storage = storage
        self.prefix = prefix.rstrip("/")
        self.summary = ReportSummary()
        self._dir = Path(tempfile.mkdtemp(prefix="report-", dir=scratch_dir))
        self._csv_path = self._dir / "items.csv"
        self._parquet_path = self._dir / "items.parquet"
        self._csv_file: io.TextIOWrapper = self._csv_path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file, lineterminator="\n")
        self._csv.writerow(_FIELDS)
        self._csv_mode = False
        self._parquet = pq.ParquetWriter(
            str(self._parquet_path), SCHEMA, compression="zstd", write_statistics=True
        )

    def add_csv(self, data: bytes) -> None:
        """Append CSV rows (no header) in the column order of COLUMNS."""
        self._csv_mode = True
        self._csv_file.flush()
        self._csv_file.buffer.write(data)

    def add(self, lines: Sequence[ItemLine]) -> None:
        invariant(not self._csv_mode, "one report is fed either rows or CSV")
        if not lines:
            return
        rows = [_ROW(line) for line in lines]
        for line in lines:
            self.summary.add(line)
        self._csv.writerows(rows)
        columns = list(zip(*rows, strict=True))
        self._parquet.write_table(
            pa.Table.from_arrays(
                [pa.array(col, type=typ) for col, (_, typ) in zip(columns, COLUMNS, strict=True)],
                schema=SCHEMA,
            )
        )

    async def finish(self, extra_summary: dict[str, Any] | None = None) -> ReportFiles:
        self._csv_file.close()
        if self._csv_mode:
            reader = pacsv.open_csv(
                str(self._csv_path),
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict(COLUMNS),
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
            for batch in reader:
                self._parquet.write_batch(batch)
        self._parquet.close()
        summary = dataclasses.asdict(self.summary) | (extra_summary or {})
        digests = {
            "items.csv": _sha256(self._csv_path),
            "items.parquet": _sha256(self._parquet_path),
        }
        summary["files"] = digests
        summary_bytes = (json.dumps(summary, sort_keys=True, indent=1) + "\n").encode()
        csv_uri = await self.storage.put_file(f"{self.prefix}/items.csv", str(self._csv_path))
        parquet_uri = await self.storage.put_file(
            f"{self.prefix}/items.parquet", str(self._parquet_path)
        )
        summary_uri = await self.storage.put(f"{self.prefix}/summary.json", summary_bytes)
        os.rmdir(self._dir)
        return ReportFiles(csv_uri, parquet_uri, summary_uri, summary, digests)

    def abort(self) -> None:
        self._csv_file.close()
        self._parquet.close()
        for p in (self._csv_path, self._parquet_path):
            p.unlink(missing_ok=True)
        if self._dir.exists():
            os.rmdir(self._dir)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
