"""Routing and risk: rule sets with their versions, an editor that shows the static checker's
verdict before saving, the replay of recent history through a set, activation (admin), and the
connectors with their breaker states."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from clearport.console.forms import PAGE_SIZE, form_of, integer
from clearport.console.web import (
    PREFIX,
    ConsoleRoute,
    container_of,
    origin_of,
    page,
    principal_of,
)
from clearport.core.errors import InvalidRequest, NotFound
from clearport.core.pagination import PageRequest
from clearport.replay.service import SimulationRequest
from clearport.rulesets.service import RuleSets
from clearport.wiring import Container

router = APIRouter(prefix=f"{PREFIX}/routing", route_class=ConsoleRoute, include_in_schema=False)

KINDS = ("routing", "risk")
_MAX_REPLAY_DAYS = 31
_MAX_RULE_SET_CHARS = 60_000  # under the API's body limit
EXAMPLES = {
    "routing": {
        "rules": [
            {"name": "visa-first", "when": {"brand": "visa"}, "then": {"connectors": ["simulator"]}}
        ],
        "default": {"connectors": ["simulator"]},
    },
    "risk": {
        "rules": [
            {
                "name": "big-usd",
                "mode": "enforce",
                "kind": "amount_limit",
                "currency": "usd",
                "max_amount": 1000000,
            }
        ]
    },
}


@router.get("")
async def overview(request: Request) -> Response:
    container, actor = container_of(request), principal_of(request)
    first = PageRequest(PAGE_SIZE)
    return page(
        request,
        "routing.html",
        title="Routing & risk",
        routing_sets=(await container.routing_rules.list(actor, first)).data,
        risk_sets=(await container.risk_rules.list(actor, first)).data,
        connectors=(await container.connectors.list(actor, first)).data,
    )


@router.get("/{kind}/new")
async def editor(request: Request, kind: str) -> Response:
    _rule_sets(request, kind)
    return _editor(request, kind, json.dumps(EXAMPLES[kind], indent=2))


@router.post("/{kind}/new")
async def check_or_save(request: Request, kind: str) -> Response:
    """`action=check` shows the checker's verdict; `action=save` saves a draft (checked again)."""
    rule_sets = _rule_sets(request, kind)
    form = await form_of(request, max_chars=_MAX_RULE_SET_CHARS)
    source = form.get("body", "")
    actor = principal_of(request)
    try:
        body = _json_object(source)
        if form.get("action") == "save":
            record = await rule_sets.create(actor, origin_of(request), body)
            return RedirectResponse(f"{PREFIX}/routing/{kind}/{record.id}?saved=1", status_code=303)
        await rule_sets.check(actor, body)
    except InvalidRequest as exc:
        return _editor(request, kind, source, verdict=exc.message, status_code=400)
    return _editor(request, kind, source, verdict=None, checked=True)


@router.get("/{kind}/{rule_set_id}")
async def rule_set(request: Request, kind: str, rule_set_id: str) -> Response:
    record = await _rule_sets(request, kind).get(principal_of(request), rule_set_id)
    notice = "Draft saved: the checker accepted it." if request.query_params.get("saved") else None
    if request.query_params.get("activated"):
        notice = "Activated: the next payment uses this set."
    return page(
        request,
        "rule_set.html",
        title=record.id,
        kind=kind,
        record=record,
        body=json.dumps(record.body, indent=2),
        notice=notice,
    )


@router.post("/{kind}/{rule_set_id}/activate")
async def activate(request: Request, kind: str, rule_set_id: str) -> Response:
    await _rule_sets(request, kind).activate(principal_of(request), origin_of(request), rule_set_id)
    return RedirectResponse(f"{PREFIX}/routing/{kind}/{rule_set_id}?activated=1", status_code=303)


@router.post("/{kind}/{rule_set_id}/replay")
async def replay(request: Request, kind: str, rule_set_id: str) -> Response:
    container, actor = container_of(request), principal_of(request)
    record = await _rule_sets(request, kind).get(actor, rule_set_id)
    form = await form_of(request)
    days = integer(form.get("days"), "days") or 7
    if not 1 <= days <= _MAX_REPLAY_DAYS:
        raise InvalidRequest(f"'days' is 1 to {_MAX_REPLAY_DAYS}.", field="days")
    until = container.clock.now()
    candidate: dict[str, Any] = {kind: record.id}
    report = await container.routing_simulations.simulate(
        actor, SimulationRequest(since=until - timedelta(days=days), until=until, **candidate)
    )
    return page(
        request,
        "rule_set.html",
        title=record.id,
        kind=kind,
        record=record,
        body=json.dumps(record.body, indent=2),
        report=json.dumps(report, indent=2, default=str),
        days=days,
    )


def _editor(
    request: Request, kind: str, source: str, *, status_code: int = 200, **extra: Any
) -> Response:
    return page(
        request,
        "rule_editor.html",
        status_code=status_code,
        title=f"New {kind} rule set",
        kind=kind,
        source=source,
        **extra,
    )


def _rule_sets(request: Request, kind: str) -> RuleSets[Any]:
    container: Container = container_of(request)
    if kind == "routing":
        return container.routing_rules
    if kind == "risk":
        return container.risk_rules
    raise NotFound(f"No such kind of rule set: '{kind[:20]}'.")


def _json_object(source: str) -> dict[str, Any]:
    try:
        body = json.loads(source)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("A rule set is a JSON object.")
    return body
