"""Connectors (operators: admin registers and changes them, every operator role reads them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from clearport.connectors.service import ConnectorPatch, ConnectorView, NewConnector
from clearport.core.clock import unix_seconds
from clearport.core.pagination import PageRequest
from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.listing import page_query
from clearport.http.models.base import ConnectorId
from clearport.http.models.connectors import (
    Connector,
    ConnectorCreate,
    ConnectorList,
    ConnectorUpdate,
)
from clearport.http.responses import JSONResponse
from clearport.http.schemas import list_json

router = APIRouter(prefix="/v1/connectors", route_class=ApiRoute, tags=["connectors"])


def connector_json(view: ConnectorView) -> dict[str, Any]:
    record = view.record
    return {
        "id": record.id,
        "object": "connector",
        "name": record.name,
        "type": record.type,
        "settings": view.shown_settings,
        "status": "enabled" if record.enabled else "disabled",
        "breaker": view.breaker,
        "created": unix_seconds(record.created_at),
        "updated": unix_seconds(record.updated_at),
    }


@router.post("", status_code=201, response_model=Connector)
async def create_connector(request: Request, body: ConnectorCreate) -> JSONResponse:
    view = await container_of(request).connectors.create(
        principal_of(request),
        origin_of(request),
        NewConnector(name=body.name, type=body.type, settings=body.settings),
    )
    return JSONResponse(connector_json(view), status_code=201)


@router.get("", response_model=ConnectorList)
async def list_connectors(
    request: Request, page: PageRequest = Depends(page_query("con"))
) -> JSONResponse:
    listed = await container_of(request).connectors.list(principal_of(request), page)
    return JSONResponse(
        list_json([connector_json(v) for v in listed.data], listed.has_more, "/v1/connectors")
    )


@router.get("/{connector_id}", response_model=Connector)
async def get_connector(request: Request, connector_id: ConnectorId) -> JSONResponse:
    view = await container_of(request).connectors.get(principal_of(request), connector_id)
    return JSONResponse(connector_json(view))


@router.patch("/{connector_id}", response_model=Connector)
async def update_connector(
    request: Request, connector_id: ConnectorId, body: ConnectorUpdate
) -> JSONResponse:
    view = await container_of(request).connectors.update(
        principal_of(request),
        origin_of(request),
        connector_id,
        ConnectorPatch(settings=body.settings, status=body.status),
    )
    return JSONResponse(connector_json(view))
