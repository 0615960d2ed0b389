"""Envelope encryption end to end on PostgreSQL: AAD binding, rotation (and resuming it),
crypto-shredding, undecryptable records, and the CLI commands that drive them."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.core.errors import InternalError, InvalidState, NotFound
from clearport.core.sensitive import SensitiveStr
from clearport.http.errors import error_response_for
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.service import MerchantPatch
from clearport.vault.cards import CardInput
from clearport.vault.domain import (
    PLATFORM_OWNER,
    BankAccount,
    CardDataDestroyed,
    UndecryptableRecord,
)
from clearport.wiring import Container
from tests.support import Api, pg

ORIGIN = Origin("test")


NUMBERS = [
    "4242424242424242",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "3530111333300000",
]


def card(number: str) -> CardInput:
    return CardInput(SensitiveStr(number), 12, 2030, "Ann Smith")


async def tokenize(c: Container, merchant_id: str, number: str) -> str:
    async with c.db.transaction() as tx:
        return (await c.vault.tokenize(tx, merchant_id, card(number))).token_id


async def reveal(c: Container, merchant_id: str, token_id: str) -> str:
    async with c.db.transaction() as tx:
        revealed = await c.vault.reveal_for_connector(
            tx, merchant_id, token_id, payment_id="pay_test", connector="simulator"
        )
    return revealed.number.reveal()


def rows(api: Api, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with pg(api.database_url) as conn:
        return list(conn.execute(query, args).fetchall())


async def close(c: Container, merchant_id: str) -> None:
    await c.merchants.update(
        SYSTEM_CLI, ORIGIN, merchant_id, MerchantPatch(status=MerchantStatus.CLOSED)
    )


async def test_reveal_round_trip_and_is_audited(api: Api, vault_container: Container) -> None:
    merchant_id, _ = api.merchant()
    token = await tokenize(vault_container, merchant_id, NUMBERS[0])
    assert await reveal(vault_container, merchant_id, token) == NUMBERS[0]
    audit = rows(
        api,
        "SELECT resource, details->>'token', details->>'connector' FROM audit_events"
        " WHERE event_type = 'card.detokenized'",
    )
    assert audit == [("pay_test", token, "simulator")]
    other, _ = api.merchant()
    with pytest.raises(NotFound):
        await reveal(vault_container, other, token)


async def test_ciphertext_moved_to_another_merchant_fails(
    api: Api, vault_container: Container
) -> None:
    admin = api.operator()
    merchant_a, _ = api.merchant(admin)
    merchant_b, _ = api.merchant(admin)
    token_a = await tokenize(vault_container, merchant_a, NUMBERS[0])
    token_b = await tokenize(vault_container, merchant_b, NUMBERS[1])
    token_a2 = await tokenize(vault_container, merchant_a, NUMBERS[2])
    # Copy A's ciphertext into B's row: B's DEK and B's AAD must both refuse it.
    with pg(api.database_url) as conn:
        conn.execute(
            "UPDATE card_tokens b SET nonce = a.nonce, ciphertext = a.ciphertext"
            " FROM card_tokens a WHERE a.id = %s AND b.id = %s",
            (token_a, token_b),
        )
        # Same merchant, another row: the record id in the AAD refuses it.
        conn.execute(
            "UPDATE card_tokens b SET nonce = a.nonce, ciphertext = a.ciphertext"
            " FROM card_tokens a WHERE a.id = %s AND b.id = %s",
            (token_a, token_a2),
        )
    for merchant_id, token in ((merchant_b, token_b), (merchant_a, token_a2)):
        with pytest.raises(UndecryptableRecord) as info:
            await reveal(vault_container, merchant_id, token)
        assert token in info.value.message
        assert not any(n in info.value.message for n in NUMBERS)
    assert await reveal(vault_container, merchant_a, token_a) == NUMBERS[0]


async def test_unknown_kek_is_a_clear_internal_error(api: Api, vault_container: Container) -> None:
    merchant_id, _ = api.merchant()
    token = await tokenize(vault_container, merchant_id, NUMBERS[0])
    with pg(api.database_url) as conn:
        conn.execute(
            "UPDATE vault_deks SET kek_id = 'local-v999' WHERE merchant_id = %s", (merchant_id,)
        )
    vault_container.vault._cache.clear()  # type: ignore[attr-defined]
    with pytest.raises(InternalError) as info:
        await reveal(vault_container, merchant_id, token)
    assert NUMBERS[0] not in info.value.message


def test_undecryptable_maps_to_500_api_error_without_detail() -> None:
    request = Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    )
    response = error_response_for(
        request, UndecryptableRecord("Record tok_X fails authentication.")
    )
    assert response.status_code == 500
    body = bytes(response.body).decode()
    assert '"type":"api_error"' in body and "tok_X" not in body


async def test_rotate_kek_resumes_rewraps_and_retires(api: Api, vault_container: Container) -> None:
    vault = vault_container.vault
    admin = api.operator()
    merchants = [api.merchant(admin)[0] for _ in range(3)]
    tokens = {m: [await tokenize(vault_container, m, n) for n in NUMBERS[:2]] for m in merchants}
    old_keks = {r[0] for r in rows(api, "SELECT DISTINCT kek_id FROM vault_deks")}

    first = await vault.rotate_kek(SYSTEM_CLI, ORIGIN, batch_size=1, max_batches=1)
    assert (first.finished, first.resumed, first.processed) == (False, False, 1)
    assert rows(api, "SELECT status FROM vault_rotations WHERE id = %s", first.rotation_id) == [
        ("running",)
    ]
    # Traffic during the rotation: a new merchant's DEK is wrapped by the new KEK.
    late, _ = api.merchant(admin)
    tokens[late] = [await tokenize(vault_container, late, NUMBERS[3])]

    second = await vault.rotate_kek(SYSTEM_CLI, ORIGIN, batch_size=2)
    assert second.resumed and second.finished and second.rotation_id == first.rotation_id
    assert second.target == first.target
    assert set(second.retired) == old_keks
    assert {r[0] for r in rows(api, "SELECT DISTINCT kek_id FROM vault_deks")} == {first.target}
    references = rows(api, "SELECT count(*) FROM vault_deks WHERE kek_id = ANY(%s)", list(old_keks))
    assert references == [(0,)]
    assert not set(await vault.provider.kek_ids()) & old_keks
    vault._cache.clear()  # type: ignore[attr-defined]
    for merchant_id, ids in tokens.items():
        for token in ids:
            assert await reveal(vault_container, merchant_id, token) in NUMBERS
    events = rows(api, "SELECT event_type FROM audit_events WHERE resource = %s", first.rotation_id)
    assert sorted(e[0] for e in events) == ["vault.kek_rotated", "vault.kek_rotation_started"]


async def test_rotate_dek_resumes_and_reencrypts(api: Api, vault_container: Container) -> None:
    vault = vault_container.vault
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    bystander, _ = api.merchant(admin)
    old_tokens = [await tokenize(vault_container, merchant_id, n) for n in NUMBERS]
    other_token = await tokenize(vault_container, bystander, NUMBERS[0])
    await vault.set_bank_account(
        SYSTEM_CLI,
        ORIGIN,
        merchant_id,
        BankAccount("US", "usd", "Shop", SensitiveStr("110000000"), SensitiveStr("000123456789")),
    )

    first = await vault.rotate_dek(SYSTEM_CLI, ORIGIN, merchant_id, batch_size=2, max_batches=1)
    assert (first.finished, first.processed, first.target) == (False, 2, "2")
    new_token = await tokenize(vault_container, merchant_id, NUMBERS[1])
    assert rows(api, "SELECT dek_version FROM card_tokens WHERE id = %s", new_token) == [(2,)]

    second = await vault.rotate_dek(SYSTEM_CLI, ORIGIN, merchant_id, batch_size=2)
    assert second.resumed and second.finished
    assert second.processed == len(NUMBERS) - 2 + 1  # the rest of the cards + the bank account
    versions = rows(
        api, "SELECT DISTINCT dek_version FROM card_tokens WHERE merchant_id = %s", merchant_id
    )
    assert versions == [(2,)]
    deks = rows(
        api,
        "SELECT version, status, wrapped_key IS NULL FROM vault_deks WHERE merchant_id = %s"
        " ORDER BY version",
        merchant_id,
    )
    assert deks == [(1, "destroyed", True), (2, "active", False)]
    for token, number in zip(old_tokens, NUMBERS, strict=True):
        assert await reveal(vault_container, merchant_id, token) == number
    assert await reveal(vault_container, bystander, other_token) == NUMBERS[0]
    assert rows(api, "SELECT dek_version FROM card_tokens WHERE id = %s", other_token) == [(1,)]
    async with vault_container.db.transaction() as tx:
        account = await vault.bank_account_for_payout(tx, merchant_id)
    assert account is not None and account.account_number is not None
    assert account.account_number.reveal() == "000123456789"
    events = rows(
        api,
        "SELECT event_type FROM audit_events WHERE resource = %s AND event_type LIKE 'vault.%%'",
        merchant_id,
    )
    assert sorted(e[0] for e in events) == ["vault.dek_rotated", "vault.dek_rotation_started"]


async def test_shred_destroys_only_that_merchants_cards(
    api: Api, vault_container: Container
) -> None:
    vault = vault_container.vault
    admin = api.operator()
    doomed, _ = api.merchant(admin)
    survivor, _ = api.merchant(admin)
    doomed_token = await tokenize(vault_container, doomed, NUMBERS[0])
    survivor_token = await tokenize(vault_container, survivor, NUMBERS[0])
    await vault.set_bank_account(
        SYSTEM_CLI,
        ORIGIN,
        doomed,
        BankAccount("US", "usd", "Shop", SensitiveStr("110000000"), SensitiveStr("000123456789")),
    )
    assert await reveal(vault_container, doomed, doomed_token) == NUMBERS[0]  # now cached

    with pytest.raises(InvalidState):
        await vault.shred(SYSTEM_CLI, ORIGIN, doomed)  # still active
    await close(vault_container, doomed)
    assert await vault.shred(SYSTEM_CLI, ORIGIN, doomed) == 1

    with pytest.raises(CardDataDestroyed):
        await reveal(vault_container, doomed, doomed_token)
    async with vault_container.db.transaction() as tx:
        with pytest.raises(CardDataDestroyed):
            await vault.bank_account_for_payout(tx, doomed)
        with pytest.raises(CardDataDestroyed):
            await vault.tokenize(tx, doomed, card(NUMBERS[1]))
        # The display (BIN, last 4) stays for payment history.
        stored = await vault.get_card(tx, doomed, doomed_token)
    assert (stored.bin, stored.last4) == ("42424242", "4242")
    assert rows(
        api,
        "SELECT count(*) FROM vault_deks WHERE wrapped_key IS NOT NULL AND merchant_id = %s",
        doomed,
    ) == [(0,)]
    assert await reveal(vault_container, survivor, survivor_token) == NUMBERS[0]
    audit = rows(
        api,
        "SELECT details->>'deks_destroyed' FROM audit_events WHERE event_type = 'merchant.shredded'"
        " AND resource = %s",
        doomed,
    )
    assert audit == [("1",)]


async def test_concurrent_first_tokenizations_share_one_dek(
    api: Api, vault_container: Container
) -> None:
    import asyncio

    merchant_id, _ = api.merchant()
    tokens = await asyncio.gather(
        *(tokenize(vault_container, merchant_id, NUMBERS[i % len(NUMBERS)]) for i in range(10))
    )
    assert rows(api, "SELECT version FROM vault_deks WHERE merchant_id = %s", merchant_id) == [(1,)]
    vault_container.vault._cache.clear()  # type: ignore[attr-defined]
    for i, token in enumerate(tokens):
        assert await reveal(vault_container, merchant_id, token) == NUMBERS[i % len(NUMBERS)]


async def test_concurrent_rotate_kek_makes_one_kek(api: Api, vault_container: Container) -> None:
    import asyncio

    merchant_id, _ = api.merchant()
    token = await tokenize(vault_container, merchant_id, NUMBERS[0])
    before = set(await vault_container.vault.provider.kek_ids())
    results = await asyncio.gather(
        vault_container.vault.rotate_kek(SYSTEM_CLI, ORIGIN),
        vault_container.vault.rotate_kek(SYSTEM_CLI, ORIGIN),
    )
    assert results[0].target == results[1].target
    assert len(set(await vault_container.vault.provider.kek_ids()) - before) == 1
    assert await reveal(vault_container, merchant_id, token) == NUMBERS[0]


async def test_sealed_secrets_survive_rotations_and_belong_to_their_owner(
    api: Api, vault_container: Container
) -> None:
    """Webhook signing secrets: a merchant's under its DEK (re-encrypted by its DEK rotation,
    which destroys the old version only then), the platform's under the platform's DEK (a DEK
    that references no merchant, re-wrapped by a KEK rotation like every other)."""
    vault = vault_container.vault
    merchant_id, _ = api.merchant()
    async with vault_container.db.transaction() as tx:
        mine = await vault.seal_secret(tx, merchant_id, "webhook_signing", b"whsec_merchant")
        platform = await vault.seal_secret(tx, PLATFORM_OWNER, "webhook_signing", b"whsec_pf")
    # No merchant may open another owner's secret, nor the platform's.
    with pytest.raises(UndecryptableRecord):
        async with vault_container.db.transaction() as tx:
            await vault.open_secrets(tx, merchant_id, [platform])
    rotated = await vault.rotate_dek(SYSTEM_CLI, ORIGIN, merchant_id)
    assert rotated.finished and rotated.processed == 1
    assert rows(api, "SELECT dek_version FROM vault_secrets WHERE id = %s", mine) == [(2,)]
    assert rows(
        api, "SELECT status FROM vault_deks WHERE merchant_id = %s ORDER BY version", merchant_id
    ) == [("destroyed",), ("active",)]
    kek = await vault.rotate_kek(SYSTEM_CLI, ORIGIN)
    assert kek.finished
    assert rows(api, "SELECT kek_id FROM vault_deks WHERE merchant_id = 'platform'") == [
        (kek.target,)
    ]
    vault._cache.clear()  # type: ignore[attr-defined]
    async with vault_container.db.transaction() as tx:
        assert await vault.open_secrets(tx, merchant_id, [mine]) == {mine: b"whsec_merchant"}
        assert await vault.open_secrets(tx, PLATFORM_OWNER, [platform]) == {platform: b"whsec_pf"}
        await vault.destroy_secrets(tx, [mine, platform])
    assert rows(api, "SELECT count(*) FROM vault_secrets") == [(0,)]
