"""Pure ASGI middleware: request id, body-size limit, metrics and one log line per request."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearport.core.ids import new_id
from clearport.http.errors import error_body

log = structlog.get_logger("clearport.access")

REQUESTS = Counter("clearport_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "clearport_http_request_duration_seconds",
    "HTTP request latency",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        larger_bodies: Mapping[str, int] | None = None,
    ) -> None:
        """`larger_bodies`: paths that take more than `max_body_bytes` (a file upload), each
        with its own limit; every other path keeps the small one."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger_bodies = dict(larger_bodies or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        limit = self.larger_bodies.get(scope.get("path", ""), self.max_body_bytes)
        try:
            body = await _read_body(receive, _content_length(scope), limit)
            if body is None:
                await _send_json(
                    send_wrapper,
                    400,
                    error_body(
                        request_id,
                        error_type="invalid_request_error",
                        code="body_too_large",
                        message=f"The request body exceeds {limit} bytes.",
                        param=None,
                    ),
                )
                return
            await self.app(scope, _replay(body, receive), send_wrapper)
        except Exception:
            log.exception("unhandled_error")
            if not status_holder["started"]:
                await _send_json(
                    send_wrapper,
                    500,
                    error_body(
                        request_id,
                        error_type="api_error",
                        code="internal_error",
                        message="An internal error occurred. Retry later or contact support.",
                        param=None,
                    ),
                )
        finally:
            elapsed_s = time.perf_counter() - started
            route = _route_of(scope)
            method = scope.get("method", "")
            status = int(status_holder["status"])
            REQUESTS.labels(route, method, str(status)).inc()
            LATENCY.labels(route, method).observe(elapsed_s)
            log.info(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed_s * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


async def _read_body(receive: Receive, declared: int | None, limit: int) -> bytes | None:
    """The whole body (bodies are small JSON), or None when it exceeds `limit` bytes."""
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for disconnect as usual

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
