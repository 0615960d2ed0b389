"""Merchants, keys and operator keys over HTTP: happy paths, errors, roles, isolation."""

from __future__ import annotations

import time

import pytest

from tests.support import Api, pg

MERCHANT = {"name": "Acme", "country": "DE", "mcc": "5411", "default_currency": "eur"}


def test_create_get_list_merchant(api: Api) -> None:
    admin = api.operator("admin")
    created = api.call("POST", "/v1/merchants", admin, json=MERCHANT)
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("mer_") and body["object"] == "merchant"
    assert body["status"] == "active" and body["default_currency"] == "eur"
    assert body["pricing"]["model"] == "blended"
    assert created.headers["Request-Id"].startswith("req_")
    got = api.call("GET", f"/v1/merchants/{body['id']}", admin)
    assert got.status_code == 200 and got.json() == body
    listed = api.call("GET", "/v1/merchants", admin)
    assert listed.json()["object"] == "list"
    assert [m["id"] for m in listed.json()["data"]] == [body["id"]]


def test_pagination_cursors(api: Api) -> None:
    admin = api.operator()
    ids = [api.call("POST", "/v1/merchants", admin, json=MERCHANT).json()["id"] for _ in range(5)]
    newest_first = list(reversed(ids))
    page1 = api.call("GET", "/v1/merchants", admin, params={"limit": 2}).json()
    assert [m["id"] for m in page1["data"]] == newest_first[:2] and page1["has_more"]
    page2 = api.call(
        "GET", "/v1/merchants", admin, params={"limit": 2, "starting_after": newest_first[1]}
    ).json()
    assert [m["id"] for m in page2["data"]] == newest_first[2:4] and page2["has_more"]
    page3 = api.call(
        "GET", "/v1/merchants", admin, params={"limit": 2, "starting_after": newest_first[3]}
    ).json()
    assert [m["id"] for m in page3["data"]] == newest_first[4:] and not page3["has_more"]
    back = api.call(
        "GET", "/v1/merchants", admin, params={"limit": 2, "ending_before": newest_first[4]}
    ).json()
    assert [m["id"] for m in back["data"]] == newest_first[2:4]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"starting_after": "pay_123"}, "starting_after"),
        ({"ending_before": "garbage"}, "ending_before"),
        ({"created[gte]": -5}, "created[gte]"),
    ],
)
def test_bad_pagination_is_400(api: Api, params: dict[str, object], param: str) -> None:
    response = api.call("GET", "/v1/merchants", api.operator(), params=params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({**MERCHANT, "status": "closed"}, "status", "parameter_read_only"),
        ({**MERCHANT, "colour": "red"}, "colour", "parameter_unknown"),
        ({**MERCHANT, "mcc": 5411}, "mcc", "parameter_invalid"),
        ({**MERCHANT, "name": "x" * 201}, "name", "parameter_invalid"),
        ({**MERCHANT, "country": "de"}, "country", "parameter_invalid"),
        ({**MERCHANT, "default_currency": "xyz"}, "default_currency", "currency_unsupported"),
        ({**MERCHANT, "mcc": "54a1"}, "mcc", "parameter_invalid"),
        ({k: v for k, v in MERCHANT.items() if k != "name"}, "name", "parameter_missing"),
        ({**MERCHANT, "payout_delay_days": 1.5}, "payout_delay_days", "parameter_invalid"),
        (
            {**MERCHANT, "pricing": {"model": "blended", "percent_bps": -1, "fixed_minor": {}}},
            "pricing[percent_bps]",
            "parameter_invalid",
        ),
        ({**MERCHANT, "reserve": {"percent_bps": 1000}}, "reserve[hold_days]", "parameter_missing"),
    ],
)
def test_invalid_merchant_bodies(api: Api, body: dict[str, object], param: str, code: str) -> None:
    admin = api.operator()
    response = api.call("POST", "/v1/merchants", admin, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert error["request_id"] == response.headers["Request-Id"]
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (0,)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'"text"', b""],
)
def test_malformed_bodies(api: Api, content: bytes) -> None:
    response = api.call(
        "POST",
        "/v1/merchants",
        api.operator(),
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"body_invalid", "parameter_missing"}
    assert "Traceback" not in response.text


