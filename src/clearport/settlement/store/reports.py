"""A partition's detail report from PostgreSQL: its items streamed as CSV by COPY, their totals
beside the settlements', and where the written files are."""

from __future__ import annotations

from collections.abc import Callable

from clearport.core.errors import present
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.settlement.domain import PartitionReportTotals, ReportFiles
from clearport.settlement.store.runs import LONG_S


class PgReportStore:
    async def partition_report_csv(
        self, tx: Transaction, run_id: str, partition: int, output: Callable[[bytes], None]
    ) -> None:
        """Stream the partition's items as CSV (COPY), ordered by settlement and source."""

        async def sink(data: bytes) -> None:
            output(data)

        await conn_of(tx).copy_from_query(
            """SELECT i.settlement_id, i.merchant_id, i.payment_id, i.source_id, i.reference,
                      i.type, i.brand, i.currency, i.gross, i.interchange, i.scheme_fee,
                      i.markup, i.commission, i.net, i.flags
                 FROM settlements s
                 JOIN settlement_items i ON i.settlement_id = s.id
                WHERE s.run_id = $1 AND s.partition = $2
                ORDER BY i.settlement_id, i.source_id""",
            run_id,
            partition,
            output=sink,
            format="csv",
            timeout=LONG_S,
        )

    async def partition_report_totals(
        self, tx: Transaction, run_id: str, partition: int
    ) -> PartitionReportTotals:
        row = await conn_of(tx).fetchrow(
            """SELECT count(i.*) AS count,
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
                 FROM settlements s JOIN settlement_items i ON i.settlement_id = s.id
                WHERE s.run_id = $1 AND s.partition = $2""",
            run_id,
            partition,
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
