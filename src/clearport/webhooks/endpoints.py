"""Webhook endpoints: create (the secret shown once), read, update, delete, rotate the secret;
redeliver an event; the attempts log.

A merchant key manages its own merchant's endpoints, which receive the merchant's events. An
operator with `webhooks.manage` (admin) sees and manages every endpoint, and what it creates is
a platform endpoint, which receives platform events. Another owner's endpoint answers 404.

The secret is sealed by the vault under the owner's DEK (it must sign, so it cannot be hashed)
and appears in the answer to create and rotate_secret only. The URL passes the SSRF guard before
any transaction opens (resolving it is a network call).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound
from clearport.core.ids import new_id, parse_id
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.events.domain import Event
from clearport.events.ports import EventStore
from clearport.webhooks.domain import (
    DeliveryAttempt,
    EndpointStatus,
    WebhookEndpoint,
    WebhookOptions,
    new_signing_secret,
    parse_description,
    parse_enabled_events,
)
from clearport.webhooks.guard import UrlGuard
from clearport.webhooks.ports import SecretKeeper, WebhookStore

SECRET_PURPOSE = "webhook_signing"
DISABLED_BY_OWNER = "disabled"
MAX_ROTATION_OVERLAP_S = 7 * 86_400


@dataclass(frozen=True, slots=True)
class EndpointPatch:
    """What PATCH may change; None leaves a field as it is (`description` "" clears it)."""

    url: str | None = None
    enabled_events: Sequence[str] | None = None
    status: EndpointStatus | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedEndpoint:
    """An endpoint with its new secret: the only time the secret is shown."""

    endpoint: WebhookEndpoint
    secret: str


def _scope(actor: Principal) -> str | None:
    """Whose endpoints the caller manages: its merchant's, or (an operator) all of them."""
    if actor.merchant_id is not None:
        return actor.merchant_id
    actor.require(Permission.WEBHOOKS_MANAGE)
    return None


def _not_found(endpoint_id: str) -> NotFound:
    return NotFound(f"No such webhook endpoint: '{endpoint_id}'.", field="id")


