"""The connector port every acquirer implements."""

from __future__ import annotations

from typing import Protocol

from clearport.connectors.domain import ConnectorCard, ConnectorResult


class Connector(Protocol):
    """An acquirer or processor. Every call carries our reference (the attempt id) so `status`
    can find out afterwards what happened to a call whose answer never arrived. Callers bound
    every call with a timeout; a timeout means "unknown", never "declined"."""

    name: str

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult: ...
    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult: ...
    async def void(self, reference: str, authorization: str) -> ConnectorResult: ...
    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult: ...
    async def status(self, reference: str) -> ConnectorResult: ...
