"""Keyset pagination over time-ordered ids: newest first."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from clearport.core.pagination import Page, PageRequest

T = TypeVar("T")


def add_filters(
    where: list[str],
    args: list[Any],
    filters: Mapping[str, Any],
    *,
    equal: Mapping[str, str],
    created_column: str = "created_at",
) -> None:
    """Append list filters as `$n` clauses: `column = value` for each filter named in `equal`
    (filter name -> column) that is set, and the `created[gte]` / `created[lt]` bounds."""
    for name, column in equal.items():
        if filters.get(name) is not None:
            args.append(filters[name])
            where.append(f"{column} = ${len(args)}")
    if filters.get("created_gte") is not None:
        args.append(filters["created_gte"])
        where.append(f"{created_column} >= ${len(args)}")
    if filters.get("created_lt") is not None:
        args.append(filters["created_lt"])
        where.append(f"{created_column} < ${len(args)}")


async def fetch_page(
    conn: asyncpg.Connection,
    *,
    select: str,
    where: Sequence[str],
    args: Sequence[Any],
    page: PageRequest,
    row_to: Callable[[asyncpg.Record], T],
    id_column: str = "id",
) -> Page[T]:
    """Run `select` (a "SELECT … FROM …" without WHERE/ORDER) with `where` clauses ANDed.

    `where` clauses use $1..$n for `args`; the cursor and limit parameters are appended.
    """
    clauses = list(where)
    params = list(args)
    ascending = page.ending_before is not None
    if page.starting_after is not None:
        params.append(page.starting_after)
        clauses.append(f"{id_column} < ${len(params)}")
    if page.ending_before is not None:
        params.append(page.ending_before)
        clauses.append(f"{id_column} > ${len(params)}")
    params.append(page.limit + 1)
    order = "ASC" if ascending else "DESC"
    sql = select
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += f" ORDER BY {id_column} {order} LIMIT ${len(params)}"
    rows = await conn.fetch(sql, *params)
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if ascending:
        rows = list(reversed(rows))
    return Page([row_to(row) for row in rows], has_more)
