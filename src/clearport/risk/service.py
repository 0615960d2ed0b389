"""Risk rule sets (the lifecycle is `rulesets`'), and the screen every authorization passes
before it is routed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from clearport.access.domain import Permission
from clearport.core.invalidation import CacheTopic
from clearport.core.uow import Transaction
from clearport.risk.domain import (
    RiskCondition,
    RiskDecision,
    RiskRuleSet,
    parse_rule_set,
    screen,
)
from clearport.risk.ports import VelocityCounter
from clearport.rulesets.domain import Facts
from clearport.rulesets.ports import ActiveSource


class RiskRuleKind:
    prefix = "rks"
    noun = "risk rule set"
    audit_prefix = "risk_rule_set"
    topic = CacheTopic.RISK_RULES
    read = Permission.ROUTING_READ
    write = Permission.ROUTING_MANAGE

    def __init__(self, plugins: Mapping[str, RiskCondition]) -> None:
        self.plugins = plugins

    def parse(self, rule_set_id: str, version: int, body: dict[str, Any]) -> RiskRuleSet:
        return parse_rule_set(rule_set_id, version, body.get("rules") or [], self.plugins)

    async def check(self, rules: RiskRuleSet) -> None:
        """Parsing checks everything a risk rule can get wrong."""


class RiskScreen:
    def __init__(self, active: ActiveSource[RiskRuleSet], velocity: VelocityCounter) -> None:
        self._active = active
        self._velocity = velocity

    async def active_set(self) -> RiskRuleSet | None:
        active = await self._active.get()
        return None if active is None else active.rules

    async def screen(
        self, tx: Transaction, rule_set: RiskRuleSet | None, facts: Facts, now: datetime
    ) -> RiskDecision | None:
        """`rule_set`'s decision for the payment (the active set, read before `tx` opened), None
        without one. Velocity rules read the payments recorded (in `tx`, one statement);
        nothing is written."""
        if rule_set is None:
            return None
        counts = await self._velocity.counts(tx, facts, rule_set.velocity, now)
        return screen(rule_set, facts, counts)
