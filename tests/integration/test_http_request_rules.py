"""The request rules over every operation the server documents: the text rule on every text
parameter, the query allowlist, the body's media type, repeated JSON keys, 405 with Allow
(decisions 0011 and 0012). Each table is generated from the served OpenAPI document, so a new
operation is covered the day it is served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from clearport.http.access_rules import ROUTE_ACCESS
from tests.support import Api, pg

JSON = {"Content-Type": "application/json"}
METHODS = ("get", "post", "put", "patch", "delete")
KEY = object()  # a path segment standing for "a key of this object"
MERCHANT = {"name": "Acme", "country": "US", "mcc": "5411", "default_currency": "usd"}
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    def url(self, **path_values: str) -> str:
        """The path with `path_values` (percent-encoded) and "x" for every other parameter."""
        url = self.path
        for parameter in self.parameters("path"):
            value = path_values.get(parameter["name"], "x")
            url = url.replace("{" + parameter["name"] + "}", quote(value, safe=""))
        return url

    def caller(self, keys: Keys) -> str:
        """A key the access table lets through, so the request reaches the rules."""
        allowed = ROUTE_ACCESS[(self.method.upper(), self.path)]
        return keys.merchant if allowed.merchant_keys else keys.admin


@dataclass(frozen=True)
class Keys:
    admin: str
    merchant: str


def served_document(api: Api) -> dict[str, Any]:
    return dict(api.http.get(api.url + "/openapi.json").json())


def operations_of(document: dict[str, Any]) -> list[Operation]:
    return [
        Operation(method, path, spec)
        for path, item in document["paths"].items()
        for method, spec in item.items()
        if method in METHODS
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def text_fields(
    document: dict[str, Any], schema: dict[str, Any], field: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """Every path to a string in a body `schema`: properties, dict values (and keys), items."""
    schema = _resolve(document, schema)
    for variant in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from text_fields(document, variant, field)
    if is_text(schema):
        yield field
    for name, child in schema.get("properties", {}).items():
        yield from text_fields(document, child, (*field, name))
    values = schema.get("additionalProperties")
    if isinstance(values, dict):
        yield (*field, KEY)
        yield from text_fields(document, values, (*field, "k"))
    if "items" in schema:
        yield from text_fields(document, schema["items"], (*field, 0))


def is_text(schema: dict[str, Any]) -> bool:
    """A string schema (`"type": "string"` or, in OpenAPI 3.1, a list of types holding it)."""
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def escaped(text: str) -> str:
    return "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF else c
        for c in text
    )


def nest(field: tuple[Any, ...], text: str) -> Any:
    """A body holding `text` at `field` (a key holding it where the field says KEY)."""
    if not field:
        return text
    head, rest = field[0], field[1:]
    if head is KEY:
        return {text: "v"}
    if isinstance(head, int):
        return [nest(rest, text)]
    return {head: nest(rest, text)}


def param_of(field: tuple[Any, ...], text: str) -> str:
    """The param the API names for `field`: `source[card][number]`, `metadata[<key>]`."""
    parts = [escaped(text) if part is KEY else str(part) for part in field]
    return parts[0] + "".join(f"[{part}]" for part in parts[1:])


def body_cases(document: dict[str, Any], operation: Operation) -> set[tuple[Any, ...]]:
    content = operation.spec.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return set()
    return set(text_fields(document, content["application/json"]["schema"]))


@pytest.fixture
def keys(api: Api) -> Keys:
    admin = api.operator("admin")
    _, merchant = api.merchant(admin)
    return Keys(admin, merchant)


# --- the text rule (0011) ---------------------------------------------------------------------

URL_CHARACTERS = ("\x00", "\x1f", "\x7f", "\n")
BODY_CHARACTERS = (*URL_CHARACTERS, "\x01", "\t", "\ud800")


def _refused_as(response: Any, param: str) -> str | None:
    """None when `response` is the text rule's 400 naming `param`, else what it was."""
    if response.status_code == 400:
        error = response.json()["error"]
        if (error["code"], error.get("param")) == ("parameter_invalid", param):
            return None
        return f"400 {error['code']} {error.get('param')}"
    return f"{response.status_code} {response.text[:120]}"


