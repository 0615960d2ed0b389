"""Who may create operator keys of which role, over HTTP: every granter role x every target
role (docs/decisions/0018-role-grants.md). A refused creation writes no key and no success."""

from __future__ import annotations

import pytest

from tests.support import Api, pg

ROLES = ("admin", "support", "finance", "security")

# granter -> the roles it may create keys for; every other pair is 403 permission_error.
GRANTS = {
    "admin": {"admin", "support", "finance", "security"},
    "support": set(),
    "finance": set(),
    "security": {"support", "security"},
}

# One request each role may make and the roles below it may not: proves the new key has the
# role it was created with, no more.
PROBE = {
    "admin": ("POST", "/v1/merchants"),
    "support": ("GET", "/v1/merchants"),
    "finance": ("GET", "/v1/settlements"),
    "security": ("GET", "/v1/audit_events"),
}


def _counts(api: Api) -> tuple[int, int]:
    with pg(api.database_url) as conn:
        keys = conn.execute("SELECT count(*) FROM api_keys").fetchone()
        created = conn.execute(
            "SELECT count(*) FROM audit_events WHERE event_type = 'operator_key.created' "
            "AND outcome = 'success'"
        ).fetchone()
    assert keys is not None and created is not None
    return int(keys[0]), int(created[0])


@pytest.mark.parametrize("granter", ROLES)
def test_operator_key_grant_matrix(api: Api, granter: str) -> None:
    key = api.operator(granter)
    for target in ROLES:
        before = _counts(api)
        r = api.call("POST", "/v1/operator_keys", key, json={"role": target})
        if target in GRANTS[granter]:
            assert r.status_code == 201, (granter, target, r.text)
            assert r.json()["role"] == target
            assert _counts(api) == (before[0] + 1, before[1] + 1)
            method, path = PROBE[target]
            body = (
                {"name": "Probe", "country": "US", "mcc": "5411", "default_currency": "usd"}
                if method == "POST"
                else None
            )
            probed = api.call(method, path, r.json()["secret"], json=body)
            assert probed.status_code in (200, 201), (granter, target, probed.text)
        else:
            assert r.status_code == 403, (granter, target, r.text)
            assert r.json()["error"]["type"] == "permission_error"
            assert _counts(api) == before, (granter, target)


def test_refused_escalation_is_audited_as_a_failure(api: Api) -> None:
    security = api.operator("security")
    refused = api.call("POST", "/v1/operator_keys", security, json={"role": "admin"})
    assert refused.status_code == 403
    assert refused.json()["error"]["param"] == "role"
    with pg(api.database_url) as conn:
        rows = conn.execute(
            "SELECT outcome, details FROM audit_events WHERE event_type = 'operator_key.created'"
        ).fetchall()
    assert rows == [("failure", {"role": "admin", "reason": "role_not_grantable"})]


def test_merchant_key_creates_no_operator_key(api: Api) -> None:
    _merchant, secret = api.merchant()
    before = _counts(api)
    for target in ROLES:
        r = api.call("POST", "/v1/operator_keys", secret, json={"role": target})
        assert r.status_code == 403, (target, r.text)
    assert _counts(api) == before
