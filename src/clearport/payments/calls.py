"""The connectors a payment can use, from the connector directory (`connectors.directory`).

Every connector it hands out is guarded (`connectors.guard`): bounded by a deadline, behind its
circuit breaker, answering a transport failure as `UNREACHABLE` or `UNKNOWN` and never raising.
A connector this process cannot build or find (unregistered meanwhile, a missing plug-in) is
answered `UNREACHABLE`, as a host that refuses connections would be.
"""

from __future__ import annotations

from clearport.connectors.domain import ConnectorResult, Failure, unreachable
from clearport.connectors.ports import Candidates, Connector, ConnectorDirectory


class ConnectorCalls:
    def __init__(self, directory: ConnectorDirectory) -> None:
        self._directory = directory

    async def candidates(self) -> Candidates:
        return await self._directory.candidates()

    def allows(self, name: str) -> bool:
        return self._directory.allows(name)

    async def get(self, name: str) -> Connector | None:
        return await self._directory.connector(name)

    @staticmethod
    def missing() -> ConnectorResult:
        return unreachable(Failure.CONNECTION_REFUSED)
