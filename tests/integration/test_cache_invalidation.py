"""Cache invalidation across processes (decision 0019): a change announced in one container's
transaction reaches every other container's caches once it commits, never if it rolls back, and
a listener that lost its connection clears its caches and listens again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.config import Settings
from clearport.core.invalidation import CacheTopic
from clearport.db.invalidation import CHANNEL, PgInvalidations, decode, encode
from clearport.wiring import Container, build_container
from tests.integration.test_vault_rotation import NUMBERS, close, tokenize
from tests.support import Api, pg

DELIVERY_BOUND_S = 5.0
ORIGIN = Origin("test")


class Recorder:
    """A cache that only writes down what it is told."""

    def __init__(self) -> None:
        self.evicted: list[str] = []
        self.cleared = 0

    def evict(self, key: str) -> None:
        self.evicted.append(key)

    def clear(self) -> None:
        self.cleared += 1


async def eventually(condition: Callable[[], bool], what: str) -> float:
    """Seconds until `condition` held; fails after DELIVERY_BOUND_S."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > DELIVERY_BOUND_S:
            raise AssertionError(f"not within {DELIVERY_BOUND_S} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def other(database_url: str, settings: Settings) -> AsyncIterator[Container]:
    """Another process's worth of services on the same database, listening."""
    container = build_container(settings, database_url)
    await container.start()
    try:
        yield container
    finally:
        await container.stop()


def _wrapped_dek(api: Api, merchant_id: str) -> bytes:
    with pg(api.database_url) as conn:
        row = conn.execute(
            "SELECT wrapped_key FROM vault_deks WHERE merchant_id = %s AND version = 1",
            (merchant_id,),
        ).fetchone()
    assert row is not None
    return bytes(row[0])


async def test_a_shred_empties_every_processs_dek_cache(
    api: Api, vault_container: Container, other: Container
) -> None:
    merchant_id, _ = api.merchant()
    kept_id, _ = api.merchant()
    await tokenize(other, merchant_id, NUMBERS[0])  # the other process caches the DEK
    await tokenize(other, kept_id, NUMBERS[1])
    wrapped, kept_wrapped = _wrapped_dek(api, merchant_id), _wrapped_dek(api, kept_id)
    cache = other.vault._cache  # type: ignore[attr-defined]
    assert cache.get(merchant_id, 1, wrapped) is not None

    await close(vault_container, merchant_id)
    assert await vault_container.vault.shred(SYSTEM_CLI, ORIGIN, merchant_id) == 1
    await eventually(
        lambda: cache.get(merchant_id, 1, wrapped) is None, "the other process forgot the DEK"
    )
    assert cache.get(kept_id, 1, kept_wrapped) is not None  # only that merchant's


async def test_revocations_are_announced_to_every_process(api: Api, other: Container) -> None:
    keys = Recorder()
    other.invalidations.subscribe(CacheTopic.API_KEY, keys)
    admin = api.operator("admin")
    merchant_id, _ = api.merchant(admin)
    key = api.call("POST", f"/v1/merchants/{merchant_id}/keys", admin).json()
    operator = api.call("POST", "/v1/operator_keys", admin, json={"role": "support"}).json()
    merchant_key_path = f"/v1/merchants/{merchant_id}/keys/{key['id']}"
    for path in (merchant_key_path, f"/v1/operator_keys/{operator['id']}"):
        assert api.call("DELETE", path, admin).status_code == 200
    await eventually(lambda: len(keys.evicted) == 2, "both revocations announced")
    assert keys.evicted == [key["id"], operator["id"]]
    # Revoking again changes nothing and announces nothing.
    assert api.call("DELETE", merchant_key_path, admin).status_code == 200
    await asyncio.sleep(0.3)
    assert keys.evicted == [key["id"], operator["id"]]


async def test_an_announcement_is_delivered_on_commit_only(
    vault_container: Container, other: Container
) -> None:
    seen = Recorder()
    other.invalidations.subscribe(CacheTopic.DATA_KEYS, seen)
    publisher = PgInvalidations()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with vault_container.db.transaction() as tx:
            await publisher.publish(tx, CacheTopic.DATA_KEYS, "mer_rolled_back")
            raise Rollback
    async with vault_container.db.transaction() as tx:
        await publisher.publish(tx, CacheTopic.DATA_KEYS, "mer_pending")
        await asyncio.sleep(0.3)
        assert "mer_pending" not in seen.evicted  # not before the commit
    await eventually(lambda: "mer_pending" in seen.evicted, "the committed one")
    assert "mer_rolled_back" not in seen.evicted


async def test_what_is_not_an_announcement_is_ignored(database_url: str, other: Container) -> None:
    seen = Recorder()
    other.invalidations.subscribe(CacheTopic.DATA_KEYS, seen)
    with pg(database_url) as conn:
        for payload in ("not json", "[1]", '{"topic": "routing", "key": "x"}', '{"topic": 1}'):
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, encode(CacheTopic.DATA_KEYS, "mer_y")))
    await eventually(lambda: seen.evicted == ["mer_y"], "the one good announcement")
    assert decode(encode(CacheTopic.API_KEY, "key_1")) == ("api_key", "key_1")


async def test_a_lost_listener_clears_its_caches_and_listens_again(
    database_url: str, vault_container: Container, other: Container
) -> None:
    seen = Recorder()
    other.invalidations.subscribe(CacheTopic.API_KEY, seen)
    listener = other.invalidation_listener
    before = listener.server_pid
    assert before is not None
    with pg(database_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (before,))
    await eventually(lambda: seen.cleared >= 2, "cleared when lost and when back")
    await eventually(
        lambda: listener.server_pid not in (None, before), "listening on a new session"
    )
    async with vault_container.db.transaction() as tx:
        await PgInvalidations().publish(tx, CacheTopic.API_KEY, "key_after")
    await eventually(lambda: seen.evicted == ["key_after"], "heard after reconnecting")
