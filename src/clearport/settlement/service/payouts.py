"""Payouts: the payout files a business date's payouts go out in, and their outcome (paid, or
failed and returned to the merchant's available balance)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound, invariant, present
from clearport.core.ids import parse_id
from clearport.core.uow import UnitOfWork
from clearport.events.service import Outbox
from clearport.ledger.domain import AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from clearport.settlement.domain import (
    AVAILABLE,
    PAYOUT_TRANSITIONS,
    PAYOUTS_IN_TRANSIT,
    PLATFORM,
    Payout,
    PayoutFile,
    PayoutLine,
    payout_file_format,
)
from clearport.settlement.ports import (
    PayoutDestination,
    PayoutDestinations,
    PayoutFileRenderer,
    PayoutStore,
    SettlementRepresentation,
)
from clearport.storage.ports import ObjectStorage

FLAG_NO_BANK_ACCOUNT = "no_bank_account"

_EXTENSIONS = {"nacha": "ach", "pain001": "xml", "csv": "csv"}


def _payout_transfer(payout: Payout, key: str, *, to_merchant: bool) -> TransferRequest:
    """The payout's money between the merchant's available and the platform's in-transit."""
    available = AccountRef(payout.merchant_id, AccountKind(AVAILABLE), payout.currency)
    in_transit = AccountRef(PLATFORM, AccountKind(PAYOUTS_IN_TRANSIT), payout.currency)
    return TransferRequest(
        id=f"{payout.id}:{key}",
        debit=in_transit if to_merchant else available,
        credit=available if to_merchant else in_transit,
        amount_minor=payout.amount,
        currency=payout.currency,
        code="payout",
        source=payout.id,
    )


