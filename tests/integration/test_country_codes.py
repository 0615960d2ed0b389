"""Every country the API takes is an assigned ISO 3166-1 alpha-2 code (one check, core)."""

from __future__ import annotations

from tests.support import Api, pg

MERCHANT = {"name": "Acme", "country": "US", "mcc": "5411", "default_currency": "usd"}
US_BANK = {
    "country": "US",
    "currency": "usd",
    "account_holder": "Acme LLC",
    "routing_number": "110000000",
    "account_number": "000123456789",
}


def _count(api: Api, table: str) -> int:
    with pg(api.database_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_unassigned_merchant_country_is_400(api: Api) -> None:
    admin = api.operator()
    for country in ("ZZ", "XK", "AN"):
        r = api.call("POST", "/v1/merchants", admin, json={**MERCHANT, "country": country})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "country"
        assert r.json()["error"]["code"] == "parameter_invalid"
    assert _count(api, "merchants") == 0
    assert api.call("POST", "/v1/merchants", admin, json=MERCHANT).status_code == 201


def test_unassigned_bank_account_country_is_400(api: Api) -> None:
    admin = api.operator()
    merchant, _ = api.merchant(admin)
    path = f"/v1/merchants/{merchant}/bank_account"
    r = api.call("PUT", path, admin, json={**US_BANK, "country": "ZZ"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "country"
    assert _count(api, "merchant_bank_accounts") == 0
    ok = api.call("PUT", path, admin, json=US_BANK)
    assert ok.status_code == 200, ok.text
    assert ok.json()["country"] == "US"
