"""The request rules without a server: strict JSON decoding, the text rule, media types, the
query allowlist (decisions 0011 and 0012)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import APIRouter, Depends, Query
from fastapi.routing import APIRoute
from starlette.requests import Request

from clearport.core.errors import InvalidRequest
from clearport.http.errors import UnsupportedMediaType, param_name
from clearport.http.listing import ListQuery, list_query
from clearport.http.request_rules import RequestRules, decode_json, printable
from clearport.http.schemas import KeyCreate, MerchantCreate


def _refusal(body: bytes) -> tuple[str, str | None]:
    with pytest.raises(InvalidRequest) as caught:
        decode_json(body)
    field = caught.value.field
    return caught.value.code, None if field is None else param_name(field)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"amount": 100, "amount": 200}', "amount"),
        (
            b'{"source": {"card": {"number": "1", "exp_month": 1, "number": "2"}}}',
            "source[card][number]",
        ),
        (b'{"metadata": {"k": "a", "k": "b"}}', "metadata[k]"),
        (b'{"rules": [{"name": "a"}, {"name": "b", "name": "c"}]}', "rules[1][name]"),
    ],
)
def test_a_repeated_key_is_refused_with_its_path(body: bytes, param: str) -> None:
    assert _refusal(body) == ("parameter_duplicate", param)


@pytest.mark.parametrize("character", ["\x00", "\x01", "\n", "\x1f", "\x7f", "\ud800"])
@pytest.mark.parametrize(
    ("document", "param"),
    [
        ({"reference": "order-{c}"}, "reference"),
        ({"metadata": {"k": "v{c}"}}, "metadata[k]"),
        ({"source": {"card": {"holder_name": "{c}"}}}, "source[card][holder_name]"),
        ({"enabled_events": ["payment.captured", "{c}"]}, "enabled_events[1]"),
    ],
)
def test_control_characters_in_any_string_are_refused(
    character: str, document: dict[str, Any], param: str
) -> None:
    body = json.dumps(document).replace("{c}", json.dumps(character)[1:-1]).encode()
    assert _refusal(body) == ("parameter_invalid", param)


def test_a_control_character_in_a_key_is_named_escaped() -> None:
    assert _refusal(b'{"metadata": {"a\\u0000b": "v"}}') == (
        "parameter_invalid",
        "metadata[a\\u0000b]",
    )
    assert printable("a\x00\x7fb") == "a\\u0000\\u007fb"


def test_ordinary_text_passes() -> None:
    document = {"name": "Café Zoë — ☕", "metadata": {"ключ": "值"}, "n": [1, 2.5, None, True]}
    assert decode_json(json.dumps(document).encode()) == document


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": "\xff"}', b"[" * 100_000],
)
def test_what_is_not_json_is_body_invalid(body: bytes) -> None:
    assert _refusal(body) == ("body_invalid", None)


def test_deep_documents_are_walked_without_recursion() -> None:
    depth = 900  # below the decoder's limit, deep enough to break a recursive walk
    body = b'{"a": ' * depth + b'"\\u0000"' + b"}" * depth
    code, param = _refusal(body)
    assert code == "parameter_invalid"
    assert param is not None and param.count("[a]") == depth - 1


# --- RequestRules over routes built the way the routers build them -----------------------------

router = APIRouter()


@router.post("/things")
async def create_thing(body: MerchantCreate) -> None: ...


@router.post("/things/{thing_id}/keys")
async def create_thing_key(thing_id: str, body: KeyCreate | None = None) -> None: ...


@router.post("/things/{thing_id}/void")
async def void_thing(thing_id: str) -> None: ...


@router.get("/things/{thing_id}/parts/{part_id}")
async def get_part(
    thing_id: str,
    part_id: str,
    q: ListQuery = Depends(list_query("pay")),
    colour: str | None = Query(None),
    size: list[int] | None = Query(None),
) -> None: ...


ROUTES = {route.name: route for route in router.routes if isinstance(route, APIRoute)}


def _check(
    route: str,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    query: str = "",
    path_params: dict[str, str] | None = None,
) -> None:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": headers,
        "query_string": query.encode(),
        "path_params": path_params or {},
    }
    rules = RequestRules.of(ROUTES[route])
    asyncio.run(rules.check(Request(scope, receive)))


def test_the_query_allowlist_is_what_the_route_declares() -> None:
    rules = RequestRules.of(ROUTES["get_part"])
    assert rules.query_parameters == {
        "limit": False,
        "starting_after": False,
        "ending_before": False,
        "created[gte]": False,
        "created[lt]": False,
        "colour": False,
        "size": True,
    }
    _check("get_part", query="limit=5&created[gte]=1&colour=red&size=1&size=2")
    with pytest.raises(InvalidRequest) as caught:
        _check("get_part", query="limit=5&color=red")
    assert (caught.value.code, caught.value.field) == ("parameter_unknown", ("color",))


def test_a_query_parameter_naming_one_value_may_not_repeat() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _check("get_part", query="limit=5&limit=100")
    assert (caught.value.code, caught.value.field) == ("parameter_duplicate", ("limit",))


def test_path_parameters_are_id_alone_and_by_name_together() -> None:
    with pytest.raises(InvalidRequest) as caught:
        _check("void_thing", path_params={"thing_id": "th_\x00"})
    assert caught.value.field == ("id",)
    with pytest.raises(InvalidRequest) as caught:
        _check("get_part", path_params={"thing_id": "th_1", "part_id": "\x1f"})
    assert caught.value.field == ("part_id",)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"],
)
def test_json_bodies_labelled_json_pass(content_type: str) -> None:
    _check("create_thing", body=b"{}", content_type=content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/xml",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "not a media type",
    ],
)
def test_other_bodies_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        _check("create_thing", body=b"{}", content_type=content_type)


def test_a_body_less_request_needs_no_content_type() -> None:
    _check("create_thing_key", path_params={"thing_id": "th_1"})
    _check("void_thing", path_params={"thing_id": "th_1"}, content_type="text/plain")


def test_a_route_without_a_body_refuses_fields() -> None:
    _check("void_thing", body=b"{}", content_type="application/json")
    with pytest.raises(InvalidRequest) as caught:
        _check("void_thing", body=b'{"amount": 1}', content_type="application/json")
    assert (caught.value.code, caught.value.field) == ("parameter_unknown", ("amount",))
    with pytest.raises(InvalidRequest) as caught:
        _check("void_thing", body=b"[]", content_type="application/json")
    assert caught.value.code == "body_invalid"


@pytest.mark.parametrize("body", [b'"a\\u0001b"', b'"\\u0000"', b'"\\ud800"'])
def test_a_whole_body_string_with_a_control_character_is_body_invalid(body: bytes) -> None:
    # It was a 500: the refusal had no field to name, and rendering the empty path failed.
    assert _refusal(body) == ("body_invalid", None)