def test_control_characters_are_refused_in_every_text_parameter(api: Api, keys: Keys) -> None:
    document = served_document(api)
    failures: list[str] = []
    counted = 0
    for operation in operations_of(document):
        key = operation.caller(keys)
        path_parameters = operation.parameters("path")
        for parameter in path_parameters:
            param = "id" if len(path_parameters) == 1 else parameter["name"]
            for character in URL_CHARACTERS:
                url = operation.url(**{parameter["name"]: f"pre_{character}"})
                response = api.call(operation.method.upper(), url, key)
                counted += 1
                if (problem := _refused_as(response, param)) is not None:
                    failures.append(f"{operation.method} {url}: {problem}")
        for parameter in operation.parameters("query"):
            if not any(text_fields(document, parameter["schema"])):
                continue
            for character in URL_CHARACTERS:
                url = f"{operation.url()}?{parameter['name']}={quote('a' + character, safe='')}"
                response = api.call(operation.method.upper(), url, key)
                counted += 1
                if (problem := _refused_as(response, parameter["name"])) is not None:
                    failures.append(f"{operation.method} {url}: {problem}")
        for field in sorted(body_cases(document, operation), key=repr):
            for character in BODY_CHARACTERS:
                text = f"a{character}"
                param = param_of(field, text)
                response = api.call(
                    operation.method.upper(),
                    operation.url(),
                    key,
                    content=json.dumps(nest(field, text)).encode(),
                    headers=JSON,
                )
                counted += 1
                if (problem := _refused_as(response, param)) is not None:
                    failures.append(f"{operation.method} {operation.path} {param}: {problem}")
    assert counted > 300  # the table is generated: a schema nobody walks is a silent pass
    assert failures == []


