"""One event, as stored and as the API shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clearport.core.clock import unix_seconds


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    merchant_id: str
    type: str
    object_id: str
    data: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "event",
            "type": self.type,
            "created": unix_seconds(self.created_at),
            "data": self.data,
        }
