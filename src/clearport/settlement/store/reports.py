"""A partition's detail report from PostgreSQL: its items streamed as CSV by COPY, their totals
beside the settlements', and where the written files are."""

from __future__ import annotations

from collections.abc import Callable

from clearport.core.errors import present
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.settlement.domain import PartitionReportTotals, ReportFiles, SettlementRun
from clearport.settlement.store.items import REPORT_LINE, REPORT_ORDER
from clearport.settlement.store.runs import LONG_S

# The run's settlements in one partition, and their items in the date's partition of items.
_ITEMS = """FROM settlement_items i
 WHERE i.business_date = $3
   AND i.settlement_id IN (SELECT s.id FROM settlements s
                            WHERE s.run_id = $1 AND s.partition = $2)"""


class PgReportStore:
    async def partition_report_csv(
        self, tx: Transaction, run: SettlementRun, partition: int, output: Callable[[bytes], None]
    ) -> None:
        """Stream the partition's committed items as CSV (COPY), ordered by settlement and
        source: the lines the pricing pass streamed (store/items.py), byte for byte."""

        async def sink(data: bytes) -> None:
            output(data)

        await conn_of(tx).copy_from_query(
            f"SELECT {REPORT_LINE} {_ITEMS} ORDER BY {REPORT_ORDER}",
            run.id,
            partition,
            run.business_date,
            output=sink,
            format="csv",
            timeout=LONG_S,
        )

    async def partition_report_totals(
        self, tx: Transaction, run: SettlementRun, partition: int
    ) -> PartitionReportTotals:
        row = await conn_of(tx).fetchrow(
            f"""SELECT count(i.*) AS count,
                      coalesce(sum(i.gross) FILTER (WHERE i.type = 'capture'), 0) AS gross_minor,
                      coalesce(-sum(i.gross) FILTER (WHERE i.type = 'refund'), 0)
                        AS refunds_minor,
                      coalesce(-sum(i.gross) FILTER (
                          WHERE i.type IN ('dispute', 'dispute_reversal')), 0) AS disputes_minor,
                      coalesce(sum(i.gross) FILTER (WHERE i.type = 'adjustment'), 0)
                        AS adjustments_minor,
                      coalesce(sum(i.interchange), 0) AS interchange_minor,
                      coalesce(sum(i.scheme_fee), 0) AS scheme_fee_minor,
                      coalesce(sum(i.markup), 0) AS markup_minor,
                      coalesce(sum(i.commission), 0) AS commission_minor,
                      coalesce(sum(i.net), 0) AS net_minor,
                      count(*) FILTER (WHERE i.flags <> '') AS flagged,
                      (SELECT count(*) FROM settlements x
                        WHERE x.run_id = $1 AND x.partition = $2) AS settlements,
                      (SELECT coalesce(sum(x.gross - x.refunds - x.disputes + x.adjustments
                                           - x.fees), 0) FROM settlements x
                        WHERE x.run_id = $1 AND x.partition = $2) AS settlements_net_minor
              {_ITEMS}""",
            run.id,
            partition,
            run.business_date,
            timeout=LONG_S,
        )
        return PartitionReportTotals(
            **{k: int(v) for k, v in present(row, "aggregates return one row").items()}
        )

    async def set_partition_report(
        self, tx: Transaction, run_id: str, partition: int, report: ReportFiles
    ) -> None:
        location = {
            "csv": report.csv_uri,
            "parquet": report.parquet_uri,
            "summary": report.summary_uri,
            "sha256": report.sha256,
        }
        await conn_of(tx).execute(
            "UPDATE settlements SET report = $3::jsonb WHERE run_id = $1 AND partition = $2",
            run_id,
            partition,
            location,
        )
