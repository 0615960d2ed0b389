"""The text rule (decision 0011) over every text parameter the server documents: each path
parameter, each string query parameter and each string (and dict key) at any depth of each JSON
body, generated from the served OpenAPI document, answers 400 naming the field, never 500."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.http_support import (
    CARD,
    JSON,
    KEY,
    MERCHANT,
    Keys,
    Operation,
    operations_of,
    served_document,
    text_fields,
)
from tests.support import Api, pg


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
    return Keys.of(api)


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
