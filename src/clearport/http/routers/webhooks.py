"""Webhook endpoints (merchant keys their own; admins platform endpoints and every one), their
delivery attempts, and redelivering an event."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, StringConstraints

from clearport.core.clock import unix_seconds
from clearport.core.pagination import PageRequest
from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.listing import ListQuery, list_query, page_query
from clearport.http.models.base import EventId, WebhookEndpointId
from clearport.http.models.events import Event
from clearport.http.models.webhooks import (
    DeletedWebhookEndpoint,
    EnabledEvent,
    NewWebhookEndpoint,
    WebhookDeliveryList,
    WebhookEndpoint,
    WebhookEndpointList,
)
from clearport.http.openapi import answers
from clearport.http.representation import event_json, webhook_endpoint_json
from clearport.http.responses import JSONResponse
from clearport.http.schemas import StrictModel, list_json
from clearport.webhooks.addresses import MAX_URL_LENGTH
from clearport.webhooks.domain import (
    MAX_DESCRIPTION_LENGTH,
    MAX_ENABLED_EVENTS,
    DeliveryAttempt,
    EndpointStatus,
)
from clearport.webhooks.endpoints import MAX_ROTATION_OVERLAP_S
from clearport.webhooks.service import EndpointPatch

router = APIRouter(route_class=ApiRoute, tags=["webhooks"])

# https (http only with the development switch, which this document does not describe); where
# it leads is checked by the SSRF guard.
Url = Annotated[
    str,
    StringConstraints(min_length=9, max_length=MAX_URL_LENGTH, pattern=r"^https://[!-~]+$"),
    Field(
        description="https, to a public address: checked when set and before every delivery "
        "(loopback, private, link-local, CGNAT and metadata addresses are refused)."
    ),
]
EnabledEvents = Annotated[list[EnabledEvent], Field(min_length=1, max_length=MAX_ENABLED_EVENTS)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]


class EndpointCreate(StrictModel):
    url: Url
    enabled_events: EnabledEvents
    description: Description | None = None


class EndpointUpdate(StrictModel):
    url: Url | None = None
    enabled_events: EnabledEvents | None = None
    status: Literal["enabled", "disabled"] | None = None
    description: Description | None = Field(default=None, description='"" clears it.')


class SecretRotation(StrictModel):
    expire_previous_in_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_ROTATION_OVERLAP_S,
        description="How long the previous secret keeps signing too (default 86400; 0: now).",
    )


class Redelivery(StrictModel):
    endpoint: WebhookEndpointId


def attempt_json(a: DeliveryAttempt) -> dict[str, object]:
    return {
        "id": a.id,
        "object": "webhook_delivery",
        "endpoint": a.endpoint_id,
        "event": a.event_id,
        "attempt": a.attempt,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "next_retry_at": unix_seconds(a.next_retry_at),
        "created": unix_seconds(a.created_at),
    }


@router.post(
    "/v1/webhook_endpoints",
    status_code=201,
    response_model=NewWebhookEndpoint,
    response_description="The endpoint with its signing secret, shown in this answer only.",
)
async def create_endpoint(request: Request, body: EndpointCreate) -> JSONResponse:
    issued = await container_of(request).webhooks.create_endpoint(
        principal_of(request),
        origin_of(request),
        url=body.url,
        enabled_events=body.enabled_events,
        description=body.description,
    )
    return JSONResponse(webhook_endpoint_json(issued.endpoint, issued.secret), status_code=201)


@router.get("/v1/webhook_endpoints", response_model=WebhookEndpointList)
async def list_endpoints(
    request: Request, q: ListQuery = Depends(list_query("we"))
) -> JSONResponse:
    page = await container_of(request).webhooks.list_endpoints(principal_of(request), q.page)
    return JSONResponse(
        list_json(
            [webhook_endpoint_json(e) for e in page.data], page.has_more, "/v1/webhook_endpoints"
        )
    )


@router.get("/v1/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpoint)
async def get_endpoint(request: Request, endpoint_id: WebhookEndpointId) -> JSONResponse:
    endpoint = await container_of(request).webhooks.get_endpoint(principal_of(request), endpoint_id)
    return JSONResponse(webhook_endpoint_json(endpoint))


@router.patch("/v1/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpoint)
async def update_endpoint(
    request: Request, endpoint_id: WebhookEndpointId, body: EndpointUpdate
) -> JSONResponse:
    endpoint = await container_of(request).webhooks.update_endpoint(
        principal_of(request),
        origin_of(request),
        endpoint_id,
        EndpointPatch(
            url=body.url,
            enabled_events=body.enabled_events,
            status=None if body.status is None else EndpointStatus(body.status),
            description=body.description,
        ),
    )
    return JSONResponse(webhook_endpoint_json(endpoint))


@router.delete(
    "/v1/webhook_endpoints/{endpoint_id}",
    response_model=DeletedWebhookEndpoint,
    response_description="Deleted: it receives nothing more; its secrets are destroyed.",
)
async def delete_endpoint(request: Request, endpoint_id: WebhookEndpointId) -> JSONResponse:
    endpoint = await container_of(request).webhooks.delete_endpoint(
        principal_of(request), origin_of(request), endpoint_id
    )
    return JSONResponse({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})


@router.post(
    "/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
    response_model=NewWebhookEndpoint,
    response_description="The endpoint with its new secret, shown in this answer only.",
)
async def rotate_secret(
    request: Request, endpoint_id: WebhookEndpointId, body: SecretRotation | None = None
) -> JSONResponse:
    issued = await container_of(request).webhooks.rotate_secret(
        principal_of(request),
        origin_of(request),
        endpoint_id,
        None if body is None else body.expire_previous_in_s,
    )
    return JSONResponse(webhook_endpoint_json(issued.endpoint, issued.secret))


@router.get("/v1/webhook_endpoints/{endpoint_id}/deliveries", response_model=WebhookDeliveryList)
async def list_deliveries(
    request: Request,
    endpoint_id: WebhookEndpointId,
    page: PageRequest = Depends(page_query("wd")),
    event: EventId | None = Query(None, description="Only the attempts of this event."),
) -> JSONResponse:
    attempts = await container_of(request).webhooks.list_attempts(
        principal_of(request), endpoint_id, page, {"event": event}
    )
    return JSONResponse(
        list_json(
            [attempt_json(a) for a in attempts.data],
            attempts.has_more,
            f"/v1/webhook_endpoints/{endpoint_id}/deliveries",
        )
    )


@router.post(
    "/v1/events/{event_id}/redeliver",
    status_code=202,
    response_model=Event,
    response_description="The event, queued for delivery to the endpoint.",
    responses=answers(409),  # the endpoint is disabled
)
async def redeliver(request: Request, event_id: EventId, body: Redelivery) -> JSONResponse:
    event = await container_of(request).webhooks.redeliver(
        principal_of(request), origin_of(request), event_id, body.endpoint
    )
    return JSONResponse(event_json(event), status_code=202)