@pytest.mark.parametrize(
    ("caller", "url", "param"),
    [
        ("merchant", "/v1/payments/pay_%00", "id"),
        ("merchant", "/v1/refunds?payment=%00", "payment"),
        ("merchant", "/v1/payments?reference=%00%1F&status=refunded", "reference"),
        ("admin", "/v1/merchants/mer_%00", "id"),
        ("admin", "/v1/payments/pay_%00", "id"),
    ],
)
def test_the_reported_urls_are_400_naming_the_parameter(
    api: Api, keys: Keys, caller: str, url: str, param: str
) -> None:
    response = api.call("GET", url, getattr(keys, caller))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "parameter_invalid",
        param,
    )


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/payments",
            {"amount": 100, "currency": "usd", "source": {"card": CARD}, "reference": "a\x00"},
            "reference",
        ),
        (
            "/v1/payments",
            {"amount": 100, "currency": "usd", "source": {"card": CARD}, "metadata": {"k": "\x00"}},
            "metadata[k]",
        ),
        ("/v1/merchants", {**MERCHANT, "name": "Acme\x00"}, "name"),
        (
            "/v1/merchants/{merchant}/bank_account",
            {
                "country": "US",
                "currency": "usd",
                "account_holder": "A\x00",
                "routing_number": "110000000",
                "account_number": "000123456789",
            },
            "account_holder",
        ),
    ],
)
def test_the_reported_bodies_are_400_and_write_nothing(
    api: Api, keys: Keys, path: str, body: dict[str, Any], param: str
) -> None:
    merchant_id = api.call("GET", "/v1/merchants", keys.admin).json()["data"][0]["id"]
    key = keys.merchant if path == "/v1/payments" else keys.admin
    method = "PUT" if "bank_account" in path else "POST"
    response = api.call(method, path.format(merchant=merchant_id), key, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    with pg(api.database_url) as conn:
        for table in ("payments", "merchant_bank_accounts"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (1,)


# --- the query allowlist (0012) ---------------------------------------------------------------


def test_an_unknown_query_parameter_is_refused_on_every_operation(api: Api, keys: Keys) -> None:
    failures = []
    for operation in operations_of(served_document(api)):
        response = api.call(
            operation.method.upper(), operation.url() + "?colour=red", operation.caller(keys)
        )
        error = response.json().get("error", {})
        if (response.status_code, error.get("code"), error.get("param")) != (
            400,
            "parameter_unknown",
            "colour",
        ):
            failures.append(f"{operation.method} {operation.path}: {response.status_code}")
    assert failures == []


def test_every_declared_query_parameter_is_accepted(api: Api, keys: Keys) -> None:
    failures = []
    for operation in operations_of(served_document(api)):
        for parameter in operation.parameters("query"):
            url = f"{operation.url()}?{quote(parameter['name'])}=1"
            response = api.call(operation.method.upper(), url, operation.caller(keys))
            if response.status_code >= 500 or (
                response.status_code == 400
                and response.json()["error"]["code"] == "parameter_unknown"
            ):
                failures.append(f"{operation.method} {url}: {response.text[:120]}")
    assert failures == []


def test_a_list_with_an_unknown_filter_is_not_answered_unfiltered(api: Api, keys: Keys) -> None:
    response = api.call("GET", "/v1/payments?foo=bar", keys.merchant)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "message": "Received unknown parameter: 'foo'.",
        "param": "foo",
        "request_id": response.headers["Request-Id"],
    }


def test_a_query_parameter_given_twice_is_refused(api: Api, keys: Keys) -> None:
    response = api.call("GET", "/v1/payments?status=captured&status=refunded", keys.merchant)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("parameter_duplicate", "status")


# --- the body's media type and strict JSON (0011) -----------------------------------------------

NOT_JSON = (
    "application/xml",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/json; charset=iso-8859-1",
    None,
)


def test_a_body_not_labelled_json_is_415_on_every_operation_with_a_body(
    api: Api, keys: Keys
) -> None:
    failures = []
    for operation in operations_of(served_document(api)):
        if "requestBody" not in operation.spec:
            continue
        for content_type in NOT_JSON:
            response = api.call(
                operation.method.upper(),
                operation.url(),
                operation.caller(keys),
                content=json.dumps(MERCHANT).encode(),
                headers={} if content_type is None else {"Content-Type": content_type},
            )
            error = response.json()["error"]
            if (response.status_code, error["type"], error["code"]) != (
                415,
                "invalid_request_error",
                "unsupported_media_type",
            ):
                failures.append(f"{operation.method} {operation.path} {content_type}")
    assert failures == []
    with pg(api.database_url) as conn:  # only the fixture's merchant: nothing was created
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (1,)


def test_form_encoded_curl_bodies_are_415(api: Api, keys: Keys) -> None:
    response = api.call("POST", "/v1/merchants", keys.admin, content=b"name=Acme&country=US")
    assert response.status_code == 415
    assert response.headers["Request-Id"] == response.json()["error"]["request_id"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"],
)
def test_json_with_or_without_charset_is_accepted(api: Api, keys: Keys, content_type: str) -> None:
    headers = {"Content-Type": content_type}
    created = api.call(
        "POST", "/v1/merchants", keys.admin, content=json.dumps(MERCHANT).encode(), headers=headers
    )
    assert created.status_code == 201, created.text
    merchant_id = created.json()["id"]
    patched = api.call(
        "PATCH",
        f"/v1/merchants/{merchant_id}",
        keys.admin,
        content=b'{"name": "B"}',
        headers=headers,
    )
    assert patched.status_code == 200, patched.text


def test_a_body_less_post_needs_no_content_type(api: Api, keys: Keys) -> None:
    merchant_id = api.call("POST", "/v1/merchants", keys.admin, json=MERCHANT).json()["id"]
    response = api.call("POST", f"/v1/merchants/{merchant_id}/keys", keys.admin)
    assert response.status_code == 201, response.text


def test_a_body_on_an_operation_without_one_is_not_ignored(api: Api, keys: Keys) -> None:
    response = api.call("POST", "/v1/payments/pay_x/void", keys.merchant, json={"amount": 5})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_unknown"
    assert response.json()["error"]["param"] == "amount"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            '{"amount": 100, "amount": 200, "currency": "usd", "source": {"card": %s}}',
            "amount",
        ),
        (
            '{"amount": 100, "currency": "usd", "source": {"card": %s}, "metadata": '
            '{"k": "a", "k": "b"}}',
            "metadata[k]",
        ),
        (
            '{"amount": 100, "currency": "usd", "source": {"card": %s, "token": "tok_1", '
            '"card": {}}}',
            "source[card]",
        ),
    ],
)
def test_a_repeated_json_key_is_refused_and_nothing_is_written(
    api: Api, keys: Keys, body: str, param: str
) -> None:
    content = (body % json.dumps(CARD)).encode()
    response = api.call("POST", "/v1/payments", keys.merchant, content=content, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("parameter_duplicate", param)
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (0,)


def test_a_repeated_nested_key_is_named_by_its_path(api: Api, keys: Keys) -> None:
    content = b'{"card": {"number": "4242424242424242", "number": "4000000000000002"}}'
    response = api.call("POST", "/v1/tokens", keys.merchant, content=content, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "card[number]"
    assert "4242" not in response.text and "4000" not in response.text


# --- 405 carries Allow ------------------------------------------------------------------------


def test_a_method_not_served_is_405_with_allow_on_every_path(api: Api) -> None:
    document = served_document(api)
    failures = []
    for path, item in document["paths"].items():
        served = {method.upper() for method in item if method in METHODS}
        url = path.replace("{", "").replace("}", "")
        for method in {m.upper() for m in METHODS} - served:
            response = api.call(method, url)
            allow = response.headers.get("Allow")
            if (
                response.status_code != 405
                or allow is None
                or set(allow.split(", ")) != served
                or response.json()["error"]["code"] != "method_not_allowed"
            ):
                failures.append(f"{method} {path}: {response.status_code} Allow={allow}")
    assert failures == []
