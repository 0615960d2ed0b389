"""Mounting the console on the API's application: its routes, its static assets, and the
security headers of every `/console` response (a strict Content-Security-Policy: no script at
all, styles and images from the console alone; decision 1003)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearport.console import (
    auth,
    pages_merchants,
    pages_money,
    pages_operations,
    pages_payments,
    pages_rules,
)
from clearport.console.web import PREFIX
from clearport.wiring import Container

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class ConsoleHeaders:
    """Adds the security headers to every response under `/console`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + list(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_console(app: FastAPI, container: Container) -> None:
    del container  # the routes find it on app.state, as the API's do
    for module in (
        auth,
        pages_operations,
        pages_merchants,
        pages_payments,
        pages_rules,
        pages_money,
    ):
        app.include_router(module.router)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(packages=[("clearport.console", "static")]),
        name="console-static",
    )
    app.add_middleware(ConsoleHeaders)
