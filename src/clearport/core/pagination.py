"""Cursor pagination: newest first, cursors are object ids (which sort by creation time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from clearport.core.errors import InvalidRequest
from clearport.core.ids import parse_id

T = TypeVar("T")

MAX_PAGE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None

    @classmethod
    def parse(
        cls, prefix: str, limit: int, starting_after: str | None, ending_before: str | None
    ) -> PageRequest:
        if not 1 <= limit <= MAX_PAGE_LIMIT:
            raise InvalidRequest(f"'limit' must be between 1 and {MAX_PAGE_LIMIT}.", field="limit")
        if starting_after is not None and ending_before is not None:
            raise InvalidRequest(
                "Use only one of 'starting_after' and 'ending_before'.", field="ending_before"
            )
        if starting_after is not None:
            parse_id(starting_after, prefix, field="starting_after")
        if ending_before is not None:
            parse_id(ending_before, prefix, field="ending_before")
        return cls(limit, starting_after, ending_before)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool
