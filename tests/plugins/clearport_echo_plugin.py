"""A third-party connector as a plug-in would ship one: registered through the
`clearport.connectors` entry-point group (see the dist-info beside this file), imported only
from there. It approves everything and remembers what it was sent, by reference."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    ConnectorStatus,
    ResponseCode,
    result_for,
)
from clearport.connectors.ports import BuildContext, CheckedSettings
from clearport.core.errors import InvalidRequest


class EchoConnector:
    inquires = True

    def __init__(self, name: str, prefix: str) -> None:
        self.name = name
        self.prefix = prefix
        self.seen: dict[str, str] = {}

    def _approve(self, reference: str, operation: str) -> ConnectorResult:
        self.seen[reference] = operation
        return result_for(
            ResponseCode.APPROVED,
            auth_code="424242",
            network_reference=f"{self.prefix}{reference[-8:]}",
            reference=reference,
            operation=operation,
        )

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult:
        return self._approve(reference, "sale" if capture else "authorize")

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return self._approve(reference, "capture")

    async def void(self, reference: str, authorization: str) -> ConnectorResult:
        return self._approve(reference, "void")

    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        return self._approve(reference, "refund")

    async def status(self, reference: str) -> ConnectorResult:
        if reference not in self.seen:
            return ConnectorResult(status=ConnectorStatus.NOT_FOUND)
        return self._approve(reference, self.seen[reference])

    async def reverse(
        self, reference: str, original: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        self.seen.pop(original, None)
        return self._approve(reference, "reverse")

    async def close(self) -> None:
        pass


class EchoType:
    name = "echo"

    def settings_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"prefix": {"type": "string", "pattern": "^[A-Z]{1,8}$"}},
            "required": ["prefix"],
            "additionalProperties": False,
        }

    def check_settings(self, settings: Mapping[str, Any]) -> CheckedSettings:
        prefix = settings.get("prefix")
        if not isinstance(prefix, str) or not prefix.isalpha() or not prefix.isupper():
            raise InvalidRequest(
                "'{field}' is 1 to 8 capital letters.", field=("settings", "prefix")
            )
        unknown = set(settings) - {"prefix"}
        if unknown:
            raise InvalidRequest(
                "'{field}' is not a setting of this type.", field=("settings", sorted(unknown)[0])
            )
        return CheckedSettings(public={"prefix": prefix})

    def build(
        self,
        name: str,
        settings: Mapping[str, Any],
        secret: Mapping[str, str],
        context: BuildContext,
    ) -> EchoConnector:
        return EchoConnector(name, str(settings["prefix"]))


class ShadowType(EchoType):
    """A plug-in that claims a built-in type's name: refused, the built-in stays."""

    name = "simulator"
