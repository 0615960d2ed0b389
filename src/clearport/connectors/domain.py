"""What a connector is sent and what it may answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clearport.core.sensitive import SensitiveStr


class ConnectorStatus(StrEnum):
    """What a connector may say about one operation."""

    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"  # processed and refused for a technical reason (DE39 96 ...)
    UNKNOWN = "unknown"  # no answer (timeout): the processor may or may not have acted
    NOT_FOUND = "not_found"  # status query: the processor has no record of our reference


@dataclass(frozen=True, slots=True)
class ConnectorResult:
    status: ConnectorStatus
    response_code: str | None = None  # ISO 8583 DE39
    auth_code: str | None = None
    network_reference: str | None = None
    decline_code: str | None = None
    connector_reference: str | None = None
    # For status queries: which operation the processor has on record.
    operation: str | None = None

    def as_log(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "response_code": self.response_code,
            "auth_code": self.auth_code,
            "network_reference": self.network_reference,
            "decline_code": self.decline_code,
        }


@dataclass(frozen=True, slots=True)
class ConnectorCard:
    """What a connector needs to authorize: plaintext only behind `SensitiveStr`. The CVC lives
    here for the one authorization and is never persisted."""

    number: SensitiveStr
    exp_month: int
    exp_year: int
    cvc: SensitiveStr | None = None
