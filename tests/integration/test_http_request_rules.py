"""The request rules over every operation the server documents: the query allowlist
(decision 0012), the body's media type and repeated JSON keys (0011), 405 with Allow. The tables
are generated from the served OpenAPI document, so a new operation is covered the day it is
served."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.http_support import CARD, JSON, MERCHANT, METHODS, Keys, operations_of, served_document
from tests.support import Api, pg


@pytest.fixture
def keys(api: Api) -> Keys:
    return Keys.of(api)


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
