"""Disputes: created by an operator or by a processor's dispute file (a system principal: no
operator assumed), answered with evidence by the merchant (or an operator on its behalf), closed
with the network's decision. Every step is one transaction: the dispute, its payment, the ledger
(when money moves), the transaction log, the `dispute.*` event, the audit trail and the stored
idempotent response commit together or not at all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound
from clearport.core.ids import new_id, parse_id
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.disputes.domain import (
    EVIDENCE_FILE_FIELDS,
    Dispute,
    DisputeReason,
    DisputeStatus,
    Outcome,
    check_disputable,
    debit_transfers,
    evidence_due_by,
    reversal_transfers,
    split_debit,
    txlog_entry,
)
from clearport.disputes.ports import (
    DisputedPayments,
    DisputeStore,
    EvidenceFiles,
    FreeAvailable,
    Representation,
)
from clearport.events.service import Outbox
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.ledger.service import LedgerService
from clearport.merchants.domain import dispute_fee_minor
from clearport.merchants.ports import MerchantRepository
from clearport.payments.domain import validate_amount
from clearport.txlog.ports import TxlogStore


class DuplicateDispute(InvalidState):
    """A dispute exists for this network case and connector already (409)."""

    default_code = "duplicate_dispute"


@dataclass(frozen=True, slots=True)
class NewDispute:
    payment: str
    amount: int
    reason: DisputeReason
    network_reason_code: str | None = None
    network_case_id: str | None = None
    evidence_due_by: datetime | None = None
    inquiry: bool = False


class DisputeService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: DisputeStore,
        payments: DisputedPayments,
        merchants: MerchantRepository,
        available: FreeAvailable,
        files: EvidenceFiles,
        ledger: LedgerService,
        txlog: TxlogStore,
        outbox: Outbox,
        idempotency: IdempotencyService,
        auditor: Auditor,
        shown: Representation,
        clock: Clock,
        *,
        max_amount_minor: Mapping[str, int],
    ) -> None:
        self._uow = uow
        self._store = store
        self._payments = payments
        self._merchants = merchants
        self._available = available
        self._files = files
        self._ledger = ledger
        self._txlog = txlog
        self._outbox = outbox
        self._idempotency = idempotency
        self._auditor = auditor
        self._shown = shown
        self._clock = clock
        self._max_amount_minor = max_amount_minor

    # --- creating ---------------------------------------------------------------------------

    async def create(
        self,
        actor: Principal,
        origin: Origin,
        new: NewDispute,
        claim: IdempotencyClaim | None = None,
    ) -> Dispute:
        """A dispute of a captured payment. An inquiry moves no money; a chargeback takes the
        amount and the merchant's dispute fee at once (decision 0700)."""
        actor.require(Permission.FINANCE_WRITE)
        parse_id(new.payment, "pay", field="payment")
        now = self._clock.now()
        due_by = evidence_due_by(new.evidence_due_by, now)
        async with self._uow.transaction() as tx:
            payment = await self._payments.lock(tx, new.payment)
            if payment is None:
                raise NotFound(f"No such payment: '{new.payment}'.", field="payment")
            self._payments.require_captured(payment)
            validate_amount(new.amount, payment.currency, max_amount_minor=self._max_amount_minor)
            # An inquiry takes nothing, so it may question what chargebacks took as well.
            check_disputable(
                new.amount,
                payment.amount_captured - payment.amount_refunded
                if new.inquiry
                else payment.disputable_minor,
            )
            fee = 0
            if not new.inquiry:
                merchant = await self._merchants.get(tx, payment.merchant_id)
                fee = dispute_fee_minor(merchant.pricing if merchant else {}, payment.currency)
            dispute = Dispute(
                id=new_id("dp"),
                merchant_id=payment.merchant_id,
                payment_id=payment.id,
                connector=payment.connector,
                inquiry=new.inquiry,
                amount=new.amount,
                fee=fee,
                currency=payment.currency,
                status=(
                    DisputeStatus.WARNING_NEEDS_RESPONSE
                    if new.inquiry
                    else DisputeStatus.NEEDS_RESPONSE
                ),
                reason=new.reason,
                network_reason_code=new.network_reason_code,
                network_case_id=new.network_case_id,
                evidence_due_by=due_by,
                created_by=actor.actor,
                created_at=now,
                updated_at=now,
            )
            escalated = None
            if not new.inquiry:
                if new.network_case_id is not None:
                    escalated = await self._store.open_inquiry(
                        tx, payment.connector, new.network_case_id
                    )
                # The lock comes before any ledger post of this transaction (settlement's
                # repayments take the same lock first too).
                free = await self._available.lock_free_available(
                    tx, dispute.merchant_id, dispute.currency
                )
                split = split_debit(dispute.amount, dispute.fee, free)
                dispute.from_available = split.amount_from_available + split.fee_from_available
            if not await self._store.insert(tx, dispute):
                raise DuplicateDispute(
                    f"A dispute of network case '{new.network_case_id}' exists already for "
                    f"connector '{payment.connector}'.",
                    field="network_case_id",
                )
            if escalated is not None:
                await self._close_escalated(tx, actor, escalated, dispute, now)
            if not new.inquiry:
                await self._payments.record(tx, payment, dispute.amount)
            await self._record(tx, actor, origin, dispute, None, "dispute.created", now)
            await self._respond(tx, claim, 201, dispute)
            if not new.inquiry:
                # Last before COMMIT: the processor receivable is a hot account.
                await self._ledger.post(tx, debit_transfers(dispute, split))
        return dispute

    async def _close_escalated(
        self,
        tx: Transaction,
        actor: Principal,
        inquiry: Dispute,
        chargeback: Dispute,
        now: datetime,
    ) -> None:
        """The inquiry a chargeback escalates from closes: the chargeback carries the case on."""
        if inquiry.payment_id != chargeback.payment_id:
            raise InvalidRequest(
                f"Network case '{chargeback.network_case_id}' is an inquiry of another payment.",
                field="network_case_id",
            )
        previous = inquiry.close(Outcome.LOST, now)
        await self._store.update(tx, inquiry)
        await self._txlog.append(tx, [txlog_entry(inquiry, previous, actor.actor, now)])
        await self._outbox.emit(
            tx, "dispute.closed", self._shown.dispute(inquiry), merchant_id=inquiry.merchant_id
        )

    # --- evidence ---------------------------------------------------------------------------

    async def update(
        self,
        actor: Principal,
        origin: Origin,
        dispute_id: str,
        evidence: Mapping[str, str] | None,
        submit: bool,
        claim: IdempotencyClaim | None = None,
    ) -> Dispute:
        """Evidence for a dispute (fields given replace those there), and with `submit` sent to
        the network: the dispute is then under review and its evidence final."""
        scope = actor.merchant_scope(Permission.FINANCE_WRITE)
        parse_id(dispute_id, "dp", field="id")
        now = self._clock.now()
        async with self._uow.transaction() as tx:
            dispute = await self._store.get(tx, dispute_id, merchant_id=scope, for_update=True)
            if dispute is None:
                raise NotFound(f"No such dispute: '{dispute_id}'.", field="id")
            previous = dispute.status
            if evidence:
                await self._check_files(tx, dispute, evidence)
                dispute.take_evidence(dict(evidence), now)
            if submit:
                dispute.submit(now)
            elif not evidence:
                raise InvalidRequest(
                    "Give 'evidence', or 'submit': true to send what the dispute has.",
                    field="evidence",
                )
            await self._store.update(tx, dispute)
            changed = previous if dispute.status is not previous else None
            if changed is not None:
                await self._txlog.append(tx, [txlog_entry(dispute, changed, actor.actor, now)])
            await self._outbox.emit(
                tx, "dispute.updated", self._shown.dispute(dispute), merchant_id=dispute.merchant_id
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="dispute.submitted" if submit else "dispute.evidence_updated",
                resource=dispute.id,
                origin=origin,
                details={"fields": sorted(evidence or {})},
            )
            await self._respond(tx, claim, 200, dispute)
        return dispute

    async def _check_files(
        self, tx: Transaction, dispute: Dispute, evidence: Mapping[str, str]
    ) -> None:
        for name in EVIDENCE_FILE_FIELDS:
            file_id = evidence.get(name)
            if file_id is None:
                continue
            parse_id(file_id, "file", field=("evidence", name))
            if await self._files.evidence_file(tx, file_id, dispute.merchant_id) is None:
                raise NotFound(
                    f"No such dispute evidence file: '{file_id}'.", field=("evidence", name)
                )

    # --- closing ----------------------------------------------------------------------------

    async def close(
        self,
        actor: Principal,
        origin: Origin,
        dispute_id: str,
        outcome: Outcome,
        claim: IdempotencyClaim | None = None,
    ) -> Dispute:
        """The network decided. Won: the amount and the fee go back to the merchant (pending,
        settled like any item); lost: the money stays gone; an inquiry just closes."""
        actor.require(Permission.FINANCE_WRITE)
        parse_id(dispute_id, "dp", field="id")
        now = self._clock.now()
        async with self._uow.transaction() as tx:
            dispute = await self._store.get(tx, dispute_id, for_update=True)
            if dispute is None:
                raise NotFound(f"No such dispute: '{dispute_id}'.", field="id")
            payment = (
                await self._payments.lock(tx, dispute.payment_id) if not dispute.inquiry else None
            )
            previous = dispute.close(outcome, now)
            await self._store.update(tx, dispute)
            if dispute.status is DisputeStatus.WON and payment is not None:
                await self._payments.record(tx, payment, -dispute.amount)
            await self._record(tx, actor, origin, dispute, previous, "dispute.closed", now)
            await self._respond(tx, claim, 200, dispute)
            if dispute.status is DisputeStatus.WON:
                await self._ledger.post(tx, reversal_transfers(dispute))
        return dispute

    # --- reading ----------------------------------------------------------------------------

    async def get(self, actor: Principal, dispute_id: str) -> Dispute:
        scope = actor.merchant_scope(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            dispute = await self._store.get(tx, dispute_id, merchant_id=scope)
        if dispute is None:
            raise NotFound(f"No such dispute: '{dispute_id}'.", field="id")
        return dispute

    async def list(
        self, actor: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Dispute]:
        scope = actor.merchant_scope(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            return await self._store.list(tx, scope, page, filters)

    # --- what every step writes -------------------------------------------------------------

    async def _record(
        self,
        tx: Transaction,
        actor: Principal,
        origin: Origin,
        dispute: Dispute,
        previous: DisputeStatus | None,
        event_type: str,
        now: datetime,
    ) -> None:
        await self._txlog.append(tx, [txlog_entry(dispute, previous, actor.actor, now)])
        await self._outbox.emit(
            tx, event_type, self._shown.dispute(dispute), merchant_id=dispute.merchant_id
        )
        await self._auditor.record(
            tx,
            actor=actor.actor,
            event_type=event_type,
            resource=dispute.id,
            origin=origin,
            details={"payment": dispute.payment_id, "status": str(dispute.status)},
        )

    async def _respond(
        self, tx: Transaction, claim: IdempotencyClaim | None, status: int, dispute: Dispute
    ) -> None:
        """The response, stored with the change it answers for: a retry gets this dispute back,
        never a second one."""
        if claim is not None:
            body = self._shown.response_body(self._shown.dispute(dispute))
            await self._idempotency.complete_in(tx, claim, status, body)
