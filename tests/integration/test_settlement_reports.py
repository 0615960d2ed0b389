"""Settlement detail reports (CSV + Parquet, streamed) and the local object storage."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from clearport.core.errors import InvalidRequest, InvariantViolation
from clearport.settlement.domain import ItemLine
from clearport.settlement.report_files import ReportSink
from clearport.storage.local import LocalDirectoryStorage


def item(i: int, kind: str = "capture") -> ItemLine:
    gross = 1_000 + i if kind == "capture" else -(500 + i)
    fee = 0 if kind == "refund" else 30 + i % 7
    return ItemLine(
        "stl_1", "mer_1", f"pay_{i}", f"pay_{i}" if kind == "capture" else f"rfd_{i}",
        None if i % 3 else f"order-{i}", kind, "visa", "usd", gross, fee // 3, fee // 5,
        fee - fee // 3 - fee // 5, fee, gross - fee, "" if i % 11 else "interchange_fallback",
    )  # fmt: skip


def test_report_streams_chunks_with_totals_and_identical_bytes(tmp_path: Path) -> None:
    items = [item(i, "refund" if i % 10 == 0 else "capture") for i in range(2_500)]
    digests = []
    for run in range(2):
        storage = LocalDirectoryStorage(tmp_path / "files")
        sink = ReportSink(storage, f"run{run}/stl_1", storage.scratch_dir())
        for start in range(0, len(items), 1_000):
            sink.add(items[start : start + 1_000])
        files = asyncio.run(sink.finish({"settlement_id": "stl_1"}))
        digests.append(files.sha256)
        table = pq.read_table(str(tmp_path / "files" / f"run{run}/stl_1/items.parquet"))
        assert table.num_rows == 2_500
        assert sum(table.column("net_minor").to_pylist()) == sum(i.net_minor for i in items)
        rows = list(csv.DictReader((tmp_path / "files" / f"run{run}/stl_1/items.csv").open()))
        assert sum(int(r["commission_minor"]) for r in rows) == files.summary["commission_minor"]
        assert files.summary["count"] == 2_500
        assert files.summary["refunds_minor"] == sum(
            -i.gross_minor for i in items if i.type == "refund"
        )
    assert digests[0] == digests[1]
    a, b = (tmp_path / "files" / f"run{r}/stl_1/items.parquet" for r in (0, 1))
    assert a.read_bytes() == b.read_bytes()


def test_report_refuses_an_item_that_does_not_add_up(tmp_path: Path) -> None:
    storage = LocalDirectoryStorage(tmp_path)
    sink = ReportSink(storage, "x", storage.scratch_dir())
    bad = item(1)
    bad = dataclasses.replace(bad, net_minor=0)
    with pytest.raises(InvariantViolation):
        sink.add([bad])
    sink.abort()


async def test_local_storage_is_atomic_idempotent_and_confined(tmp_path: Path) -> None:
    storage = LocalDirectoryStorage(tmp_path)
    uri = await storage.put("a/b.txt", b"one")
    assert uri.startswith("file://") and await storage.get("a/b.txt") == b"one"
    await storage.put("a/b.txt", b"one")
    assert await storage.get("a/b.txt") == b"one" and await storage.get("missing") is None
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.txt"]
    assert await storage.keys("a/") == ["a/b.txt"] and storage.uri("a/b.txt") == uri
    for bad in ("../escape", "/abs", "a//b", "a/./b", "", "a/b c"):
        with pytest.raises(InvalidRequest):
            await storage.put(bad, b"x")
