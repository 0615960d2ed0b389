"""Money end to end over HTTP: disputes and adjustments through settlement into its items,
reports and payout files; payouts paid, failed (by a NACHA return file) and paid again by the
next run, a dispute taking the failed payout's money first; zero- and three-exponent currencies
(JPY, KWD) from payment to payout; balance transactions that add up to the balance throughout."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from clearport.config import Settings
from clearport.settlement.calendar import HolidayCalendar
from tests.integration.test_payments_api import post
from tests.integration.test_settlement_api import US_BANK
from tests.money_support import (
    assert_list_agrees_with_balance,
    balance,
    capture,
    dispute,
    import_returns,
    items,
    settle,
    settled,
    zero_sum,
)
from tests.support import Api
from tests.unit.test_payout_files import parse_nacha


def _rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


def _read(uri: str) -> bytes:
    """A file object storage wrote (a local directory in the tests)."""
    return Path(uri.removeprefix("file://")).read_bytes()


def _payout(api: Api, key: str, settlement: dict[str, Any]) -> dict[str, Any]:
    return dict(api.call("GET", f"/v1/payouts/{settlement['payout_id']}", key).json())


def _return_file(payout_file: bytes, payout_id: str, reason: str) -> bytes:
    """The bank's NACHA return of our entry for `payout_id`: the entry sent back as a returned
    credit (21) with its return addenda (99: reason, original trace)."""
    records = payout_file.decode("ascii").split("\n")
    (entry,) = [r for r in records if r.startswith("6") and r[39:54].strip() == payout_id[-15:]]
    returned = "621" + entry[3:78] + "1" + "091000019000001"
    addenda = "799" + reason + entry[79:94] + " " * 6 + entry[3:11] + " " * 44 + "091000019000001"
    header = records[0]
    return "\n".join([header, returned, addenda, ""]).encode("ascii")


def test_disputes_adjustments_and_payouts_through_settlement(api: Api, settings: Settings) -> None:
    admin = api.operator("admin")
    merchant, key = api.merchant(admin, payout_delay_days=0)
    assert (
        api.call("PUT", f"/v1/merchants/{merchant}/bank_account", admin, json=US_BANK).status_code
        == 200
    )
    p1, p2 = capture(api, key, 10_000), capture(api, key, 5_000)
    assert post(api, key, f"/v1/payments/{p1['id']}/refunds", {"amount": 1_000}).status_code == 201
    d1 = dispute(api, admin, p2["id"], 2_000)
    adjusted = post(
        api,
        admin,
        "/v1/adjustments",
        {"merchant": merchant, "amount": 700, "currency": "usd", "reason": "goodwill"},
    )
    assert adjusted.status_code == 201
    assert balance(api, key)["pending"] == {"usd": 15_000 - 1_000 - 2_000 - 1_500 + 700}
    assert_list_agrees_with_balance(api, key)

    # The first run: every kind of item, each with its type, into the report and the payout.
    settle(api, admin, 2, settings)
    (first,) = settled(api, key)
    fees = (290 + 30) + (145 + 30)  # 2.9% + 30 cents per capture
    assert (first["gross"], first["refunds"], first["disputes"], first["adjustments"]) == (
        15_000,
        1_000,
        2_000,
        700,
    )
    assert first["fee_details"]["disputes"] == 1_500 and first["fees"] == fees + 1_500
    assert first["net"] == first["payout"] == 15_000 - 1_000 - 2_000 + 700 - fees - 1_500
    lines = {i["type"]: i for i in items(api, key, first["id"])}
    assert set(lines) == {"capture", "refund", "dispute", "adjustment"}
    assert (
        lines["dispute"]["id"],
        lines["dispute"]["gross"],
        lines["dispute"]["markup"],
        lines["dispute"]["net"],
    ) == (d1["id"], -2_000, 1_500, -3_500)
    assert (lines["adjustment"]["payment"], lines["adjustment"]["gross"]) == (None, 700)
    (report,) = _rows(api.database_url, "SELECT report FROM settlements WHERE id = %s", first["id"])
    reported = list(csv.DictReader(io.StringIO(_read(report[0]["csv"]).decode())))
    assert sorted(r["type"] for r in reported) == sorted(
        ["capture"] * 2 + ["refund", "dispute", "adjustment"]
    )
    payout = _payout(api, key, first)
    assert payout["status"] == "in_transit"
    arrival = datetime.fromtimestamp(payout["arrival_date"], UTC).date()
    assert arrival >= datetime.fromtimestamp(payout["created"], UTC).date()
    assert HolidayCalendar().is_banking_day("usd", arrival)
    ((uri,),) = _rows(api.database_url, "SELECT uri FROM payout_files WHERE currency = 'usd'")
    nacha = _read(uri)
    assert [int(e["amount"]) for e in parse_nacha(nacha) if e["type"] == "6"] == [first["payout"]]
    assert balance(api, key)["available"] == {}
    assert_list_agrees_with_balance(api, key)

    # The bank returns it (R01): failed, the money back in available; importing twice is safe.
    returns = _return_file(nacha, payout["id"], "R01")
    imported = import_returns(settings, api.database_url, returns)
    assert imported.failed == (payout["id"],) and not imported.unmatched
    again = import_returns(settings, api.database_url, returns)
    assert again.already_failed == (payout["id"],) and not again.failed
    failed = _payout(api, key, first)
    assert (failed["status"], failed["failure_code"]) == ("failed", "R01")
    assert balance(api, key)["available"] == {"usd": first["payout"]}
    assert_list_agrees_with_balance(api, key)

    # A dispute now takes from available first (fee, then amount), nothing from pending.
    d2 = dispute(api, admin, p1["id"], 3_000)
    assert d2["from_available"] == 4_500
    assert balance(api, key)["available"] == {"usd": first["payout"] - 4_500}
    assert balance(api, key)["pending"] == {}
    assert_list_agrees_with_balance(api, key)
    # The first dispute is won: amount and fee back, into pending.
    won = post(api, admin, f"/v1/disputes/{d1['id']}/close", {"outcome": "won"})
    assert won.status_code == 200
    zero_sum(api)

    # The next run pays the failed payout's money again (what the dispute left of it), with the
    # reversal; the failed payout names the settlement that repaid it.
    settle(api, admin, 1, settings)
    second = settled(api, key)[-1]
    assert second["repaid"] == first["payout"] - 4_500
    assert second["disputes"] == -2_000 and second["fee_details"]["disputes"] == -1_500
    assert second["payout"] == first["payout"] - 4_500 + 3_500
    (reversal,) = items(api, key, second["id"])
    assert (reversal["type"], reversal["id"], reversal["net"]) == (
        "dispute_reversal",
        won.json()["reversal"],
        3_500,
    )
    assert _payout(api, key, first)["repaid_by"] == second["id"]
    paid = post(api, admin, f"/v1/payouts/{second['payout_id']}/mark", {"status": "paid"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    # Paid moves the money out of payouts in transit: nothing is left there.
    assert _rows(
        api.database_url,
        "SELECT sum(debits_posted - credits_posted)::bigint FROM ledger_accounts "
        "WHERE kind = 'payouts_in_transit' AND currency = 'usd'",
    ) == [(0,)]
    assert balance(api, key) == {"pending": {}, "available": {}, "reserve": {}}
    assert_list_agrees_with_balance(api, key)
    zero_sum(api)


JP_BANK = {
    "country": "GB",
    "currency": "jpy",
    "account_holder": "Kissa KK",
    "iban": "GB82WEST12345698765432",
    "bic": "WESTGB2L",
}
KW_BANK = {
    "country": "KW",
    "currency": "kwd",
    "account_holder": "Qahwa WLL",
    "iban": "KW81CBKU0000000000001234560101",
    "bic": "CBKUKWKW",
}


def test_zero_and_three_exponent_currencies_end_to_end(api: Api, settings: Settings) -> None:
    """¥ and KWD through payment, dispute, settlement and payout: every fixed amount is its
    currency's (fee ¥40 / 0.100 KWD, dispute fee ¥2,000 / 5.000 KWD), the payout file says the
    amounts in their units, and payouts arrive on the currency's banking days."""
    admin = api.operator("admin")
    cases = {"jpy": (JP_BANK, 40, 2_000, "JP"), "kwd": (KW_BANK, 100, 5_000, "KW")}
    merchants = {}
    for currency, (bank, _fixed, _fee, country) in cases.items():
        merchant, key = api.merchant(
            admin, default_currency=currency, country=country, payout_delay_days=0
        )
        r = api.call("PUT", f"/v1/merchants/{merchant}/bank_account", admin, json=bank)
        assert r.status_code == 200, r.text
        paid = capture(api, key, 12_345, currency)
        dispute(api, admin, paid["id"], 2_000)
        merchants[currency] = (merchant, key)
    settle(api, admin, 1, settings)
    calendar = HolidayCalendar()
    for currency, (_bank, fixed, fee, _country) in cases.items():
        _, key = merchants[currency]
        (s,) = settled(api, key)
        capture_fee = round(12_345 * 290 / 10_000) + fixed  # 2.9% + the currency's fixed fee
        assert (s["currency"], s["fees"], s["fee_details"]["disputes"]) == (
            currency,
            capture_fee + fee,
            fee,
        )
        assert s["payout"] == 12_345 - 2_000 - capture_fee - fee
        payout = _payout(api, key, s)
        arrival = datetime.fromtimestamp(payout["arrival_date"], UTC).date()
        assert calendar.is_banking_day(currency, arrival), (currency, arrival)
        ((uri,),) = _rows(
            api.database_url, "SELECT uri FROM payout_files WHERE currency = %s", currency
        )
        (line,) = csv.DictReader(io.StringIO(_read(uri).decode()))
        major = {"jpy": str(s["payout"]), "kwd": f"{s['payout'] // 1000}.{s['payout'] % 1000:03d}"}
        assert (line["amount_minor"], line["amount"]) == (str(s["payout"]), major[currency])
        marked = post(api, admin, f"/v1/payouts/{payout['id']}/mark", {"status": "paid"})
        assert marked.json()["status"] == "paid"
        assert_list_agrees_with_balance(api, key)
    zero_sum(api)
