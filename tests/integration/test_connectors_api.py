"""The connectors API: registering, reading and changing connectors; credentials encrypted at
rest and masked in every answer; who may do what; a change reaching another process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.config import Settings
from clearport.connectors.directory import CREDENTIALS_PURPOSE
from clearport.vault.domain import PLATFORM_OWNER
from clearport.wiring import Container, build_container
from tests.integration.test_cache_invalidation import DELIVERY_BOUND_S
from tests.sentinel import SentinelScan
from tests.support import Api, pg

API_KEY = "acq_sentinel_7f3a9c2e51d04b68"
HTTP_SETTINGS = {"url": "http://127.0.0.1:9", "api_key": API_KEY, "timeout_ms": 2500}


def register(api: Api, admin: str, name: str = "acquirer-a", **body: object) -> dict[str, object]:
    r = api.call(
        "POST",
        "/v1/connectors",
        admin,
        json={"name": name, "type": "http_acquirer", "settings": HTTP_SETTINGS, **body},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _stored(api: Api, connector_id: str) -> tuple[dict[str, object], str | None]:
    with pg(api.database_url) as conn:
        row = conn.execute(
            "SELECT settings, credentials_id FROM connectors WHERE id = %s", (connector_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_register_read_and_change_with_credentials_masked(api: Api, log_file: Path) -> None:
    admin = api.operator("admin")
    created = register(api, admin)
    assert created["object"] == "connector"
    assert str(created["id"]).startswith("con_")
    assert (created["status"], created["breaker"]) == ("enabled", "closed")
    assert created["settings"] == {
        "url": "http://127.0.0.1:9",
        "api_key": "****4b68",
        "timeout_ms": 2500,
        "connect_timeout_ms": 2000,
        "max_connections": 16,
    }
    connector_id = str(created["id"])
    settings, credentials_id = _stored(api, connector_id)
    assert "api_key" not in settings and credentials_id is not None
    with pg(api.database_url) as conn:
        sealed = conn.execute(
            "SELECT purpose, ciphertext FROM vault_secrets WHERE id = %s", (credentials_id,)
        ).fetchone()
        audited = conn.execute(
            "SELECT event_type FROM audit_events WHERE resource = %s ORDER BY seq",
            (connector_id,),
        ).fetchall()
    assert sealed is not None and sealed[0] == CREDENTIALS_PURPOSE
    assert API_KEY.encode() not in bytes(sealed[1])
    assert audited == [("connector.created",)]

    listed = api.call("GET", "/v1/connectors", admin).json()
    assert [c["id"] for c in listed["data"]] == [connector_id]
    assert api.call("GET", f"/v1/connectors/{connector_id}", admin).json() == created

    # The masked credential sent back keeps the credential.
    kept = api.call(
        "PATCH",
        f"/v1/connectors/{connector_id}",
        admin,
        json={"settings": {**created["settings"], "timeout_ms": 1234}},  # type: ignore[dict-item]
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["settings"]["timeout_ms"] == 1234
    assert _stored(api, connector_id)[1] == credentials_id
    # A new credential replaces the old one, whose sealed row goes.
    replaced = api.call(
        "PATCH",
        f"/v1/connectors/{connector_id}",
        admin,
        json={"settings": {"api_key": "acq_rotated_00000000000000001111"}},
    ).json()
    assert replaced["settings"]["api_key"] == "****1111"
    new_credentials = _stored(api, connector_id)[1]
    assert new_credentials not in (None, credentials_id)
    with pg(api.database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM vault_secrets WHERE id = %s", (credentials_id,)
        ).fetchone()
    assert left == (0,)
    disabled = api.call(
        "PATCH", f"/v1/connectors/{connector_id}", admin, json={"status": "disabled"}
    ).json()
    assert disabled["status"] == "disabled"
    assert disabled["settings"]["url"] == "http://127.0.0.1:9"

    scan = SentinelScan()
    scan.add_secret(API_KEY)
    scan.add_secret("acq_rotated_00000000000000001111")
    scan.assert_clean(api.database_url, log_file)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"name": "x", "type": "carrier_pigeon", "settings": {}}, 400, "type"),
        ({"name": "x", "type": "http_acquirer", "settings": {}}, 400, "settings[url]"),
        (
            {"name": "x", "type": "http_acquirer", "settings": {"url": "ftp://host"}},
            400,
            "settings[url]",
        ),
        (
            {"name": "x", "type": "iso8583", "settings": {"host": "h", "port": 1, "pin": 1}},
            400,
            "settings[pin]",
        ),
        (
            {"name": "x", "type": "iso8583", "settings": {"host": "h", "port": 70000}},
            400,
            "settings[port]",
        ),
        (
            {"name": "x", "type": "iso8583", "settings": {"host": "h", "port": "1"}},
            400,
            "settings[port]",
        ),
        ({"name": "Not A Name", "type": "simulator"}, 400, "name"),
        ({"name": "simulator", "type": "simulator"}, 409, "name"),
    ],
)
def test_bad_registrations_are_refused_naming_the_parameter(
    api: Api, body: dict[str, object], status: int, param: str
) -> None:
    admin = api.operator("admin")
    r = api.call("POST", "/v1/connectors", admin, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param
    with pg(api.database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM connectors").fetchone()
        sealed = conn.execute("SELECT count(*) FROM vault_secrets").fetchone()
    assert rows == sealed == (0,)  # nothing half written


def test_a_name_is_taken_once(api: Api) -> None:
    admin = api.operator("admin")
    register(api, admin)
    again = api.call(
        "POST",
        "/v1/connectors",
        admin,
        json={"name": "acquirer-a", "type": "simulator", "settings": {}},
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_connector"
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM vault_secrets").fetchone() == (1,)


def test_every_operator_reads_only_admin_writes(api: Api) -> None:
    admin = api.operator("admin")
    connector_id = register(api, admin)["id"]
    _, merchant_key = api.merchant(admin)
    for role in ("support", "finance", "security"):
        key = api.operator(role)
        assert api.call("GET", "/v1/connectors", key).status_code == 200
        assert api.call("GET", f"/v1/connectors/{connector_id}", key).status_code == 200
        refused = api.call(
            "PATCH", f"/v1/connectors/{connector_id}", key, json={"status": "disabled"}
        )
        assert refused.status_code == 403
        created = api.call("POST", "/v1/connectors", key, json={"name": "x", "type": "simulator"})
        assert created.status_code == 403
    assert api.call("GET", "/v1/connectors", merchant_key).status_code == 403


@pytest.fixture
async def registry_process(
    database_url: str, settings: Settings, tmp_path: Path
) -> AsyncIterator[Container]:
    """Another process routing by the registry (no fixed order), trusting its copy for an hour:
    only an announcement can tell it of a change."""
    local = settings.model_copy(
        update={"connectors_default_order": None, "connectors_cache_ttl_s": 3600.0}
    )
    container = build_container(local, database_url)
    await container.start()
    try:
        yield container
    finally:
        await container.stop()


async def test_a_change_reaches_another_process_before_its_next_payment(
    api: Api, registry_process: Container
) -> None:
    directory = registry_process.connector_directory

    async def until(expected: tuple[str, ...]) -> None:
        deadline = time.monotonic() + DELIVERY_BOUND_S
        while (names := (await directory.candidates()).names) != expected:
            assert time.monotonic() < deadline, f"still {names}, not {expected}"
            await asyncio.sleep(0.02)

    await until(("simulator",))  # nothing registered yet: the built-in simulator
    admin = api.operator("admin")
    first = register(api, admin, "acquirer-a")
    register(api, admin, "acquirer-b")
    await until(("acquirer-a", "acquirer-b"))  # oldest first
    api.call("PATCH", f"/v1/connectors/{first['id']}", admin, json={"status": "disabled"})
    await until(("acquirer-b",))
    # A disabled connector still answers for its own payments.
    assert await directory.connector("acquirer-a") is not None


async def test_connector_credentials_survive_a_kek_rotation(
    api: Api, registry_process: Container
) -> None:
    """Sealed under the platform's DEK, which a KEK rotation re-wraps like a merchant's."""
    admin = api.operator("admin")
    connector_id = str(register(api, admin)["id"])
    _, credentials_id = _stored(api, connector_id)
    assert credentials_id is not None
    result = await registry_process.vault.rotate_kek(SYSTEM_CLI, Origin("test"))
    assert result.finished
    with pg(api.database_url) as conn:
        keks = conn.execute(
            "SELECT DISTINCT kek_id FROM vault_deks WHERE merchant_id = %s AND status = 'active'",
            (PLATFORM_OWNER,),
        ).fetchall()
    assert keks == [(result.target,)]
    registry_process.vault.cached_data_keys.clear()  # as a fresh process: unwrap again
    async with registry_process.db.autocommit() as tx:
        opened = await registry_process.vault.open_secrets(tx, PLATFORM_OWNER, [credentials_id])
    assert json.loads(opened[credentials_id]) == {"api_key": API_KEY}
    # And the connector is built from them.
    assert await registry_process.connector_directory.connector("acquirer-a") is not None
