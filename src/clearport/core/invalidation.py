"""Cache invalidation across processes (decision 0019).

A change that any process may hold in a cache (a merchant's data keys destroyed, an API key
revoked) is *announced* in the transaction that makes it: every process's subscribers hear of
it once that transaction commits, never if it rolls back. PostgreSQL LISTEN/NOTIFY carries it
(`db/invalidation.py`: the publisher, and one listening connection per process); this module has
the port services publish through and the hub that delivers to this process's caches.

A cache still expires its entries: a process whose listening connection dropped may have missed
announcements, so the listener clears every cache when it reconnects, and the TTL bounds
whatever is left.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Protocol

from clearport.core.uow import Transaction


class CacheTopic(StrEnum):
    """What changed; the announcement's key says which one."""

    DATA_KEYS = "data_keys"  # a merchant id: its DEKs were destroyed (shred, rotation)
    API_KEY = "api_key"  # an API key id: it was revoked
    CONNECTORS = "connectors"  # a connector id: registered or changed
    BINS = "bins"  # "all": the BIN table was imported anew
    ROUTING_RULES = "routing_rules"  # a routing rule set id: activated (the active one changed)
    RISK_RULES = "risk_rules"  # a risk rule set id: activated (the active one changed)
    MERCHANT = "merchant"  # a merchant id: its status, MCC or payment settings changed
    AUTH_LOCKOUT = "auth_lockout"  # a lockout subject (an address): it was locked out


class Invalidations(Protocol):
    """The publishing side, for services."""

    async def publish(self, tx: Transaction, topic: CacheTopic, key: str) -> None:
        """Announce that `key` of `topic` changed, delivered to every process when `tx`
        commits (and not at all if it rolls back)."""
        ...


class CacheSubscriber(Protocol):
    """A process-local cache, told what to drop."""

    def evict(self, key: str) -> None:
        """Drop what is cached under `key` (a merchant id, a key id)."""
        ...

    def clear(self) -> None:
        """Drop everything: announcements may have been missed."""
        ...


class NoCache:
    """The subscriber of a topic whose cache is not built yet (API keys: the hot-path caching
    work adds it): announcements arrive and there is nothing to drop."""

    def evict(self, key: str) -> None:
        pass

    def clear(self) -> None:
        pass


class InvalidationHub:
    """This process's caches by topic; the listener delivers announcements to it. Thread-safe:
    the test server delivers from its own thread."""

    def __init__(self) -> None:
        self._subscribers: dict[CacheTopic, list[CacheSubscriber]] = {}
        self._lock = threading.Lock()

    def subscribe(self, topic: CacheTopic, subscriber: CacheSubscriber) -> None:
        with self._lock:
            self._subscribers.setdefault(topic, []).append(subscriber)

    def deliver(self, topic: str, key: str) -> bool:
        """Evict `key` from every cache of `topic`; False for a topic this version does not
        know (a newer process may announce more), which is ignored."""
        try:
            known = CacheTopic(topic)
        except ValueError:
            return False
        with self._lock:
            subscribers = list(self._subscribers.get(known, ()))
        for subscriber in subscribers:
            subscriber.evict(key)
        return True

    def clear_all(self) -> None:
        """Empty every cache (after announcements may have been missed)."""
        with self._lock:
            subscribers = [s for group in self._subscribers.values() for s in group]
        for subscriber in subscribers:
            subscriber.clear()
