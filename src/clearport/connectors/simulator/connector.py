"""The built-in simulator connector: an in-process acquirer for tests, demos and benchmarks.

Deterministic: the outcome depends only on the card number (API.md's test-card table,
`connectors.domain.TEST_CARDS`), and the auth code and network reference are derived from our
reference, so the same request always gets the same answer. Responses carry ISO 8583 DE39 codes.
It remembers what it did per reference (in memory, per process) so `status` can answer the
janitor, and counts calls so tests can prove "exactly one authorization". A reversal forgets
the original and refuses it if it arrives later.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    ConnectorStatus,
    ResponseCode,
    result_for,
    test_card_code,
)
from clearport.connectors.ports import BuildContext, CheckedSettings
from clearport.connectors.settings import check, schema_of
from clearport.connectors.simulator.settings import SimulatorSettings


def _digest(reference: str) -> bytes:
    return hashlib.sha256(b"clearport-simulator:" + reference.encode()).digest()


def auth_code_for(reference: str) -> str:
    return f"{int.from_bytes(_digest(reference)[:4], 'big') % 1_000_000:06d}"


def network_reference_for(reference: str) -> str:
    return "SIM" + _digest(reference)[4:12].hex().upper()


class SimulatorConnector:
    inquires = True

    def __init__(self, name: str = "simulator", *, latency_s: float = 0.0) -> None:
        self.name = name
        self.latency_s = latency_s
        self.calls: Counter[str] = Counter()
        self._records: dict[str, ConnectorResult] = {}
        self._reversed: set[str] = set()

    async def _wait(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    def _answer(
        self, reference: str, operation: str, code: ResponseCode, *, auth: bool
    ) -> ConnectorResult:
        if reference in self._reversed:
            code = ResponseCode.SYSTEM_MALFUNCTION  # reversed before it arrived
        result = result_for(
            code,
            auth_code=auth_code_for(reference) if auth else None,
            network_reference=network_reference_for(reference),
            reference=reference,
            operation=operation,
        )
        self._records[reference] = result
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
        return self._answer(reference, operation, test_card_code(card.number.reveal()), auth=True)

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        self.calls["capture"] += 1
        await self._wait()
        return self._answer(reference, "capture", ResponseCode.APPROVED, auth=False)

    async def void(self, reference: str, authorization: str) -> ConnectorResult:
        self.calls["void"] += 1
        await self._wait()
        return self._answer(reference, "void", ResponseCode.APPROVED, auth=False)

    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        self.calls["refund"] += 1
        await self._wait()
        return self._answer(reference, "refund", ResponseCode.APPROVED, auth=False)

    async def status(self, reference: str) -> ConnectorResult:
        self.calls["status"] += 1
        await self._wait()
        record = self._records.get(reference)
        if record is None:
            return ConnectorResult(status=ConnectorStatus.NOT_FOUND, connector_reference=reference)
        return record

    async def reverse(
        self, reference: str, original: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        self.calls["reverse"] += 1
        await self._wait()
        self._records.pop(original, None)
        self._reversed.add(original)
        return self._answer(reference, "reverse", ResponseCode.APPROVED, auth=False)

    async def close(self) -> None:
        pass


class SimulatorType:
    """`type: "simulator"`: another in-process simulator under its own name."""

    name = "simulator"

    def settings_schema(self) -> dict[str, Any]:
        return schema_of(SimulatorSettings)

    def check_settings(self, settings: Mapping[str, Any]) -> CheckedSettings:
        return check(SimulatorSettings, settings)

    def build(
        self,
        name: str,
        settings: Mapping[str, Any],
        secret: Mapping[str, str],
        context: BuildContext,
    ) -> SimulatorConnector:
        return SimulatorConnector(name, latency_s=int(settings.get("latency_ms", 0)) / 1000)
