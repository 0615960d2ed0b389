"""KEK rotation calls the key provider (KMS, over the network) with no transaction open and no
row locked, and still resumes and finishes exactly as before: rows changed between the claim and
the write (a shred, another worker) are left as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.audit.service import Auditor
from clearport.audit.store import PgAuditLog
from clearport.core.clock import SystemClock
from clearport.db.database import Database
from clearport.db.invalidation import PgInvalidations
from clearport.merchants.store import PgMerchantRepository
from clearport.vault.envelope import AesGcmCipher, TtlDekCache
from clearport.vault.keyring import LocalKeyProvider
from clearport.vault.service import VaultService
from clearport.vault.store import PgVaultRepository
from tests.integration.test_vault_rotation import NUMBERS, card, rows
from tests.support import Api, pg

ORIGIN = Origin("test")

# Client backends of this database inside a transaction, other than the one asking.
# The vault under test's own connections (its pool names them): the test server's background
# work (rate-limit exchange, workers) opens short transactions of its own on the same database,
# which once made this count 1 at a call the rotation did outside any transaction.
VAULT_APPLICATION = "vault-under-test"
OPEN_TRANSACTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    f" AND application_name = '{VAULT_APPLICATION}' AND xact_start IS NOT NULL"
)


@dataclass
class ObservedKeyProvider:
    """The real local keyring, looked at from PostgreSQL each time a DEK is unwrapped or
    wrapped: how many transactions are open at that moment, and an optional step to run then
    (another session's write, as a concurrent shred would do it)."""

    inner: LocalKeyProvider
    database_url: str
    open_during_calls: list[int] = field(default_factory=list)
    on_wrap: Callable[[Mapping[str, str]], None] | None = None

    @property
    def name(self) -> str:
        return self.inner.name

    def _observe(self) -> None:
        with pg(self.database_url) as conn:
            row = conn.execute(OPEN_TRANSACTIONS).fetchone()
        assert row is not None
        self.open_during_calls.append(int(row[0]))

    async def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes, str]:
        return await self.inner.generate_data_key(context)

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> tuple[bytes, str]:
        self._observe()
        if self.on_wrap is not None:
            self.on_wrap(context)
        return await self.inner.wrap(plaintext, context)

    async def unwrap(self, wrapped: bytes, kek_id: str, context: Mapping[str, str]) -> bytes:
        self._observe()
        return await self.inner.unwrap(wrapped, kek_id, context)

    async def current_kek_id(self) -> str:
        return await self.inner.current_kek_id()

    async def rotate_kek(self) -> str:
        return await self.inner.rotate_kek()

    async def retire_kek(self, kek_id: str) -> bool:
        return await self.inner.retire_kek(kek_id)

    async def fingerprint_key(self) -> bytes:
        return await self.inner.fingerprint_key()

    async def kek_ids(self) -> list[str]:
        return await self.inner.kek_ids()


@dataclass
class Vault:
    service: VaultService
    provider: ObservedKeyProvider
    db: Database

    async def tokenize(self, merchant_id: str, number: str) -> str:
        async with self.db.transaction() as tx:
            return (await self.service.tokenize(tx, merchant_id, card(number))).token_id

    async def reveal(self, merchant_id: str, token_id: str) -> str:
        async with self.db.transaction() as tx:
            revealed = await self.service.reveal_for_connector(
                tx, merchant_id, token_id, payment_id="pay_test", connector="simulator"
            )
        return revealed.number.reveal()


@pytest.fixture
async def vault(api: Api, tmp_path: Path) -> AsyncIterator[Vault]:
    provider = ObservedKeyProvider(LocalKeyProvider(tmp_path / "keyring.json"), api.database_url)
    separator = "&" if "?" in api.database_url else "?"
    db = Database(
        f"{api.database_url}{separator}application_name={VAULT_APPLICATION}",
        min_size=1,
        max_size=4,
    )
    await db.open()
    clock = SystemClock()
    service = VaultService(
        db,
        PgVaultRepository(),
        PgMerchantRepository(),
        provider,
        AesGcmCipher(),
        TtlDekCache(),
        Auditor(PgAuditLog(), clock),
        clock,
        PgInvalidations(),
    )
    try:
        yield Vault(service, provider, db)
    finally:
        await db.close()


