"""What webhooks need from outside: its store, a resolver, a sender, the vault's sealed secrets,
the API's representation, and whether live keys exist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.events.domain import Event
from clearport.webhooks.addresses import IPAddress, WebhookUrl
from clearport.webhooks.domain import (
    AttemptOutcome,
    ClaimedBatch,
    DeliveryAttempt,
    SendResult,
    WebhookEndpoint,
)


@dataclass(frozen=True, slots=True)
class Relayed:
    """One relay step: how many events it took from the queue, and the endpoints that got
    deliveries from them."""

    events: int
    endpoint_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int  # deliveries not finished
    retrying: int  # of which at least one attempt failed: the retry queue
    oldest_event_at: datetime | None  # the oldest event not yet delivered (or not yet relayed)


class EndpointStore(Protocol):
    async def insert_endpoint(self, tx: Transaction, endpoint: WebhookEndpoint) -> None: ...
    async def get_endpoint(
        self, tx: Transaction, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        """The endpoint unless deleted, whoever owns it (the service checks the owner)."""
        ...

    async def list_endpoints(
        self, tx: Transaction, merchant_id: str | None, page: PageRequest
    ) -> Page[WebhookEndpoint]:
        """Newest first: one merchant's, or (None) every endpoint, platform ones included."""
        ...

    async def update_endpoint(self, tx: Transaction, endpoint: WebhookEndpoint) -> None: ...
    async def delete_endpoint(self, tx: Transaction, endpoint_id: str, at: datetime) -> None: ...
    async def cancel_pending(self, tx: Transaction, endpoint_id: str, at: datetime) -> int:
        """Finish the endpoint's pending deliveries as cancelled; how many there were."""
        ...

    async def add_secret(
        self, tx: Transaction, endpoint_id: str, secret_id: str, at: datetime
    ) -> None:
        """Make `secret_id` the endpoint's current secret (it has none yet)."""
        ...

    async def rotate_secret(
        self,
        tx: Transaction,
        endpoint_id: str,
        secret_id: str,
        *,
        previous_expires_at: datetime,
        at: datetime,
    ) -> list[str]:
        """`secret_id` becomes current, the current one valid until `previous_expires_at`;
        any older one goes. The ids of the secrets that no longer sign."""
        ...

    async def secret_ids(self, tx: Transaction, endpoint_id: str) -> list[str]:
        """Every secret the endpoint still refers to, expired or not."""
        ...

    async def expired_secret_ids(self, tx: Transaction, at: datetime, limit: int) -> list[str]: ...


class DeliveryStore(Protocol):
    async def relay(
        self, tx: Transaction, *, limit: int, now: datetime, window_s: float
    ) -> Relayed:
        """Take up to `limit` events from the relay queue in sequence order (rows other
        relays hold are skipped, not waited for) and create their deliveries to every enabled
        endpoint that receives them, due now, for `window_s`."""
        ...

    async def due_endpoints(self, tx: Transaction, now: datetime, limit: int) -> list[str]:
        """Enabled endpoints with a delivery due and no live lease."""
        ...

    async def claim(
        self,
        tx: Transaction,
        endpoint_id: str,
        *,
        lease_owner: str,
        lease_until: datetime,
        now: datetime,
        limit: int,
    ) -> ClaimedBatch | None:
        """Take (or renew) the endpoint's lease and its due deliveries, oldest sequence first;
        None when the endpoint is gone, disabled or leased to someone else."""
        ...

    async def release(self, tx: Transaction, endpoint_id: str, lease_owner: str) -> None: ...
    async def has_due(self, tx: Transaction, endpoint_id: str, now: datetime) -> bool: ...
    async def record(
        self,
        tx: Transaction,
        endpoint_id: str,
        outcomes: Sequence[AttemptOutcome],
        *,
        failing_since: datetime | None,
        now: datetime,
    ) -> None:
        """The attempts, their deliveries' new state, and the endpoint's health."""
        ...

    async def redeliver(
        self, tx: Transaction, endpoint_id: str, event_id: str, *, now: datetime, window_s: float
    ) -> bool:
        """A new delivery of the event to the endpoint, due now; False if no such event."""
        ...

    async def list_attempts(
        self,
        tx: Transaction,
        endpoint_id: str,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[DeliveryAttempt]:
        """Newest first; filter `event`."""
        ...

    async def attempts_for_events(
        self, tx: Transaction, event_ids: Sequence[str], limit: int
    ) -> list[DeliveryAttempt]:
        """Every endpoint's attempts to deliver these events, oldest first, at most `limit`."""
        ...

    async def purge_attempts(self, tx: Transaction, before: datetime, limit: int) -> int: ...
    async def purge_deliveries(self, tx: Transaction, before: datetime, limit: int) -> int:
        """Finished deliveries older than `before` (their attempts go with them)."""
        ...

    async def purge_events(self, tx: Transaction, before: datetime, limit: int) -> int:
        """Events older than `before` that nothing still has to deliver."""
        ...

    async def backlog(self, tx: Transaction) -> Backlog: ...


class WebhookStore(EndpointStore, DeliveryStore, Protocol):
    """The whole store, as wiring hands it to the service."""


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        """Every address `host` resolves to; empty when it does not resolve (in time)."""
        ...


class SenderSession(Protocol):
    async def post(self, body: bytes, headers: Mapping[str, str]) -> SendResult: ...


class Sender(Protocol):
    def session(
        self, url: WebhookUrl, address: IPAddress
    ) -> AbstractAsyncContextManager[SenderSession]:
        """POSTs to `url`, connecting to `address` only (the pin): TLS checks the certificate
        against the URL's host, no redirect is followed, answers are read to a bound."""
        ...


class SecretKeeper(Protocol):
    """Sealed secrets (the vault): the endpoint's owner is a merchant id or the platform's."""

    async def seal_secret(
        self, tx: Transaction, owner_id: str, purpose: str, plaintext: bytes
    ) -> str: ...
    async def open_secrets(
        self, tx: Transaction, owner_id: str, secret_ids: Sequence[str]
    ) -> dict[str, bytes]: ...
    async def destroy_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None: ...


class Representation(Protocol):
    """How the API shows an event (a delivery's body) and an endpoint (the data of
    `webhook_endpoint.disabled`); `http.representation` implements it."""

    def event(self, event: Event) -> dict[str, Any]: ...
    def webhook_endpoint(self, endpoint: WebhookEndpoint) -> dict[str, Any]: ...


class LiveKeys(Protocol):
    async def live_keys_exist(self, tx: Transaction) -> bool:
        """Whether any unrevoked `sk_live_` key exists (the loopback switch is refused then)."""
        ...
