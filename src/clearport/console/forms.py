"""Reading console forms and query strings: bounded text under the API's text rule, cursors,
optional numbers. Every value a page shows is escaped by the templates (autoescape)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from fastapi import Request

from clearport.core.errors import InvalidRequest
from clearport.core.pagination import PageRequest
from clearport.core.text import refuse_control_characters

_Choice = TypeVar("_Choice", bound=StrEnum)

MAX_TEXT_CHARS = 500
PAGE_SIZE = 25  # every list page reads at most this many rows (plus one for has_more)


async def form_of(request: Request, *, max_chars: int = MAX_TEXT_CHARS) -> dict[str, str]:
    """The form's text fields, each checked by the API's text rule; files are ignored.
    Multi-line fields (`max_chars` above the default) keep their line breaks."""
    form = await request.form()
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and name != "csrf_token":
            fields[name] = text(value, name, max_chars=max_chars)
    return fields


def text(value: str, field: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    value = value.strip()
    if len(value) > max_chars:
        raise InvalidRequest(f"'{field}' is longer than {max_chars} characters.", field=field)
    if max_chars > MAX_TEXT_CHARS:
        # Text areas: line breaks and tabs are text here, every other control character is not.
        value = value.replace("\r\n", "\n")
        refuse_control_characters(value.replace("\n", " ").replace("\t", " "), (field,))
    else:
        refuse_control_characters(value, (field,))
    return value


def query(request: Request, name: str) -> str | None:
    """A query parameter, checked like form text; None when absent or empty."""
    value = request.query_params.get(name)
    if value is None or not value.strip():
        return None
    return text(value, name)


def page_of(request: Request, prefix: str | tuple[str, ...]) -> PageRequest:
    """The page asked for by `after` / `before` (ids of the listed kind)."""
    prefixes = (prefix,) if isinstance(prefix, str) else prefix
    after, before = query(request, "after"), query(request, "before")
    for name, cursor in (("after", after), ("before", before)):
        if cursor is not None and not cursor.startswith(tuple(f"{p}_" for p in prefixes)):
            raise InvalidRequest(f"'{name}' is not an id of this list.", field=name)
    return PageRequest(PAGE_SIZE, after, before if after is None else None)


def day(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    """`YYYY-MM-DD` as the start of that day in UTC (`end`: of the next day)."""
    if value is None:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"'{field}' must be a date (YYYY-MM-DD).", field=field) from None
    start = datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def integer(value: str | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"'{field}' must be a whole number.", field=field) from None


def listing(page: Any, request: Request) -> dict[str, Any]:
    """What a list template needs to page on: the rows and the next page's link."""
    data = list(page.data)
    params = {k: v for k, v in request.query_params.items() if k not in {"after", "before"}}
    next_params = None
    if page.has_more and data:
        next_params = {**params, "after": data[-1].id}
    return {"rows": data, "next_params": next_params}


def choice(form: Mapping[str, str], field: str, allowed: Sequence[_Choice]) -> _Choice:
    """The form's `field` as one of `allowed` (members of one enum, the choices the page
    offers), or a 400 naming them."""
    sent = form.get(field, "")
    for member in allowed:
        if member.value == sent:
            return member
    names = [member.value for member in allowed]
    listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    raise InvalidRequest(f"'{field}' must be {listed}.", field=field)
