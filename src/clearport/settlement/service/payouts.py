"""Payouts: the payout files a business date's payouts go out in, and their outcome: paid (the
money leaves payouts in transit), or failed (back to the merchant's available balance, from which
the pair's next settlement pays it again: decision 0702), by an operator or a NACHA return file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound, invariant, present
from clearport.core.ids import parse_id
from clearport.core.uow import Transaction, UnitOfWork
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
    BankingCalendar,
    PayoutDestination,
    PayoutDestinations,
    PayoutFileRenderer,
    PayoutStore,
    SettlementRepresentation,
)
from clearport.settlement.returns import ReturnEntry, parse_nacha_returns
from clearport.storage.ports import ObjectStorage

FLAG_NO_BANK_ACCOUNT = "no_bank_account"

_EXTENSIONS = {"nacha": "ach", "pain001": "xml", "csv": "csv"}


# How far ahead of a run's day a payout file looks for payouts due: past any run of closed days.
_DUE_HORIZON = timedelta(days=31)


def _payout_transfer(
    payout: Payout, key: str, debit: AccountKind, credit: AccountKind
) -> TransferRequest:
    """The payout's money between two accounts: the merchant's `available`, the platform's
    payouts in transit or processor receivable (what funds payouts)."""

    def account(kind: AccountKind) -> AccountRef:
        owner = payout.merchant_id if kind is AccountKind.AVAILABLE else PLATFORM
        return AccountRef(owner, kind, payout.currency)

    return TransferRequest(
        id=f"{payout.id}:{key}",
        debit=account(debit),
        credit=account(credit),
        amount_minor=payout.amount,
        currency=payout.currency,
        code="payout",
        source=payout.id,
    )


_AVAILABLE = AccountKind(AVAILABLE)
_IN_TRANSIT = AccountKind(PAYOUTS_IN_TRANSIT)
_RECEIVABLE = AccountKind.PROCESSOR_RECEIVABLE


def outcome_transfers(payout: Payout, status: str) -> list[TransferRequest]:
    """What a payout's outcome moves. Sent: available -> in transit (at the file). Paid: out of
    in transit, against the processor receivable that funded it. Failed: back to available,
    from in transit, or first back into it when the bank returns a payout marked paid."""
    if status == "paid":
        return [_payout_transfer(payout, "paid", _IN_TRANSIT, _RECEIVABLE)]
    invariant(status == "failed", "a payout's outcome is paid or failed")
    back = [_payout_transfer(payout, "return", _IN_TRANSIT, _AVAILABLE)]
    if payout.status == "paid":
        return [_payout_transfer(payout, "paid_returned", _RECEIVABLE, _IN_TRANSIT), *back]
    return back


@dataclass(frozen=True, slots=True)
class ReturnsImport:
    """What a return file did: payouts marked failed, entries already recorded, and entries
    that name no payout of ours or disagree with it (left alone, listed for a person)."""

    failed: tuple[str, ...]
    already_failed: tuple[str, ...]
    unmatched: tuple[str, ...]


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
        calendar: BankingCalendar,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._shown = shown
        self._calendar = calendar
        self._store = store
        self._ledger = ledger
        self._storage = storage
        self._renderer = renderer
        self._destinations = destinations
        self._auditor = auditor
        self._clock = clock

    async def write_payout_files(
        self, on: date, created_at: datetime, sent_on: date
    ) -> list[PayoutFile]:
        """Put every pending payout due by the file's effective date into business date `on`'s
        file per currency. A file takes effect on the first banking day of its currency on or
        after `sent_on` (the run's day, so a re-run computes the same date), and takes the
        payouts arriving by then.

        One transaction records each file: its row (with the bytes' SHA-256), its payouts in
        transit and the ledger (available -> in transit). The bytes go to object storage after
        that commit, never with a transaction open. A file recorded but not stored (a crash, S3
        down) is rendered again from its recorded payouts on the next call for the date, and
        stored only if it hashes to what was recorded: the object never differs from the row."""
        await self.store_pending_files(on, created_at, sent_on)
        written: list[tuple[PayoutFile, bytes]] = []
        async with self._uow.transaction() as tx:
            due = await self._store.due_payouts(tx, sent_on + _DUE_HORIZON)
            effective: dict[str, date] = {}
            for payout in due:
                if payout.currency not in effective:
                    effective[payout.currency] = self._calendar.next_banking_day(
                        payout.currency, sent_on
                    )
            due = [p for p in due if p.arrival_date <= effective[p.currency]]
            destination_of = await self._destinations.destinations(
                tx, sorted({p.merchant_id for p in due})
            )
            by_currency: dict[str, list[tuple[Payout, PayoutDestination]]] = {}
            waiting: list[str] = []
            for payout in due:
                dest = destination_of.get(payout.merchant_id)
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
                data = self._render(fmt, file_id, entries, effective[currency], created_at)
                key = f"payouts/{on.isoformat()}/{file_id}.{_EXTENSIONS[fmt]}"
                await self._ledger.post(
                    tx, [_payout_transfer(p, "payout", _AVAILABLE, _IN_TRANSIT) for p, _ in entries]
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

    async def store_pending_files(self, on: date, created_at: datetime, sent_on: date) -> int:
        """Store the files of `on` that were recorded but never stored (sent on `sent_on`, as
        `write_payout_files` recorded them); how many."""
        async with self._uow.transaction() as tx:
            pending = await self._store.unstored_payout_files(tx, on)
            rendered: list[tuple[PayoutFile, bytes]] = []
            for file in pending:
                payouts = await self._store.payouts_in_file(tx, file.id)
                destination_of = await self._destinations.destinations(
                    tx, sorted({p.merchant_id for p in payouts})
                )
                entries = [
                    (p, present(destination_of.get(p.merchant_id), f"{p.id} has a destination"))
                    for p in payouts
                ]
                effective = self._calendar.next_banking_day(file.currency, sent_on)
                data = self._render(file.format, file.id, entries, effective, created_at)
                rendered.append((file, data))
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
        effective: date,
        created_at: datetime,
    ) -> bytes:
        """The file's bytes: every payout executed on the file's effective date (a banking day
        of its currency; each payout in it arrives by then)."""
        lines = [
            PayoutLine(
                payout_id=p.id,
                merchant_id=p.merchant_id,
                amount_minor=p.amount,
                currency=p.currency,
                account_holder=d.account_holder,
                execution_date=effective,
                routing_number=d.routing_number,
                account_number=d.account_number,
                iban=d.iban,
                bic=d.bic,
            )
            for p, d in entries
        ]
        return self._renderer.render(
            fmt, lines, file_id=file_id, created_at=created_at, execution_date=effective
        )

    async def download_payout_file(
        self, actor: Principal, origin: Origin, file_id: str
    ) -> tuple[PayoutFile, bytes]:
        """A payout file's bytes, checked against the digest recorded when it was written.
        It holds destination account numbers: finance writers only, and audited."""
        actor.require(Permission.FINANCE_WRITE)
        async with self._uow.transaction() as tx:
            found = await self._store.get_payout_file(tx, file_id)
        if found is None:
            raise NotFound(f"No such payout file: '{file_id[:64]}'.", field="id")
        data = await self._storage.get(found.object_key)
        if data is None:
            raise InvalidState("The payout file is not in object storage yet; try again later.")
        invariant(hashlib.sha256(data).hexdigest() == found.sha256, "payout file as written")
        async with self._uow.transaction() as tx:
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="payout_file.downloaded",
                resource=found.id,
                origin=origin,
                details={"sha256": found.sha256},
            )
        return found, data

    async def mark_payout(
        self,
        actor: Principal,
        origin: Origin,
        payout_id: str,
        status: str,
        failure_code: str | None = None,
    ) -> Payout:
        """Operator: a payout was `paid`, or `failed` (the bank returned it, `failure_code` the
        reason, e.g. R01): its money goes back to available and the next settlement of the
        merchant in its currency pays it again."""
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
            return await self._record_outcome(tx, actor, origin, payout, status, failure_code)

    async def _record_outcome(
        self,
        tx: Transaction,
        actor: Principal,
        origin: Origin,
        payout: Payout,
        status: str,
        failure_code: str | None,
    ) -> Payout:
        """The outcome's ledger transfers, status, audit record and `payout.<status>` event;
        the payout as it is now."""
        await self._ledger.post(tx, outcome_transfers(payout, status))
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

    async def import_returns(self, actor: Principal, origin: Origin, data: bytes) -> ReturnsImport:
        """A NACHA return file from the bank: each returned credit's payout becomes failed with
        the return reason (R01 ...), in one transaction. A return naming no payout of ours, or
        one whose amount differs, changes nothing and is listed; an import run again finds its
        payouts failed already."""
        actor.require(Permission.FINANCE_WRITE)
        entries = parse_nacha_returns(data)
        failed: list[str] = []
        already: list[str] = []
        unmatched: list[str] = []
        async with self._uow.transaction() as tx:
            for entry in entries:
                payout = await self._payout_of(tx, entry)
                if payout is None:
                    unmatched.append(entry.identification)
                elif payout.status == "failed":
                    already.append(payout.id)
                elif "failed" not in PAYOUT_TRANSITIONS[payout.status]:
                    unmatched.append(entry.identification)  # never sent: not returnable
                else:
                    await self._record_outcome(
                        tx, actor, origin, payout, "failed", entry.reason_code
                    )
                    failed.append(payout.id)
        return ReturnsImport(tuple(failed), tuple(already), tuple(unmatched))

    async def _payout_of(self, tx: Transaction, entry: ReturnEntry) -> Payout | None:
        """The payout a return names by the identification number its entry was sent with (the
        payout id's last 15 characters), if the amount agrees."""
        payout = await self._store.payout_by_identification(tx, entry.identification)
        if payout is None or payout.amount != entry.amount_minor or payout.currency != "usd":
            return None
        return payout
