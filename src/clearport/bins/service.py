"""Importing the BIN table, and this process's copy of it for lookups.

`clearport bins import FILE` replaces the whole table in one transaction (a file with one bad
line changes nothing) and announces it (`CacheTopic.BINS`): every process reloads its copy
before its next lookup. `BinDirectory` holds the table flattened in memory (`BinTable`), so
tokenization reads no table to learn a card's funding and issuer country; the TTL bounds what a
process that missed the announcement keeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from clearport.bins.domain import BinInfo, BinTable, parse_csv
from clearport.bins.ports import BinRepository
from clearport.core.invalidation import CacheTopic, Invalidations
from clearport.core.uow import UnitOfWork

log = structlog.get_logger("clearport.bins")

# The sample shipped with Clearport: the test cards and the major brands' public test ranges.
SAMPLE_FILE = Path(__file__).parent / "sample_bins.csv"
ALL = "all"


class BinService:
    def __init__(
        self,
        uow: UnitOfWork,
        repo: BinRepository,
        invalidations: Invalidations,
        local: BinDirectory,
    ) -> None:
        self._local = local  # this process's table, dropped at once after an import
        self._uow = uow
        self._repo = repo
        self._invalidations = invalidations

    async def import_text(self, text: str) -> int:
        """Replace the table with the file's ranges; how many. A bad file raises the first
        error (its line and column) and changes nothing."""
        ranges = parse_csv(text)
        async with self._uow.transaction() as tx:
            await self._repo.replace_all(tx, ranges)
            await self._invalidations.publish(tx, CacheTopic.BINS, ALL)
        self._local.clear()
        log.info("bins_imported", ranges=len(ranges))
        return len(ranges)

    async def warm(self) -> None:
        """Load this process's table before it serves (see `BinDirectory.lookup`)."""
        await self._local.warm()

    async def count(self) -> int:
        async with self._uow.autocommit() as tx:
            return await self._repo.count(tx)


class BinDirectory:
    """This process's BIN table; a subscriber of `CacheTopic.BINS`."""

    def __init__(
        self,
        uow: UnitOfWork,
        repo: BinRepository,
        *,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._repo = repo
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._table = BinTable(())
        self._stale = True
        self._expires_at = 0.0
        self._loading = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    def evict(self, key: str) -> None:
        self._stale = True

    def clear(self) -> None:
        self._stale = True

    async def warm(self) -> None:
        await self._reload()

    async def lookup(self, digits: str) -> BinInfo | None:
        """The range holding `digits`. Tokenization calls this inside its transaction, so it
        must not wait for a pooled connection there: with every other connection waiting on a
        lock that transaction holds (a merchant's first DEK), that wait never ends. So a table
        whose TTL ran out is used while a background task reloads it; only a table never
        loaded (a process that skipped `warm`) or dropped by an announcement (a new import,
        which must be seen at once) is loaded before answering."""
        if self._stale:
            await self._reload()
        elif self._monotonic() >= self._expires_at and (
            self._refresh is None or self._refresh.done()  # a loop that ended leaves it done
        ):
            self._refresh = asyncio.create_task(self._background_reload())
        return self._table.lookup(digits)

    async def _background_reload(self) -> None:
        try:
            await self._reload()
        except Exception:  # the next lookup tries again; the TTL's table still answers
            log.warning("bins_reload_failed", exc_info=True)
        finally:
            self._refresh = None

    async def _reload(self) -> None:
        async with self._loading:
            if self._stale or self._monotonic() >= self._expires_at:
                # Fresh before reading: an announcement during the read marks it stale again.
                self._stale = False
                async with self._uow.autocommit() as tx:
                    ranges = await self._repo.all(tx)
                self._table = BinTable(ranges)
                self._expires_at = self._monotonic() + self._ttl_s
