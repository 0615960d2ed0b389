"""Every call to a connector goes through its guard: the circuit breaker, an outer deadline, the
one place an exception becomes an answer, and the metrics.

A connector bounds its own calls (its connect and read timeouts); the guard bounds them again,
so a connector that hangs anyway (a plug-in, a bug) is cut off: `UNKNOWN` with `timeout`. An
exception is never read as a decline: a refused connection is `UNREACHABLE` (nothing was sent),
anything else `UNKNOWN` (something may have been). The breaker counts technical failures and
timeouts, never declines; while it is open, calls are answered `UNREACHABLE` / `breaker_open`
at once and never leave the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter, Gauge

from clearport.connectors.domain import (
    BreakerState,
    CircuitBreaker,
    ConnectorCard,
    ConnectorResult,
    Failure,
    unknown,
    unreachable,
)
from clearport.connectors.ports import Connector

log = structlog.get_logger("clearport.connectors")

CALLS = Counter(
    "clearport_connector_calls_total",
    "Calls to connectors by operation and outcome (a connector status, or breaker_open).",
    ["connector", "operation", "outcome"],
)
BREAKER = Gauge(
    "clearport_connector_breaker_state",
    "1 for the circuit breaker's current state (closed, open, half_open), 0 for the others; "
    "per process.",
    ["connector", "state"],
    multiprocess_mode="liveall",
)


def show_breaker(name: str, state: BreakerState) -> None:
    for each in BreakerState:
        BREAKER.labels(connector=name, state=str(each)).set(1 if each is state else 0)


class GuardedConnector:
    """`inner` behind its breaker and a deadline; never raises but for its caller's own
    cancellation."""

    def __init__(
        self,
        inner: Connector,
        breaker: CircuitBreaker,
        *,
        timeout_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.inquires = inner.inquires
        self.breaker = breaker
        self._timeout_s = timeout_s
        self._monotonic = monotonic
        show_breaker(self.name, breaker.state(monotonic()))

    def breaker_state(self) -> BreakerState:
        state = self.breaker.state(self._monotonic())
        show_breaker(self.name, state)
        return state

    def allows(self) -> bool:
        """Whether the breaker would let a call out now (without taking a trial slot)."""
        return self.breaker.state(self._monotonic()) is not BreakerState.OPEN

    async def _call(
        self, operation: str, make: Callable[[], Awaitable[ConnectorResult]]
    ) -> ConnectorResult:
        if not self.breaker.allow(self._monotonic()):
            CALLS.labels(self.name, operation, str(Failure.BREAKER_OPEN)).inc()
            return unreachable(Failure.BREAKER_OPEN)
        try:
            result = await asyncio.wait_for(make(), timeout=self._timeout_s)
        except TimeoutError:
            log.warning("connector_timeout", connector=self.name, operation=operation)
            result = unknown(Failure.TIMEOUT)
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        except ConnectionRefusedError:
            result = unreachable(Failure.CONNECTION_REFUSED)
        except Exception as exc:  # the type only: a message may quote what was sent
            log.warning(
                "connector_error",
                connector=self.name,
                operation=operation,
                error=type(exc).__name__,
            )
            result = unknown(Failure.PROCESSING_ERROR)
        self.breaker.record(failed=result.is_technical_failure, now=self._monotonic())
        show_breaker(self.name, self.breaker.state(self._monotonic()))
        CALLS.labels(self.name, operation, str(result.status)).inc()
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
        return await self._call(
            "sale" if capture else "authorize",
            lambda: self.inner.authorize(reference, amount_minor, currency, card, capture=capture),
        )

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return await self._call(
            "capture",
            lambda: self.inner.capture(reference, authorization, amount_minor, currency),
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

    async def close(self) -> None:
        await self.inner.close()
