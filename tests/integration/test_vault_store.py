"""The vault's store on PostgreSQL: typed records in, the same records out."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator

import pytest

from clearport.db.database import Database
from clearport.vault.cards import StoredCard
from clearport.vault.domain import (
    BankAccountRecord,
    BankAccountView,
    CardRecord,
    DekRecord,
    DekStatus,
    RotationKind,
    RotationRecord,
    Sealed,
)
from clearport.vault.store import PgVaultRepository
from tests.support import Api

REPO = PgVaultRepository()


@pytest.fixture
async def db(api: Api) -> AsyncIterator[Database]:
    database = Database(api.database_url, min_size=1, max_size=2)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


def sealed(version: int = 1) -> Sealed:
    return Sealed(dek_version=version, nonce=os.urandom(12), ciphertext=os.urandom(40))


async def test_dek_records_and_the_rewrap_compare_and_set(api: Api, db: Database) -> None:
    merchant_id, _ = api.merchant()
    async with db.transaction() as tx:
        assert await REPO.insert_dek(tx, merchant_id, 1, b"wrapped-1", "local-v1", "local")
        assert not await REPO.insert_dek(tx, merchant_id, 1, b"again", "local-v1", "local")
        dek = await REPO.active_dek(tx, merchant_id)
    assert dek == DekRecord(merchant_id, 1, DekStatus.ACTIVE, "local-v1", b"wrapped-1")
    async with db.transaction() as tx:
        assert await REPO.get_dek(tx, merchant_id, 1) == dek
        assert await REPO.get_dek(tx, merchant_id, 2) is None
        assert await REPO.deks_not_under(tx, "local-v2", 10) == [dek]
        stale = dataclasses.replace(dek, wrapped_key=b"something else")
        assert not await REPO.rewrap_dek(tx, stale, b"wrapped-2", "local-v2")
        assert await REPO.rewrap_dek(tx, dek, b"wrapped-2", "local-v2")
        assert not await REPO.rewrap_dek(tx, dek, b"wrapped-3", "local-v2")  # already moved
        assert await REPO.kek_references(tx) == {"local-v2": 1}
        assert await REPO.destroy_merchant_deks(tx, merchant_id) == 1
        destroyed = await REPO.lock_merchant_deks(tx, merchant_id)
    assert destroyed == [DekRecord(merchant_id, 1, DekStatus.DESTROYED, None, None)]


async def test_card_and_bank_account_records_round_trip(api: Api, db: Database) -> None:
    merchant_id, _ = api.merchant()
    card = CardRecord(
        card=StoredCard("tok_01TEST", merchant_id, "visa", "42424242", "4242", 12, 2030, "fp"),
        sealed=sealed(),
    )
    account = BankAccountRecord(
        account=BankAccountView(
            id="ba_01TEST",
            merchant_id=merchant_id,
            country="US",
            currency="usd",
            account_holder="Shop",
            scheme="us_ach",
            bic=None,
            display={"routing_number": "110000000", "account_number": "****6789"},
        ),
        sealed=sealed(),
    )
    async with db.transaction() as tx:
        await REPO.insert_dek(tx, merchant_id, 1, b"w1", "local-v1", "local")
        await REPO.insert_card(tx, card)
        stored_account = await REPO.upsert_bank_account(tx, account)
        stored_card = await REPO.get_card(tx, card.card.token_id)
    assert stored_card is not None and stored_card.card.created_at is not None
    assert stored_card == dataclasses.replace(
        card, card=dataclasses.replace(card.card, created_at=stored_card.card.created_at)
    )
    updated_at = stored_account.account.updated_at
    assert updated_at is not None
    assert stored_account == dataclasses.replace(
        account, account=dataclasses.replace(account.account, updated_at=updated_at)
    )
    moved = sealed(2)
    async with db.transaction() as tx:
        await REPO.retire_deks_except(tx, merchant_id, 2)
        assert await REPO.insert_dek(tx, merchant_id, 2, b"w2", "local-v1", "local")
        assert await REPO.get_bank_account(tx, merchant_id) == stored_account
        assert await REPO.cards_to_reencrypt(tx, merchant_id, 2, 10) == [stored_card]
        assert await REPO.bank_account_to_reencrypt(tx, merchant_id, 2) == stored_account
        await REPO.update_card_ciphertext(tx, card.card.token_id, moved)
        await REPO.update_bank_account_ciphertext(tx, merchant_id, moved)
        assert await REPO.cards_to_reencrypt(tx, merchant_id, 2, 10) == []
        assert await REPO.bank_account_to_reencrypt(tx, merchant_id, 2) is None
        reread = await REPO.get_card(tx, card.card.token_id)
        reread_account = await REPO.get_bank_account(tx, merchant_id)
        assert await REPO.destroy_unreferenced_retired_deks(tx, merchant_id) == 1
        deks = await REPO.lock_merchant_deks(tx, merchant_id)
    assert reread is not None and reread.sealed == moved
    assert reread_account is not None and reread_account.sealed == moved
    assert [(d.version, d.status) for d in deks] == [
        (1, DekStatus.DESTROYED),
        (2, DekStatus.ACTIVE),
    ]


async def test_rotation_records(api: Api, db: Database) -> None:
    merchant_id, _ = api.merchant()
    async with db.transaction() as tx:
        await REPO.start_rotation(tx, "rot_01KEK", RotationKind.KEK, None, "local-v2", "cli")
        await REPO.start_rotation(tx, "rot_01DEK", RotationKind.DEK, merchant_id, "2", "cli")
        await REPO.progress_rotation(tx, "rot_01DEK", 5)
        kek = await REPO.open_rotation(tx, RotationKind.KEK, None)
        dek = await REPO.open_rotation(tx, RotationKind.DEK, merchant_id)
        assert await REPO.open_rotation(tx, RotationKind.DEK, None) is None
        await REPO.finish_rotation(tx, "rot_01KEK")
        running = await REPO.running_rotations(tx)
    assert kek == RotationRecord("rot_01KEK", RotationKind.KEK, None, "local-v2", 0)
    assert dek == RotationRecord("rot_01DEK", RotationKind.DEK, merchant_id, "2", 5)
    assert running == [dek]
