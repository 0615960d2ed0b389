"""The BIN table in PostgreSQL (`bin_ranges`)."""

from __future__ import annotations

from collections.abc import Sequence

from clearport.bins.domain import BinInfo, BinRange
from clearport.core.uow import Transaction
from clearport.db.database import conn_of

_COLUMNS = ("low", "high", "bin_from", "bin_to", "brand", "funding", "category", "issuer_country")


class PgBinRepository:
    async def replace_all(self, tx: Transaction, ranges: Sequence[BinRange]) -> None:
        conn = conn_of(tx)
        await conn.execute("DELETE FROM bin_ranges")
        await conn.copy_records_to_table(
            "bin_ranges",
            columns=_COLUMNS,
            records=[
                (
                    r.low,
                    r.high,
                    r.bin_from,
                    r.bin_to,
                    r.info.brand,
                    r.info.funding,
                    r.info.category,
                    r.info.issuer_country,
                )
                for r in ranges
            ],
        )

    async def count(self, tx: Transaction) -> int:
        return int(await conn_of(tx).fetchval("SELECT count(*) FROM bin_ranges"))

    async def all(self, tx: Transaction) -> list[BinRange]:
        rows = await conn_of(tx).fetch(
            "SELECT bin_from, bin_to, brand, funding, category, issuer_country FROM bin_ranges"
        )
        return [
            BinRange(
                r["bin_from"],
                r["bin_to"],
                BinInfo(r["brand"], r["funding"], r["category"], r["issuer_country"]),
            )
            for r in rows
        ]
