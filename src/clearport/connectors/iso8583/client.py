"""The ISO 8583 connector: one persistent TCP connection per host, requests multiplexed on it by
STAN, reconnected with backoff.

A request takes a STAN no message in flight on the connection holds, is written under the
connection's write lock, and waits (read timeout) for the answer the reader task hands it by
STAN. Answers may come in any order. A late answer (its request gave up) is dropped. A malformed
answer — a bad length header, a bitmap or field that does not decode, the wrong MTI, STAN or
terminal, no DE39 — cannot be matched to anything safely: the connection is reset and every
request in flight on it ends `UNKNOWN` (`processing_error`), to be reversed by its caller. A
connection that cannot be made is `UNREACHABLE` at once while the backoff runs (0.05 s doubling
to 5 s), so a dead host costs nothing per payment.

No log line of this module carries a message or a field: only MTIs, STANs and error kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

import iso8583
import structlog
from iso8583.specs import default_ascii

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    ConnectorStatus,
    Failure,
    unknown,
    unreachable,
)
from clearport.connectors.iso8583.framing import BadFrame, frame, read_frame
from clearport.connectors.iso8583.identifiers import RrnSequence, StanAllocator
from clearport.connectors.iso8583.transform import (
    Malformed,
    Merchant,
    Sent,
    check_answer,
    completion,
    purchase,
    refund,
    result_of,
    reversal,
)

log = structlog.get_logger("clearport.connectors.iso8583")

BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 5.0
REMEMBERED_ORIGINALS = 10_000  # sent messages kept for the DE90 of their reversals


class LinkBroken(Exception):
    """The connection a request waited on was reset."""


class _Link:
    """One TCP connection and the requests in flight on it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.write_lock = asyncio.Lock()
        self.in_flight: dict[str, tuple[dict[str, str], asyncio.Future[dict[str, str]]]] = {}
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    def reset(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        log.warning("iso8583_connection_reset", reason=why, in_flight=len(self.in_flight))
        for _, future in self.in_flight.values():
            if not future.done():
                future.set_exception(LinkBroken(why))
        self.in_flight.clear()
        self.writer.close()

    async def read_answers(self) -> None:
        try:
            while True:
                raw = await read_frame(self.reader)
                try:
                    answer, _ = iso8583.decode(raw, default_ascii)
                except iso8583.DecodeError:
                    raise Malformed("an answer that does not decode") from None
                stan = answer.get("11")
                waiting = self.in_flight.get(stan) if isinstance(stan, str) else None
                if waiting is None:
                    log.info("iso8583_late_answer", mti=answer.get("t"), stan=stan)
                    continue
                request, future = waiting
                check_answer(request, answer)
                if not future.done():
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.reset("closed by the host")
        except BadFrame:
            self.reset("a bad length header")
        except Malformed as exc:
            self.reset(str(exc))


class Iso8583Connector:
    inquires = False  # ISO 8583 has no status inquiry: a lost answer is reversed

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        stans: StanAllocator,
        rrns: RrnSequence,
        merchant: Merchant,
        max_in_flight: int = 1_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._host, self._port = host, port
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._stans = stans
        self._rrns = rrns
        self._merchant = merchant
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._next_connect_at = 0.0
        self._connect_failures = 0
        self._sent: OrderedDict[str, Sent] = OrderedDict()

    # --- the connection ------------------------------------------------------------------------

    async def _connected(self) -> _Link | None:
        link = self._link
        if link is not None and not link.closed:
            return link
        async with self._connecting:
            link = self._link
            if link is not None and not link.closed:
                return link
            if time.monotonic() < self._next_connect_at:
                return None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self._host, self._port),
                    timeout=self._connect_timeout_s,
                )
            except (OSError, TimeoutError) as exc:
                self._connect_failures += 1
                delay = min(BACKOFF_FIRST_S * 2 ** (self._connect_failures - 1), BACKOFF_MAX_S)
                self._next_connect_at = time.monotonic() + delay
                log.warning(
                    "iso8583_connect_failed",
                    connector=self.name,
                    error=type(exc).__name__,
                    retry_in_s=delay,
                )
                return None
            self._connect_failures = 0
            link = _Link(reader, writer)
            link.task = asyncio.create_task(link.read_answers(), name=f"iso8583-{self.name}")
            self._link = link
            return link

    async def _exchange(
        self, request: dict[str, str], reference: str, operation: str
    ) -> ConnectorResult:
        link = await self._connected()
        if link is None:
            return unreachable(Failure.CONNECTION_REFUSED)
        if len(link.in_flight) >= self._max_in_flight:
            return unreachable(Failure.CONNECTION_REFUSED)
        terminal, stan = self._stans.next(link.in_flight)
        request["11"], request["41"] = stan, terminal
        try:
            raw, _ = iso8583.encode(dict(request), default_ascii)
            payload = frame(bytes(raw))
        except (iso8583.EncodeError, BadFrame, ValueError):
            log.error("iso8583_encode_failed", connector=self.name, mti=request["t"])
            return ConnectorResult(
                status=ConnectorStatus.ERROR, decline_code=str(Failure.PROCESSING_ERROR)
            )
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        link.in_flight[stan] = (request, future)
        self._remember(reference, request)
        try:
            async with link.write_lock:
                link.writer.write(payload)
                await link.writer.drain()
            answer = await asyncio.wait_for(future, timeout=self._timeout_s)
        except TimeoutError:
            log.warning("iso8583_timeout", connector=self.name, mti=request["t"], stan=stan)
            return unknown(Failure.TIMEOUT)
        except (LinkBroken, ConnectionError, OSError):
            link.reset("the connection broke while a request was out")
            return unknown(Failure.PROCESSING_ERROR)
        finally:
            if link.in_flight.get(stan, (None, future))[1] is future:
                link.in_flight.pop(stan, None)
        try:
            return result_of(answer, reference, operation)
        except Malformed as exc:
            link.reset(str(exc))
            return unknown(Failure.PROCESSING_ERROR)

    def _remember(self, reference: str, request: dict[str, str]) -> None:
        self._sent[reference] = Sent(request["t"], request["11"], request["7"], request["37"])
        self._sent.move_to_end(reference)
        while len(self._sent) > REMEMBERED_ORIGINALS:
            self._sent.popitem(last=False)

    # --- the port ------------------------------------------------------------------------------

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult:
        now = self._clock()
        request = purchase(
            reference,
            amount_minor,
            currency,
            card,
            capture=capture,
            now=now,
            rrn=self._rrns.next(now),
            merchant=self._merchant,
        )
        return await self._exchange(request, reference, "sale" if capture else "authorize")

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        now = self._clock()
        request = completion(
            reference,
            authorization,
            amount_minor,
            currency,
            now=now,
            rrn=self._rrns.next(now),
            sent=self._sent.get(authorization),
            merchant=self._merchant,
        )
        return await self._exchange(request, reference, "capture")

    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        now = self._clock()
        request = refund(
            reference,
            capture_reference,
            amount_minor,
            currency,
            now=now,
            rrn=self._rrns.next(now),
            merchant=self._merchant,
        )
        return await self._exchange(request, reference, "refund")

    async def void(self, reference: str, authorization: str) -> ConnectorResult:
        """A void is a reversal of the authorization (its amount is the host's to know: 0)."""
        return await self._reverse(reference, authorization, None, None, "void")

    async def reverse(
        self, reference: str, original: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return await self._reverse(reference, original, amount_minor, currency, "reverse")

    async def _reverse(
        self,
        reference: str,
        original: str,
        amount_minor: int | None,
        currency: str | None,
        operation: str,
    ) -> ConnectorResult:
        now = self._clock()
        request = reversal(
            reference,
            original,
            amount_minor,
            currency,
            now=now,
            rrn=self._rrns.next(now),
            sent=self._sent.get(original),
            merchant=self._merchant,
        )
        return await self._exchange(request, reference, operation)

    async def status(self, reference: str) -> ConnectorResult:
        """No inquiry in ISO 8583:1987 here: the caller reverses instead (`inquires`)."""
        return ConnectorResult(status=ConnectorStatus.UNKNOWN, connector_reference=reference)

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        link.reset("closed by Clearport")
        if link.task is not None:
            link.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await link.task
