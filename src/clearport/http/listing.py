"""Query parameters shared by list endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Query

from clearport.core.errors import Field, InvalidRequest
from clearport.core.pagination import PageRequest

MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31


class ListQuery:
    """`limit`, `starting_after`, `ending_before`, `created[gte]`, `created[lt]`."""

    def __init__(
        self,
        limit: int = Query(10),
        starting_after: str | None = Query(None, max_length=64),
        ending_before: str | None = Query(None, max_length=64),
        created_gte: int | None = Query(None, alias="created[gte]"),
        created_lt: int | None = Query(None, alias="created[lt]"),
    ) -> None:
        self.limit = limit
        self.starting_after = starting_after
        self.ending_before = ending_before
        self.created_gte = _timestamp(created_gte, ("created", "gte"))
        self.created_lt = _timestamp(created_lt, ("created", "lt"))

    def page(self, prefix: str) -> PageRequest:
        return PageRequest.parse(prefix, self.limit, self.starting_after, self.ending_before)


def _timestamp(value: int | None, field: Field) -> datetime | None:
    if value is None:
        return None
    if not 0 <= value <= MAX_TIMESTAMP:
        raise InvalidRequest("'{field}' must be a Unix timestamp in seconds.", field=field)
    return datetime.fromtimestamp(value, UTC)
