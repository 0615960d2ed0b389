"""Payments over HTTP: every transition and every illegal one, errors, isolation, events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import Api, pg

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def pay(
    api: Api, key: str, *, amount: int = 2599, capture: bool = False, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": amount,
        "currency": "usd",
        "source": {"card": dict(CARD)},
        "capture": capture,
        **extra,
    }
    r = api.call("POST", "/v1/payments", key, json=body, idempotency_key=str(uuid.uuid4()))
    assert r.status_code == 201, r.text
    return dict(r.json())


def post(api: Api, key: str, path: str, json: Any = None) -> Any:
    return api.call("POST", path, key, json=json, idempotency_key=str(uuid.uuid4()))


def events_of(api: Api, key: str, object_id: str) -> list[str]:
    r = api.call("GET", "/v1/events", key, params={"object": object_id, "limit": 100})
    assert r.status_code == 200, r.text
    return [e["type"] for e in reversed(r.json()["data"])]


def test_authorize_capture_refund(api: Api) -> None:
    _, key = api.merchant()
    p = pay(api, key, reference="order-1", metadata={"k": "v"})
    assert p["status"] == "authorized"
    assert p["object"] == "payment"
    assert p["amount_captured"] == 0
    assert p["card"]["last4"] == "4242"
    assert len(p["auth_code"]) == 6
    assert p["network_reference"]
    assert p["connector"] == "simulator"
    assert p["routing"]["candidates"] == ["simulator"]
    assert p["reference"] == "order-1"
    captured = post(api, key, f"/v1/payments/{p['id']}/capture", {"amount": 2000})
    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "captured"
    assert captured.json()["amount_captured"] == 2000
    r1 = post(api, key, f"/v1/payments/{p['id']}/refunds", {"amount": 500})
    assert r1.status_code == 201, r1.text
    assert r1.json()["status"] == "succeeded"
    assert r1.json()["object"] == "refund"
    too_much = post(api, key, f"/v1/payments/{p['id']}/refunds", {"amount": 1501})
    assert too_much.status_code == 400
    assert too_much.json()["error"]["param"] == "amount"
    r2 = post(api, key, f"/v1/payments/{p['id']}/refunds")
    assert r2.status_code == 201
    assert r2.json()["amount"] == 1500
    final = api.call("GET", f"/v1/payments/{p['id']}", key).json()
    assert final["status"] == "refunded"
    assert final["amount_refunded"] == 2000
    assert events_of(api, key, p["id"]) == [
        "payment.authorized",
        "payment.captured",
        "payment.refunded",
    ]
    assert events_of(api, key, r1.json()["id"]) == ["refund.succeeded"]
    again = post(api, key, f"/v1/payments/{p['id']}/refunds", {"amount": 1})
    assert again.status_code == 409
    assert "refunded" in again.json()["error"]["message"]
    refunds = api.call("GET", "/v1/refunds", key, params={"payment": p["id"]}).json()["data"]
    assert {r["id"] for r in refunds} == {r1.json()["id"], r2.json()["id"]}
    assert api.call("GET", f"/v1/refunds/{r1.json()['id']}", key).json()["amount"] == 500


def test_sale_and_ledger(api: Api) -> None:
    _merchant_id, key = api.merchant()
    p = pay(api, key, capture=True, amount=1234)
    assert p["status"] == "captured"
    assert p["amount_captured"] == 1234
    assert events_of(api, key, p["id"]) == ["payment.captured"]
    with pg(api.database_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM ledger_transfers WHERE source = %s", (p["id"],)
        ).fetchone()
    assert rows is not None and rows[0] == 1


def test_void_and_illegal_transitions(api: Api) -> None:
    _, key = api.merchant()
    p = pay(api, key)
    voided = post(api, key, f"/v1/payments/{p['id']}/void")
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "voided"
    for action in ("capture", "void"):
        r = post(api, key, f"/v1/payments/{p['id']}/{action}")
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "invalid_state"
        assert "'voided'" in r.json()["error"]["message"]
    r = post(api, key, f"/v1/payments/{p['id']}/refunds")
    assert r.status_code == 409
    assert events_of(api, key, p["id"]) == ["payment.authorized", "payment.voided"]


def test_capture_once_and_not_above_authorized(api: Api) -> None:
    _, key = api.merchant()
    p = pay(api, key, amount=1000)
    early = post(api, key, f"/v1/payments/{p['id']}/refunds")
    assert early.status_code == 409
    assert "'authorized'" in early.json()["error"]["message"]
    over = post(api, key, f"/v1/payments/{p['id']}/capture", {"amount": 1001})
    assert over.status_code == 400
    assert over.json()["error"]["param"] == "amount"
    ok = post(api, key, f"/v1/payments/{p['id']}/capture")
    assert ok.json()["amount_captured"] == 1000
    twice = post(api, key, f"/v1/payments/{p['id']}/capture")
    assert twice.status_code == 409
    assert "'captured'" in twice.json()["error"]["message"]
    void = post(api, key, f"/v1/payments/{p['id']}/void")
    assert void.status_code == 409


@pytest.mark.parametrize(
    ("number", "status", "decline_code"),
    [
        ("4000000000000002", "declined", "do_not_honor"),
        ("4000000000009995", "declined", "insufficient_funds"),
        ("4000000000000069", "declined", "expired_card"),
        ("4000000000000127", "declined", "incorrect_cvc"),
        ("4000000000000119", "failed", "processing_error"),
    ],
)
def test_test_cards(api: Api, number: str, status: str, decline_code: str) -> None:
    _, key = api.merchant()
    body = {
        "amount": 100,
        "currency": "usd",
        "source": {"card": {**CARD, "number": number}},
    }
    r = api.call("POST", "/v1/payments", key, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == status
    assert r.json()["decline_code"] == decline_code
    assert r.json()["auth_code"] is None
    for action in ("capture", "void", "refunds"):
        bad = post(api, key, f"/v1/payments/{r.json()['id']}/{action}")
        assert bad.status_code == 409
        assert f"'{status}'" in bad.json()["error"]["message"]
    assert events_of(api, key, r.json()["id"]) == [f"payment.{status}"]


def _count(api: Api, table: str) -> int:
    with pg(api.database_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"amount": 0}, 400, "amount"),
        ({"amount": -5}, 400, "amount"),
        ({"amount": 100_000_001}, 400, "amount"),
        ({"amount": "10"}, 400, "amount"),
        ({"amount": 10.5}, 400, "amount"),
        ({"currency": "xxx"}, 400, "currency"),
        ({"currency": "USD"}, 400, "currency"),
        ({"source": {"card": {**CARD, "number": "4242424242424241"}}}, 400, "source[card][number]"),
        ({"source": {"card": {**CARD, "exp_year": 2001}}}, 400, None),
        ({"source": {}}, 400, "source"),
        ({"source": {"token": "tok_nope"}}, 400, "source[token]"),
        ({"status": "captured"}, 400, "status"),
        ({"amount_captured": 5}, 400, "amount_captured"),
    ],
)
def test_bad_input_writes_nothing(
    api: Api, body: dict[str, Any], status: int, param: str | None
) -> None:
    _, key = api.merchant()
    full = {"amount": 100, "currency": "usd", "source": {"card": dict(CARD)}, **body}
    r = api.call("POST", "/v1/payments", key, json=full)
    assert r.status_code == status, r.text
    if param is not None:
        assert r.json()["error"]["param"] == param
    assert "4242424242424241" not in r.text
    for table in ("payments", "payment_attempts", "txlog", "events"):
        assert _count(api, table) == 0


def test_other_merchants_objects_are_404(api: Api) -> None:
    _, key_a = api.merchant()
    _, key_b = api.merchant()
    p = pay(api, key_a)
    for method, path in [
        ("GET", f"/v1/payments/{p['id']}"),
        ("POST", f"/v1/payments/{p['id']}/capture"),
        ("POST", f"/v1/payments/{p['id']}/void"),
        ("POST", f"/v1/payments/{p['id']}/refunds"),
    ]:
        r = api.call(method, path, key_b)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "resource_missing"
    assert api.call("GET", "/v1/payments", key_b).json()["data"] == []
    tok = api.call(
        "POST", "/v1/tokens", key_a, json={"card": {k: CARD[k] for k in CARD if k != "cvc"}}
    )
    assert tok.status_code == 201, tok.text
    r = api.call(
        "POST",
        "/v1/payments",
        key_b,
        json={"amount": 100, "currency": "usd", "source": {"token": tok.json()["id"]}},
    )
    assert r.status_code == 404
    events = api.call("GET", "/v1/events", key_b).json()["data"]
    assert events == []
    ev = api.call("GET", "/v1/events", key_a).json()["data"][0]
    assert api.call("GET", f"/v1/events/{ev['id']}", key_b).status_code == 404
    admin = api.operator("support")
    assert api.call("GET", f"/v1/events/{ev['id']}", admin).status_code == 200
    assert api.call("GET", f"/v1/payments/{p['id']}", admin).status_code == 200


def test_token_payment_and_required_cvc(api: Api) -> None:
    admin = api.operator("admin")
    merchant_id, key = api.merchant(admin)
    put = api.call(
        "PUT", f"/v1/merchants/{merchant_id}/payment_settings", admin, json={"require_cvc": True}
    )
    assert put.status_code == 200, put.text
    no_cvc = {k: CARD[k] for k in CARD if k != "cvc"}
    r = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 100, "currency": "usd", "source": {"card": no_cvc}},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "source[card][cvc]"
    assert _count(api, "payments") == 0
    tok = api.call("POST", "/v1/tokens", key, json={"card": no_cvc}).json()["id"]
    r = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 100, "currency": "usd", "source": {"token": tok}},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "source[cvc]"
    r = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 100, "currency": "usd", "source": {"token": tok, "cvc": "999"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "authorized"
    assert r.json()["token"] == tok


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_inactive_merchant_cannot_pay(api: Api, status: str) -> None:
    admin = api.operator("admin")
    merchant_id, key = api.merchant(admin)
    r = api.call("PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": status})
    assert r.status_code == 200, r.text
    r = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 100, "currency": "usd", "source": {"card": CARD}},
    )
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "permission_error"
    assert r.json()["error"]["code"] == "merchant_inactive"
    assert _count(api, "payments") == 0


def test_list_filters(api: Api) -> None:
    _, key = api.merchant()
    a = pay(api, key, reference="r-a")
    b = pay(api, key, capture=True, reference="r-b")
    listed = api.call("GET", "/v1/payments", key).json()
    assert [p["id"] for p in listed["data"]] == [b["id"], a["id"]]
    by_status = api.call("GET", "/v1/payments", key, params={"status": "captured"}).json()
    assert [p["id"] for p in by_status["data"]] == [b["id"]]
    by_ref = api.call("GET", "/v1/payments", key, params={"reference": "r-a"}).json()
    assert [p["id"] for p in by_ref["data"]] == [a["id"]]
    page = api.call("GET", "/v1/payments", key, params={"limit": 1}).json()
    assert page["has_more"] is True
    future = api.call("GET", "/v1/payments", key, params={"created[gte]": 4_000_000_000}).json()
    assert future["data"] == []


def test_idempotent_replay_is_stored_in_transaction(api: Api) -> None:
    _, key = api.merchant()
    body = {"amount": 700, "currency": "usd", "source": {"card": CARD}}
    first = api.call("POST", "/v1/payments", key, json=body, idempotency_key="same")
    second = api.call("POST", "/v1/payments", key, json=body, idempotency_key="same")
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == second.json()
    assert _count(api, "payments") == 1
    with pg(api.database_url) as conn:
        stored = conn.execute("SELECT response_body FROM idempotency_keys").fetchall()
    assert all(b"4242424242424242" not in bytes(r[0]) for r in stored)
    assert all(b'"cvc"' not in bytes(r[0]) for r in stored)
