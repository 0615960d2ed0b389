"""Liveness, readiness and Prometheus metrics (unauthenticated, outside /v1)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from clearport.http.context import container_of
from clearport.http.models.health import Liveness, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "The database is not ready."}},
)
async def readyz(request: Request) -> JSONResponse:
    container = container_of(request)
    try:
        version = await container.db.fetchval("SELECT version_num FROM alembic_version")
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
    expected = request.app.state.schema_head
    if version != expected:
        return JSONResponse(
            {"status": "unavailable", "database": "not migrated", "schema": version}, 503
        )
    return JSONResponse({"status": "ok", "schema": version})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several API processes: merge what each wrote to the shared directory.
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
