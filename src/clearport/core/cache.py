"""A bounded, expiring, process-local cache that cache invalidation can empty (decision 0910).

Entries are evicted least recently used past `max_entries`, and expire `ttl_s` after they were
stored: the TTL bounds what a process keeps if it missed an announcement (its listening
connection dropped). Each entry carries a *tag* (the id an announcement names: an API key's id,
a merchant's id), so `evict(tag)` drops it whatever the entry is keyed by (an API key is looked
up by its secret's hash, revoked by its id).

A read from the database that started before an announcement and ends after it would store what
the announcement said is stale; `generation()` taken before the read and handed to `put` makes
such a `put` a no-op.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedTtlCache(Generic[K, V]):
    def __init__(
        self,
        *,
        max_entries: int,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("a cache needs a positive size and TTL")
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._items: OrderedDict[K, tuple[float, str, V]] = OrderedDict()
        self._by_tag: dict[str, set[K]] = {}
        self._generation = 0
        # The test server delivers announcements from its own thread.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def generation(self) -> int:
        """Take before reading what will be `put`: an eviction in between voids the put."""
        return self._generation

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires_at, _tag, value = item
            if self._monotonic() >= expires_at:
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V, *, tag: str, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # evicted meanwhile: what was read may be what the eviction was about
            self._drop(key)
            self._items[key] = (self._monotonic() + self._ttl_s, tag, value)
            self._by_tag.setdefault(tag, set()).add(key)
            while len(self._items) > self._max_entries:
                self._drop(next(iter(self._items)))

    def _drop(self, key: K) -> None:
        item = self._items.pop(key, None)
        if item is None:
            return
        keys = self._by_tag.get(item[1])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_tag[item[1]]

    # --- a CacheSubscriber (core/invalidation.py) -----------------------------------------

    def evict(self, key: str) -> None:
        """Drop every entry tagged `key` (the id an announcement names)."""
        with self._lock:
            self._generation += 1
            for cached in list(self._by_tag.get(key, ())):
                self._drop(cached)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._items.clear()
            self._by_tag.clear()
