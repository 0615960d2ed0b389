"""Routing and risk rule sets (operators: admin writes and activates; every role reads), and
replays of history through candidate rules (admin and finance)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request

from clearport.core.clock import unix_seconds
from clearport.core.pagination import PageRequest
from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.listing import page_query
from clearport.http.models.base import RiskRuleSetId, RoutingRuleSetId
from clearport.http.models.rules import (
    RiskRuleSet,
    RiskRuleSetCreate,
    RiskRuleSetList,
    RoutingRuleSet,
    RoutingRuleSetCreate,
    RoutingRuleSetList,
    RoutingSimulation,
    RoutingSimulationCreate,
)
from clearport.http.responses import JSONResponse
from clearport.http.schemas import StrictModel, list_json
from clearport.replay.service import SimulationRequest
from clearport.rulesets.domain import RuleSetRecord
from clearport.rulesets.service import RuleSets

router = APIRouter(route_class=ApiRoute, tags=["routing and risk"])

ROUTING = "/v1/routing_rule_sets"
RISK = "/v1/risk_rule_sets"


def rule_set_json(record: RuleSetRecord, kind: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": kind,
        "version": record.version,
        "status": str(record.status),
        **record.body,
        "created": unix_seconds(record.created_at),
        "activated": unix_seconds(record.activated_at),
    }


def _routing(request: Request) -> RuleSets[Any]:
    return container_of(request).routing_rules


def _risk(request: Request) -> RuleSets[Any]:
    return container_of(request).risk_rules


@router.post(ROUTING, status_code=201, response_model=RoutingRuleSet)
async def create_routing_rule_set(request: Request, body: RoutingRuleSetCreate) -> JSONResponse:
    """A new draft. A rule that can never match (shadowed by earlier rules, or contradicting
    itself) or that names an unknown connector is a 400 naming the rule and why."""
    record = await _routing(request).create(
        principal_of(request), origin_of(request), body.model_dump(exclude_none=True)
    )
    return JSONResponse(rule_set_json(record, "routing_rule_set"), status_code=201)


@router.get(ROUTING, response_model=RoutingRuleSetList)
async def list_routing_rule_sets(
    request: Request, page: PageRequest = Depends(page_query("rrs"))
) -> JSONResponse:
    listed = await _routing(request).list(principal_of(request), page)
    data = [rule_set_json(r, "routing_rule_set") for r in listed.data]
    return JSONResponse(list_json(data, listed.has_more, ROUTING))


@router.get(ROUTING + "/{rule_set_id}", response_model=RoutingRuleSet)
async def get_routing_rule_set(request: Request, rule_set_id: RoutingRuleSetId) -> JSONResponse:
    record = await _routing(request).get(principal_of(request), rule_set_id)
    return JSONResponse(rule_set_json(record, "routing_rule_set"))


@router.post(ROUTING + "/{rule_set_id}/activate", response_model=RoutingRuleSet)
async def activate_routing_rule_set(
    request: Request, rule_set_id: RoutingRuleSetId
) -> JSONResponse:
    """The set becomes the one active set (the previous one inactive); every process uses it
    for its next payment. Activating an inactive set again rolls back to it."""
    record = await _routing(request).activate(
        principal_of(request), origin_of(request), rule_set_id
    )
    return JSONResponse(rule_set_json(record, "routing_rule_set"))


@router.post("/v1/routing_simulations", response_model=RoutingSimulation)
async def simulate_routing(request: Request, body: RoutingSimulationCreate) -> JSONResponse:
    """Replay the payments of `[since, until)` through candidate routing and risk rules (and
    pricing): per connector volume, projected approval rate and fees; payments newly blocked
    or released. The same inputs give the same report (but its id)."""
    report = await container_of(request).routing_simulations.simulate(
        principal_of(request),
        SimulationRequest(
            since=datetime.fromtimestamp(body.since, UTC),
            until=datetime.fromtimestamp(body.until, UTC),
            routing=_candidate(body.routing_rule_set),
            risk=_candidate(body.risk_rule_set),
            pricing=None if body.pricing is None else body.pricing.model_dump(mode="json"),
        ),
    )
    return JSONResponse(report)


def _candidate(given: str | StrictModel | None) -> str | dict[str, Any] | None:
    if given is None or isinstance(given, str):
        return given
    return dict(given.model_dump(exclude_none=True))


@router.post(RISK, status_code=201, response_model=RiskRuleSet)
async def create_risk_rule_set(request: Request, body: RiskRuleSetCreate) -> JSONResponse:
    """A new draft of risk rules, each `enforce` (a hit blocks the payment) or `dry_run` (a hit
    is recorded on the payment, nothing more)."""
    record = await _risk(request).create(
        principal_of(request), origin_of(request), body.model_dump(exclude_none=True)
    )
    return JSONResponse(rule_set_json(record, "risk_rule_set"), status_code=201)


@router.get(RISK, response_model=RiskRuleSetList)
async def list_risk_rule_sets(
    request: Request, page: PageRequest = Depends(page_query("rks"))
) -> JSONResponse:
    listed = await _risk(request).list(principal_of(request), page)
    data = [rule_set_json(r, "risk_rule_set") for r in listed.data]
    return JSONResponse(list_json(data, listed.has_more, RISK))


@router.get(RISK + "/{rule_set_id}", response_model=RiskRuleSet)
async def get_risk_rule_set(request: Request, rule_set_id: RiskRuleSetId) -> JSONResponse:
    record = await _risk(request).get(principal_of(request), rule_set_id)
    return JSONResponse(rule_set_json(record, "risk_rule_set"))


@router.post(RISK + "/{rule_set_id}/activate", response_model=RiskRuleSet)
async def activate_risk_rule_set(request: Request, rule_set_id: RiskRuleSetId) -> JSONResponse:
    record = await _risk(request).activate(principal_of(request), origin_of(request), rule_set_id)
    return JSONResponse(rule_set_json(record, "risk_rule_set"))
