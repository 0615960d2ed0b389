"""A scriptable connector for tests: it approves unless told otherwise, and can be told to
decline, fail, time out, lose its answer, break the connection, refuse it, or hold a call until
the test lets it go (to make concurrency deterministic).

    fake = FakeConnector()
    fake.will("capture", Answer.DECLINE)          # the next capture is refused
    release = fake.hold("authorize")              # authorizations wait ...
    task = asyncio.create_task(payments.create(...))
    await fake.until_held("authorize")            # ... one is waiting now
    release.set()

Like a processor, it remembers what it did per reference, so `status` can tell the janitor.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from enum import StrEnum
from typing import NoReturn

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    ConnectorStatus,
    Failure,
    unreachable,
)


class Answer(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"  # the issuer said no (DE39 05)
    FAIL = "fail"  # processed and refused for a technical reason (DE39 96)
    TIME_OUT = "time_out"  # never reaches the processor and never answers
    LOSE_ANSWER = "lose_answer"  # approved at the processor; the answer never arrives
    BREAK = "break"  # the connection breaks: the caller sees a transport error
    REFUSE = "refuse"  # the connection is refused: nothing reaches the processor


_REFUSALS = {
    Answer.DECLINE: (ConnectorStatus.DECLINED, "05", "do_not_honor"),
    Answer.FAIL: (ConnectorStatus.ERROR, "96", "processing_error"),
}


def _auth_code(reference: str) -> str:
    return f"{int(hashlib.sha256(reference.encode()).hexdigest(), 16) % 1_000_000:06d}"


class FakeConnector:
    inquires = True

    def __init__(
        self, name: str = "fake", *, while_calling: Callable[[], object] | None = None
    ) -> None:
        self.name = name
        self.calls: Counter[str] = Counter()
        # `while_calling()` is recorded at every call: a test passes e.g. the fake unit of
        # work's open-transaction count to prove nothing is held while calling out.
        self._while_calling = while_calling
        self.seen_while_calling: list[tuple[str, object]] = []
        self._script: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self._holds: dict[str, asyncio.Event] = {}
        self._waiting: Counter[str] = Counter()
        self._arrived: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._records: dict[str, ConnectorResult] = {}
        self.reversed: list[str] = []  # originals reversed, in order

    def will(self, operation: str, *answers: Answer) -> None:
        """The next calls of `operation` ("authorize", "capture", "void", "refund", "status",
        "reverse") to arrive give these answers, in order; after them it approves again.
        `status` answers from the records; TIME_OUT, BREAK or REFUSE make the query itself
        fail."""
        self._script[operation].extend(answers)

    def hold(self, operation: str) -> asyncio.Event:
        """Calls of `operation` wait, before acting, until the returned event is set."""
        release = asyncio.Event()
        self._holds[operation] = release
        return release

    def let_through(self, operation: str) -> None:
        """Calls of `operation` arriving from now on are not held; those already waiting
        still wait for their release."""
        self._holds.pop(operation, None)

    async def until_held(self, operation: str, count: int = 1) -> None:
        """Return once `count` calls of `operation` are waiting: on a hold, or hanging
        without an answer (TIME_OUT, LOSE_ANSWER: the processor has acted by then)."""
        while self._waiting[operation] < count:
            self._arrived[operation].clear()
            await self._arrived[operation].wait()

    def forget(self, reference: str) -> None:
        """The processor loses its record of a call (status answers `not_found`)."""
        self._records.pop(reference, None)

    async def _wait(self, operation: str, release: asyncio.Event) -> None:
        self._waiting[operation] += 1
        self._arrived[operation].set()
        try:
            await release.wait()
        finally:
            self._waiting[operation] -= 1

    async def _arrive(self, operation: str) -> Answer:
        """Count the call, choose its answer, and wait if it is held."""
        self.calls[operation] += 1
        if self._while_calling is not None:
            self.seen_while_calling.append((operation, self._while_calling()))
        script = self._script[operation]
        answer = script.popleft() if script else Answer.APPROVE
        release = self._holds.get(operation)
        if release is not None and not release.is_set():
            await self._wait(operation, release)
        return answer

    async def _hang(self, operation: str) -> NoReturn:
        """Never answer: until the caller's timeout (or a crash) cancels the call."""
        await self._wait(operation, asyncio.Event())
        raise RuntimeError("nobody releases a hanging call")

    async def _act(
        self, operation: str, reference: str, recorded_as: str, *, auth: bool
    ) -> ConnectorResult:
        answer = await self._arrive(operation)
        match answer:
            case Answer.TIME_OUT:
                await self._hang(operation)
            case Answer.BREAK:
                raise ConnectionResetError("the fake connector broke the connection")
            case Answer.REFUSE:
                return unreachable(Failure.CONNECTION_REFUSED)
            case Answer.DECLINE | Answer.FAIL:
                status, response_code, decline_code = _REFUSALS[answer]
                result = ConnectorResult(
                    status=status,
                    response_code=response_code,
                    decline_code=decline_code,
                    network_reference=f"FAKE-{reference}",
                    connector_reference=reference,
                    operation=recorded_as,
                )
            case Answer.APPROVE | Answer.LOSE_ANSWER:
                result = ConnectorResult(
                    status=ConnectorStatus.APPROVED,
                    response_code="00",
                    auth_code=_auth_code(reference) if auth else None,
                    network_reference=f"FAKE-{reference}",
                    connector_reference=reference,
                    operation=recorded_as,
                )
        self._records[reference] = result
        if answer is Answer.LOSE_ANSWER:
            await self._hang(operation)
        return result

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult:
        recorded_as = "sale" if capture else "authorize"
        return await self._act("authorize", reference, recorded_as, auth=True)

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return await self._act("capture", reference, "capture", auth=False)

    async def void(self, reference: str, authorization: str) -> ConnectorResult:
        return await self._act("void", reference, "void", auth=False)

    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return await self._act("refund", reference, "refund", auth=False)

    async def status(self, reference: str) -> ConnectorResult:
        match await self._arrive("status"):
            case Answer.TIME_OUT | Answer.LOSE_ANSWER:
                await self._hang("status")
            case Answer.BREAK:
                raise ConnectionResetError("the fake connector broke the connection")
            case Answer.REFUSE:
                return unreachable(Failure.CONNECTION_REFUSED)
            case _:
                pass
        record = self._records.get(reference)
        if record is None:
            return ConnectorResult(status=ConnectorStatus.NOT_FOUND, connector_reference=reference)
        return record

    async def reverse(
        self, reference: str, original: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        result = await self._act("reverse", reference, "reverse", auth=False)
        if result.status is ConnectorStatus.APPROVED:
            self._records.pop(original, None)
            self.reversed.append(original)
        return result

    async def close(self) -> None:
        pass
