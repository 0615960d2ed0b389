"""The configured connectors, and every call to one bounded by a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping

import structlog

from clearport.connectors.domain import ConnectorResult, ConnectorStatus
from clearport.connectors.ports import Connector

log = structlog.get_logger("clearport.payments")


class ConnectorCalls:
    def __init__(self, connectors: Mapping[str, Connector], *, timeout_s: float) -> None:
        self._connectors = dict(connectors)
        self._timeout_s = timeout_s

    @property
    def names(self) -> tuple[str, ...]:
        """The connectors routing chooses from, in configuration order."""
        return tuple(self._connectors)

    def __getitem__(self, name: str) -> Connector:
        return self._connectors[name]

    async def call(self, operation: str, call: Awaitable[ConnectorResult]) -> ConnectorResult:
        """The connector's answer, or UNKNOWN when none came in time or the transport broke:
        the processor may have acted, so it is never read as a decline."""
        try:
            return await asyncio.wait_for(call, timeout=self._timeout_s)
        except TimeoutError:
            log.warning("connector_timeout", operation=operation)
            return ConnectorResult(status=ConnectorStatus.UNKNOWN)
        except Exception as exc:  # a transport error: the processor may have acted
            log.warning("connector_error", operation=operation, error=type(exc).__name__)
            return ConnectorResult(status=ConnectorStatus.UNKNOWN)
