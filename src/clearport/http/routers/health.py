"""Liveness, readiness and Prometheus metrics (unauthenticated, outside /v1)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    generate_latest,
)

from clearport.http.context import container_of
from clearport.http.models.health import Liveness, Readiness
from clearport.http.responses import JSONResponse

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
async def metrics(request: Request) -> Response:
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several API processes: merge what each wrote to the shared directory.
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    text = generate_latest(registry) + await _mirror_lag(request) + await _reconciliation(request)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


async def _mirror_lag(request: Request) -> bytes:
    """The DynamoDB mirror's lag, read from the database at scrape time (the worker does the
    copying; any API process can tell how far behind it is)."""
    mirror = container_of(request).mirror
    if mirror is None:
        return b""
    try:
        behind, seconds = await mirror.lag()
    except Exception:  # a metrics scrape never fails on the database: the gauges go missing
        return b""
    registry = CollectorRegistry()
    Gauge(
        "clearport_txlog_mirror_lag_entries",
        "Sealed txlog entries not yet in the DynamoDB mirror.",
        registry=registry,
    ).set(behind)
    Gauge(
        "clearport_txlog_mirror_lag_seconds",
        "Age of the oldest sealed txlog entry not yet in the DynamoDB mirror.",
        registry=registry,
    ).set(seconds)
    return generate_latest(registry)


async def _reconciliation(request: Request) -> bytes:
    """Open reconciliation exceptions by kind and age, read at scrape time (the queue lives in
    the database, so every API process reports the same)."""
    try:
        rows = await container_of(request).reconciliation_queue.open_exceptions()
    except Exception:  # a metrics scrape never fails on the database: the gauge goes missing
        return b""
    registry = CollectorRegistry()
    gauge = Gauge(
        "clearport_reconciliation_open_exceptions",
        "Open reconciliation exceptions by kind and age (days since the run found them).",
        ["kind", "age"],
        registry=registry,
    )
    for kind, age, count in rows:
        gauge.labels(kind=kind, age=age).set(count)
    return generate_latest(registry)
