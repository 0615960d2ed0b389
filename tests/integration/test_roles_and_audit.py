"""Role matrix for operator endpoints, and the append-only audit log."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import Api, pg

ROLES = ("admin", "support", "finance", "security")
MERCHANT = {"name": "Acme", "country": "US", "mcc": "5411", "default_currency": "usd"}

# endpoint -> roles that may call it (all others: 403)
ALLOWED = {
    "create_merchant": {"admin"},
    "list_merchants": set(ROLES),
    "get_merchant": set(ROLES),
    "patch_status": {"admin"},
    "patch_terms": {"admin", "finance"},
    "create_key": {"admin", "security"},
    "list_keys": {"admin", "security"},
    "revoke_key": {"admin", "security"},
    "create_operator_key": {"admin", "security"},
    "list_audit": {"admin", "security"},
}


def _call(api: Api, endpoint: str, key: str, merchant_id: str, key_id: str) -> int:
    calls = {
        "create_merchant": ("POST", "/v1/merchants", MERCHANT),
        "list_merchants": ("GET", "/v1/merchants", None),
        "get_merchant": ("GET", f"/v1/merchants/{merchant_id}", None),
        "patch_status": ("PATCH", f"/v1/merchants/{merchant_id}", {"status": "active"}),
        "patch_terms": ("PATCH", f"/v1/merchants/{merchant_id}", {"payout_delay_days": 1}),
        "create_key": ("POST", f"/v1/merchants/{merchant_id}/keys", None),
        "list_keys": ("GET", f"/v1/merchants/{merchant_id}/keys", None),
        "revoke_key": ("DELETE", f"/v1/merchants/{merchant_id}/keys/{key_id}", None),
        "create_operator_key": ("POST", "/v1/operator_keys", {"role": "support"}),
        "list_audit": ("GET", "/v1/audit_events", None),
    }
    method, path, body = calls[endpoint]
    return api.call(method, path, key, json=body).status_code


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(api: Api, role: str) -> None:
    admin = api.operator("admin")
    merchant_id, _ = api.merchant(admin)
    key_id = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin).json()["id"]
    key = api.operator(role)
    for endpoint, allowed in ALLOWED.items():
        status = _call(api, endpoint, key, merchant_id, key_id)
        expected = {200, 201} if role in allowed else {403}
        assert status in expected, (endpoint, role, status)


def test_merchant_key_on_operator_endpoints_is_403(api: Api) -> None:
    admin = api.operator("admin")
    merchant_id, secret = api.merchant(admin)
    key_id = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin).json()["id"]
    for endpoint in ALLOWED:
        status = _call(api, endpoint, secret, merchant_id, key_id)
        assert status == 403, endpoint


def test_audited_actions_write_rows(api: Api) -> None:
    admin = api.operator("admin")
    merchant_id = api.call("POST", "/v1/merchants", admin, json=MERCHANT).json()["id"]
    key = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin).json()
    api.call("DELETE", f"/v1/merchants/{merchant_id}/keys/{key['id']}", admin)
    api.call("PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": "suspended"})
    api.call("GET", "/v1/merchants", "sk_test_doesnotexist000000")
    events = api.call("GET", "/v1/audit_events", admin, params={"limit": 100}).json()["data"]
    by_type = {e["type"]: e for e in events}
    for expected in (
        "merchant.created",
        "api_key.created",
        "api_key.revoked",
        "merchant.updated",
        "merchant.status_changed",
        "auth.failed",
    ):
        assert expected in by_type, expected
    status_change = by_type["merchant.status_changed"]
    assert status_change["resource"] == merchant_id
    assert status_change["details"] == {"from": "active", "to": "suspended"}
    assert status_change["actor"].startswith("operator:key_")
    assert status_change["origin_ip"] == "127.0.0.1" and status_change["outcome"] == "success"
    assert by_type["auth.failed"]["outcome"] == "failure"
    filtered = api.call(
        "GET", "/v1/audit_events", admin, params={"type": "api_key.created"}
    ).json()["data"]
    assert [e["resource"] for e in filtered] == [key["id"]]
    # No secret ever reaches the audit trail.
    assert key["secret"] not in str(events)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'success'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
def test_audit_log_is_append_only(api: Api, statement: str) -> None:
    admin = api.operator("admin")
    api.call("POST", "/v1/merchants", admin, json=MERCHANT)
    with pg(api.database_url) as conn:
        before = conn.execute("SELECT count(*) FROM audit_events").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM audit_events").fetchone() == before


def test_audit_columns_are_not_null(api: Api) -> None:
    with pg(api.database_url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            "'audit_events' AND is_nullable = 'YES'"
        ).fetchall()
    assert rows == []
