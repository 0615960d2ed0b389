"""The webhook endpoints API: shapes, the secret shown once (masked in a replay, never at rest
in clear), owners and roles, hostile URLs refused with 400, rotation and redelivery rules."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.test_payments_api import pay
from tests.support import Api, pg

PUBLIC = "https://1.1.1.1/hooks"


def create(api: Api, key: str, **body: Any) -> Any:
    payload = {"url": PUBLIC, "enabled_events": ["payment.captured"], **body}
    return api.call("POST", "/v1/webhook_endpoints", key, json=payload)


def test_create_shows_the_secret_once_and_stores_it_sealed(api: Api) -> None:
    merchant_id, key = api.merchant()
    idem = str(uuid.uuid4())
    body = {"url": PUBLIC, "enabled_events": ["payment.captured"], "description": "orders"}
    created = api.call("POST", "/v1/webhook_endpoints", key, json=body, idempotency_key=idem)
    assert created.status_code == 201, created.text
    shown = created.json()
    secret = shown.pop("secret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert shown == {
        "id": shown["id"],
        "object": "webhook_endpoint",
        "url": PUBLIC,
        "enabled_events": ["payment.captured"],
        "status": "enabled",
        "disabled_reason": None,
        "description": "orders",
        "merchant": merchant_id,
        "created": shown["created"],
    }
    read = api.call("GET", f"/v1/webhook_endpoints/{shown['id']}", key).json()
    assert "secret" not in read and read == shown
    replay = api.call("POST", "/v1/webhook_endpoints", key, json=body, idempotency_key=idem)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["secret"] == "whsec_[REDACTED]"
    with pg(api.database_url) as conn:
        everything = "\n".join(
            str(row)
            for table in ("webhook_endpoints", "webhook_endpoint_secrets", "vault_secrets")
            for row in conn.execute(f"SELECT t::text FROM {table} t").fetchall()
        )
        stored = conn.execute("SELECT response_body FROM idempotency_keys").fetchall()
    assert secret not in everything and secret.encode().hex() not in everything
    assert all(secret.encode() not in bytes(row[0]) for row in stored)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://127.0.0.1/hooks", "url_not_allowed"),
        ("https://10.0.0.1/hooks", "url_not_allowed"),
        ("https://169.254.169.254/latest/meta-data/", "url_not_allowed"),
        ("https://100.64.0.1/hooks", "url_not_allowed"),
        ("https://[::1]/hooks", "url_not_allowed"),
        ("https://[::ffff:127.0.0.1]/hooks", "url_not_allowed"),
        ("http://[::ffff:127.0.0.1]/hooks", "parameter_invalid"),  # https, says the schema
        ("https://[fd00:ec2::254]/hooks", "url_not_allowed"),
        ("https://2130706433/hooks", "url_not_allowed"),
        ("https://0177.0.0.1/hooks", "url_not_allowed"),
        ("http://1.1.1.1/hooks", "parameter_invalid"),  # without the development switch
        ("https://no-such-host.invalid/hooks", "url_unresolvable"),
        ("https://user:pw@1.1.1.1/hooks", "url_not_allowed"),
    ],
)
def test_hostile_urls_are_400_and_leave_nothing(api: Api, url: str, code: str) -> None:
    _, key = api.merchant()
    refused = create(api, key, url=url)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == (code, "url")
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM webhook_endpoints").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM vault_secrets").fetchone() == (0,)


def test_owners_and_roles(api: Api) -> None:
    admin = api.operator("admin")
    _, key_a = api.merchant(admin)
    _, key_b = api.merchant(admin)
    mine = create(api, key_a).json()
    platform = create(api, admin, enabled_events=["settlement_run.completed"]).json()
    assert platform["merchant"] is None
    # Another merchant's endpoint, or a platform one, is 404 to a merchant key, like none.
    for other in (mine["id"], platform["id"]):
        for method, path in (
            ("GET", f"/v1/webhook_endpoints/{other}"),
            ("PATCH", f"/v1/webhook_endpoints/{other}"),
            ("DELETE", f"/v1/webhook_endpoints/{other}"),
            ("POST", f"/v1/webhook_endpoints/{other}/rotate_secret"),
            ("GET", f"/v1/webhook_endpoints/{other}/deliveries"),
        ):
            r = api.call(method, path, key_b, json={} if method != "GET" else None)
            if other == mine["id"] or method != "DELETE":
                assert r.status_code == 404, (method, path, r.text)
    assert api.call("GET", "/v1/webhook_endpoints", key_b).json()["data"] == []
    # Admins see every endpoint; other roles may not manage webhooks.
    listed = api.call("GET", "/v1/webhook_endpoints", admin).json()["data"]
    assert {e["id"] for e in listed} == {mine["id"], platform["id"]}
    support = api.operator("support")
    assert api.call("GET", "/v1/webhook_endpoints", support).status_code == 403
    assert create(api, support).status_code == 403


def test_event_types_follow_the_owner(api: Api) -> None:
    admin = api.operator("admin")
    _, key = api.merchant(admin)
    for who, events in ((key, ["settlement_run.completed"]), (admin, ["payment.captured"])):
        refused = create(api, who, enabled_events=events)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "enabled_events[0]"
    assert create(api, key, enabled_events=["payment.nope"]).status_code == 400
    assert create(api, key, enabled_events=[]).status_code == 400
    everything = create(api, key, enabled_events=["payment.captured", "*"]).json()
    assert everything["enabled_events"] == ["*"]


def test_update_rotate_and_delete(api: Api) -> None:
    _, key = api.merchant()
    endpoint = create(api, key).json()
    path = f"/v1/webhook_endpoints/{endpoint['id']}"
    patched = api.call(
        "PATCH",
        path,
        key,
        json={"enabled_events": ["payout.paid"], "status": "disabled", "description": "x"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "disabled"
    assert patched.json()["disabled_reason"] == "disabled"
    assert api.call("PATCH", path, key, json={"url": "https://10.0.0.1/"}).status_code == 400
    assert api.call("PATCH", path, key, json={"status": "paused"}).status_code == 400
    cleared = api.call("PATCH", path, key, json={"description": "", "status": "enabled"}).json()
    assert (cleared["description"], cleared["disabled_reason"]) == (None, None)
    rotated = api.call("POST", f"{path}/rotate_secret", key, json={"expire_previous_in_s": 60})
    assert rotated.status_code == 200 and rotated.json()["secret"] != endpoint["secret"]
    too_long = api.call("POST", f"{path}/rotate_secret", key, json={"expire_previous_in_s": 10**7})
    assert too_long.status_code == 400
    deleted = api.call("DELETE", path, key)
    assert deleted.json() == {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}
    assert api.call("GET", path, key).status_code == 404
    with pg(api.database_url) as conn:  # the secrets are destroyed with it
        assert conn.execute("SELECT count(*) FROM vault_secrets").fetchone() == (0,)


def test_redeliver_rules(api: Api) -> None:
    admin = api.operator("admin")
    _, key_a = api.merchant(admin)
    _, key_b = api.merchant(admin)
    payment = pay(api, key_a)
    (event,) = api.call("GET", "/v1/events", key_a, params={"object": payment["id"]}).json()["data"]
    mine = create(api, key_a).json()
    theirs = create(api, key_b).json()
    platform = create(api, admin, enabled_events=["*"]).json()
    path = f"/v1/events/{event['id']}/redeliver"
    assert api.call("POST", path, key_a, json={"endpoint": theirs["id"]}).status_code == 404
    assert api.call("POST", path, key_b, json={"endpoint": theirs["id"]}).status_code == 404
    mismatch = api.call("POST", path, admin, json={"endpoint": platform["id"]})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "endpoint_mismatch"
    api.call("PATCH", f"/v1/webhook_endpoints/{mine['id']}", key_a, json={"status": "disabled"})
    assert api.call("POST", path, key_a, json={"endpoint": mine["id"]}).status_code == 409
    api.call("PATCH", f"/v1/webhook_endpoints/{mine['id']}", key_a, json={"status": "enabled"})
    queued = api.call("POST", path, key_a, json={"endpoint": mine["id"]})
    assert queued.status_code == 202 and queued.json()["id"] == event["id"]
    with pg(api.database_url) as conn:
        assert conn.execute(
            "SELECT endpoint_id, redelivery, status FROM webhook_deliveries"
        ).fetchall() == [(mine["id"], True, "pending")]
