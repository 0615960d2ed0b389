"""The idempotency mechanism, exercised through POST /v1/merchants."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support import Api, pg

MERCHANT = {"name": "Acme", "country": "US", "mcc": "5411", "default_currency": "usd"}


def test_replay_returns_the_stored_response(api: Api) -> None:
    admin = api.operator()
    first = api.call("POST", "/v1/merchants", admin, json=MERCHANT, idempotency_key="k1")
    second = api.call("POST", "/v1/merchants", admin, json=MERCHANT, idempotency_key="k1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (1,)


def test_different_body_same_key_is_422(api: Api) -> None:
    admin = api.operator()
    api.call("POST", "/v1/merchants", admin, json=MERCHANT, idempotency_key="k2")
    other = api.call(
        "POST", "/v1/merchants", admin, json={**MERCHANT, "name": "Other"}, idempotency_key="k2"
    )
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_error"


def test_keys_are_scoped_per_principal(api: Api) -> None:
    first = api.call(
        "POST", "/v1/merchants", api.operator(), json=MERCHANT, idempotency_key="shared"
    )
    second = api.call(
        "POST", "/v1/merchants", api.operator(), json=MERCHANT, idempotency_key="shared"
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_400_is_not_stored(api: Api) -> None:
    admin = api.operator()
    bad = api.call(
        "POST", "/v1/merchants", admin, json={**MERCHANT, "mcc": "x"}, idempotency_key="k3"
    )
    assert bad.status_code == 400
    fixed = api.call("POST", "/v1/merchants", admin, json=MERCHANT, idempotency_key="k3")
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers


def test_bad_idempotency_key_is_400(api: Api) -> None:
    response = api.call(
        "POST", "/v1/merchants", api.operator(), json=MERCHANT, idempotency_key="x" * 256
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"


def test_stored_key_creation_response_holds_no_secret(api: Api) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    first = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin, idempotency_key="kk")
    replay = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin, idempotency_key="kk")
    secret = first.json()["secret"]
    assert replay.json()["id"] == first.json()["id"]
    assert secret not in replay.text
    with pg(api.database_url) as conn:
        bodies = conn.execute("SELECT response_body FROM idempotency_keys").fetchall()
    assert all(secret.encode() not in bytes(b[0]) for b in bodies)


def test_fifty_concurrent_posts_create_exactly_one_merchant(api: Api) -> None:
    admin = api.operator()

    def post(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            return client.post(
                api.url + "/v1/merchants",
                json=MERCHANT,
                headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": "race"},
            )

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created_ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created_ids) == 1
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["error"]["type"] == "idempotency_error"
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (1,)


def test_replay_keeps_long_numbers_intact(api: Api) -> None:
    """Only secrets are masked in stored responses; a Luhn-valid number in a field survives."""
    admin = api.operator()
    luhn_valid_reference = "4111111111111111"  # e.g. a processor's numeric reference
    body = {**MERCHANT, "metadata": {"ref": luhn_valid_reference}}
    first = api.call("POST", "/v1/merchants", admin, json=body, idempotency_key="num")
    replay = api.call("POST", "/v1/merchants", admin, json=body, idempotency_key="num")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert replay.json()["metadata"]["ref"] == luhn_valid_reference


CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def test_payment_claims_its_key_in_its_own_transaction(api: Api) -> None:
    """POST /v1/payments claims its key with the pending payment (decision 0912): the stored
    claim is bound to the payment; the same request replays it; another body is 422."""
    merchant_id, key = api.merchant()
    body = {"amount": 700, "currency": "usd", "source": {"card": CARD}}
    first = api.call("POST", "/v1/payments", key, json=body, idempotency_key="deferred-1")
    assert first.status_code == 201, first.text
    from tests.support import pg

    with pg(api.database_url) as conn:
        row = conn.execute(
            "SELECT state, resource_id FROM idempotency_keys WHERE principal_id = %s AND key = %s",
            (merchant_id, "deferred-1"),
        ).fetchone()
    assert row == ("completed", first.json()["id"])
    again = api.call("POST", "/v1/payments", key, json=body, idempotency_key="deferred-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = api.call(
        "POST", "/v1/payments", key, json={**body, "amount": 701}, idempotency_key="deferred-1"
    )
    assert other.status_code == 422


def test_payment_refused_before_its_transaction_stores_its_answer(api: Api) -> None:
    """A payment refused before it claimed its key (a suspended merchant: 403) stores that
    answer under the key, as a claimed request would: the retry replays it even after the
    merchant is active again."""
    admin = api.operator()
    merchant_id, key = api.merchant(admin)
    body = {"amount": 700, "currency": "usd", "source": {"card": CARD}}
    suspended = api.call(
        "PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": "suspended"}
    )
    assert suspended.status_code == 200
    refused = api.call("POST", "/v1/payments", key, json=body, idempotency_key="refused-1")
    assert refused.status_code == 403
    api.call("PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": "active"})
    replay = api.call("POST", "/v1/payments", key, json=body, idempotency_key="refused-1")
    assert replay.status_code == 403
    assert replay.headers["Idempotent-Replayed"] == "true"
