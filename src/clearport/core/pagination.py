"""Cursor pagination: newest first, cursors are object ids (which sort by creation time)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_PAGE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page asked for; its bounds and cursor kinds are checked where the request arrives
    (`http/listing.py`, from the parameters the OpenAPI document declares)."""

    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None

    @property
    def cursor(self) -> str | None:
        """The object the page starts after or ends before, if any."""
        return self.starting_after if self.starting_after is not None else self.ending_before


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool


def filtered(
    items: Iterable[T],
    filters: Mapping[str, Any],
    *,
    equal: Mapping[str, Callable[[T], object]],
    created_at: Callable[[T], datetime],
) -> list[T]:
    """The in-memory counterpart of `db.pagination.add_filters`: each filter named in `equal`
    that is set must equal its value, and `created_gte` / `created_lt` bound `created_at`."""
    wanted = {name: filters[name] for name in equal if filters.get(name) is not None}
    gte, lt = filters.get("created_gte"), filters.get("created_lt")
    return [
        item
        for item in items
        if all(equal[name](item) == value for name, value in wanted.items())
        and (gte is None or created_at(item) >= gte)
        and (lt is None or created_at(item) < lt)
    ]


def paginate(items: Iterable[T], page: PageRequest, id_of: Callable[[T], str]) -> Page[T]:
    """One page of in-memory objects, in the order and with the cursors of the database's
    keyset pagination (`db.pagination.fetch_page`): for the in-memory fakes."""
    newest_first = sorted(items, key=id_of, reverse=True)
    if page.starting_after is not None:
        after = page.starting_after
        newest_first = [item for item in newest_first if id_of(item) < after]
    if page.ending_before is not None:
        before = page.ending_before
        oldest_first = [item for item in reversed(newest_first) if id_of(item) > before]
        chosen = oldest_first[: page.limit]
        return Page(list(reversed(chosen)), len(oldest_first) > page.limit)
    return Page(newest_first[: page.limit], len(newest_first) > page.limit)
