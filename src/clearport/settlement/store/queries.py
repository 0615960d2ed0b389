"""Settlements, their items and payouts read from PostgreSQL, a page at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import fetch_page
from clearport.db.statements import Params
from clearport.settlement.domain import ItemLine, Payout, PayoutFile, RunProgress, Settlement
from clearport.settlement.store.payouts import payout_file_from_row, payout_from_row
from clearport.settlement.store.runs import run_from_row

_SETTLEMENT_SELECT = (
    "SELECT s.*, p.id AS payout_id FROM settlements s LEFT JOIN payouts p ON p.settlement_id = s.id"
)

_ITEM_SELECT = """SELECT settlement_id, merchant_id, payment_id, source_id, reference, type,
                  brand, currency, gross, interchange, scheme_fee, markup, commission, net,
                  flags FROM settlement_items"""


def _items_page(beyond: str | None) -> tuple[str, Params]:
    """A page of a settlement's items, newest first by (created_at, source_id): items' ids are
    their sources' (pay_…, rfd_…), whose string order is not time order. `beyond` is how the
    rows compare with the cursor's (`<` after it, `>` before it: read oldest first, reversed).
    The date's index (settlement_id, created_at, source_id), built when its run finalized
    (decision 0900), serves all three in key order."""
    p = Params()
    # The settlement's date names the one partition of items to read.
    where = (
        f"settlement_id = {p('settlement_id')} AND business_date = "
        f"(SELECT business_date FROM settlements WHERE id = {p('settlement_id')})"
    )
    if beyond is not None:
        where += f" AND (created_at, source_id) {beyond} ({p('cursor_at')}, {p('cursor')})"
    order = "ASC" if beyond == ">" else "DESC"
    statement = (
        f"{_ITEM_SELECT} WHERE {where} ORDER BY created_at {order}, source_id {order} "
        f"LIMIT {p('limit')}"
    )
    return statement, p


_ITEMS_FIRST = _items_page(None)
_ITEMS_AFTER = _items_page("<")
_ITEMS_BEFORE = _items_page(">")


def _settlement(row: asyncpg.Record) -> Settlement:
    report = row["report"]
    return Settlement(
        id=row["id"],
        run_id=row["run_id"],
        business_date=row["business_date"],
        merchant_id=row["merchant_id"],
        currency=row["currency"],
        count=row["count"],
        gross=row["gross"],
        refunds=row["refunds"],
        fees=row["fees"],
        interchange=row["interchange"],
        scheme_fees=row["scheme_fees"],
        markup=row["markup"],
        rounding=row["rounding"],
        reserve_held=row["reserve_held"],
        reserve_released=row["reserve_released"],
        net=row["net"],
        carried_in=row["carried_in"],
        carried_out=row["carried_out"],
        payout=row["payout"],
        payout_id=row["payout_id"],
        flagged_items=row["flagged_items"],
        report=json.loads(report) if isinstance(report, str) else report,
        created_at=row["created_at"],
        disputes=row["disputes"],
        adjustments=row["adjustments"],
        dispute_fees=row["dispute_fees"],
        repaid=row["repaid"],
    )


# A page of runs' partitions (primary key run_id, partition): how many are done, what they hold.
_RUN_PROGRESS = """
SELECT run_id, count(*) FILTER (WHERE status = 'done') AS done,
       coalesce(sum(items), 0) AS items, coalesce(sum(settlements), 0) AS settlements
  FROM settlement_partitions WHERE run_id = ANY($1::text[]) GROUP BY run_id
