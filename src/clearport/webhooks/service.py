"""Webhooks, one service for the entry points, in three parts:

    endpoints.WebhookEndpoints   the API's endpoints, rotation, redelivery, the attempts log
    delivery.Deliverer           one endpoint's due deliveries, signed, sent, recorded
    relay.Relay                  new events to their endpoints; due endpoints; retention

The worker runs the relay and the deliveries (worker/webhooks.py); the API the endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clearport.access.domain import Origin, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import UnitOfWork
from clearport.events.domain import Event
from clearport.events.ports import EventStore
from clearport.events.service import Outbox
from clearport.webhooks.delivery import Deliverer, DeliveryRun
from clearport.webhooks.domain import DeliveryAttempt, WebhookEndpoint, WebhookOptions
from clearport.webhooks.endpoints import EndpointPatch, IssuedEndpoint, WebhookEndpoints
from clearport.webhooks.guard import UrlGuard
from clearport.webhooks.ports import (
    Backlog,
    Relayed,
    Representation,
    SecretKeeper,
    Sender,
    WebhookStore,
)
from clearport.webhooks.relay import Purged, Relay

__all__ = [
    "DeliveryRun",
    "EndpointPatch",
    "IssuedEndpoint",
    "Purged",
    "WebhookService",
]


class WebhookService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: WebhookStore,
        events: EventStore,
        keeper: SecretKeeper,
        guard: UrlGuard,
        sender: Sender,
        shown: Representation,
        outbox: Outbox,
        auditor: Auditor,
        clock: Clock,
        options: WebhookOptions,
    ) -> None:
        self.options = options
        self._endpoints = WebhookEndpoints(
            uow, store, events, keeper, guard, auditor, clock, options
        )
        self._deliverer = Deliverer(
            uow, store, keeper, guard, sender, shown, outbox, auditor, clock, options
        )
        self._relay = Relay(uow, store, keeper, clock, options)

    # --- endpoints (the API) ---------------------------------------------------------------------

    async def create_endpoint(
        self,
        actor: Principal,
        origin: Origin,
        *,
        url: str,
        enabled_events: Sequence[str],
        description: str | None = None,
    ) -> IssuedEndpoint:
        return await self._endpoints.create(
            actor, origin, url=url, enabled_events=enabled_events, description=description
        )

    async def get_endpoint(self, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
        return await self._endpoints.get(actor, endpoint_id)

    async def list_endpoints(self, actor: Principal, page: PageRequest) -> Page[WebhookEndpoint]:
        return await self._endpoints.list(actor, page)

    async def update_endpoint(
        self, actor: Principal, origin: Origin, endpoint_id: str, patch: EndpointPatch
    ) -> WebhookEndpoint:
        return await self._endpoints.update(actor, origin, endpoint_id, patch)

    async def delete_endpoint(
        self, actor: Principal, origin: Origin, endpoint_id: str
    ) -> WebhookEndpoint:
        return await self._endpoints.delete(actor, origin, endpoint_id)

    async def rotate_secret(
        self,
        actor: Principal,
        origin: Origin,
        endpoint_id: str,
        expire_previous_in_s: int | None = None,
    ) -> IssuedEndpoint:
        return await self._endpoints.rotate_secret(actor, origin, endpoint_id, expire_previous_in_s)

    async def redeliver(
        self, actor: Principal, origin: Origin, event_id: str, endpoint_id: str
    ) -> Event:
        return await self._endpoints.redeliver(actor, origin, event_id, endpoint_id)

    async def attempts_for_events(
        self, actor: Principal, event_ids: Sequence[str], limit: int = 100
    ) -> Sequence[DeliveryAttempt]:
        return await self._endpoints.attempts_for_events(actor, event_ids, limit)

    async def list_attempts(
        self,
        actor: Principal,
        endpoint_id: str,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[DeliveryAttempt]:
        return await self._endpoints.list_attempts(actor, endpoint_id, page, filters)

    # --- the worker ------------------------------------------------------------------------------

    async def relay(self, limit: int) -> Relayed:
        return await self._relay.relay(limit)

    async def due_endpoints(self, limit: int) -> list[str]:
        return await self._relay.due_endpoints(limit)

    async def deliver(self, endpoint_id: str) -> DeliveryRun:
        return await self._deliverer.deliver(endpoint_id)

    async def purge(self, limit: int) -> Purged:
        return await self._relay.purge(limit)

    async def backlog(self) -> Backlog:
        return await self._relay.backlog()
