"""What the console's overview shows of recent payments: volume, approval rates by connector and
by brand, decline reasons, authorization latency, per time bucket. Read from the payments of a
window, at most `MAX_PAYMENTS` of the latest (the figures say when the cap was reached)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from clearport.access.domain import Permission, Principal
from clearport.core.clock import Clock
from clearport.core.uow import Transaction, UnitOfWork

MAX_PAYMENTS = 200_000  # bounds what one overview reads
WINDOWS = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(days=1)),
}


@dataclass(frozen=True, slots=True)
class GroupStat:
    key: str  # a connector, a brand, a decline code or a currency
    total: int
    approved: int
    declined: int
    failed: int
    approved_amount_minor: int  # for currency groups (other groups mix currencies: 0)
    latency_p50_ms: float | None  # created -> authorized, approved payments only
    latency_p95_ms: float | None

    @property
    def approval_rate(self) -> float | None:
        decided = self.approved + self.declined + self.failed
        return None if decided == 0 else self.approved / decided


@dataclass(frozen=True, slots=True)
class BucketStat:
    start: datetime
    total: int
    approved: int


@dataclass(frozen=True, slots=True)
class PaymentStats:
    window: str
    since: datetime
    overall: GroupStat
    by_connector: list[GroupStat]
    by_brand: list[GroupStat]
    by_decline_code: list[GroupStat]
    by_currency: list[GroupStat]
    buckets: list[BucketStat]
    capped: bool  # MAX_PAYMENTS reached: the figures cover the latest payments of the window


class StatsSource(Protocol):
    async def payment_stats(
        self, tx: Transaction, since: datetime, bucket: timedelta, limit: int
    ) -> tuple[list[tuple[str, GroupStat]], list[BucketStat]]:
        """Groups as (dimension, stat) with dimension one of connector, brand, decline_code,
        currency, all; and the time buckets."""
        ...


class PaymentStatistics:
    def __init__(self, uow: UnitOfWork, source: StatsSource, clock: Clock) -> None:
        self._uow = uow
        self._source = source
        self._clock = clock

    async def overview(self, actor: Principal, window: str) -> PaymentStats:
        actor.require(Permission.MERCHANTS_READ)
        length, bucket = WINDOWS.get(window, WINDOWS["24h"])
        window = window if window in WINDOWS else "24h"
        since = self._clock.now() - length
        async with self._uow.autocommit() as tx:
            groups, buckets = await self._source.payment_stats(tx, since, bucket, MAX_PAYMENTS)
        by: dict[str, list[GroupStat]] = {}
        for dimension, stat in groups:
            by.setdefault(dimension, []).append(stat)
        overall = (by.get("all") or [GroupStat("all", 0, 0, 0, 0, 0, None, None)])[0]
        return PaymentStats(
            window=window,
            since=since,
            overall=overall,
            by_connector=_by_total(by.get("connector", [])),
            by_brand=_by_total(by.get("brand", [])),
            by_decline_code=_by_total(by.get("decline_code", [])),
            by_currency=_by_total(by.get("currency", [])),
            buckets=_every_bucket(buckets, since, bucket, length),
            capped=overall.total >= MAX_PAYMENTS,
        )


def _by_total(stats: list[GroupStat]) -> list[GroupStat]:
    return sorted(stats, key=lambda s: (-s.total, s.key))


def _every_bucket(
    found: list[BucketStat], since: datetime, bucket: timedelta, length: timedelta
) -> list[BucketStat]:
    """One bucket per step of the window (the store's are aligned on `since`), empty ones too."""
    by_start = {b.start: b for b in found}
    starts = [since + bucket * i for i in range(int(length / bucket))]
    return [by_start.get(start, BucketStat(start, 0, 0)) for start in starts]
