"""Rate limits per API key, shared by every API process, without a database round trip per
request (decision 0911).

Each process counts its own requests per key and window in memory and admits a request while
its count plus what the other processes had counted at the last exchange stays under the limit.
Every `sync_s` a background task exchanges counts through `rate_limit_shares` (an UNLOGGED
table, one row per key and process, so no WAL, no fsync and no row two processes wait on): it
writes this process's counts and reads the others'. No request waits for that exchange.

Error bound: what another process admitted since the last exchange is unseen, so a window may
admit up to (processes - 1) x (requests one process admits in one exchange interval, plus one
exchange's duration) beyond the limit; it never refuses a request under the limit, because what
it knows of the others is never more than they counted. Windows are aligned on the wall clock
(`floor(t / window_s)`); processes on one host share it, hosts under NTP agree to milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("clearport.rate_limits")


@dataclass(slots=True)
class _Count:
    window_start: int
    mine: int = 0  # admitted by this process in the window
    others: int = 0  # what the other processes had admitted at the last exchange


class RateShares(Protocol):
    """Where the processes' counts meet (`store.PgRateShares`: an UNLOGGED table)."""

    async def exchange(
        self, process: str, counts: Sequence[tuple[str, int, int]]
    ) -> dict[str, int]:
        """Store (key, window_start, count) for `process`; the other processes' total per key
        in the same window."""
        ...

    async def sweep(self) -> None:
        """Forget rows no process has written for a long time."""
        ...


class SharedRateLimiter:
    def __init__(
        self,
        shares: RateShares,
        *,
        limit: int,
        window_s: int,
        sync_s: float,
        wall: Callable[[], float] = time.time,
        process: str | None = None,
    ) -> None:
        self._shares = shares
        self._limit = limit
        self._window_s = window_s
        self._sync_s = sync_s
        self._wall = wall
        self.process = process or uuid.uuid4().hex
        self._counts: dict[str, _Count] = {}
        self._task: asyncio.Task[None] | None = None

    async def hit(self, key_id: str) -> int | None:
        """Count one request; None if allowed, else the seconds until the window resets.
        Never waits for the database."""
        if self._task is None or self._task.done():  # first use, or a loop that ended
            self._task = asyncio.create_task(self._run(), name="rate-limit-exchange")
        now = self._wall()
        window_start = int(now // self._window_s) * self._window_s
        count = self._counts.get(key_id)
        if count is None or count.window_start != window_start:
            count = self._counts[key_id] = _Count(window_start)
        if count.mine + count.others >= self._limit:
            # Retry-After is whole seconds, rounded up, never 0.
            return max(1, math.ceil(window_start + self._window_s - now))
        count.mine += 1
        return None

    async def sync(self) -> None:
        """One exchange with the other processes (the background task's step; tests call it)."""
        window_now = int(self._wall() // self._window_s) * self._window_s
        for key_id in [k for k, c in self._counts.items() if c.window_start < window_now]:
            del self._counts[key_id]  # past windows say nothing any more
        pending = list(self._counts.items())
        if not pending:
            return
        counts = [(k, c.window_start, c.mine) for k, c in pending]
        others = await self._shares.exchange(self.process, counts)
        for key_id, count in pending:
            count.others = max(count.others, others.get(key_id, 0))

    async def _run(self) -> None:
        exchanges = 0
        while True:
            await asyncio.sleep(self._sync_s)
            try:
                await self.sync()
                exchanges += 1
                if exchanges % 72_000 == 0:  # about hourly at the default interval
                    await self._shares.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next exchange tries again; counting goes on
                log.warning("rate_limit_exchange_failed", error=type(exc).__name__)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
