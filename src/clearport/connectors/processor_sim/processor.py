"""The processor both simulator hosts front (`clearport simulate http` and `simulate iso8583`):
what it does with each request, and the faults it can be told to show.

It behaves like a small acquirer: API.md's test cards decide authorizations; a capture needs an
approved authorization and at most its amount, once; a void releases an approved authorization
(and answers again for one already released); a refund needs a captured sale and never more
than was captured; a reversal cancels whatever its original did, or refuses the original if it
arrives later. Every reference is answered once and the same answer replayed for a repeat, as
a processor deduplicates retries. Everything is written to its own records before it answers.

Faults, each drawn from a seeded generator in the order requests arrive: `latency_ms` before
every answer; `error_rate` answers 96 without acting; `timeout_rate` acts and never answers (the
lost answer); `silent` never answers anything (the transport hosts handle it). They apply to
authorizations, sales, captures and refunds, never to reversals, voids and inquiries, so a
timed-out authorization can be reversed against the same host.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass
from enum import StrEnum

from clearport.connectors.domain import ResponseCode, test_card_code
from clearport.connectors.processor_sim.records import Record, Records
from clearport.core.sensitive import SensitiveStr


class Kind(StrEnum):
    AUTHORIZE = "authorize"
    SALE = "sale"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    REVERSE = "reverse"
    TOMBSTONE = "tombstone"  # a reversal came before its original


ORIGINALS = frozenset({Kind.AUTHORIZE, Kind.SALE})
FAULTY = frozenset({Kind.AUTHORIZE, Kind.SALE, Kind.CAPTURE, Kind.REFUND})


class State(StrEnum):
    APPROVED = "approved"  # an authorization not captured yet, or an approved follow-up
    CAPTURED = "captured"  # a sale, or an authorization a capture took
    VOIDED = "voided"
    REVERSED = "reversed"
    DECLINED = "declined"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    silent: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        for rate in (self.error_rate, self.timeout_rate):
            if not 0.0 <= rate <= 1.0:
                raise ValueError("a fault rate lies between 0 and 1")
        if self.latency_ms < 0:
            raise ValueError("latency is not negative")


@dataclass(frozen=True, slots=True)
class Answer:
    """What the host answers (`send` False: it acted, and never answers)."""

    record: Record
    send: bool = True

    @property
    def code(self) -> str:
        return self.record.response_code


def approval_code_for(reference: str) -> str:
    digest = hashlib.sha256(b"clearport-processor-sim:" + reference.encode()).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 1_000_000:06d}"


class SimulatedProcessor:
    def __init__(self, records: Records, faults: Faults, *, host: str) -> None:
        self.records = records
        self.faults = faults
        self.host = host
        self._random = random.Random(faults.seed)

    async def _latency(self) -> None:
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)

    def _draw(self, kind: Kind) -> tuple[bool, bool]:
        """(answer 96 without acting, act and never answer) for one request."""
        if kind not in FAULTY:
            return False, False
        error = self._random.random() < self.faults.error_rate
        timeout = self._random.random() < self.faults.timeout_rate
        return error, timeout and not error

    def _new(
        self,
        reference: str,
        kind: Kind,
        code: ResponseCode,
        state: State,
        *,
        original: str | None = None,
        amount: int | None = None,
        currency: str | None = None,
        network_ref: str | None = None,
        details: dict[str, str] | None = None,
        answered: bool = True,
    ) -> Record:
        return Record(
            reference=reference,
            host=self.host,
            kind=str(kind),
            original=original,
            amount=amount,
            currency=currency,
            response_code=str(code),
            state=str(state),
            approval_code=approval_code_for(reference) if code is ResponseCode.APPROVED else None,
            network_ref=network_ref,
            answered=answered,
            details=details or {},
        )

    async def authorize(
        self,
        reference: str,
        amount: int,
        currency: str,
        number: SensitiveStr,
        *,
        capture: bool,
        network_ref: str | None = None,
        details: dict[str, str] | None = None,
    ) -> Answer:
        kind = Kind.SALE if capture else Kind.AUTHORIZE
        await self._latency()
        error, timeout = self._draw(kind)
        code = ResponseCode.SYSTEM_MALFUNCTION if error else test_card_code(number.reveal())
        approved = code is ResponseCode.APPROVED
        state = (
            (State.CAPTURED if capture else State.APPROVED)
            if approved
            else (State.ERROR if code is ResponseCode.SYSTEM_MALFUNCTION else State.DECLINED)
        )
        record = self._new(
            reference,
            kind,
            code,
            state,
            amount=amount,
            currency=currency,
            network_ref=network_ref,
            details=details,
            answered=not timeout,
        )
        digits = number.reveal()
        record.card_bin, record.card_last4 = digits[:6], digits[-4:]
        if capture and approved:
            record.captured = amount
        stored = await self.records.insert_alone(record)
        if stored is not record:  # a repeat: the first answer again
            return Answer(_replayed(stored))
        return Answer(stored, send=not timeout)

    async def capture(
        self,
        reference: str,
        original: str,
        amount: int,
        currency: str,
        *,
        network_ref: str | None = None,
        details: dict[str, str] | None = None,
    ) -> Answer:
        return await self._follow_up(
            Kind.CAPTURE, reference, original, amount, currency, network_ref, details
        )

    async def refund(
        self,
        reference: str,
        original: str,
        amount: int,
        currency: str,
        *,
        network_ref: str | None = None,
        details: dict[str, str] | None = None,
    ) -> Answer:
        return await self._follow_up(
            Kind.REFUND, reference, original, amount, currency, network_ref, details
        )

    async def void(
        self,
        reference: str,
        original: str,
        *,
        network_ref: str | None = None,
        details: dict[str, str] | None = None,
    ) -> Answer:
        return await self._follow_up(
            Kind.VOID, reference, original, None, None, network_ref, details
        )

    async def reverse(
        self,
        reference: str,
        original: str,
        amount: int | None,
        currency: str | None,
        *,
        network_ref: str | None = None,
        details: dict[str, str] | None = None,
    ) -> Answer:
        return await self._follow_up(
            Kind.REVERSE, reference, original, amount, currency, network_ref, details
        )

    async def inquire(self, reference: str) -> Record | None:
        await self._latency()
        return await self.records.find(reference)

    async def _follow_up(
        self,
        kind: Kind,
        reference: str,
        original: str,
        amount: int | None,
        currency: str | None,
        network_ref: str | None,
        details: dict[str, str] | None,
    ) -> Answer:
        await self._latency()
        error, timeout = self._draw(kind)
        async with self.records.transaction() as conn:
            existing = await self.records.get(conn, reference, lock=False)
            if existing is not None:
                return Answer(_replayed(existing))
            target = await self.records.get(conn, original, lock=True)
            parent = None
            if kind is Kind.REVERSE and target is not None and target.original is not None:
                parent = await self.records.get(conn, target.original, lock=True)
            if error:
                change = Change(ResponseCode.SYSTEM_MALFUNCTION)
            elif kind is Kind.REVERSE:
                change = _reverse(target, parent, original, amount, self.host)
            else:
                change = _apply(kind, target, amount)
            record = self._new(
                reference,
                kind,
                change.code,
                _follow_up_state(change.code),
                original=original,
                amount=amount,
                currency=currency,
                network_ref=network_ref,
                details=details,
                answered=not timeout,
            )
            if await self.records.insert(conn, record):
                if change.code is ResponseCode.APPROVED:
                    for new in change.created:
                        await self.records.insert(conn, new)
                    for changed in change.updated:
                        await self.records.update(conn, changed)
                return Answer(record, send=not timeout)
        # The same reference arrived twice at once and the other one was first: its answer.
        first = await self.records.find(reference)
        if first is None:  # pragma: no cover - a row is never deleted
            raise RuntimeError("a conflicting simulator record vanished")
        return Answer(_replayed(first))


@dataclass(frozen=True, slots=True)
class Change:
    """A follow-up's answer, and the records it creates and changes if approved."""

    code: ResponseCode
    updated: tuple[Record, ...] = ()
    created: tuple[Record, ...] = ()


