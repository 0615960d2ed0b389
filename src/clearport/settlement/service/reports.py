"""A partition's detail report: streamed as CSV by the pass that prices its items (or, after a
crash lost it, by COPY from the committed rows), converted to Parquet, with a summary checked
against the partition's settlements (decisions 0405, 0900)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from clearport.core.errors import invariant
from clearport.core.uow import UnitOfWork
from clearport.settlement.domain import PartitionReportTotals, SettlementRun
from clearport.settlement.ports import ReportSinkLike, ReportStore


class PartitionReports:
    def __init__(
        self, uow: UnitOfWork, store: ReportStore, report_sink: Callable[[str], ReportSinkLike]
    ) -> None:
        self._uow = uow
        self._store = store
        self._report_sink = report_sink

    def sink(self, run: SettlementRun, partition: int) -> ReportSinkLike:
        """Where the partition's report lines go: local scratch files until `publish`."""
        prefix = f"settlements/{run.business_date.isoformat()}/{run.id}/partition-{partition:04d}"
        return self._report_sink(prefix)

    async def write(self, run: SettlementRun, partition: int) -> None:
        """Write (or write again: the same bytes) the report of one settled partition from its
        committed rows: after a crash (or S3 failing) lost the one its pricing pass streamed.

        No transaction is open while the files go to object storage: read the settled items
        into local files, publish them, record them."""
        sink = self.sink(run, partition)
        try:
            async with self._uow.transaction() as tx:
                await self._store.partition_report_csv(tx, run, partition, sink.add_csv)
                totals = await self._store.partition_report_totals(tx, run, partition)
        except BaseException:
            sink.abort()
            raise
        await self.publish(run, partition, sink, totals)

    async def publish(
        self,
        run: SettlementRun,
        partition: int,
        sink: ReportSinkLike,
        totals: PartitionReportTotals,
    ) -> None:
        """Check the report's totals against the settlements, publish its files and record
        them. Called after the transaction that fed `sink` committed: a crash before the
        record leaves the partition without a report, which `finalize` writes again."""
        try:
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
