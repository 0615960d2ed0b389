"""Time: the clock port, the system clock, and Unix seconds as the API shows them.

Tests use a fake that implements `Clock` (a clock moved forward, a clock set by hand).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def unix_seconds(ts: datetime | None) -> int | None:
    """Whole seconds since the epoch (the API's timestamps), or None."""
    return None if ts is None else int(ts.timestamp())
