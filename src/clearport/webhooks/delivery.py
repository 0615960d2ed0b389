"""Delivering an endpoint's due events: claim, sign, send, record, until none is due.

One job per endpoint at a time holds the endpoint's lease (a row, with an expiry, so a killed
worker's lease runs out and another job takes over): claim up to a batch of due deliveries in
sequence order and the signing secrets (one short transaction), send them with at most
`endpoint_concurrency` requests in flight (no transaction open), record every attempt and what
it decides (a second short transaction). A worker killed between sending and recording loses
nothing: the deliveries are still pending and are sent again after the lease runs out (at
least once; receivers deduplicate on the event id).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog

from clearport.access.domain import Origin
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest
from clearport.core.ids import new_id
from clearport.core.sensitive import SensitiveStr
from clearport.core.uow import Transaction, UnitOfWork
from clearport.events.domain import WEBHOOK_ENDPOINT_DISABLED
from clearport.events.service import Outbox
from clearport.vault.domain import CardDataDestroyed, UndecryptableRecord
from clearport.webhooks.domain import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    AttemptOutcome,
    ClaimedBatch,
    DeliveryStatus,
    DueDelivery,
    EndpointStatus,
    SendResult,
    WebhookEndpoint,
    WebhookOptions,
    attempt_outcome,
    failing_since_after,
    signature_header,
)
from clearport.webhooks.guard import UrlGuard, refused_reason
from clearport.webhooks.ports import (
    Representation,
    SecretKeeper,
    Sender,
    SenderSession,
    WebhookStore,
)

log = structlog.get_logger("clearport.webhooks")

USER_AGENT = "Clearport-Webhooks/1"
WORKER_ACTOR = "system:webhooks"
DISABLED_FAILING = "failing"


@dataclass
class DeliveryRun:
    """What one job did for one endpoint: attempts by outcome, and whether work remains."""

    outcomes: Counter[str] = field(default_factory=Counter)
    more: bool = False

    def add(self, outcome: AttemptOutcome) -> None:
        self.outcomes[outcome_label(outcome)] += 1


def outcome_label(outcome: AttemptOutcome) -> str:
    """succeeded · retrying (failed, tried again later) · failed (its three days ran out) ·
    refused (the SSRF guard kept it from being sent)."""
    if outcome.status is DeliveryStatus.SUCCEEDED:
        return "succeeded"
    if (outcome.attempt.error or "").startswith("refused"):
        return "refused"
    return "retrying" if outcome.status is DeliveryStatus.PENDING else "failed"


class Deliverer:
    def __init__(
        self,
        uow: UnitOfWork,
        store: WebhookStore,
        keeper: SecretKeeper,
        guard: UrlGuard,
        sender: Sender,
        shown: Representation,
        outbox: Outbox,
        auditor: Auditor,
        clock: Clock,
        options: WebhookOptions,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._uow = uow
        self._store = store
        self._keeper = keeper
        self._guard = guard
        self._sender = sender
        self._shown = shown
        self._outbox = outbox
        self._auditor = auditor
        self._clock = clock
        self._options = options
        self._draw = draw  # the retry schedule's jitter

    async def deliver(self, endpoint_id: str) -> DeliveryRun:
        """Deliver what is due for the endpoint until nothing is, or the job's time budget is
        spent (then `more`: queue the job again). Nothing when another job holds it."""
        run = DeliveryRun()
        lease_owner = secrets.token_hex(8)
        started = time.monotonic()
        while True:
            now = self._clock.now()
            async with self._uow.transaction() as tx:
                batch = await self._store.claim(
                    tx,
                    endpoint_id,
                    lease_owner=lease_owner,
                    lease_until=now + timedelta(seconds=self._options.lease_s),
                    now=now,
                    limit=self._options.batch_size,
                )
                if batch is None:
                    return run
                if not batch.deliveries:
                    await self._store.release(tx, endpoint_id, lease_owner)
                    signing: list[SensitiveStr] | None = None
                else:
                    signing = await self._signing_secrets(tx, batch)
            if not batch.deliveries:
                # Work that arrived between the claim and the release would otherwise wait
                # for the sweeper: look once more now that the lease is free.
                async with self._uow.autocommit() as tx:
                    if not await self._store.has_due(tx, endpoint_id, self._clock.now()):
                        return run
                continue
            results = await self._send(batch, signing)
            async with self._uow.transaction() as tx:
                for outcome in await self._record(tx, batch, results):
                    run.add(outcome)
            if time.monotonic() - started > self._options.job_budget_s:
                async with self._uow.transaction() as tx:
                    await self._store.release(tx, endpoint_id, lease_owner)
                run.more = True
                return run

    async def _signing_secrets(
        self, tx: Transaction, batch: ClaimedBatch
    ) -> list[SensitiveStr] | None:
        """The endpoint's valid secrets, current first; None when they cannot be opened (a
        shredded merchant): the attempts are then logged as failures, never sent unsigned."""
        try:
            opened = await self._keeper.open_secrets(
                tx, batch.endpoint.secret_owner, batch.secret_ids
            )
        except (UndecryptableRecord, CardDataDestroyed):
            log.error("webhook_secret_unavailable", endpoint=batch.endpoint.id)
            return None
        return [SensitiveStr(opened[i].decode()) for i in batch.secret_ids] or None

    async def _send(
        self, batch: ClaimedBatch, signing: Sequence[SensitiveStr] | None
    ) -> list[SendResult]:
        count = len(batch.deliveries)
        if signing is None:
            return [SendResult(None, "signing_secret_unavailable", 0)] * count
        try:
            pinned = await self._guard.pin(batch.endpoint.url)
        except InvalidRequest as exc:
            reason = refused_reason(exc)
            log.warning("webhook_refused", endpoint=batch.endpoint.id, reason=reason)
            return [SendResult(None, reason, 0)] * count
        in_flight = asyncio.Semaphore(self._options.endpoint_concurrency)
        async with self._sender.session(pinned.url, pinned.address) as session:
            # Started in sequence order; the semaphore hands out its slots first come, first
            # served, so with one slot per endpoint they are also sent in that order.
            return list(
                await asyncio.gather(
                    *(self._post(session, in_flight, d, signing) for d in batch.deliveries)
                )
            )

    async def _post(
        self,
        session: SenderSession,
        in_flight: asyncio.Semaphore,
        delivery: DueDelivery,
        signing: Sequence[SensitiveStr],
    ) -> SendResult:
        body = json.dumps(self._shown.event(delivery.event), separators=(",", ":")).encode()
        async with in_flight:
            timestamp = int(self._clock.now().timestamp())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                EVENT_ID_HEADER: delivery.event.id,
                SIGNATURE_HEADER: signature_header([s.reveal() for s in signing], timestamp, body),
            }
            return await session.post(body, headers)

    async def _record(
        self, tx: Transaction, batch: ClaimedBatch, results: Sequence[SendResult]
    ) -> list[AttemptOutcome]:
        endpoint = batch.endpoint
        now = self._clock.now()
        outcomes = [
            attempt_outcome(
                delivery,
                result,
                attempt_id=new_id("wd"),
                endpoint_id=endpoint.id,
                now=now,
                policy=self._options.retry,
                unit=self._draw(),
            )
            for delivery, result in zip(batch.deliveries, results, strict=True)
        ]
        failing_since = failing_since_after(endpoint.failing_since, outcomes)
        await self._store.record(tx, endpoint.id, outcomes, failing_since=failing_since, now=now)
        for outcome in outcomes:
            a = outcome.attempt
            log.info(
                "webhook_attempt",
                endpoint=endpoint.id,
                event_id=a.event_id,
                attempt=a.attempt,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
                outcome=outcome_label(outcome),
            )
        if failing_since is not None and now - failing_since >= timedelta(
            seconds=self._options.disable_after_s
        ):
            await self._disable(tx, replace(endpoint, failing_since=failing_since), now)
        return outcomes

    async def _disable(self, tx: Transaction, endpoint: WebhookEndpoint, now: datetime) -> None:
        """Three days of failures: the endpoint stops receiving; its owner hears of it."""
        disabled = replace(
            endpoint,
            status=EndpointStatus.DISABLED,
            disabled_reason=DISABLED_FAILING,
            updated_at=now,
        )
        await self._store.update_endpoint(tx, disabled)
        cancelled = await self._store.cancel_pending(tx, endpoint.id, now)
        await self._outbox.emit(
            tx,
            WEBHOOK_ENDPOINT_DISABLED,
            self._shown.webhook_endpoint(disabled),
            merchant_id=endpoint.merchant_id,
        )
        await self._auditor.record(
            tx,
            actor=WORKER_ACTOR,
            event_type="webhook_endpoint.disabled",
            resource=endpoint.id,
            origin=Origin("worker"),
            details={
                "reason": DISABLED_FAILING,
                "failing_since": endpoint.failing_since.isoformat()
                if endpoint.failing_since
                else None,
                "cancelled_deliveries": cancelled,
            },
        )
        log.warning("webhook_endpoint_disabled", endpoint=endpoint.id, cancelled=cancelled)