def _replayed(record: Record) -> Record:
    """A repeated reference gets the first answer; one a reversal came before is refused."""
    if record.kind == Kind.TOMBSTONE:
        record.response_code = str(ResponseCode.SYSTEM_MALFUNCTION)
    return record


def _follow_up_state(code: ResponseCode) -> State:
    if code is ResponseCode.APPROVED:
        return State.APPROVED
    return State.ERROR if code is ResponseCode.SYSTEM_MALFUNCTION else State.DECLINED


def _apply(kind: Kind, target: Record | None, amount: int | None) -> Change:
    """A capture, void or refund of `target` (the original authorization or sale)."""
    refused = Change(ResponseCode.INVALID_TRANSACTION)
    if target is None or target.kind not in ORIGINALS:
        return refused
    state = State(target.state)
    match kind:
        case Kind.CAPTURE:
            if state is not State.APPROVED or target.kind != Kind.AUTHORIZE:
                return refused
            if amount is None or amount <= 0 or amount > (target.amount or 0):
                return Change(ResponseCode.INVALID_AMOUNT)
            target.state, target.captured = str(State.CAPTURED), amount
        case Kind.VOID:
            if state in (State.VOIDED, State.REVERSED):
                return Change(ResponseCode.APPROVED)  # released already: the same answer
            if state is not State.APPROVED:
                return refused
            target.state = str(State.VOIDED)
        case Kind.REFUND:
            if state is not State.CAPTURED:
                return refused
            if amount is None or amount <= 0 or target.refunded + amount > target.captured:
                return Change(ResponseCode.INVALID_AMOUNT)
            target.refunded += amount
        case _:
            return refused
    return Change(ResponseCode.APPROVED, updated=(target,))


def _reverse(
    target: Record | None, parent: Record | None, original: str, amount: int | None, host: str
) -> Change:
    """Cancel what `target` did: an authorization or sale stops standing, a capture or refund
    is taken back from its authorization (`parent`); a reference never seen is refused from
    now on (a tombstone)."""
    if target is None:
        tombstone = Record(
            reference=original,
            host=host,
            kind=str(Kind.TOMBSTONE),
            original=None,
            amount=amount,
            currency=None,
            response_code=str(ResponseCode.SYSTEM_MALFUNCTION),
            state=str(State.REVERSED),
        )
        return Change(ResponseCode.APPROVED, created=(tombstone,))
    if target.kind == Kind.TOMBSTONE or target.state in (
        State.REVERSED,
        State.DECLINED,
        State.ERROR,
    ):
        return Change(ResponseCode.APPROVED)  # nothing stands: the same answer
    match Kind(target.kind):
        case Kind.AUTHORIZE | Kind.SALE:
            target.state = str(State.REVERSED)
            return Change(ResponseCode.APPROVED, updated=(target,))
        case Kind.CAPTURE if parent is not None:
            target.state = str(State.REVERSED)
            parent.state, parent.captured = str(State.APPROVED), 0
            return Change(ResponseCode.APPROVED, updated=(target, parent))
        case Kind.REFUND if parent is not None:
            target.state = str(State.REVERSED)
            parent.refunded -= target.amount or 0
            return Change(ResponseCode.APPROVED, updated=(target, parent))
        case _:
            return Change(ResponseCode.INVALID_TRANSACTION)
