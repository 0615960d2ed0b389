"""Webhook test helpers: a scriptable receiver on a loopback port (http, or https with a local
certificate authority from trustme), an independent signature verifier, and a container whose
webhooks may reach loopback and resolve names from a table."""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clearport.access.domain import Principal, PrincipalKind, Role
from clearport.config import Settings
from clearport.webhooks.fake import FakeResolver
from clearport.webhooks.settings import WebhookSettings
from clearport.wiring import Container, build_container
from tests.payments_support import ShiftedClock

ADMIN = Principal(PrincipalKind.OPERATOR, key_id="key_admin", role=Role.ADMIN)


def merchant(merchant_id: str) -> Principal:
    return Principal(PrincipalKind.MERCHANT, key_id="key_test", merchant_id=merchant_id)


# --- an independent verifier (the receiver's side, written from the documented scheme) --------


def verify(payload: bytes, header: str, secret: str, *, now: float, tolerance_s: int = 300) -> bool:
    """Stripe's scheme as a receiver implements it, independently of Clearport's code."""
    pairs = [item.split("=", 1) for item in header.split(",")]
    timestamps = [int(v) for k, v in pairs if k == "t"]
    if len(timestamps) != 1 or abs(now - timestamps[0]) > tolerance_s:
        return False
    expected = hmac.new(
        secret.encode("utf-8"), f"{timestamps[0]}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in pairs if k == "v1")


def signatures(header: str) -> list[str]:
    return [v for k, v in (item.split("=", 1) for item in header.split(",")) if k == "v1"]


# --- the receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers each POST by the next action of `plan` (then `default`):

    `ok` (200) · a status code (`500`, `302 <location>`) · `hang` (no answer until released or
    10 s) · `big` (200 with a 5 MB body) · `reset` (the connection reset, no answer)."""

    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    plan: list[str] = field(default_factory=list)
    default: str = "ok"
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                    action = receiver.plan.pop(0) if receiver.plan else receiver.default
                receiver.act(self, action)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # resets and clients that stop reading are the point of some tests

        self.server = Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/hooks"

    def act(self, handler: BaseHTTPRequestHandler, action: str) -> None:
        if action == "hang":
            self.release.wait(10)
            action = "ok"
        if action == "reset":
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()
            handler.close_connection = True
            return
        if action == "big":
            chunk = b"x" * 65_536
            handler.send_response(200)
            handler.send_header("Content-Length", str(80 * len(chunk)))
            handler.end_headers()
            for _ in range(80):  # 5 MB
                handler.wfile.write(chunk)
            return
        status, _, location = ("200" if action == "ok" else action).partition(" ")
        handler.send_response(int(status))
        if location:
            handler.send_header("Location", location)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r.headers["clearport-event-id"] for r in self.received]

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving(**options: Any) -> Iterator[Receiver]:
    receiver = Receiver(**options).start()
    try:
        yield receiver
    finally:
        receiver.stop()


# --- a container for webhook tests ---------------------------------------------------------


def webhook_settings(settings: Settings, **webhooks: Any) -> Settings:
    """The session's settings (same data directory: the same keyring as the API server) with
    loopback allowed and short timeouts, and `webhooks` overrides."""
    options: dict[str, Any] = {
        "allow_loopback": True,
        "connect_timeout_s": 1.0,
        "timeout_s": 1.0,
        "retry_base_s": 60.0,
    } | webhooks
    return settings.model_copy(update={"webhooks": WebhookSettings(**options)})


@asynccontextmanager
async def webhook_container(
    settings: Settings,
    database_url: str,
    *,
    resolver: FakeResolver | None = None,
    clock: ShiftedClock | None = None,
    **webhooks: Any,
) -> AsyncIterator[Container]:
    """A container whose webhooks reach loopback and resolve names with `resolver` (by
    default: none resolves)."""
    container = build_container(
        webhook_settings(settings, **webhooks),
        database_url,
        clock=clock,
        resolver=resolver or FakeResolver(),
    )
    await container.start(listen=False)
    try:
        yield container
    finally:
        await container.stop()


async def deliver_all(container: Container) -> int:
    """Relay what is queued and deliver what is due, as the worker would; events relayed."""
    relayed = await container.webhooks.relay(10_000)
    for endpoint_id in {*relayed.endpoint_ids, *await container.webhooks.due_endpoints(1000)}:
        await container.webhooks.deliver(endpoint_id)
    return relayed.events
