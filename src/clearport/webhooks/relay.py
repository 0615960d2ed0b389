"""The relay and the housekeeping around deliveries: fan new events out to their endpoints,
find endpoints with deliveries due (retries, work a dead job left), purge what retention no
longer keeps, and measure the backlog.

The relay never reads past an event it has not seen: it claims rows of `event_relay_queue`
(filled by a trigger as each event is inserted) with SKIP LOCKED. An event whose transaction
commits late, with a lower sequence than events already relayed, is claimed when it becomes
visible; nothing depends on a high-water mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from clearport.core.clock import Clock
from clearport.core.uow import UnitOfWork
from clearport.webhooks.domain import WebhookOptions
from clearport.webhooks.ports import Backlog, Relayed, SecretKeeper, WebhookStore


@dataclass(frozen=True, slots=True)
class Purged:
    attempts: int
    deliveries: int
    events: int
    secrets: int


class Relay:
    def __init__(
        self,
        uow: UnitOfWork,
        store: WebhookStore,
        keeper: SecretKeeper,
        clock: Clock,
        options: WebhookOptions,
    ) -> None:
        self._uow = uow
        self._store = store
        self._keeper = keeper
        self._clock = clock
        self._options = options

    async def relay(self, limit: int) -> Relayed:
        """Fan out up to `limit` queued events, in one statement and one commit."""
        async with self._uow.transaction() as tx:
            return await self._store.relay(
                tx, limit=limit, now=self._clock.now(), window_s=self._options.retry.window_s
            )

    async def due_endpoints(self, limit: int) -> list[str]:
        async with self._uow.autocommit() as tx:
            return await self._store.due_endpoints(tx, self._clock.now(), limit)

    async def purge(self, limit: int) -> Purged:
        """One bounded batch of each: attempts and finished deliveries past retention, events
        past theirs (when set), secrets whose rotation overlap has ended."""
        now = self._clock.now()
        options = self._options
        attempts_before = now - timedelta(seconds=options.attempts_retention_s)
        async with self._uow.transaction() as tx:
            attempts = await self._store.purge_attempts(tx, attempts_before, limit)
            deliveries = await self._store.purge_deliveries(tx, attempts_before, limit)
            events = 0
            if options.events_retention_s is not None:
                events_before = now - timedelta(seconds=options.events_retention_s)
                events = await self._store.purge_events(tx, events_before, limit)
            expired = await self._store.expired_secret_ids(tx, now, limit)
            await self._keeper.destroy_secrets(tx, expired)
        return Purged(attempts, deliveries, events, len(expired))

    async def backlog(self) -> Backlog:
        async with self._uow.autocommit() as tx:
            return await self._store.backlog(tx)
