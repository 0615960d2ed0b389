"""Envelope primitives and the key-provider suite, run against the local keyring and against AWS
KMS (moto's server over HTTP, exactly as boto3 talks to AWS)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.audit.service import Auditor
from clearport.audit.store import PgAuditLog
from clearport.core.clock import SystemClock
from clearport.core.sensitive import SensitiveStr
from clearport.db.database import Database
from clearport.db.invalidation import PgInvalidations
from clearport.merchants.store import PgMerchantRepository
from clearport.vault.cards import CardInput
from clearport.vault.custody import combine_components, parse_component, split_master_key
from clearport.vault.domain import KeyMaterialUnavailable, dek_context
from clearport.vault.envelope import AesGcmCipher, TtlDekCache
from clearport.vault.keyring import LocalKeyProvider, master_key_path
from clearport.vault.kms import AwsKmsKeyProvider
from clearport.vault.service import VaultService
from clearport.vault.store import PgVaultRepository
from clearport.wiring import build_key_provider
from tests.aws_support import client

CONTEXT = dek_context("mer_A", 1)


def kms_client(moto_url: str) -> Any:
    return client("kms", moto_url)


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def new_kms_provider(moto_url: str, keyring: Path) -> tuple[AwsKmsKeyProvider, Any]:
    client = kms_client(moto_url)
    key_id = client.create_key(Description="clearport test KEK")["KeyMetadata"]["KeyId"]
    alias = f"alias/clearport-{os.urandom(4).hex()}"
    client.create_alias(AliasName=alias, TargetKeyId=key_id)
    provider = build_key_provider(
        "aws-kms",
        keyring_path=keyring,
        pgdata_dir=keyring.parent / "pgdata",
        master_key_hex=None,
        kms_key_id=alias,
        kms_region="us-east-1",
        kms_endpoint_url=moto_url,
    )
    assert isinstance(provider, AwsKmsKeyProvider)
    return provider, (client, alias)


@pytest.fixture(params=["local", "aws-kms"])
async def provider(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Any, Any]]:
    if request.param == "local":
        yield LocalKeyProvider(tmp_path / "keyring" / "keyring.json"), None
    else:
        moto_url = request.getfixturevalue("moto_url")
        yield new_kms_provider(moto_url, tmp_path / "keyring" / "kms.json")


async def rotate(provider: Any, extra: Any) -> str:
    """A new KEK: the local keyring makes one; with KMS the alias moves to a new key."""
    if extra is not None:
        client, alias = extra
        new_key = client.create_key(Description="next KEK")["KeyMetadata"]["KeyId"]
        client.update_alias(AliasName=alias, TargetKeyId=new_key)
    return str(await provider.rotate_kek())


# --- the provider suite ------------------------------------------------------------------------


async def test_generate_unwrap_round_trip(provider: tuple[Any, Any]) -> None:
    p, _ = provider
    plaintext, wrapped, kek_id = await p.generate_data_key(CONTEXT)
    assert len(plaintext) == 32
    assert plaintext not in wrapped
    assert kek_id == await p.current_kek_id()
    assert await p.unwrap(wrapped, kek_id, CONTEXT) == plaintext


async def test_wrong_context_is_refused(provider: tuple[Any, Any]) -> None:
    p, _ = provider
    _, wrapped, kek_id = await p.generate_data_key(CONTEXT)
    with pytest.raises(KeyMaterialUnavailable):
        await p.unwrap(wrapped, kek_id, dek_context("mer_B", 1))
    with pytest.raises(KeyMaterialUnavailable):
        await p.unwrap(wrapped, kek_id, dek_context("mer_A", 2))


async def test_rotation_keeps_old_wraps_readable(provider: tuple[Any, Any]) -> None:
    p, extra = provider
    plaintext, wrapped, old_kek = await p.generate_data_key(CONTEXT)
    new_kek = await rotate(p, extra)
    assert new_kek != old_kek
    assert await p.current_kek_id() == new_kek
    assert await p.unwrap(wrapped, old_kek, CONTEXT) == plaintext
    rewrapped, kek_id = await p.wrap(plaintext, CONTEXT)
    assert kek_id == new_kek
    assert await p.unwrap(rewrapped, kek_id, CONTEXT) == plaintext
    assert new_kek in await p.kek_ids()


async def test_fingerprint_key_is_stable_and_outside_the_database(
    provider: tuple[Any, Any], tmp_path: Path
) -> None:
    p, extra = provider
    key = await p.fingerprint_key()
    assert len(key) == 32
    assert await p.fingerprint_key() == key
    # A second process with the same configuration gets the same key.
    if extra is None:
        again: Any = LocalKeyProvider(tmp_path / "keyring" / "keyring.json")
    else:
        client, alias = extra
        again = AwsKmsKeyProvider(
            alias, region="us-east-1", keyring_path=tmp_path / "keyring" / "kms.json", client=client
        )
    assert await again.fingerprint_key() == key


# --- local keyring specifics -------------------------------------------------------------------


async def test_keyring_file_is_private_and_sealed(tmp_path: Path) -> None:
    path = tmp_path / "kr" / "keyring.json"
    provider = LocalKeyProvider(path)
    await provider.generate_data_key(CONTEXT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(master_key_path(path).stat().st_mode) == 0o600
    text = path.read_text()
    fp_key = await provider.fingerprint_key()
    assert fp_key.hex() not in text and fp_key not in path.read_bytes()
    # Without the master key the keyring does not open.
    master_key_path(path).unlink()
    with pytest.raises(KeyMaterialUnavailable):
        await LocalKeyProvider(path).current_kek_id()


async def test_retired_kek_material_is_destroyed(tmp_path: Path) -> None:
    provider = LocalKeyProvider(tmp_path / "keyring.json")
    _, wrapped, old = await provider.generate_data_key(CONTEXT)
    new = await provider.rotate_kek()
    assert not await provider.retire_kek(new)  # the current KEK is never retired
    assert await provider.retire_kek(old)
    assert old not in await provider.kek_ids()
    with pytest.raises(KeyMaterialUnavailable):
        await provider.unwrap(wrapped, old, CONTEXT)


async def test_other_process_sees_rotation(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    api = LocalKeyProvider(path)
    cli = LocalKeyProvider(path)
    first = await api.current_kek_id()
    second = await cli.rotate_kek()
    assert second != first
    plaintext, wrapped, kek = await cli.generate_data_key(CONTEXT)
    assert await api.unwrap(wrapped, kek, CONTEXT) == plaintext


async def test_dual_control_split_and_combine(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    provider = LocalKeyProvider(path)
    plaintext, wrapped, kek = await provider.generate_data_key(CONTEXT)
    master = provider.master_key()
    components = split_master_key(master, 3)
    assert len({c.split("-")[0] for c in components}) == 3
    assert all(master.hex() not in c for c in components)
    parsed = [parse_component(c) for c in components]
    assert combine_components(parsed) == master
    assert combine_components(parsed[:2]) != master  # any two of three reveal nothing useful
    with pytest.raises(ValueError):
        parse_component(components[0][:-1] + ("0" if components[0][-1] != "0" else "1"))
    master_key_path(path).unlink()
    locked = LocalKeyProvider(path)
    with pytest.raises(ValueError):
        locked.install_master_key(combine_components(parsed[:2]))
    locked.install_master_key(combine_components(parsed))
    assert await LocalKeyProvider(path).unwrap(wrapped, kek, CONTEXT) == plaintext


def test_keyring_refused_inside_pgdata(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="database directory"):
        build_key_provider(
            "local",
            keyring_path=tmp_path / "pgdata" / "keyring.json",
            pgdata_dir=tmp_path / "pgdata",
            master_key_hex=None,
            kms_key_id=None,
            kms_region=None,
            kms_endpoint_url=None,
        )


# --- the vault end to end on AWS KMS (moto) ----------------------------------------------------


async def test_vault_on_kms_tokenize_reveal_rotate(
    api: Any, moto_url: str, tmp_path: Path, database_url: str
) -> None:
    provider, (client, alias) = new_kms_provider(moto_url, tmp_path / "kms.json")
    db = Database(database_url, min_size=1, max_size=2)
    await db.open()
    clock = SystemClock()
    vault = VaultService(
        db,
        PgVaultRepository(),
        PgMerchantRepository(),
        provider,
        AesGcmCipher(),
        TtlDekCache(),  # fresh: the rotation's unwraps go to KMS
        Auditor(PgAuditLog(), clock),
        clock,
        PgInvalidations(),
    )
    try:
        merchant_id, _ = api.merchant()
        async with db.transaction() as tx:
            stored = await vault.tokenize(
                tx, merchant_id, CardInput(SensitiveStr("4242424242424242"), 12, 2030)
            )
        first_kek = await provider.current_kek_id()
        assert first_kek.startswith("arn:aws:kms:")
        new_key = client.create_key(Description="next")["KeyMetadata"]["KeyId"]
        client.update_alias(AliasName=alias, TargetKeyId=new_key)
        result = await vault.rotate_kek(SYSTEM_CLI, Origin("test"))
        assert result.finished and result.target != first_kek
        assert result.retired == ()  # deleting a KMS key is left to AWS
        async with db.transaction() as tx:
            card = await vault.reveal_for_connector(
                tx, merchant_id, stored.token_id, payment_id="pay_kms", connector="simulator"
            )
            kek_ids = await tx.conn.fetch("SELECT DISTINCT kek_id FROM vault_deks")
        assert card.number.reveal() == "4242424242424242"
        assert [r["kek_id"] for r in kek_ids] == [result.target]
    finally:
        await db.close()