"""


class PgQueryStore:
    async def settled_at(self, tx: Transaction, sources: Sequence[str]) -> dict[str, datetime]:
        """`ledger.ports.Settlements`: when each source was settled (its settlement's creation,
        in the transaction that settled it: the same instant for every settlement of a
        partition); a settlement's own postings when it was made. A source is settled once the
        partition of the run that claimed it is done."""
        rows = await conn_of(tx).fetch(
            """SELECT c.source_id AS source, s.created_at FROM settlement_claims c
                 JOIN settlement_partitions p
                   ON p.run_id = c.run_id AND p.partition = c.partition AND p.status = 'done'
                 CROSS JOIN LATERAL (SELECT x.created_at FROM settlements x
                                      WHERE x.run_id = c.run_id AND x.partition = c.partition
                                      LIMIT 1) s
                WHERE c.source_id = ANY($1::text[])
               UNION ALL
               SELECT id, created_at FROM settlements WHERE id = ANY($1::text[])""",
            list(sources),
        )
        return {r["source"]: r["created_at"] for r in rows}

    async def carried(self, tx: Transaction, merchant_id: str) -> dict[str, int]:
        """`ledger.ports.Settlements`: the deficit each currency carries. Every settlement moves
        the carry by carried_out - carried_in, so their sum is what is carried now, whatever
        order the dates were settled in."""
        rows = await conn_of(tx).fetch(
            """SELECT currency, sum(carried_out - carried_in)::bigint AS carried
                 FROM settlements WHERE merchant_id = $1 GROUP BY currency""",
            merchant_id,
        )
        return {r["currency"]: r["carried"] for r in rows if r["carried"]}

    async def get_settlement(self, tx: Transaction, settlement_id: str) -> Settlement | None:
        row = await conn_of(tx).fetchrow(f"{_SETTLEMENT_SELECT} WHERE s.id = $1", settlement_id)
        return None if row is None else _settlement(row)

    async def settlements_by_id(
        self, tx: Transaction, settlement_ids: Sequence[str]
    ) -> list[Settlement]:
        rows = await conn_of(tx).fetch(
            f"{_SETTLEMENT_SELECT} WHERE s.id = ANY($1::text[]) ORDER BY s.id",
            list(settlement_ids),
        )
        return [_settlement(row) for row in rows]

    async def payouts_by_id(self, tx: Transaction, payout_ids: Sequence[str]) -> list[Payout]:
        rows = await conn_of(tx).fetch(
            "SELECT * FROM payouts WHERE id = ANY($1::text[]) ORDER BY id", list(payout_ids)
        )
        return [payout_from_row(row) for row in rows]

    async def list_settlements(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, run_id: str | None
    ) -> Page[Settlement]:
        where, args = [], []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append(f"s.merchant_id = ${len(args)}")
        if run_id is not None:
            args.append(run_id)
            where.append(f"s.run_id = ${len(args)}")
        return await fetch_page(
            conn_of(tx),
            select=_SETTLEMENT_SELECT,
            where=where,
            args=args,
            page=page,
            row_to=_settlement,
            id_column="s.id",
        )

    async def item_created_at(
        self, tx: Transaction, settlement_id: str, source_id: str
    ) -> datetime | None:
        value = await conn_of(tx).fetchval(
            "SELECT created_at FROM settlement_items WHERE source_id = $1 AND settlement_id = $2 "
            "AND business_date = (SELECT business_date FROM settlements WHERE id = $2)",
            source_id,
            settlement_id,
        )
        return cast(datetime | None, value)

    async def list_items(
        self, tx: Transaction, settlement_id: str, page: PageRequest, cursor_at: datetime | None
    ) -> Page[ItemLine]:
        values: dict[str, object] = {"settlement_id": settlement_id, "limit": page.limit + 1}
        if page.starting_after is not None:
            statement, params = _ITEMS_AFTER
        elif page.ending_before is not None:
            statement, params = _ITEMS_BEFORE
        else:
            statement, params = _ITEMS_FIRST
        if page.cursor is not None:
            values |= {"cursor_at": cursor_at, "cursor": page.cursor}
        rows = await conn_of(tx).fetch(statement, *params.args(values))
        has_more = len(rows) > page.limit
        rows = rows[: page.limit]
        if page.ending_before is not None:
            rows.reverse()
        return Page([ItemLine(*row) for row in rows], has_more)

    async def list_runs(self, tx: Transaction, page: PageRequest) -> Page[RunProgress]:
        runs = await fetch_page(
            conn_of(tx),
            select="SELECT * FROM settlement_runs",
            where=[],
            args=[],
            page=page,
            row_to=run_from_row,
        )
        rows = await conn_of(tx).fetch(_RUN_PROGRESS, [r.id for r in runs.data])
        progress = {r["run_id"]: r for r in rows}
        return Page(
            [
                RunProgress(
                    run,
                    partitions_done=int(progress[run.id]["done"]) if run.id in progress else 0,
                    items=int(progress[run.id]["items"]) if run.id in progress else 0,
                    settlements=int(progress[run.id]["settlements"]) if run.id in progress else 0,
                )
                for run in runs.data
            ],
            runs.has_more,
        )

    async def recent_payout_files(self, tx: Transaction, limit: int) -> list[PayoutFile]:
        # By the UNIQUE (business_date, currency) index, backwards.
        rows = await conn_of(tx).fetch(
            "SELECT * FROM payout_files ORDER BY business_date DESC, currency DESC LIMIT $1",
            limit,
        )
        return [payout_file_from_row(r) for r in rows]

    async def list_payouts(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, status: str | None
    ) -> Page[Payout]:
        where, args = [], []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append(f"merchant_id = ${len(args)}")
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        return await fetch_page(
            conn_of(tx),
            select="SELECT * FROM payouts",
            where=where,
            args=args,
            page=page,
            row_to=payout_from_row,
        )
