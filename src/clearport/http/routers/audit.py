"""The audit trail (admin, security)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from clearport.audit.domain import Outcome
from clearport.http.context import ApiRoute, container_of, principal_of
from clearport.http.listing import ListQuery, list_query
from clearport.http.models.merchants import AuditEventList
from clearport.http.responses import JSONResponse
from clearport.http.schemas import audit_json, list_json

router = APIRouter(prefix="/v1/audit_events", route_class=ApiRoute, tags=["audit"])


@router.get("", response_model=AuditEventList)
async def list_audit_events(
    request: Request,
    q: ListQuery = Depends(list_query("aud")),
    type: str | None = Query(None, max_length=100),
    resource: str | None = Query(None, max_length=100),
    actor: str | None = Query(None, max_length=200),
    outcome: Outcome | None = None,
) -> JSONResponse:
    page = await container_of(request).audit_queries.list(
        principal_of(request),
        q.page,
        {
            "event_type": type,
            "resource": resource,
            "actor": actor,
            "outcome": outcome,
            "created_gte": q.created_gte,
            "created_lt": q.created_lt,
        },
    )
    return JSONResponse(
        list_json([audit_json(e) for e in page.data], page.has_more, "/v1/audit_events")
    )
