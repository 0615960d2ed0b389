"""`POST /v1/routing_simulations` and `clearport routing simulate`: replay a window of history
through candidate routing and risk rules (and optionally candidate pricing) and report per
connector (replay/domain.py says how)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from clearport.access.domain import Permission, Principal
from clearport.core.clock import unix_seconds
from clearport.core.errors import InvalidRequest, NotFound
from clearport.core.ids import new_id
from clearport.core.uow import UnitOfWork
from clearport.replay.domain import Replay
from clearport.replay.ports import History
from clearport.risk.domain import RiskRuleSet
from clearport.routing.domain import RuleSet
from clearport.rulesets.domain import Facts
from clearport.rulesets.service import RuleSets
from clearport.settlement.fees import (
    InterchangeTable,
    Pricing,
    card_type_of,
    interchange_region,
    parse_pricing,
    price_item,
)

MAX_WINDOW = timedelta(days=31)
INLINE = "inline"


@dataclass(frozen=True, slots=True)
class SimulationRequest:
    since: datetime
    until: datetime
    routing: str | dict[str, Any] | None = None  # a rule set's id, or one inline
    risk: str | dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None  # instead of each merchant's own


class RoutingSimulations:
    def __init__(
        self,
        uow: UnitOfWork,
        history: History,
        routing: RuleSets[RuleSet],
        risk: RuleSets[RiskRuleSet],
        tables: Callable[[date], InterchangeTable],
    ) -> None:
        self._uow = uow
        self._history = history
        self._routing = routing
        self._risk = risk
        self._tables = tables

    async def simulate(self, actor: Principal, request: SimulationRequest) -> dict[str, Any]:
        actor.require(Permission.ROUTING_SIMULATE)
        if not request.since < request.until:
            raise InvalidRequest("'{field}' must be after 'since'.", field="until")
        if request.until - request.since > MAX_WINDOW:
            raise InvalidRequest(
                f"'{{field}}' is at most {MAX_WINDOW.days} days after 'since'.", field="until"
            )
        routing = await _candidate(self._routing, actor, request.routing, "routing_rule_set")
        risk = await _candidate(self._risk, actor, request.risk, "risk_rule_set")
        pricing = None if request.pricing is None else parse_pricing(request.pricing)
        table = self._tables(request.until.date())
        merchants: dict[str, tuple[str, Pricing]] = {}

        def price(facts: Facts) -> Mapping[str, Fraction]:
            country, own = merchants[facts.merchant]
            priced = price_item(
                pricing or own,
                table,
                kind="capture",
                amount_minor=facts.amount,
                currency=facts.currency,
                brand=facts.brand,
                card_type=card_type_of(facts.funding, facts.category),
                region=interchange_region(country, facts.issuer_country),
            )
            exact = priced.interchange_exact + priced.scheme_fee_exact + priced.markup_exact
            return {facts.currency: exact}

        async with self._uow.transaction() as tx:
            observed = await self._history.observed(tx, request.since, request.until)
            replay = Replay(observed, routing, risk, price)
            async for row in self._history.payments(tx, request.since, request.until):
                merchant = row.payment.facts.merchant
                if merchant not in merchants:
                    merchants[merchant] = (
                        row.merchant_country,
                        parse_pricing(row.merchant_pricing),
                    )
                replay.add(row.payment)
        return {
            "id": new_id("rsim"),
            "object": "routing_simulation",
            "since": unix_seconds(request.since),
            "until": unix_seconds(request.until),
            "routing_rule_set": _named(request.routing, routing),
            "risk_rule_set": _named(request.risk, risk),
            "pricing": request.pricing,
            **replay.report(),
        }


async def _candidate(
    rule_sets: RuleSets[Any], actor: Principal, given: str | dict[str, Any] | None, field: str
) -> Any:
    """A candidate named by id, or given inline; its errors name it in the request."""
    if given is None:
        return None
    try:
        if isinstance(given, str):
            return await rule_sets.rules_of(actor, given)
        rules = rule_sets.kind.parse(INLINE, 0, given)
        await rule_sets.kind.check(rules)
        return rules
    except (InvalidRequest, NotFound) as exc:
        inner = () if isinstance(given, str) or exc.field is None else exc.field
        raise InvalidRequest(exc.template, code=exc.code, field=(field, *inner)) from None


def _named(given: str | dict[str, Any] | None, rules: Any) -> dict[str, Any] | None:
    if given is None:
        return None
    return {"id": given if isinstance(given, str) else None, "version": rules.version or None}
