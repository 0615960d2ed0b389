"""One event: what happened to one of a merchant's objects, as the outbox stores it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    merchant_id: str
    type: str
    object_id: str
    data: dict[str, Any]  # {"object": the object as the API shows it after the change}
    created_at: datetime
