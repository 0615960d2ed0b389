"""Query parameters shared by list endpoints, declared with their bounds and patterns so that the
OpenAPI document states them and FastAPI's validation enforces them (a 400 naming the param)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Depends, Query

from clearport.core.errors import InvalidRequest
from clearport.core.ids import id_pattern
from clearport.core.pagination import MAX_PAGE_LIMIT, PageRequest

MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31


@dataclass(frozen=True, slots=True)
class ListQuery:
    """`limit`, `starting_after`, `ending_before`, `created[gte]`, `created[lt]`."""

    page: PageRequest
    created_gte: datetime | None
    created_lt: datetime | None


def page_query(prefix: str | tuple[str, ...] | None) -> Callable[..., PageRequest]:
    """The dependency reading `limit` and the cursors: ids of kind `prefix` (of one of these
    kinds; None: any id)."""
    pattern = id_pattern(prefix)

    def read_page(
        limit: int = Query(10, ge=1, le=MAX_PAGE_LIMIT, description="How many objects."),
        starting_after: str | None = Query(
            None, pattern=pattern, description="The page after this object id (older)."
        ),
        ending_before: str | None = Query(
            None, pattern=pattern, description="The page before this object id (newer)."
        ),
    ) -> PageRequest:
        if starting_after is not None and ending_before is not None:
            raise InvalidRequest(
                "Use only one of 'starting_after' and 'ending_before'.", field="ending_before"
            )
        return PageRequest(limit, starting_after, ending_before)

    return read_page


def list_query(prefix: str) -> Callable[..., ListQuery]:
    """The dependency reading a page and the `created` range of a list of `prefix` objects."""
    read_page = page_query(prefix)

    def read_list(
        page: PageRequest = Depends(read_page),
        created_gte: int | None = Query(
            None, alias="created[gte]", ge=0, le=MAX_TIMESTAMP, description="Unix seconds."
        ),
        created_lt: int | None = Query(
            None, alias="created[lt]", ge=0, le=MAX_TIMESTAMP, description="Unix seconds."
        ),
    ) -> ListQuery:
        return ListQuery(page, _datetime(created_gte), _datetime(created_lt))

    return read_list


def _datetime(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
