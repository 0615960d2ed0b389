"""Keyset pagination over time-ordered ids (or another ordering column): newest first."""

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
    position_of: str | None = None,
) -> Page[T]:
    """Run `select` (a "SELECT … FROM …" without WHERE/ORDER) with `where` clauses ANDed.

    `where` clauses use $1..$n for `args`; the cursor and limit parameters are appended.
    Cursors are object ids; with `position_of` the page is ordered by `id_column` (`seq`)
    and `position_of` is the SQL that reads a cursor's value of it, `{}` standing for the
    cursor's id (`(SELECT seq FROM events WHERE id = {})`).
    """
    clauses = list(where)
    params = list(args)
    ascending = page.ending_before is not None

    def position(cursor: str) -> str:
        params.append(cursor)
        return f"${len(params)}" if position_of is None else position_of.format(f"${len(params)}")

    if page.starting_after is not None:
        clauses.append(f"{id_column} < {position(page.starting_after)}")
    if page.ending_before is not None:
        clauses.append(f"{id_column} > {position(page.ending_before)}")
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
