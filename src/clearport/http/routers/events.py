"""Events: what happened to a merchant's objects (the outbox), newest first."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from clearport.http.context import ApiRoute, container_of, principal_of
from clearport.http.listing import ListQuery, list_query
from clearport.http.models.base import AnyId, EventId
from clearport.http.models.events import Event, EventList
from clearport.http.representation import event_json
from clearport.http.responses import JSONResponse
from clearport.http.schemas import list_json

# Tagged with the payments, where the API document has always listed them.
router = APIRouter(route_class=ApiRoute, tags=["payments"])


@router.get("/v1/events", response_model=EventList)
async def list_events(
    request: Request,
    q: ListQuery = Depends(list_query("evt")),
    type: str | None = Query(None, max_length=64),
    object_id: AnyId | None = Query(None, alias="object", description="An object's id."),
) -> JSONResponse:
    page = await container_of(request).events.list(
        principal_of(request),
        q.page,
        {
            "type": type,
            "object_id": object_id,
            "created_gte": q.created_gte,
            "created_lt": q.created_lt,
        },
    )
    return JSONResponse(list_json([event_json(e) for e in page.data], page.has_more, "/v1/events"))


@router.get("/v1/events/{event_id}", response_model=Event)
async def get_event(request: Request, event_id: EventId) -> JSONResponse:
    event = await container_of(request).events.get(principal_of(request), event_id)
    return JSONResponse(event_json(event))
