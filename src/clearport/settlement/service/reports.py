"""A partition's detail report: streamed by COPY to CSV, converted to Parquet, with a summary
checked against the partition's settlements (decision 0405)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from clearport.core.errors import invariant
from clearport.core.uow import UnitOfWork
from clearport.settlement.domain import SettlementRun
from clearport.settlement.ports import ReportSinkLike, ReportStore


class PartitionReports:
    def __init__(
        self, uow: UnitOfWork, store: ReportStore, report_sink: Callable[[str], ReportSinkLike]
    ) -> None:
        self._uow = uow
        self._store = store
        self._report_sink = report_sink

    async def write(self, run: SettlementRun, partition: int) -> None:
        """Write (or write again: the same bytes) the report of one settled partition.

        Three steps, so that no transaction is open while the files go to object storage: read
        the settled items into local files, publish them, record them. A crash (or S3 failing)
        after the first step leaves the partition without a report, which `finalize` writes
        again from the same committed rows."""
        prefix = f"settlements/{run.business_date.isoformat()}/{run.id}/partition-{partition:04d}"
        sink = self._report_sink(prefix)
        try:
            async with self._uow.transaction() as tx:
                await self._store.partition_report_csv(tx, run.id, partition, sink.add_csv)
                totals = await self._store.partition_report_totals(tx, run.id, partition)
            invariant(
                totals.net_minor == totals.settlements_net_minor,
                f"report of {run.id}/{partition} equals its settlements",
            )
            files = await sink.finish(
                dataclasses.asdict(totals)
                | {
                    "run": run.id,
                    "partition": partition,
                    "business_date": run.business_date.isoformat(),
                }
            )
        except BaseException:
            sink.abort()
            raise
        async with self._uow.transaction() as tx:
            await self._store.set_partition_report(tx, run.id, partition, files)
