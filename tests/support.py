"""Test helpers: a real server in a thread, real PostgreSQL, HTTP clients."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI

from clearport.core.ids import new_id

TEST_SERVER_SECRET = "test-server-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """uvicorn serving an app on a loopback port from a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            loop="asyncio",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Api:
    """HTTP access to the server under test, with key bookkeeping."""

    url: str
    database_url: str
    http: httpx.Client

    def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        *,
        json: Any = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        return self.http.request(
            method,
            self.url + path,
            json=json,
            content=content,
            params=params,
            headers=all_headers,
            files=files,
            data=data,
        )

    def operator(self, role: str = "admin") -> str:
        """A new operator key, inserted directly (the bootstrap a CLI would do)."""
        secret = "ok_" + secrets.token_hex(16)
        digest = hmac.new(TEST_SERVER_SECRET.encode(), secret.encode(), hashlib.sha256).digest()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO api_keys (id, kind, role, mode, secret_hash, display, created_by)"
                " VALUES (%s, 'operator', %s, 'test', %s, %s, 'test')",
                (new_id("key"), role, digest, "ok_…" + secret[-4:]),
            )
        return secret

    def merchant(self, admin: str | None = None, **fields: Any) -> tuple[str, str]:
        """A new merchant and a secret key for it: (merchant_id, secret)."""
        admin = admin or self.operator("admin")
        body = {
            "name": "Test Shop",
            "country": "US",
            "mcc": "5999",
            "default_currency": "usd",
            **fields,
        }
        created = self.call("POST", "/v1/merchants", admin, json=body)
        assert created.status_code == 201, created.text
        merchant_id = created.json()["id"]
        key = self.call("POST", f"/v1/merchants/{merchant_id}/keys", admin)
        assert key.status_code == 201, key.text
        return merchant_id, key.json()["secret"]


@contextmanager
def pg(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
