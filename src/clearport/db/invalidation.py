"""Cache invalidation over PostgreSQL LISTEN/NOTIFY (`core/invalidation.py`, decision 0019).

`PgInvalidations.publish` runs `pg_notify` inside the caller's transaction: PostgreSQL delivers
a notification only when that transaction commits, once, to every session listening then.
`InvalidationListener` is one dedicated connection per process (never a pooled one: the pool
resets nothing, and a LISTEN must outlive any one request) that LISTENs on the channel and hands
each announcement to the process's `InvalidationHub`.

A connection that drops loses whatever was announced while it was down, so the listener clears
every cache, reconnects with backoff, and clears again once it listens again; a periodic
`SELECT 1` notices a connection that died silently. The caches' TTL bounds the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import cast

import asyncpg
import structlog

from clearport.core.errors import invariant
from clearport.core.invalidation import CacheTopic, InvalidationHub
from clearport.core.uow import Transaction
from clearport.db.database import PgTransaction, conn_of

log = structlog.get_logger("clearport.invalidation")

CHANNEL = "clearport_cache_invalidation"
APPLICATION_NAME = "clearport-invalidation"  # how the listening sessions show in pg_stat_activity
MAX_PAYLOAD_BYTES = 7_999  # NOTIFY refuses 8000 bytes and more
CHECK_INTERVAL_S = 10.0
CHECK_TIMEOUT_S = 5.0
RECONNECT_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)  # then 5 s between tries


def encode(topic: CacheTopic, key: str) -> str:
    return json.dumps({"topic": str(topic), "key": key}, separators=(",", ":"))


def decode(payload: str) -> tuple[str, str] | None:
    """(topic, key), or None for a payload that is not an announcement."""
    try:
        item = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(item, dict):
        return None
    topic, key = item.get("topic"), item.get("key")
    if not isinstance(topic, str) or not isinstance(key, str):
        return None
    return topic, key


class PgInvalidations:
    """Announcements published in the caller's transaction. Given this process's hub, the
    announcement is also delivered here as soon as the transaction commits, so the process that
    made a change never answers from its stale copy while its own notification is on the way."""

    def __init__(self, hub: InvalidationHub | None = None) -> None:
        self._hub = hub

    async def publish(self, tx: Transaction, topic: CacheTopic, key: str) -> None:
        payload = encode(topic, key)
        invariant(len(payload.encode()) <= MAX_PAYLOAD_BYTES, "an announcement fits NOTIFY")
        await conn_of(tx).execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        hub = self._hub
        if hub is not None:
            cast(PgTransaction, tx).on_commit(lambda: hub.deliver(str(topic), key))


class InvalidationListener:
    """This process's LISTEN on the invalidation channel, delivering to `hub`."""

    def __init__(
        self,
        url: str,
        hub: InvalidationHub,
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self._url = url
        self._hub = hub
        self._check_interval_s = check_interval_s
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def server_pid(self) -> int | None:
        """The listening session's backend pid (None while reconnecting)."""
        return None if self._conn is None else self._conn.get_server_pid()

    async def start(self) -> None:
        """Listen before returning: a cache filled after this hears of every later change."""
        self._conn = await self._connect()
        self._task = asyncio.create_task(self._supervise(), name="invalidation-listener")

    async def stop(self) -> None:
        self._stopping = True
        self._lost.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def _connect(self) -> asyncpg.Connection:
        self._lost.clear()
        conn = await asyncpg.connect(
            self._url, server_settings={"application_name": APPLICATION_NAME}
        )
        conn.add_termination_listener(self._on_lost)
        await conn.add_listener(CHANNEL, self._on_notification)
        return conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        text = payload if isinstance(payload, str) else ""
        announcement = decode(text)
        if announcement is None or not self._hub.deliver(*announcement):
            log.warning("invalidation_ignored", payload_bytes=len(text))

    def _on_lost(self, conn: object) -> None:
        if conn is self._conn:  # not the one `_close` let go of
            self._lost.set()

    async def _alive(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            await conn.fetchval("SELECT 1", timeout=CHECK_TIMEOUT_S)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._lost.wait(), timeout=self._check_interval_s)
            except TimeoutError:
                if await self._alive():
                    continue
            if self._stopping:
                return
            log.warning("invalidation_listener_lost")
            self._hub.clear_all()  # what was announced from here on is not heard
            await self._close()
            await self._reconnect()
            self._hub.clear_all()  # everything cached before the LISTEN is back may be stale
            log.info("invalidation_listener_reconnected")

    async def _reconnect(self) -> None:
        # Without end: a process that cannot listen still serves, on its caches' TTL alone.
        for attempt in itertools.count():
            delay_s = RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)]
            await asyncio.sleep(delay_s)
            try:
                self._conn = await self._connect()
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("invalidation_reconnect_failed", error=type(exc).__name__)
