"""A retry of a payment or refund whose first attempt died mid-way recovers what that attempt
created (bound to the Idempotency-Key in the same transaction) instead of creating another."""

from __future__ import annotations

from typing import Any

from tests.integration.test_payments_api import CARD
from tests.support import Api, pg

BODY: dict[str, Any] = {"amount": 1500, "currency": "usd", "source": {"card": dict(CARD)}}


def _abandon(api: Api, key: str) -> None:
    """What a crash after the first commit leaves: the key in progress, its lock stale."""
    with pg(api.database_url) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET state = 'in_progress', response_status = NULL, "
            "response_body = NULL, completed_at = NULL, locked_at = now() - interval '10 min' "
            "WHERE key = %s",
            (key,),
        )


def _count(api: Api, sql: str, *args: Any) -> int:
    with pg(api.database_url) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


def test_retried_payment_recovers_the_first_attempts_payment(api: Api) -> None:
    _, sk = api.merchant()
    first = api.call("POST", "/v1/payments", sk, json=BODY, idempotency_key="pay-crash")
    assert first.status_code == 201
    payment_id = first.json()["id"]
    bound = "SELECT resource_id FROM idempotency_keys WHERE key = %s"
    with pg(api.database_url) as conn:
        assert conn.execute(bound, ("pay-crash",)).fetchone() == (payment_id,)
    _abandon(api, "pay-crash")

    other = api.call(
        "POST", "/v1/payments", sk, json={**BODY, "amount": 1}, idempotency_key="pay-crash"
    )
    assert other.status_code == 422  # a different request never takes the key over
    retry = api.call("POST", "/v1/payments", sk, json=BODY, idempotency_key="pay-crash")
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == payment_id and retry.json()["status"] == "authorized"
    assert _count(api, "SELECT count(*) FROM payments") == 1
    assert _count(api, "SELECT count(*) FROM payment_attempts") == 1
    replay = api.call("POST", "/v1/payments", sk, json=BODY, idempotency_key="pay-crash")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == payment_id


def test_recovering_a_still_pending_payment_answers_409_and_keeps_the_key(api: Api) -> None:
    _, sk = api.merchant()
    payment_id = api.call("POST", "/v1/payments", sk, json=BODY, idempotency_key="k-p").json()["id"]
    _abandon(api, "k-p")
    with pg(api.database_url) as conn:
        conn.execute("UPDATE payments SET status = 'pending' WHERE id = %s", (payment_id,))
    busy = api.call("POST", "/v1/payments", sk, json=BODY, idempotency_key="k-p")
    assert busy.status_code == 409 and busy.json()["error"]["type"] == "idempotency_error"
    with pg(api.database_url) as conn:
        state = conn.execute(
            "SELECT state, resource_id FROM idempotency_keys WHERE key = 'k-p'"
        ).fetchone()
        assert state == ("in_progress", payment_id)
        conn.execute("UPDATE payments SET status = 'authorized' WHERE id = %s", (payment_id,))
    _abandon(api, "k-p")
    done = api.call("POST", "/v1/payments", sk, json=BODY, idempotency_key="k-p")
    assert done.status_code == 201 and done.json()["id"] == payment_id
    assert _count(api, "SELECT count(*) FROM payments") == 1


def test_retried_refund_never_refunds_twice(api: Api) -> None:
    _, sk = api.merchant()
    payment = api.call(
        "POST", "/v1/payments", sk, json={**BODY, "capture": True}, idempotency_key="sale"
    ).json()
    path = f"/v1/payments/{payment['id']}/refunds"
    first = api.call("POST", path, sk, json={"amount": 400}, idempotency_key="rf-crash")
    assert first.status_code == 201
    _abandon(api, "rf-crash")
    retry = api.call("POST", path, sk, json={"amount": 400}, idempotency_key="rf-crash")
    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == first.json()["id"]
    assert _count(api, "SELECT count(*) FROM refunds") == 1
    shown = api.call("GET", f"/v1/payments/{payment['id']}", sk).json()
    assert shown["amount_refunded"] == 400
    assert _count(api, "SELECT count(*) FROM ledger_transfers WHERE code = 'refund'") == 1