class WebhookEndpoints:
    def __init__(
        self,
        uow: UnitOfWork,
        store: WebhookStore,
        events: EventStore,
        keeper: SecretKeeper,
        guard: UrlGuard,
        auditor: Auditor,
        clock: Clock,
        options: WebhookOptions,
    ) -> None:
        self._uow = uow
        self._store = store
        self._events = events
        self._keeper = keeper
        self._guard = guard
        self._auditor = auditor
        self._clock = clock
        self._options = options

    async def _owned(
        self, tx: Transaction, actor: Principal, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint:
        scope = _scope(actor)
        parse_id(endpoint_id, "we", field="id")
        endpoint = await self._store.get_endpoint(tx, endpoint_id, for_update=for_update)
        if endpoint is None or (scope is not None and endpoint.merchant_id != scope):
            raise _not_found(endpoint_id)
        return endpoint

    async def _audit(
        self,
        tx: Transaction,
        actor: Principal,
        origin: Origin,
        action: str,
        endpoint_id: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self._auditor.record(
            tx,
            actor=actor.actor,
            event_type=f"webhook_endpoint.{action}",
            resource=endpoint_id,
            origin=origin,
            details=details or {},
        )

    async def create(
        self,
        actor: Principal,
        origin: Origin,
        *,
        url: str,
        enabled_events: Sequence[str],
        description: str | None = None,
    ) -> IssuedEndpoint:
        merchant_id = _scope(actor)
        events = parse_enabled_events(enabled_events, merchant_id=merchant_id)
        description = parse_description(description)
        await self._guard.pin(url)
        now = self._clock.now()
        endpoint = WebhookEndpoint(
            id=new_id("we"),
            merchant_id=merchant_id,
            url=url,
            description=description,
            enabled_events=events,
            status=EndpointStatus.ENABLED,
            disabled_reason=None,
            failing_since=None,
            created_at=now,
            updated_at=now,
        )
        secret = new_signing_secret()
        async with self._uow.transaction() as tx:
            await self._store.insert_endpoint(tx, endpoint)
            secret_id = await self._keeper.seal_secret(
                tx, endpoint.secret_owner, SECRET_PURPOSE, secret.encode()
            )
            await self._store.add_secret(tx, endpoint.id, secret_id, now)
            await self._audit(tx, actor, origin, "created", endpoint.id, {"events": list(events)})
        return IssuedEndpoint(endpoint, secret)

    async def get(self, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
        async with self._uow.autocommit() as tx:
            return await self._owned(tx, actor, endpoint_id)

    async def list(self, actor: Principal, page: PageRequest) -> Page[WebhookEndpoint]:
        scope = _scope(actor)
        async with self._uow.autocommit() as tx:
            return await self._store.list_endpoints(tx, scope, page)

    async def update(
        self, actor: Principal, origin: Origin, endpoint_id: str, patch: EndpointPatch
    ) -> WebhookEndpoint:
        _scope(actor)  # a caller who may not manage endpoints learns nothing more
        if patch.url is not None:
            await self._guard.pin(patch.url)
        description = parse_description(patch.description)
        async with self._uow.transaction() as tx:
            endpoint = await self._owned(tx, actor, endpoint_id, for_update=True)
            events = (
                endpoint.enabled_events
                if patch.enabled_events is None
                else parse_enabled_events(patch.enabled_events, merchant_id=endpoint.merchant_id)
            )
            now = self._clock.now()
            updated = replace(
                endpoint,
                url=endpoint.url if patch.url is None else patch.url,
                enabled_events=events,
                description=(
                    endpoint.description if description is None else (description or None)
                ),
                updated_at=now,
            )
            if patch.status is not None and patch.status is not endpoint.status:
                enabling = patch.status is EndpointStatus.ENABLED
                updated = replace(
                    updated,
                    status=patch.status,
                    # Enabled again: a fresh start, the old failures forgotten.
                    disabled_reason=None if enabling else DISABLED_BY_OWNER,
                    failing_since=None,
                )
                if not enabling:
                    await self._store.cancel_pending(tx, endpoint.id, now)
            await self._store.update_endpoint(tx, updated)
            fields = ("url", "enabled_events", "status", "description")
            changed = [name for name in fields if getattr(patch, name) is not None]
            await self._audit(tx, actor, origin, "updated", endpoint.id, {"fields": changed})
        return updated

    async def delete(self, actor: Principal, origin: Origin, endpoint_id: str) -> WebhookEndpoint:
        """The endpoint stops receiving at once; its pending deliveries are cancelled and its
        secrets destroyed. The attempts log stays until retention purges it."""
        async with self._uow.transaction() as tx:
            endpoint = await self._owned(tx, actor, endpoint_id, for_update=True)
            now = self._clock.now()
            await self._store.delete_endpoint(tx, endpoint.id, now)
            cancelled = await self._store.cancel_pending(tx, endpoint.id, now)
            await self._keeper.destroy_secrets(tx, await self._store.secret_ids(tx, endpoint.id))
            await self._audit(
                tx, actor, origin, "deleted", endpoint.id, {"cancelled_deliveries": cancelled}
            )
        return endpoint

    async def rotate_secret(
        self,
        actor: Principal,
        origin: Origin,
        endpoint_id: str,
        expire_previous_in_s: int | None = None,
    ) -> IssuedEndpoint:
        """A new secret signs from now on; the previous one also signs (a second `v1=`) for
        `expire_previous_in_s` (default 24 h; 0 ends it now). An older one ends at once."""
        overlap = (
            self._options.rotation_overlap_s
            if expire_previous_in_s is None
            else expire_previous_in_s
        )
        if not 0 <= overlap <= MAX_ROTATION_OVERLAP_S:
            raise InvalidRequest(
                f"'expire_previous_in_s' is 0 to {MAX_ROTATION_OVERLAP_S}.",
                field="expire_previous_in_s",
            )
        secret = new_signing_secret()
        async with self._uow.transaction() as tx:
            endpoint = await self._owned(tx, actor, endpoint_id, for_update=True)
            now = self._clock.now()
            secret_id = await self._keeper.seal_secret(
                tx, endpoint.secret_owner, SECRET_PURPOSE, secret.encode()
            )
            retired = await self._store.rotate_secret(
                tx,
                endpoint.id,
                secret_id,
                previous_expires_at=now + timedelta(seconds=overlap),
                at=now,
            )
            await self._keeper.destroy_secrets(tx, retired)
            await self._audit(
                tx, actor, origin, "secret_rotated", endpoint.id, {"previous_valid_s": overlap}
            )
        return IssuedEndpoint(endpoint, secret)

    async def redeliver(
        self, actor: Principal, origin: Origin, event_id: str, endpoint_id: str
    ) -> Event:
        """Send the event to the endpoint again (a delivery of its own, due now, retried like
        any other), whether or not it was delivered before."""
        parse_id(event_id, "evt", field="id")
        parse_id(endpoint_id, "we", field="endpoint")
        scope = _scope(actor)
        async with self._uow.transaction() as tx:
            event = await self._events.get(tx, event_id, merchant_id=scope)
            if event is None:
                raise NotFound(f"No such event: '{event_id}'.", field="id")
            endpoint = await self._store.get_endpoint(tx, endpoint_id)
            if endpoint is None or (scope is not None and endpoint.merchant_id != scope):
                raise NotFound(f"No such webhook endpoint: '{endpoint_id}'.", field="endpoint")
            if endpoint.merchant_id != event.merchant_id:
                raise InvalidRequest(
                    "The event does not belong to this endpoint's owner.",
                    field="endpoint",
                    code="endpoint_mismatch",
                )
            if endpoint.status is not EndpointStatus.ENABLED:
                raise InvalidState("The endpoint is disabled: enable it first.", field="endpoint")
            await self._store.redeliver(
                tx,
                endpoint.id,
                event.id,
                now=self._clock.now(),
                window_s=self._options.retry.window_s,
            )
            await self._audit(tx, actor, origin, "redelivery", endpoint.id, {"event": event.id})
        return event

    async def attempts_for_events(
        self, actor: Principal, event_ids: Sequence[str], limit: int = 100
    ) -> Sequence[DeliveryAttempt]:
        """The deliveries of these events to every endpoint (an operator's look at what became
        of one payment's events: `webhooks.manage`, like the endpoints themselves)."""
        if actor.merchant_id is not None or not event_ids:
            return []  # merchants read their own endpoints' deliveries, endpoint by endpoint
        actor.require(Permission.WEBHOOKS_MANAGE)
        async with self._uow.autocommit() as tx:
            return await self._store.attempts_for_events(tx, event_ids, limit)

    async def list_attempts(
        self,
        actor: Principal,
        endpoint_id: str,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[DeliveryAttempt]:
        async with self._uow.autocommit() as tx:
            endpoint = await self._owned(tx, actor, endpoint_id)
            return await self._store.list_attempts(tx, endpoint.id, page, filters)
