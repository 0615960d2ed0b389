"""Sentinel scan: card numbers and CVCs sent to the API appear nowhere at rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clearport.config import Settings
from clearport.wiring import Container, build_container
from tests.sentinel import SentinelScan, groups, luhn_complete
from tests.support import Api

VISA = luhn_complete("491761000011223")
MC2 = luhn_complete("222300048877665")
AMEX = luhn_complete("34987654321012")
VISA19 = luhn_complete("413579246801357924")
DINERS = luhn_complete("3612345678901")


@pytest.fixture(scope="session")
async def sentinel_container(database_url: str, settings: Settings) -> AsyncIterator[Container]:
    container = build_container(settings, database_url)
    await container.start()
    yield container
    await container.stop()


def test_scanner_finds_what_it_looks_for() -> None:
    scan = SentinelScan()
    scan.add_pan(VISA)
    scan.add_cvc("719", VISA)
    leaks = {
        "plain": f"x {VISA} y",
        "dashed": "-".join(groups(VISA)),
        "bytea": "\\x" + " ".join(groups(VISA)).encode().hex(),
        "cvc": '{"cvc": "719"}',
    }
    hits = scan.scan_texts(leaks)
    assert {h.source for h in hits} == set(leaks)
    assert scan.scan_texts({"clean": "last4 1223, bin 49176100, amount 719"}) == []


async def test_no_card_data_at_rest(
    api: Api, sentinel_container: Container, log_file: Path
) -> None:
    scan = SentinelScan()
    admin = api.operator()
    merchant_id, key = api.merchant(admin)
    tokens = []
    for index, pan in enumerate([VISA, MC2, AMEX, VISA19, DINERS]):
        scan.add_pan(pan)
        for style, number in enumerate([pan, " ".join(groups(pan)), "-".join(groups(pan))]):
            r = api.call(
                "POST",
                "/v1/tokens",
                key,
                json={
                    "card": {
                        "number": number,
                        "exp_month": 12,
                        "exp_year": 2031,
                        "holder_name": "Sentinel Holder",
                    }
                },
                idempotency_key=f"sentinel-{index}-{style}",
            )
            assert r.status_code == 201, r.text
            tokens.append(r.json()["id"])
        # Rejected requests carrying card data: a CVC where none is accepted, a bad expiry.
        cvc = scan.add_cvc("4826" if pan == AMEX else "719", pan)
        for card in (
            {"number": pan, "exp_month": 12, "exp_year": 2031, "cvc": cvc},
            {"number": pan, "exp_month": 13, "exp_year": 2031},
        ):
            r = api.call(
                "POST",
                "/v1/tokens",
                key,
                json={"card": card},
                idempotency_key=f"sentinel-bad-{index}-{card['exp_month']}",
            )
            assert r.status_code == 400
            assert pan not in r.text and cvc not in r.json()["error"]["message"]
    account_number = scan.add_secret("98765432101234")
    iban = "GB82WEST12345698765432"
    r = api.call(
        "PUT",
        f"/v1/merchants/{merchant_id}/bank_account",
        admin,
        json={
            "country": "US",
            "currency": "usd",
            "account_holder": "Sentinel LLC",
            "routing_number": "110000000",
            "account_number": account_number,
        },
    )
    assert r.status_code == 200, r.text
    other, _ = api.merchant(admin)
    scan.add_secret(iban)
    r = api.call(
        "PUT",
        f"/v1/merchants/{other}/bank_account",
        admin,
        json={
            "country": "GB",
            "currency": "gbp",
            "account_holder": "Sentinel Ltd",
            "iban": iban,
            "bic": "WESTGB2L",
        },
    )
    assert r.status_code == 200, r.text
    # Detokenize on the way to a connector (audited) and read payout details.
    async with sentinel_container.db.transaction() as tx:
        for token in tokens[:3]:
            card = await sentinel_container.vault.reveal_for_connector(
                tx, merchant_id, token, payment_id="pay_sentinel", connector="simulator"
            )
            assert card.number.reveal() == VISA
        account = await sentinel_container.vault.bank_account_for_payout(tx, merchant_id)
        assert account is not None and account.account_number is not None
        assert account.account_number.reveal() == account_number

    sources = scan.assert_clean(api.database_url, log_file)
    # The scan looked at real data: every token and the detokenization audit are in the dump.
    assert all(token in sources["pg_dump"] for token in tokens)
    assert "card.detokenized" in sources["pg_dump"]
    assert sources["idempotency_keys.response_body"].count('"object":"token"') == len(tokens)
    assert '"route": "/v1/tokens"' in sources["log"]  # the log saw these requests