class SettlementPayouts:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PayoutStore,
        ledger: LedgerService,
        storage: ObjectStorage,
        renderer: PayoutFileRenderer,
        destinations: PayoutDestinations,
        auditor: Auditor,
        clock: Clock,
        outbox: Outbox,
        shown: SettlementRepresentation,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._shown = shown
        self._store = store
        self._ledger = ledger
        self._storage = storage
        self._renderer = renderer
        self._destinations = destinations
        self._auditor = auditor
        self._clock = clock

    async def write_payout_files(self, on: date, created_at: datetime) -> list[PayoutFile]:
        """Put every pending payout due on or before `on` into that date's file per currency.

        One transaction records each file: its row (with the bytes' SHA-256), its payouts in
        transit and the ledger (available -> in transit). The bytes go to object storage after
        that commit, never with a transaction open. A file recorded but not stored (a crash, S3
        down) is rendered again from its recorded payouts on the next call for the date, and
        stored only if it hashes to what was recorded: the object never differs from the row."""
        await self.store_pending_files(on, created_at)
        written: list[tuple[PayoutFile, bytes]] = []
        async with self._uow.transaction() as tx:
            due = await self._store.due_payouts(tx, on)
            by_currency: dict[str, list[tuple[Payout, PayoutDestination]]] = {}
            waiting: list[str] = []
            for payout in due:
                dest = await self._destinations.destination(tx, payout.merchant_id)
                if dest is None or dest.currency != payout.currency:
                    waiting.append(payout.id)
                    continue
                by_currency.setdefault(payout.currency, []).append((payout, dest))
            if waiting:
                await self._store.flag_payouts(tx, waiting, FLAG_NO_BANK_ACCOUNT)
            for currency in sorted(by_currency):
                if await self._store.has_payout_file(tx, on, currency):
                    continue  # that date's file exists; later payouts go in the next one
                entries = by_currency[currency]
                fmt = payout_file_format(currency)
                file_id = f"pf_{on.strftime('%Y%m%d')}_{currency}"
                data = self._render(fmt, file_id, entries, on, created_at)
                key = f"payouts/{on.isoformat()}/{file_id}.{_EXTENSIONS[fmt]}"
                await self._ledger.post(
                    tx, [_payout_transfer(p, "payout", to_merchant=False) for p, _ in entries]
                )
                file = PayoutFile(
                    id=file_id,
                    business_date=on,
                    currency=currency,
                    format=fmt,
                    object_key=key,
                    uri=self._storage.uri(key),
                    sha256=hashlib.sha256(data).hexdigest(),
                    count=len(entries),
                    total_minor=sum(p.amount for p, _ in entries),
                    created_at=self._clock.now(),
                )
                await self._store.record_payout_file(tx, file, [p.id for p, _ in entries])
                written.append((file, data))
        for file, data in written:
            await self._put(file, data)
        return [file for file, _ in written]

    async def store_pending_files(self, on: date, created_at: datetime) -> int:
        """Store the files of `on` that were recorded but never stored; how many."""
        async with self._uow.transaction() as tx:
            pending = await self._store.unstored_payout_files(tx, on)
            rendered: list[tuple[PayoutFile, bytes]] = []
            for file in pending:
                entries = []
                for payout in await self._store.payouts_in_file(tx, file.id):
                    dest = await self._destinations.destination(tx, payout.merchant_id)
                    entries.append((payout, present(dest, f"{payout.id} has a destination")))
                rendered.append((file, self._render(file.format, file.id, entries, on, created_at)))
        for file, data in rendered:
            invariant(
                hashlib.sha256(data).hexdigest() == file.sha256,
                f"payout file {file.id} renders as it was recorded (a bank account changed "
                "between recording and storing it: store it by hand)",
            )
            await self._put(file, data)
        return len(rendered)

    async def _put(self, file: PayoutFile, data: bytes) -> None:
        await self._storage.put(file.object_key, data)
        async with self._uow.transaction() as tx:
            await self._store.mark_payout_file_stored(tx, file.id, self._clock.now())

    def _render(
        self,
        fmt: str,
        file_id: str,
        entries: list[tuple[Payout, PayoutDestination]],
        on: date,
        created_at: datetime,
    ) -> bytes:
        lines = [
            PayoutLine(
                payout_id=p.id,
                merchant_id=p.merchant_id,
                amount_minor=p.amount,
                currency=p.currency,
                account_holder=d.account_holder,
                execution_date=max(p.arrival_date, on),
                routing_number=d.routing_number,
                account_number=d.account_number,
                iban=d.iban,
                bic=d.bic,
            )
            for p, d in entries
        ]
        return self._renderer.render(
            fmt, lines, file_id=file_id, created_at=created_at, execution_date=on
        )

    async def mark_payout(
        self,
        actor: Principal,
        origin: Origin,
        payout_id: str,
        status: str,
        failure_code: str | None = None,
    ) -> Payout:
        """Operator: a payout was `paid`, or `failed` (an ACH return): money back to available."""
        actor.require(Permission.FINANCE_WRITE)
        parse_id(payout_id, "po", field="id")
        if status not in ("paid", "failed"):
            raise InvalidRequest("'status' must be 'paid' or 'failed'.", field="status")
        async with self._uow.transaction() as tx:
            payout = await self._store.get_payout(tx, payout_id, for_update=True)
            if payout is None:
                raise NotFound("No such payout.", field="id")
            if status not in PAYOUT_TRANSITIONS[payout.status]:
                raise InvalidState(f"A payout that is {payout.status} cannot become {status}.")
            if status == "failed":
                await self._ledger.post(tx, [_payout_transfer(payout, "return", to_merchant=True)])
            await self._store.set_payout_status(
                tx,
                payout.id,
                status,
                failure_code if status == "failed" else None,
                self._clock.now(),
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type=f"payout.{status}",
                resource=payout.id,
                origin=origin,
                details={"failure_code": failure_code} if failure_code else {},
            )
            updated = present(await self._store.get_payout(tx, payout.id), "a payout is read")
            await self._outbox.emit(
                tx, f"payout.{status}", self._shown.payout(updated), merchant_id=payout.merchant_id
            )
        return updated