def test_oversized_body(api: Api) -> None:
    response = api.call(
        "POST", "/v1/merchants", api.operator(), content=b'{"name": "' + b"x" * 70_000 + b'"}'
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "body_too_large"
    assert response.headers["Request-Id"].startswith("req_")


def test_unknown_route_and_bad_id(api: Api) -> None:
    admin = api.operator()
    missing_route = api.call("GET", "/v1/nothing", admin)
    assert missing_route.status_code == 404
    assert missing_route.json()["error"]["code"] == "resource_missing"
    bad_id = api.call("GET", "/v1/merchants/pay_123", admin)
    # A malformed id fails the path parameter's pattern: the error names it as the document does.
    assert bad_id.status_code == 400 and bad_id.json()["error"]["param"] == "merchant_id"
    assert bad_id.json()["error"]["code"] == "parameter_invalid"
    unknown = api.call("GET", "/v1/merchants/mer_0000000000ZZZZZZZZZZZZZZZZ", admin)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "resource_missing"


def test_patch_status_pricing_and_transitions(api: Api) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    patched = api.call(
        "PATCH",
        f"/v1/merchants/{merchant_id}",
        admin,
        json={
            "status": "suspended",
            "pricing": {
                "model": "interchange_plus",
                "markup_bps": 40,
                "markup_fixed_minor": {"usd": 5, "jpy": 4},
            },
            "payout_delay_days": 3,
            "reserve": {"percent_bps": 500, "hold_days": 90},
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["status"] == "suspended" and body["payout_delay_days"] == 3
    assert body["pricing"]["model"] == "interchange_plus"
    assert body["pricing"]["markup_fixed_minor"] == {"usd": 5, "jpy": 4}
    assert body["reserve"] == {"percent_bps": 500, "hold_days": 90}
    # A fixed amount is per currency: one number would mean $0.05 and ¥5 alike.
    for fixed, param in (
        (5, "pricing[markup_fixed_minor]"),
        ({"xyz": 5}, "pricing[markup_fixed_minor][xyz]"),
        ({"usd": -1}, "pricing[markup_fixed_minor][usd]"),
    ):
        refused = api.call(
            "PATCH",
            f"/v1/merchants/{merchant_id}",
            admin,
            json={
                "pricing": {
                    "model": "interchange_plus",
                    "markup_bps": 4,
                    "markup_fixed_minor": fixed,
                }
            },
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == param
    closed = api.call("PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": "closed"})
    assert closed.status_code == 200
    reopen = api.call("PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": "active"})
    assert reopen.status_code == 409
    assert reopen.json()["error"]["code"] == "invalid_state"
    bad = api.call("PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": "frozen"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "status"


def test_merchant_keys_lifecycle(api: Api) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    created = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin)
    assert created.status_code == 201
    key = created.json()
    assert key["secret"].startswith("sk_test_") and key["object"] == "api_key"
    assert key["secret"] not in api.call("GET", f"/v1/merchants/{merchant_id}/keys", admin).text
    # The merchant key authenticates merchant-scoped calls but not operator ones.
    assert api.call("GET", "/v1/merchants", key["secret"]).status_code == 403
    revoked = api.call("DELETE", f"/v1/merchants/{merchant_id}/keys/{key['id']}", admin)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    after = api.call("GET", "/v1/merchants", key["secret"])
    assert after.status_code == 401
    assert after.json()["error"]["type"] == "authentication_error"
    with pg(api.database_url) as conn:
        stored = conn.execute(
            "SELECT secret_hash, display FROM api_keys WHERE id = %s", (key["id"],)
        ).fetchone()
    assert stored is not None and key["secret"].encode() not in bytes(stored[0])
    assert stored[1].endswith(key["secret"][-4:]) and len(stored[1]) < 20


def test_expired_key_is_401(api: Api) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    soon = int(time.time()) + 2
    key = api.call(
        "POST", f"/v1/merchants/{merchant_id}/keys", admin, json={"expires_at": soon}
    ).json()
    with pg(api.database_url) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
            (key["id"],),
        )
    response = api.call("GET", "/v1/merchants", key["secret"])
    assert response.status_code == 401
    past = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin, json={"expires_at": 1000})
    assert past.status_code == 400 and past.json()["error"]["param"] == "expires_at"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic abc",
        "Bearer sk_test_unknown0000000000",
        "Bearer nope",
        "Bearer ok_" + "a" * 300,
    ],
)
def test_bad_credentials_are_401(api: Api, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = api.call("GET", "/v1/merchants", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_operator_keys_api(api: Api) -> None:
    security = api.operator("security")
    created = api.call("POST", "/v1/operator_keys", security, json={"role": "support"})
    assert created.status_code == 201
    support = created.json()["secret"]
    assert support.startswith("ok_")
    assert api.call("GET", "/v1/merchants", support).status_code == 200
    assert api.call("POST", "/v1/merchants", support, json=MERCHANT).status_code == 403
    bad_role = api.call("POST", "/v1/operator_keys", security, json={"role": "root"})
    assert bad_role.status_code == 400 and bad_role.json()["error"]["param"] == "role"
    revoked = api.call("DELETE", f"/v1/operator_keys/{created.json()['id']}", security)
    assert revoked.status_code == 200
    assert api.call("GET", "/v1/merchants", support).status_code == 401
