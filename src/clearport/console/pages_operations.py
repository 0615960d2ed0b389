"""The overview (charts of the last 24 hours or 7 days), webhooks (endpoints, their deliveries,
redeliver), and the audit log with its filters."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from clearport.console import charts
from clearport.console.forms import day, form_of, listing, page_of, query
from clearport.console.web import (
    PREFIX,
    ConsoleRoute,
    container_of,
    origin_of,
    page,
    principal_of,
)
from clearport.core.errors import InvalidRequest

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

_AUDIT_FILTERS = ("event_type", "actor", "resource", "outcome")


@router.get("/overview")
async def overview(request: Request) -> Response:
    window = query(request, "window") or "24h"
    if window not in {"24h", "7d"}:
        raise InvalidRequest("'window' is 24h or 7d.", field="window")
    stats = await container_of(request).payment_stats.overview(principal_of(request), window)
    label = "%H:%M" if window == "24h" else "%m-%d"
    return page(
        request,
        "overview.html",
        title="Overview",
        stats=stats,
        window=window,
        charts=[
            charts.volume_columns(
                f"Payments per {'hour' if window == '24h' else 'day'}", stats.buckets, label
            ),
            charts.rate_bars("Approval rate by connector", stats.by_connector),
            charts.rate_bars("Approval rate by brand", stats.by_brand),
            charts.count_bars("Decline reasons", stats.by_decline_code),
        ],
    )


@router.get("/webhooks")
async def webhooks(request: Request) -> Response:
    container, actor = container_of(request), principal_of(request)
    found = await container.webhooks.list_endpoints(actor, page_of(request, "we"))
    return page(request, "webhooks.html", title="Webhooks", **listing(found, request))


@router.get("/webhooks/{endpoint_id}")
async def endpoint(request: Request, endpoint_id: str) -> Response:
    container, actor = container_of(request), principal_of(request)
    found = await container.webhooks.get_endpoint(actor, endpoint_id)
    attempts = await container.webhooks.list_attempts(
        actor, endpoint_id, page_of(request, "wd"), {}
    )
    return page(
        request,
        "webhook.html",
        title=found.id,
        endpoint=found,
        notice="Event queued for redelivery." if request.query_params.get("redelivered") else None,
        **listing(attempts, request),
    )


@router.post("/webhooks/{endpoint_id}/redeliver")
async def redeliver(request: Request, endpoint_id: str) -> Response:
    form = await form_of(request)
    await container_of(request).webhooks.redeliver(
        principal_of(request), origin_of(request), form.get("event", ""), endpoint_id
    )
    return RedirectResponse(f"{PREFIX}/webhooks/{endpoint_id}?redelivered=1", status_code=303)


@router.get("/audit")
async def audit(request: Request) -> Response:
    filters: dict[str, object] = {name: query(request, name) for name in _AUDIT_FILTERS}
    filters["created_gte"] = day(query(request, "from"), "from")
    filters["created_lt"] = day(query(request, "to"), "to", end=True)
    found = await container_of(request).audit_queries.list(
        principal_of(request), page_of(request, "aud"), filters
    )
    return page(
        request,
        "audit.html",
        title="Audit log",
        form=dict(request.query_params),
        **listing(found, request),
    )
