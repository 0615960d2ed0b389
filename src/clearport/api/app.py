"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clearport import __version__
from clearport.adapters.postgres.migrate import head_revision
from clearport.api.errors import error_response_for
from clearport.api.middleware import RequestContextMiddleware
from clearport.api.routers import audit, health, merchants, operators
from clearport.domain.errors import ClearportError
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
    app.state.schema_head = head_revision()

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response_for(request, exc)

    for exc_class in (ClearportError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_class, handle)

    app.add_middleware(RequestContextMiddleware, max_body_bytes=container.settings.max_body_bytes)
    for module in (health, merchants, operators, audit):
        app.include_router(module.router)
    # --- vault (issue 3): include routers here ---
    from clearport.api.routers import bank_accounts, tokens

    app.include_router(tokens.router)
    app.include_router(bank_accounts.router)
    # --- ledger (issue 4): include routers here ---
    from clearport.api.routers import balance

    app.include_router(balance.router)
    # --- payments (issue 5): include routers here ---
    from clearport.api.routers import payments as payments_router

    app.include_router(payments_router.router)
    # --- settlement (issue 6): include routers here ---
    from clearport.api.routers import settlements

    app.include_router(settlements.router)
    return app
