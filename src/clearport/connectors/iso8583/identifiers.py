"""The identifiers an ISO 8583 message carries: DE11 STAN, DE41 terminal id, DE37 retrieval
reference number.

- **STAN** (6 digits) is unique among a connection's messages in flight, and responses are
  matched to requests by it. It counts up per connector; when it wraps past 999999 the next
  terminal id of the pool takes over, so a (terminal, STAN) pair repeats only after the whole
  pool has been used, and never onto one still in flight (skipped).
- **Terminal ids** (8 characters): `CP` + this process's station (2 base-36 characters) + the
  pool index (4 digits). The station is a database sequence value allocated once per process
  (`BuildContext.station`), so two Clearport processes never send the same terminal id.
- **RRN** (12 characters, DE37 is `an`): the day (`YDDD`: last digit of the year, day of the
  year, UTC) + the station + a per-process sequence in base 36 (6 characters: 2.1 billion a
  day). Unique per day across processes while fewer than 1,296 processes share a day.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime

MAX_STAN = 999_999
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
STATIONS = 36**2
MAX_TERMINALS = 9_999
_MAX_RRN_SEQUENCE = 36**6


def base36(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        chars.append(_BASE36[digit])
    return "".join(reversed(chars))


def terminal_ids(station: int, count: int) -> list[str]:
    if not 1 <= count <= MAX_TERMINALS:
        raise ValueError("a terminal pool holds 1 to 9999 terminal ids")
    prefix = "CP" + base36(station % STATIONS, 2)
    return [f"{prefix}{index:04d}" for index in range(1, count + 1)]


class StanAllocator:
    """STANs for one connector, over its pool of terminal ids."""

    def __init__(self, terminals: list[str]) -> None:
        if not terminals:
            raise ValueError("at least one terminal id")
        self.terminals = terminals
        self._terminal = 0
        self._stan = 0

    def next(self, in_flight: Container[str]) -> tuple[str, str]:
        """(terminal id, STAN): a STAN no message in `in_flight` holds."""
        for _ in range(MAX_STAN):
            self._stan += 1
            if self._stan > MAX_STAN:
                self._stan = 1
                self._terminal = (self._terminal + 1) % len(self.terminals)
            stan = f"{self._stan:06d}"
            if stan not in in_flight:
                return self.terminals[self._terminal], stan
        raise RuntimeError("every STAN is in flight")


class RrnSequence:
    """Retrieval reference numbers for one process (shared by its ISO 8583 connectors)."""

    def __init__(self, station: int) -> None:
        self._station = base36(station % STATIONS, 2)
        self._day = ""
        self._next = 0

    def next(self, now: datetime) -> str:
        day = f"{now.year % 10}{now.timetuple().tm_yday:03d}"
        if day != self._day:
            self._day, self._next = day, 0
        if self._next >= _MAX_RRN_SEQUENCE:
            raise RuntimeError("this process used every retrieval reference number of the day")
        value, self._next = self._next, self._next + 1
        return f"{day}{self._station}{base36(value, 6)}"
