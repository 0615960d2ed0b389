"""The built-in simulator connector: an in-process acquirer for tests, demos and benchmarks.

Deterministic: the outcome depends only on the card number (API.md's test-card table), and the
auth code and network reference are derived from our reference, so the same request always gets
the same answer. Responses carry ISO 8583 DE39-style codes ("00" approved, "05" do not honour, ...).
It remembers what it did per reference (in memory, per process) so `status` can answer the
janitor, and counts calls so tests can prove "exactly one authorization".
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass

from clearport.connectors.domain import ConnectorCard, ConnectorResult, ConnectorStatus

# number -> (connector status, decline code, DE39)
TEST_CARDS: dict[str, tuple[ConnectorStatus, str, str]] = {
    "4000000000000002": (ConnectorStatus.DECLINED, "do_not_honor", "05"),
    "4000000000009995": (ConnectorStatus.DECLINED, "insufficient_funds", "51"),
    "4000000000000069": (ConnectorStatus.DECLINED, "expired_card", "54"),
    "4000000000000127": (ConnectorStatus.DECLINED, "incorrect_cvc", "82"),
    "4000000000000119": (ConnectorStatus.ERROR, "processing_error", "96"),
}
APPROVED = "00"


def _digest(reference: str) -> bytes:
    return hashlib.sha256(b"clearport-simulator:" + reference.encode()).digest()


def auth_code_for(reference: str) -> str:
    return f"{int.from_bytes(_digest(reference)[:4], 'big') % 1_000_000:06d}"


def network_reference_for(reference: str) -> str:
    return "SIM" + _digest(reference)[4:12].hex().upper()


@dataclass(frozen=True, slots=True)
class _Record:
    operation: str
    result: ConnectorResult


class SimulatorConnector:
    name = "simulator"

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.calls: Counter[str] = Counter()
        self._records: dict[str, _Record] = {}

    async def _wait(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    def _approve(self, reference: str, operation: str, *, auth: bool) -> ConnectorResult:
        result = ConnectorResult(
            status=ConnectorStatus.APPROVED,
            response_code=APPROVED,
            auth_code=auth_code_for(reference) if auth else None,
            network_reference=network_reference_for(reference),
            connector_reference=reference,
            operation=operation,
        )
        self._records[reference] = _Record(operation, result)
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
        self.calls["authorize"] += 1
        await self._wait()
        operation = "sale" if capture else "authorize"
        rule = TEST_CARDS.get(card.number.reveal())
        if rule is None:
            return self._approve(reference, operation, auth=True)
        status, decline_code, de39 = rule
        result = ConnectorResult(
            status=status,
            response_code=de39,
            decline_code=decline_code,
            network_reference=network_reference_for(reference),
            connector_reference=reference,
            operation=operation,
        )
        self._records[reference] = _Record(operation, result)
        return result

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        self.calls["capture"] += 1
        await self._wait()
        return self._approve(reference, "capture", auth=False)

    async def void(self, reference: str, authorization: str) -> ConnectorResult:
        self.calls["void"] += 1
        await self._wait()
        return self._approve(reference, "void", auth=False)

    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        self.calls["refund"] += 1
        await self._wait()
        return self._approve(reference, "refund", auth=False)

    async def status(self, reference: str) -> ConnectorResult:
        self.calls["status"] += 1
        await self._wait()
        record = self._records.get(reference)
        if record is None:
            return ConnectorResult(status=ConnectorStatus.NOT_FOUND, connector_reference=reference)
        return record.result
