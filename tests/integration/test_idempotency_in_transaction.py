"""Capture, void, refund and tokenize claim their Idempotency-Key in their own first transaction
(decision 0912, as POST /v1/payments does): the claim commits with what the request creates; a
replay gets the stored answer, another body 422, a concurrent duplicate 409 or the one answer;
a retry after a crash that left the key in progress answers with what the first attempt made."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.support import Api, pg

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
TOKEN_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}


def _key_row(api: Api, merchant_id: str, key: str) -> tuple[Any, ...] | None:
    with pg(api.database_url) as conn:
        return conn.execute(
            "SELECT state, resource_id FROM idempotency_keys WHERE principal_id = %s AND key = %s",
            (merchant_id, key),
        ).fetchone()


def _as_if_crashed(api: Api, merchant_id: str, key: str) -> None:
    """The first attempt committed its claim and what it created, then died before storing its
    answer: the key is in progress, its lock long expired."""
    with pg(api.database_url) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET state = 'in_progress', response_status = NULL, "
            "response_body = NULL, completed_at = NULL, locked_at = now() - interval '1 day' "
            "WHERE principal_id = %s AND key = %s",
            (merchant_id, key),
        )


def _authorized(api: Api, key: str) -> str:
    made = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 900, "currency": "usd", "source": {"card": CARD}, "capture": False},
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "authorized"
    return str(made.json()["id"])


def _concurrently(api: Api, key: str, path: str, body: Any, idem: str, n: int = 16) -> list[Any]:
    def post(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            return client.post(
                api.url + path,
                json=body,
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
            )

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(post, range(n)))


def test_capture_claims_in_its_transaction_and_replays(api: Api) -> None:
    merchant_id, key = api.merchant()
    payment_id = _authorized(api, key)
    path = f"/v1/payments/{payment_id}/capture"
    first = api.call("POST", path, key, json={"amount": 500}, idempotency_key="cap-1")
    assert first.status_code == 200, first.text
    assert first.json()["amount_captured"] == 500
    # a capture creates nothing a retry could recover: the key is bound to nothing
    assert _key_row(api, merchant_id, "cap-1") == ("completed", None)
    again = api.call("POST", path, key, json={"amount": 500}, idempotency_key="cap-1")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = api.call("POST", path, key, json={"amount": 400}, idempotency_key="cap-1")
    assert other.status_code == 422


def test_a_refused_capture_stores_its_answer(api: Api) -> None:
    """Refused inside the transaction that claimed the key (already captured: 409), the claim
    rolls back with it and the answer is stored under the key all the same."""
    merchant_id, key = api.merchant()
    payment_id = _authorized(api, key)
    path = f"/v1/payments/{payment_id}/capture"
    assert api.call("POST", path, key, idempotency_key="cap-a").status_code == 200
    refused = api.call("POST", path, key, idempotency_key="cap-b")
    assert refused.status_code == 409, refused.text
    assert _key_row(api, merchant_id, "cap-b") == ("completed", None)
    replay = api.call("POST", path, key, idempotency_key="cap-b")
    assert replay.status_code == 409
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_concurrent_duplicate_captures_capture_once(api: Api) -> None:
    _merchant_id, key = api.merchant()
    payment_id = _authorized(api, key)
    responses = _concurrently(
        api, key, f"/v1/payments/{payment_id}/capture", {"amount": 300}, "cap-race"
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409}, statuses
    assert 200 in statuses
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["error"]["type"] == "idempotency_error"
    with pg(api.database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM payment_attempts WHERE payment_id = %s AND operation = 'capture'",
            (payment_id,),
        ).fetchone() == (1,)
    assert api.call("GET", f"/v1/payments/{payment_id}", key).json()["amount_captured"] == 300


def test_void_claims_in_its_transaction(api: Api) -> None:
    merchant_id, key = api.merchant()
    payment_id = _authorized(api, key)
    first = api.call("POST", f"/v1/payments/{payment_id}/void", key, idempotency_key="void-1")
    assert first.status_code == 200, first.text
    assert _key_row(api, merchant_id, "void-1") == ("completed", None)
    again = api.call("POST", f"/v1/payments/{payment_id}/void", key, idempotency_key="void-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def _captured(api: Api, key: str) -> str:
    payment_id = _authorized(api, key)
    captured = api.call("POST", f"/v1/payments/{payment_id}/capture", key)
    assert captured.status_code == 200, captured.text
    return payment_id


def test_refund_claims_in_its_transaction_bound_to_the_refund(api: Api) -> None:
    merchant_id, key = api.merchant()
    payment_id = _captured(api, key)
    path = f"/v1/payments/{payment_id}/refunds"
    first = api.call("POST", path, key, json={"amount": 200}, idempotency_key="rfd-1")
    assert first.status_code == 201, first.text
    assert _key_row(api, merchant_id, "rfd-1") == ("completed", first.json()["id"])
    again = api.call("POST", path, key, json={"amount": 200}, idempotency_key="rfd-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert (
        api.call("POST", path, key, json={"amount": 201}, idempotency_key="rfd-1").status_code
        == 422
    )


def test_concurrent_duplicate_refunds_refund_once(api: Api) -> None:
    _merchant_id, key = api.merchant()
    payment_id = _captured(api, key)
    responses = _concurrently(
        api, key, f"/v1/payments/{payment_id}/refunds", {"amount": 100}, "rfd-race"
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    with pg(api.database_url) as conn:
        assert conn.execute(
            "SELECT count(*), sum(amount) FROM refunds WHERE payment_id = %s", (payment_id,)
        ).fetchone() == (1, 100)


def test_refund_retried_after_a_crash_answers_with_the_first_refund(api: Api) -> None:
    merchant_id, key = api.merchant()
    payment_id = _captured(api, key)
    path = f"/v1/payments/{payment_id}/refunds"
    first = api.call("POST", path, key, json={"amount": 150}, idempotency_key="rfd-crash")
    assert first.status_code == 201, first.text
    _as_if_crashed(api, merchant_id, "rfd-crash")
    retry = api.call("POST", path, key, json={"amount": 150}, idempotency_key="rfd-crash")
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == first.json()["id"]
    with pg(api.database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM refunds WHERE payment_id = %s", (payment_id,)
        ).fetchone() == (1,)


def test_tokenize_claims_in_its_transaction_bound_to_the_token(api: Api) -> None:
    merchant_id, key = api.merchant()
    first = api.call("POST", "/v1/tokens", key, json={"card": TOKEN_CARD}, idempotency_key="tok-1")
    assert first.status_code == 201, first.text
    assert _key_row(api, merchant_id, "tok-1") == ("completed", first.json()["id"])
    again = api.call("POST", "/v1/tokens", key, json={"card": TOKEN_CARD}, idempotency_key="tok-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = {"card": {**TOKEN_CARD, "exp_month": 11}}
    assert (
        api.call("POST", "/v1/tokens", key, json=other, idempotency_key="tok-1").status_code == 422
    )


def test_concurrent_duplicate_tokenizations_store_one_card(api: Api) -> None:
    merchant_id, key = api.merchant()
    responses = _concurrently(api, key, "/v1/tokens", {"card": TOKEN_CARD}, "tok-race")
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    with pg(api.database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM card_tokens WHERE merchant_id = %s", (merchant_id,)
        ).fetchone() == (1,)


def test_tokenize_retried_after_a_crash_answers_with_the_first_token(api: Api) -> None:
    merchant_id, key = api.merchant()
    first = api.call(
        "POST", "/v1/tokens", key, json={"card": TOKEN_CARD}, idempotency_key="tok-crash"
    )
    assert first.status_code == 201, first.text
    _as_if_crashed(api, merchant_id, "tok-crash")
    retry = api.call(
        "POST", "/v1/tokens", key, json={"card": TOKEN_CARD}, idempotency_key="tok-crash"
    )
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    with pg(api.database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM card_tokens WHERE merchant_id = %s", (merchant_id,)
        ).fetchone() == (1,)
