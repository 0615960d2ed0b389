"""Velocity counts for the unit tier: what a test says was seen (nothing by default)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from clearport.core.uow import Transaction
from clearport.risk.domain import Velocity, VelocityCount
from clearport.rulesets.domain import Facts


class FakeVelocityCounter:
    def __init__(self) -> None:
        self.seen = VelocityCount(0, 0)

    async def counts(
        self, tx: Transaction, facts: Facts, rules: Sequence[Velocity], now: datetime
    ) -> list[VelocityCount]:
        return [self.seen for _ in rules]
