"""What risk screening reads: the payments already recorded, for velocity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from clearport.core.uow import Transaction
from clearport.risk.domain import Velocity, VelocityCount
from clearport.rulesets.domain import Facts


class VelocityCounter(Protocol):
    async def counts(
        self, tx: Transaction, facts: Facts, rules: Sequence[Velocity], now: datetime
    ) -> list[VelocityCount]:
        """For each rule, the payments of its key (the card or the merchant) created in its
        window before `now` (those blocked by risk left out); one read for all of them."""
        ...
