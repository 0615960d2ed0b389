"""Import: the file COPYed into the run's UNLOGGED scratch tables, one byte range of it per
connection at once (docs/decisions/0711).

Nothing here walks rows in Python: the only per-row work outside the server is the slow path
for a file whose values COPY refuses (its rows are read once, the loadable ones streamed to the
same COPY, the others reported by line number).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.reconciliation.formats import (
    COMMON_COLUMNS,
    FileFormat,
    check_header,
    split_loadable,
)
from clearport.reconciliation.store.files import (
    SLOW_PATH_ROWS,
    Scratch,
    Staged,
    byte_ranges,
    read_range,
    typed,
)
from clearport.reconciliation.store.sql import STAGE_VIEW_COLUMNS, stage_columns_sql


async def _create_part(conn: asyncpg.Connection, scratch: Any, part: int) -> None:
    await conn.execute(
        f"CREATE UNLOGGED TABLE {scratch.stage}{part} "
        f"({stage_columns_sql(scratch.line + str(part))}) WITH (autovacuum_enabled = false)"
    )


class PgStaging:
    """The import of one run's file (its state is the scratch tables)."""

    def __init__(self, *, statement_timeout_s: float, work_mem: str, lookback_days: int) -> None:
        self._timeout_s = statement_timeout_s
        self._work_mem = work_mem
        self._lookback = timedelta(days=lookback_days)

    # --- import --------------------------------------------------------------------------
    #
    # A run's scratch tables (`rcs_…`) are UNLOGGED and committed (so both of the run's matching
    # connections see them), named after the connector and the run, and dropped when the run
    # ends; a crashed run's are dropped by the connector's next run, which holds its lock.

    def scratch(self, connector: str, run_id: str, fmt: FileFormat) -> Scratch:
        tag = hashlib.sha256(connector.encode()).hexdigest()[:8]
        return Scratch(f"rcs_{tag}", run_id.lower(), fmt.reference_kind)

    async def drop_scratch(self, tx: Transaction, scratch: Any, *, every: bool = False) -> None:
        """Drop the run's scratch tables (`every`: those of every run of the connector)."""
        conn = conn_of(tx)
        pattern = scratch.prefix + "\\_" + ("%" if every else scratch.run + "%")
        for name, relkind in await conn.fetch(
            "SELECT relname, relkind::text FROM pg_class WHERE relname LIKE $1 "
            "AND relkind IN ('v', 'r', 'S') AND pg_table_is_visible(oid) ORDER BY relkind DESC",
            pattern,
        ):
            kind = {"S": "SEQUENCE", "v": "VIEW"}.get(relkind, "TABLE")
            # CASCADE: the file's view is over the parts' views, which go in any order.
            await conn.execute(f'DROP {kind} IF EXISTS "{name}" CASCADE')

    async def stage(
        self, txs: Sequence[Transaction], scratch: Any, fmt: FileFormat, path: Path
    ) -> Staged:
        """COPY the file into the run's staging tables, one byte range of it per connection at
        once (autocommit: the matching connections read them), seen as one view; report its
        rows and the settlement dates it covers. Rows are checked by the matching."""
        with path.open(encoding="utf-8", errors="replace", newline="") as f:
            first = f.readline()
        check_header(fmt, first)
        conns = [conn_of(tx) for tx in txs]
        ranges = byte_ranges(path, len(conns))
        await conns[0].execute(
            f"CREATE UNLOGGED TABLE {scratch.rejected} (line_number bigint, reason text)"
        )
        for part in range(len(conns)):
            await conns[0].execute(f"CREATE SEQUENCE {scratch.line}{part} CACHE 10000")
        columns = ["reference", *COMMON_COLUMNS]
        outcomes = await asyncio.gather(
            *(
                self._copy_part(conn, scratch, part, columns, read_range(path, start, end))
                for part, (conn, (start, end)) in enumerate(zip(conns, ranges, strict=True))
            ),
            return_exceptions=True,
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if not failed:
            # Each part numbered its rows from 1: its lines follow the header and the parts
            # before it.
            counts = [int(str(o).rsplit(" ", 1)[-1]) for o in outcomes]
            offsets = [1 + sum(counts[:part]) for part in range(len(counts))]
        elif all(isinstance(o, asyncpg.exceptions.DataError) for o in failed):
            # A value COPY refuses, or a row of other columns: which rows, and why, is read
            # once in Python; the loadable rows still go by COPY.
            for part in range(len(conns)):  # a failed part's table went with its transaction
                await conns[0].execute(f"DROP TABLE IF EXISTS {scratch.stage}{part}")
                await _create_part(conns[0], scratch, part)
            await self._stage_row_by_row(conns[0], scratch, columns, path)
            offsets = [0] * len(conns)  # the slow path gives each row its line number
        else:
            raise failed[0]
        # Each part as a view with the file's line numbers (the first pass reads a part per
        # connection), and the whole file as their union.
        for part, offset in enumerate(offsets):
            await conns[0].execute(
                f"CREATE VIEW {scratch.stage_part(part)} AS SELECT {STAGE_VIEW_COLUMNS}, "
                f"line_number + {offset} AS line_number FROM {scratch.stage}{part}"
            )
        parts = " UNION ALL ".join(
            f"SELECT * FROM {scratch.stage_part(part)}" for part in range(len(offsets))
        )
        await conns[0].execute(f"CREATE VIEW {scratch.stage} AS {parts}")

        async def survey(conn: asyncpg.Connection, part: int) -> asyncpg.Record | None:
            # Not ANALYZEd: no plan over a part depends on its statistics (the passes scan
            # it whole and hash what they keep), and sampling it cost ~0.4 s a part at 10 M.
            return await conn.fetchrow(
                "SELECT count(*) AS n, min(settlement_date) AS first, "
                f"max(settlement_date) AS last FROM {scratch.stage}{part}",
                timeout=self._timeout_s,
            )

        # Each part on its own connection, at once.
        surveys = await asyncio.gather(*(survey(c, part) for part, c in enumerate(conns)))
        rows = [r for r in surveys if r is not None and r["n"]]
        firsts = [r["first"] for r in rows if r["first"] is not None]
        lasts = [r["last"] for r in rows if r["last"] is not None]
        first_day: date | None = min(firsts, default=None)
        last_day: date | None = max(lasts, default=None)
        lines = sum(int(r["n"]) for r in rows)
        refused = int(await conns[0].fetchval(f"SELECT count(*) FROM {scratch.rejected}"))
        return Staged(
            lines=lines + refused,
            rejected=refused,
            period=None
            if first_day is None or last_day is None
            else (first_day, last_day + timedelta(days=1)),
        )

    async def _copy_part(
        self,
        conn: asyncpg.Connection,
        scratch: Any,
        part: int,
        columns: list[str],
        source: AsyncIterator[bytes],
    ) -> str:
        """One part: its table created and filled in one transaction, so that COPY writes its
        rows frozen. A part's rows are then visible to every later snapshot without a reader
        setting hint bits: the first scan of an unfrozen 5 M-row part dirtied and wrote back
        every page (~0.9 s a part, measured at 10 M), and every pass over the part reads it."""
        async with conn.transaction():
            await _create_part(conn, scratch, part)
            return await conn.copy_to_table(
                f"{scratch.stage}{part}",
                source=source,
                columns=columns,
                format="csv",
                freeze=True,
                timeout=self._timeout_s,
            )

    async def _stage_row_by_row(
        self, conn: asyncpg.Connection, scratch: Any, columns: list[str], path: Path
    ) -> None:
        """The slow path, for a file with a value COPY refuses: read once, the loadable rows
        streamed to COPY in bounded batches, the others reported by line number."""
        batch: list[tuple[Any, ...]] = []
        refused: list[tuple[int, str]] = []
        with path.open(encoding="utf-8", errors="replace", newline="") as f:
            f.readline()
            for number, parsed in split_loadable(f):
                if isinstance(parsed, list):
                    batch.append(typed(parsed, number))
                else:
                    refused.append((number, parsed.reason))
                if len(batch) >= SLOW_PATH_ROWS:
                    await self._copy_batch(conn, f"{scratch.stage}0", columns, batch)
                    batch = []
                if len(refused) >= SLOW_PATH_ROWS:
                    await self._refuse(conn, scratch, refused)
                    refused = []
        if batch:
            await self._copy_batch(conn, f"{scratch.stage}0", columns, batch)
        if refused:
            await self._refuse(conn, scratch, refused)

    async def _refuse(
        self, conn: asyncpg.Connection, scratch: Any, refused: list[tuple[int, str]]
    ) -> None:
        await conn.copy_records_to_table(
            scratch.rejected, records=refused, columns=["line_number", "reason"]
        )

    async def _copy_batch(
        self, conn: asyncpg.Connection, stage: str, columns: list[str], batch: list[tuple[Any, ...]]
    ) -> None:
        await conn.copy_records_to_table(
            stage, records=batch, columns=[*columns, "line_number"], timeout=self._timeout_s
        )
