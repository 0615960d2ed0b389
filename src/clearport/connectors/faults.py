"""Faults injected at the connector port, around any connector (a simulator's client included):
for tests and for a fault-injection simulation of the money path.

    faulty = FaultyConnector(real)
    faulty.will("authorize", Fault.LOSE_ANSWER)   # the processor acts; the answer never comes
    faulty.will("capture", Fault.RESET_BEFORE)    # the connection breaks before anything leaves

Each scripted fault applies to the next call of its operation, in order; calls without one go
straight through. `FaultyConnector.wrap` is what a `RegistryDirectory` (`wrap=`) applies to
every connector it builds, so a whole process's connectors can be made faulty.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import NoReturn

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    Failure,
    unreachable,
)
from clearport.connectors.ports import Connector


class Fault(StrEnum):
    TIME_OUT = "time_out"  # never reaches the processor, never answers
    LOSE_ANSWER = "lose_answer"  # the processor acts; the answer is lost
    LATE = "late"  # the processor acts after the caller has given up (after `late_s`)
    RESET_BEFORE = "reset_before"  # the connection breaks before the call leaves
    RESET_AFTER = "reset_after"  # the processor acts; the connection breaks on the way back
    REFUSE = "refuse"  # the connection is refused
    DUPLICATE = "duplicate"  # the call reaches the processor twice (a retransmission)


class FaultyConnector:
    def __init__(self, inner: Connector, *, late_s: float = 1.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.inquires = inner.inquires
        self.late_s = late_s
        self.injected: list[tuple[str, Fault]] = []
        self._script: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._late: set[asyncio.Task[ConnectorResult]] = set()

    @staticmethod
    def wrap(connector: Connector) -> FaultyConnector:
        return FaultyConnector(connector)

    def will(self, operation: str, *faults: Fault) -> None:
        """The next calls of `operation` meet these faults, in order."""
        self._script[operation].extend(faults)

    def clear(self) -> None:
        """Forget the faults scripted and not met (their call never came)."""
        self._script.clear()

    async def _hang(self) -> NoReturn:
        await asyncio.Event().wait()
        raise RuntimeError("nobody ends a hanging call")

    async def _call(
        self, operation: str, call: Callable[[], Awaitable[ConnectorResult]]
    ) -> ConnectorResult:
        script = self._script[operation]
        if not script:
            return await call()
        fault = script.popleft()
        self.injected.append((operation, fault))
        match fault:
            case Fault.TIME_OUT:
                await self._hang()
            case Fault.LOSE_ANSWER:
                await call()
                await self._hang()
            case Fault.LATE:

                async def later() -> ConnectorResult:
                    await asyncio.sleep(self.late_s)
                    return await call()

                task = asyncio.get_running_loop().create_task(later())
                self._late.add(task)
                task.add_done_callback(self._late.discard)
                await self._hang()
            case Fault.RESET_BEFORE:
                raise ConnectionResetError("injected: reset before the call left")
            case Fault.RESET_AFTER:
                await call()
                raise ConnectionResetError("injected: reset on the way back")
            case Fault.REFUSE:
                return unreachable(Failure.CONNECTION_REFUSED)
            case Fault.DUPLICATE:
                first = await call()
                await call()
                return first

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult:
        return await self._call(
            "authorize",
            lambda: self.inner.authorize(reference, amount_minor, currency, card, capture=capture),
        )

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return await self._call(
            "capture", lambda: self.inner.capture(reference, authorization, amount_minor, currency)
        )

    async def void(self, reference: str, authorization: str) -> ConnectorResult:
        return await self._call("void", lambda: self.inner.void(reference, authorization))

    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return await self._call(
            "refund",
            lambda: self.inner.refund(reference, capture_reference, amount_minor, currency),
        )

    async def status(self, reference: str) -> ConnectorResult:
        return await self._call("status", lambda: self.inner.status(reference))

    async def reverse(
        self, reference: str, original: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return await self._call(
            "reverse", lambda: self.inner.reverse(reference, original, amount_minor, currency)
        )

    async def settle_late(self) -> None:
        """Wait for the calls a LATE fault let through after their callers gave up."""
        await asyncio.gather(*self._late, return_exceptions=True)

    async def close(self) -> None:
        for task in self._late:
            task.cancel()
        await self.inner.close()
