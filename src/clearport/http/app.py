"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clearport import __version__
from clearport.core.errors import ClearportError
from clearport.http.errors import error_response_for
from clearport.http.middleware import RequestContextMiddleware
from clearport.http.routers import (
    audit,
    balance,
    bank_accounts,
    events,
    health,
    merchants,
    operators,
    payments,
    settlements,
    tokens,
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
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.container = container
    app.state.schema_head = container.schema_head()

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response_for(request, exc)

    for exc_class in (ClearportError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_class, handle)

    app.add_middleware(RequestContextMiddleware, max_body_bytes=container.settings.max_body_bytes)
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
    ):
        app.include_router(module.router)
    return app
