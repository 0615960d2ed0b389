"""Idempotency compares the request's parameters, not its bytes (docs/decisions/0014), and keys
stored before request hashes carried a version keep replaying."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from tests.support import TEST_SERVER_SECRET, Api, pg

MERCHANT = {
    "name": "Acme",
    "country": "US",
    "mcc": "5411",
    "default_currency": "usd",
    "pricing": {
        "model": "blended",
        "percent_bps": 250,
        "fixed_minor": {"usd": 30},
        "brand_overrides": {"visa": {"percent_bps": 200, "fixed_minor": {"usd": 25}}},
    },
    "metadata": {"b": "2", "a": "é"},
}
COMPACT = json.dumps(MERCHANT, separators=(",", ":")).encode()
# The same parameters: keys reversed at every depth, other whitespace, é as an escape.
REORDERED = (
    b'{\n  "metadata" : {"a": "\\u00e9", "b": "2"},\r\n\t"pricing": {"brand_overrides": '
    b'{"visa": {"fixed_minor": {"usd": 25}, "percent_bps": 200}}, "fixed_minor": {"usd": 30},'
    b' "percent_bps": 250,'
    b' "model": "blended"}, "default_currency": "usd", "mcc": "5411", "country": "US",'
    b' "name": "Acme"  }\n'
)
JSON = {"Content-Type": "application/json"}


def post(
    api: Api, key: str, body: bytes, *, idempotency_key: str, path: str = "/v1/merchants"
) -> httpx.Response:
    return api.call("POST", path, key, content=body, headers=JSON, idempotency_key=idempotency_key)


def test_reordered_keys_and_other_whitespace_replay(api: Api) -> None:
    admin = api.operator()
    first = post(api, admin, COMPACT, idempotency_key="canon")
    again = post(api, admin, REORDERED, idempotency_key="canon")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (1,)


def test_a_different_value_at_depth_is_422(api: Api) -> None:
    admin = api.operator()
    assert post(api, admin, COMPACT, idempotency_key="deep").status_code == 201
    other = post(api, admin, REORDERED.replace(b"200", b"201"), idempotency_key="deep")
    assert other.status_code == 422
    assert other.json()["error"]["type"] == "idempotency_error"


def test_an_empty_body_and_an_empty_object_are_one_request(api: Api) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    path = f"/v1/merchants/{merchant_id}/keys"
    first = post(api, admin, b"", path=path, idempotency_key="empty")
    again = post(api, admin, b" {} ", path=path, idempotency_key="empty")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


def test_a_key_stored_with_the_old_byte_hash_still_replays(api: Api) -> None:
    admin = api.operator()
    with pg(api.database_url) as conn:  # an operator's scope is its key
        row = conn.execute("SELECT id FROM api_keys WHERE kind = 'operator'").fetchone()
    assert row is not None
    stored = b'{"id":"mer_stored_before_the_upgrade","object":"merchant"}'
    # What the server wrote before request hashes carried a version: the HMAC of the raw bytes.
    old_hash = hmac.new(TEST_SERVER_SECRET.encode(), digestmod=hashlib.sha256)
    for part in (b"POST", b"/v1/merchants", COMPACT):
        old_hash.update(len(part).to_bytes(8, "big"))
        old_hash.update(part)
    with pg(api.database_url) as conn:
        conn.execute(
            "INSERT INTO idempotency_keys (principal_id, key, request_hash, state,"
            " response_status, response_body, completed_at)"
            " VALUES (%s, 'old', %s, 'completed', 201, %s, now())",
            (row[0], old_hash.digest(), stored),
        )
    replay = post(api, admin, COMPACT, idempotency_key="old")
    assert replay.status_code == 201 and replay.content == stored
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = post(api, admin, COMPACT.replace(b"Acme", b"Acne"), idempotency_key="old")
    assert other.status_code == 422
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (0,)
