"""Routing rule sets (the lifecycle is `rulesets`'), and the router the payment path asks.

`Router.plan` runs on every authorization, before its transaction: the active set from this
process's cache and the connector directory made fresh; `RoutePlan.decide` then evaluates the
rules in memory and narrows the candidates to the connectors this process can use. With no
active set, the connectors' default order (`connectors.directory`) decides, as before rule sets
existed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clearport.access.domain import Permission
from clearport.connectors.ports import Candidates, ConnectorDirectory
from clearport.core.invalidation import CacheTopic
from clearport.routing.checker import check_rule_set
from clearport.routing.domain import Decision, RuleSet, decide, parse_rule_set
from clearport.routing.ports import KnownConnectors
from clearport.rulesets.domain import Facts
from clearport.rulesets.ports import ActiveSource


class RoutingRuleKind:
    prefix = "rrs"
    noun = "routing rule set"
    audit_prefix = "routing_rule_set"
    topic = CacheTopic.ROUTING_RULES
    read = Permission.ROUTING_READ
    write = Permission.ROUTING_MANAGE

    def __init__(self, connectors: KnownConnectors) -> None:
        self._connectors = connectors

    def parse(self, rule_set_id: str, version: int, body: dict[str, Any]) -> RuleSet:
        return parse_rule_set(
            rule_set_id, version, body.get("rules") or [], body.get("default") or {}
        )

    async def check(self, rules: RuleSet) -> None:
        known = await self._connectors.names()
        # Pure CPU (a 100-rule set takes a fraction of a second): off the event loop.
        await asyncio.to_thread(check_rule_set, rules, known)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """What routing needs, read before the payment's transaction opens (a cache reload must not
    wait for a second pool connection while the first is held): then deciding reads nothing."""

    rule_set: RuleSet | None
    default: Candidates
    usable: Callable[[tuple[str, ...]], tuple[str, ...]]

    def decide(self, facts: Facts) -> Decision:
        """The payment's candidates (usable ones, in order) and why."""
        if self.rule_set is None:
            return Decision(None, None, self.default.rule, self.default.names, self.default.reason)
        decision = decide(self.rule_set, facts)
        usable = self.usable(decision.candidates)
        if usable == decision.candidates:
            return decision
        left_out = [c for c in decision.candidates if c not in usable]
        reason = f"{decision.reason}; not usable: {', '.join(left_out)}"
        return Decision(decision.rule_set, decision.version, decision.rule, usable, reason)


class Router:
    def __init__(self, active: ActiveSource[RuleSet], directory: ConnectorDirectory) -> None:
        self._active = active
        self._directory = directory

    async def active_set(self) -> RuleSet | None:
        active = await self._active.get()
        return None if active is None else active.rules

    async def plan(self) -> RoutePlan:
        default = await self._directory.candidates()  # also refreshes the directory
        return RoutePlan(await self.active_set(), default, self._directory.usable)
