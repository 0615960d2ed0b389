"""A run's scratch tables and the file read in byte ranges for COPY: what the matching needs
from the file, with nothing of it kept in Python."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from clearport.reconciliation.formats import ReferenceKind

READ_BYTES = 1 << 20  # COPY reads the file in blocks of this size
SLOW_PATH_ROWS = 20_000  # rows per COPY batch on the slow path: bounds its memory


def utc(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


@dataclass(frozen=True, slots=True)
class Scratch:
    """The scratch tables of one run."""

    prefix: str
    run: str
    reference_kind: ReferenceKind = ReferenceKind.ATTEMPT_ID

    @property
    def stage(self) -> str:
        return f"{self.prefix}_{self.run}_stage"

    def stage_part(self, part: int) -> str:
        """The view of one connection's staged part, with the file's line numbers."""
        return f"{self.stage}_part{part}"

    @property
    def sketch(self) -> str:
        return f"{self.prefix}_{self.run}_sketch"

    @property
    def line(self) -> str:
        return f"{self.prefix}_{self.run}_line"

    @property
    def rejected(self) -> str:
        return f"{self.prefix}_{self.run}_rejected"

    @property
    def results(self) -> str:
        return f"{self.prefix}_{self.run}_results"

    @property
    def candidates(self) -> str:
        return f"{self.prefix}_{self.run}_candidates"

    @property
    def rows(self) -> str:
        return f"{self.prefix}_{self.run}_rows"


@dataclass(frozen=True, slots=True)
class Staged:
    lines: int  # rows after the header
    rejected: int
    period: tuple[date, date] | None  # [first settlement date, last + 1 day); None: no rows


def byte_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """`parts` byte ranges of the file after its header, each ending at a line's end."""
    size = path.stat().st_size
    with path.open("rb") as f:
        start = len(f.readline())
        bounds = [start]
        for part in range(1, parts):
            f.seek(max(bounds[-1], start + (size - start) * part // parts))
            if f.tell() > start:
                f.readline()  # to the end of the line the cut fell in
            bounds.append(max(bounds[-1], f.tell()))
    bounds.append(size)
    return list(itertools.pairwise(bounds))


async def read_range(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(READ_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def typed(fields: list[str], number: int) -> tuple[Any, ...]:
    def integer(value: str) -> int:
        return int(value)

    return (
        fields[0] or None,
        fields[1] or None,
        integer(fields[2]),
        fields[3] or None,
        integer(fields[4]),
        integer(fields[5]),
        integer(fields[6]),
        integer(fields[7]),
        date.fromisoformat(fields[8]),
        fields[9] or None,
        number,
    )
