"""Payout destinations in one read (decision 0915): what the bulk look-up decrypts for many
merchants is what the one-merchant look-up decrypts for each, and a merchant without a bank
account is absent, not an error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from clearport.config import Settings
from clearport.settlement.destinations import VaultPayoutDestinations
from clearport.wiring import Container, build_container
from tests.support import Api

ACCOUNTS = [
    {
        "country": "US",
        "currency": "usd",
        "account_holder": "Bulk Coffee LLC",
        "routing_number": "110000000",
        "account_number": "000123456789",
    },
    {
        "country": "GB",
        "currency": "gbp",
        "account_holder": "Bulk Ltd",
        "iban": "GB29NWBK60161331926819",
        "bic": "NWBKGB2L",
    },
]


@pytest.fixture
async def container(database_url: str, settings: Settings) -> AsyncIterator[Container]:
    built = build_container(settings, database_url)
    await built.start()
    yield built
    await built.stop()


async def test_bulk_destinations_equal_the_one_by_one_lookups(
    api: Api, container: Container
) -> None:
    admin = api.operator()
    with_accounts = []
    for account in ACCOUNTS:
        merchant_id, _ = api.merchant(admin)
        r = api.call("PUT", f"/v1/merchants/{merchant_id}/bank_account", admin, json=account)
        assert r.status_code == 200, r.text
        with_accounts.append(merchant_id)
    without, _ = api.merchant(admin)
    vault = container.vault
    async with container.db.transaction() as tx:
        bulk = await vault.bank_accounts_for_payouts(tx, [*with_accounts, without])
        one_by_one = {m: await vault.bank_account_for_payout(tx, m) for m in with_accounts}
        assert await vault.bank_account_for_payout(tx, without) is None
        shown = await VaultPayoutDestinations(vault).destinations(tx, [without, *with_accounts])
        assert await vault.bank_accounts_for_payouts(tx, []) == {}
    assert bulk == one_by_one and set(bulk) == set(with_accounts)
    us, gb = (shown[m] for m in with_accounts)
    assert without not in shown
    assert (us.account_holder, us.routing_number, us.account_number) == (
        "Bulk Coffee LLC",
        "110000000",
        "000123456789",
    )
    assert (gb.currency, gb.iban, gb.bic) == ("gbp", "GB29NWBK60161331926819", "NWBKGB2L")