def kek_ids_of(api: Api) -> set[Any]:
    return {r[0] for r in rows(api, "SELECT DISTINCT kek_id FROM vault_deks")}


async def test_rotate_kek_calls_the_provider_outside_transactions_and_resumes(
    api: Api, vault: Vault
) -> None:
    admin = api.operator()
    merchants = [api.merchant(admin)[0] for _ in range(3)]
    tokens = {m: await vault.tokenize(m, NUMBERS[i]) for i, m in enumerate(merchants)}
    old_keks = kek_ids_of(api)

    first = await vault.service.rotate_kek(SYSTEM_CLI, ORIGIN, batch_size=1, max_batches=2)
    assert (first.finished, first.resumed, first.processed) == (False, False, 2)
    assert rows(api, "SELECT done_count FROM vault_rotations WHERE id = %s", first.rotation_id) == [
        (2,)
    ]
    second = await vault.service.rotate_kek(SYSTEM_CLI, ORIGIN, batch_size=1)
    assert second.resumed and second.finished and second.rotation_id == first.rotation_id
    assert second.processed == 1
    assert set(second.retired) == old_keks
    assert kek_ids_of(api) == {first.target}
    # One unwrap and one wrap per DEK, and not one of them inside a transaction.
    assert vault.provider.open_during_calls == [0] * 2 * len(merchants)
    assert rows(api, "SELECT done_count FROM vault_rotations WHERE id = %s", first.rotation_id) == [
        (3,)
    ]
    vault.service._cache.clear()  # type: ignore[attr-defined]
    for i, merchant_id in enumerate(merchants):
        assert await vault.reveal(merchant_id, tokens[merchant_id]) == NUMBERS[i]


async def test_rotate_kek_leaves_a_dek_destroyed_between_claim_and_write(
    api: Api, vault: Vault
) -> None:
    admin = api.operator()
    doomed, survivor = api.merchant(admin)[0], api.merchant(admin)[0]
    survivor_token = await vault.tokenize(survivor, NUMBERS[0])
    await vault.tokenize(doomed, NUMBERS[1])

    def shred_doomed(context: Mapping[str, str]) -> None:
        # Another session destroys the DEK while the rotation holds it unwrapped. With a row
        # lock held across the provider call this would wait (lock_timeout turns it into an
        # error instead of a hang).
        if context["merchant"] != doomed:
            return
        with pg(api.database_url) as conn:
            conn.execute("SET lock_timeout = '2s'")
            conn.execute(
                "UPDATE vault_deks SET status = 'destroyed', wrapped_key = NULL, kek_id = NULL,"
                " destroyed_at = now() WHERE merchant_id = %s",
                (doomed,),
            )

    vault.provider.on_wrap = shred_doomed
    result = await vault.service.rotate_kek(SYSTEM_CLI, ORIGIN)
    assert result.finished and result.processed == 1
    assert rows(
        api,
        "SELECT status, wrapped_key IS NULL, kek_id FROM vault_deks WHERE merchant_id = %s",
        doomed,
    ) == [("destroyed", True, None)]
    assert rows(api, "SELECT kek_id FROM vault_deks WHERE merchant_id = %s", survivor) == [
        (result.target,)
    ]
    assert rows(
        api, "SELECT done_count FROM vault_rotations WHERE id = %s", result.rotation_id
    ) == [(1,)]
    vault.service._cache.clear()  # type: ignore[attr-defined]
    assert await vault.reveal(survivor, survivor_token) == NUMBERS[0]
