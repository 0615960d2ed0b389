"""What a request must be before an endpoint sees it: declared query parameters only, text
without control characters, a body in the media type the route declares, JSON decoded strictly.

`ApiRoute` derives a route's `RequestRules` from what the route declares to FastAPI (its query
parameters, its path parameters, its body's media type) and applies them after authentication
and the access table, before FastAPI validates anything, so no rule is written per endpoint
(decisions 0011 and 0012).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi import Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams

from clearport.core.errors import Field, InvalidRequest
from clearport.core.text import CONTROLS as _CONTROLS
from clearport.core.text import REFUSED_CHARACTERS as _REFUSED_CHARACTERS
from clearport.core.text import refuse_control_characters
from clearport.http.errors import UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"

# The rule as the OpenAPI document states it for every free-text string (http/openapi.py). It
# leaves the surrogates out: a JSON Schema string holds characters, which a surrogate is not (and
# schema validators' regular expressions refuse a surrogate range).
TEXT_PATTERN = f"^[^{_CONTROLS}]*$"


def printable(name: str) -> str:
    """A client-chosen name fit to quote in an error: refused characters as \\u escapes."""
    return _REFUSED_CHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", name)


class _ObjectWithRepeatedKey(dict[str, Any]):
    """A decoded JSON object that named `repeated_key` more than once. The decoder marks it, as
    it cannot know where in the document the object sits; `check_json_text` reports it with its
    path."""

    def __init__(self, decoded: dict[str, Any], repeated_key: str) -> None:
        super().__init__(decoded)
        self.repeated_key = repeated_key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    decoded = dict(pairs)
    if len(decoded) == len(pairs):
        return decoded
    counts = Counter(key for key, _ in pairs)
    return _ObjectWithRepeatedKey(decoded, next(key for key in counts if counts[key] > 1))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(body: bytes) -> Any:
    """The body as JSON (RFC 8259: UTF-8, no NaN or Infinity, no repeated key), its text checked.

    Raises InvalidRequest: `body_invalid`, or `parameter_duplicate` / `parameter_invalid` naming
    the field."""
    try:
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_object, parse_constant=_no_constant
        )
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidRequest("The request body is not valid JSON.", code="body_invalid") from None
    check_json_text(value)
    return value


def check_json_text(value: Any) -> None:
    """Every key and string of a decoded document, in document order, against the text rule."""
    pending: list[tuple[Any, Field]] = [(value, ())]
    while pending:  # a loop, not recursion: a 64 KiB body can nest deeper than Python's stack
        item, field = pending.pop()
        if isinstance(item, str):
            refuse_control_characters(item, field)
        elif isinstance(item, dict):
            if isinstance(item, _ObjectWithRepeatedKey):
                raise InvalidRequest(
                    "'{field}' is given more than once.",
                    code="parameter_duplicate",
                    field=(*field, printable(item.repeated_key)),
                )
            for key in item:
                refuse_control_characters(key, (*field, printable(key)))
            pending.extend((item[key], (*field, key)) for key in reversed(item))
        elif isinstance(item, list):
            pending.extend((item[i], (*field, str(i))) for i in reversed(range(len(item))))


class ApiRequest(Request):
    """A request whose `json()` is `decode_json`: FastAPI reads the body through it, so the
    document the endpoint gets is the one the rules checked."""

    async def json(self) -> Any:
        if not hasattr(self, "_decoded_json"):
            self._decoded_json = decode_json(await self.body())
        return self._decoded_json


def _is_sequence(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_sequence(arg) for arg in get_args(annotation))
    return (get_origin(annotation) or annotation) in (list, set, frozenset, tuple)


def _query_parameters(dependant: Dependant) -> dict[str, bool]:
    """The query parameters a route declares, its dependencies' (ListQuery's) included, each
    with whether it may be repeated (a list parameter) or names one value."""
    declared: dict[str, bool] = {}
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            declared[field.alias] = _is_sequence(field.field_info.annotation)
        pending.extend(current.dependencies)
    return declared


@dataclass(frozen=True, slots=True)
class RequestRules:
    # Declared query parameter -> whether it may be repeated.
    query_parameters: Mapping[str, bool]
    # A path parameter as errors name it: `id` when the route has one (the services name the
    # object's id so too), else its declared name.
    path_fields: Mapping[str, str]
    # What a body must be labelled: the media type FastAPI documents for the route's body (JSON,
    # unless it declares form or file fields: multipart/form-data for `POST /v1/files`' upload).
    body_media_type: str
    takes_body: bool

    @classmethod
    def of(cls, route: APIRoute) -> RequestRules:
        path_names = [field.alias for field in route.dependant.path_params]
        body = route.body_field.field_info if route.body_field is not None else None
        return cls(
            query_parameters=_query_parameters(route.dependant),
            path_fields={name: "id" if len(path_names) == 1 else name for name in path_names},
            body_media_type=body.media_type if isinstance(body, params.Body) else JSON_MEDIA_TYPE,
            takes_body=body is not None,
        )

    async def check(self, request: Request) -> None:
        self._check_query(request.query_params)
        for name, value in request.path_params.items():
            refuse_control_characters(str(value), (self.path_fields.get(name, name),))
        body = await request.body()
        if not body:  # a body-less POST (void, a key without expiry) needs no Content-Type
            return
        self._check_media_type(request.headers.get("content-type"))
        if self.body_media_type != JSON_MEDIA_TYPE:
            return
        document = await request.json()
        if not self.takes_body and document != {}:
            # This route declares no body: whatever it carries would be ignored.
            if not isinstance(document, dict):
                raise InvalidRequest("This request takes no body.", code="body_invalid")
            raise InvalidRequest(
                "Received unknown parameter: '{field}'.",
                code="parameter_unknown",
                field=next(iter(document)),
            )

    def _check_query(self, query: QueryParams) -> None:
        seen: set[str] = set()
        for name, value in query.multi_items():
            repeatable = self.query_parameters.get(name)
            if repeatable is None:
                raise InvalidRequest(
                    "Received unknown parameter: '{field}'.",
                    code="parameter_unknown",
                    field=printable(name),
                )
            if name in seen and not repeatable:  # else the last one would silently win
                raise InvalidRequest(
                    "'{field}' is given more than once.", code="parameter_duplicate", field=name
                )
            seen.add(name)
            refuse_control_characters(value, (name,))

    def _check_media_type(self, content_type: str | None) -> None:
        if content_type is not None:
            header = Message()
            header["content-type"] = content_type
            charset = str(header.get_param("charset") or "utf-8").lower()
            if header.get_content_type() == self.body_media_type and (
                self.body_media_type != JSON_MEDIA_TYPE or charset == "utf-8"
            ):
                return
        raise UnsupportedMediaType(f"The request body must be sent as {self.body_media_type}.")
