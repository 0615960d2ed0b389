"""Audit events: the six PCI DSS 10.2.2 fields, plus non-sensitive details."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    actor: str
    event_type: str
    occurred_at: datetime
    outcome: Outcome
    origin_ip: str
    resource: str
    details: dict[str, Any] = field(default_factory=dict)
