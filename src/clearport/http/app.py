"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from clearport import __version__
from clearport.core.errors import ClearportError
from clearport.http.errors import error_response_for
from clearport.http.middleware import RequestContextMiddleware
from clearport.http.models.connectors import document_types
from clearport.http.openapi import openapi_document
from clearport.http.responses import JSONResponse
from clearport.http.routers import (
    audit,
    balance,
    bank_accounts,
    connectors,
    disputes,
    docs,
    events,
    files,
    health,
    merchants,
    operators,
    payments,
    reconciliation,
    rules,
    settlements,
    tokens,
    webhooks,
)
from clearport.wiring import Container


def create_app(container: Container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await container.start()
        try:
            yield
        finally:
            await container.stop()

    app = FastAPI(
        title="Clearport API",
        version=__version__,
        summary="Merchant services: tokenize cards; authorize, capture, void and refund "
        "payments; disputes and adjustments; balances, settlement and payouts.",
        lifespan=lifespan,
        openapi_tags=TAGS,
        # Served by routers/docs.py from the vendored assets, never from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    _serve_document(app, container)
    app.state.container = container
    app.state.schema_head = container.schema_head()

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response_for(request, exc)

    for exc_class in (ClearportError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_class, handle)

    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=container.settings.max_body_bytes,
        larger_bodies={files.UPLOAD_PATH: files.MAX_UPLOAD_BODY_BYTES},
    )
    for module in (
        health,
        merchants,
        operators,
        audit,
        tokens,
        bank_accounts,
        balance,
        payments,
        events,
        settlements,
        webhooks,
        disputes,
        reconciliation,
        files,
        connectors,
        rules,
        docs,
    ):
        app.include_router(module.router)
    app.mount(
        docs.ASSETS_PATH,
        StaticFiles(packages=[("clearport.http", "static")]),
        name="docs-assets",
    )
    return app


TAGS = [
    {"name": "merchants", "description": "Onboarding, terms, keys, bank accounts (operators)."},
    {"name": "operators", "description": "Operator keys (admin, security)."},
    {"name": "audit", "description": "The audit trail (admin, security)."},
    {"name": "tokens", "description": "Card tokens (merchant keys)."},
    {"name": "payments", "description": "Payments, refunds, payment settings and events."},
    {"name": "balance", "description": "Balances and balance transactions."},
    {"name": "settlement", "description": "Settlement runs, settlements, items and payouts."},
    {
        "name": "webhooks",
        "description": "Webhook endpoints, their delivery attempts, redelivering an event.",
    },
    {"name": "disputes", "description": "Disputes, their evidence files, and adjustments."},
    {
        "name": "reconciliation",
        "description": "Processor settlement files matched against Clearport's records, and the "
        "exception queue (finance).",
    },
    {"name": "connectors", "description": "Acquirers and processors payments go to (operators)."},
    {"name": "health", "description": "Liveness, readiness and metrics (no key)."},
]


def _serve_document(app: FastAPI, container: Container) -> None:
    """`/openapi.json` serves the completed document (http/openapi.py), built once, with the
    settings of the connector types this process knows."""

    def connector_types(doc: dict[str, Any]) -> None:
        document_types(doc, container.connectors.types)

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app, completions=(connector_types,))
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
