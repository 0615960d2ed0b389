"""POST /v1/tokens, GET /v1/tokens/{id}, and the merchant bank account over HTTP."""

from __future__ import annotations

import pytest

from tests.support import Api, pg

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}


def token_count(api: Api) -> int:
    with pg(api.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM card_tokens").fetchone()
        assert row is not None
        return int(row[0])


def test_tokenize_and_read_back(api: Api) -> None:
    _, key = api.merchant()
    r = api.call("POST", "/v1/tokens", key, json={"card": {**CARD, "holder_name": "Ann Smith"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("tok_") and body["object"] == "token"
    assert body["card"] == {
        "brand": "visa",
        "bin": "42424242",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
        "fingerprint": body["card"]["fingerprint"],
        # No BIN table imported in this test: the card's BIN is not listed.
        "funding": None,
        "category": None,
        "issuer_country": None,
    }
    assert "4242424242424242" not in r.text
    again = api.call("GET", f"/v1/tokens/{body['id']}", key)
    assert again.status_code == 200
    assert again.json()["card"] == body["card"]
    with pg(api.database_url) as conn:
        row = conn.execute(
            "SELECT bin, last4, dek_version, length(nonce), ciphertext FROM card_tokens"
            " WHERE id = %s",
            (body["id"],),
        ).fetchone()
    assert row is not None
    assert row[:4] == ("42424242", "4242", 1, 12)
    assert b"4242424242424242" not in bytes(row[4]) and b"Ann Smith" not in bytes(row[4])


def test_fingerprint_same_card_same_merchant_only(api: Api) -> None:
    admin = api.operator()
    _, key_a = api.merchant(admin)
    _, key_b = api.merchant(admin)

    def fp(key: str, number: str) -> str:
        r = api.call("POST", "/v1/tokens", key, json={"card": {**CARD, "number": number}})
        assert r.status_code == 201, r.text
        return str(r.json()["card"]["fingerprint"])

    first = fp(key_a, "4242424242424242")
    assert fp(key_a, "4242 4242 4242 4242") == first
    assert fp(key_a, "5555555555554444") != first
    assert fp(key_b, "4242424242424242") != first


def test_other_merchants_token_is_404(api: Api) -> None:
    admin = api.operator()
    _, key_a = api.merchant(admin)
    _, key_b = api.merchant(admin)
    token = api.call("POST", "/v1/tokens", key_a, json={"card": CARD}).json()["id"]
    for path in (f"/v1/tokens/{token}", "/v1/tokens/tok_0000000000ZZZZZZZZZZZZZZZZ"):
        r = api.call("GET", path, key_b)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "resource_missing"
    # Not an id at all: the path parameter's pattern refuses it, naming it.
    malformed = api.call("GET", "/v1/tokens/tok_nope", key_b)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["param"] == "token_id"


@pytest.mark.parametrize(
    ("card", "param", "code"),
    [
        ({**CARD, "number": "4242424242424241"}, "card[number]", "incorrect_number"),
        ({**CARD, "number": "42424242"}, "card[number]", "parameter_invalid"),
        ({**CARD, "number": 4242424242424242}, "card[number]", "parameter_invalid"),
        ({**CARD, "exp_month": 13}, "card[exp_month]", "parameter_invalid"),
        ({**CARD, "exp_year": 2020}, "card[exp_year]", "expired_card"),
        ({**CARD, "holder_name": "x" * 150}, "card[holder_name]", "parameter_invalid"),
        ({**CARD, "cvc": "123"}, "card[cvc]", "parameter_unknown"),
        ({"exp_month": 12, "exp_year": 2030}, "card[number]", "parameter_missing"),
    ],
)
def test_invalid_card_is_400_and_nothing_stored(
    api: Api, card: dict[str, object], param: str, code: str
) -> None:
    _, key = api.merchant()
    r = api.call("POST", "/v1/tokens", key, json={"card": card}, idempotency_key="k1")
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert "4242424242424241" not in r.text and "123" not in error["message"]
    assert token_count(api) == 0
    with pg(api.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM vault_deks").fetchone()
        assert row is not None and row[0] == 0


def test_tokens_need_a_merchant_key(api: Api) -> None:
    admin = api.operator()
    r = api.call("POST", "/v1/tokens", admin, json={"card": CARD})
    assert r.status_code == 403
    assert api.call("POST", "/v1/tokens", None, json={"card": CARD}).status_code == 401


def test_inactive_merchant_cannot_tokenize(api: Api) -> None:
    admin = api.operator()
    merchant_id, key = api.merchant(admin)
    patched = api.call("PATCH", f"/v1/merchants/{merchant_id}", admin, json={"status": "suspended"})
    assert patched.status_code == 200, patched.text
    r = api.call("POST", "/v1/tokens", key, json={"card": CARD})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "merchant_inactive"


def test_idempotent_replay_stores_no_number(api: Api) -> None:
    _, key = api.merchant()
    first = api.call("POST", "/v1/tokens", key, json={"card": CARD}, idempotency_key="tok-1")
    second = api.call("POST", "/v1/tokens", key, json={"card": CARD}, idempotency_key="tok-1")
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json() == first.json()
    assert token_count(api) == 1


# --- bank accounts -----------------------------------------------------------------------------

US = {
    "country": "US",
    "currency": "usd",
    "account_holder": "Demo Coffee LLC",
    "routing_number": "110000000",
    "account_number": "000123456789",
}
SEPA = {
    "country": "DE",
    "currency": "eur",
    "account_holder": "Demo Kaffee GmbH",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "COBADEFFXXX",
}


def test_bank_account_stored_encrypted_and_shown_masked(api: Api) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    r = api.call("PUT", f"/v1/merchants/{merchant_id}/bank_account", admin, json=US)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "bank_account" and body["id"].startswith("ba_")
    assert body["account_number"] == "****6789"
    assert body["routing_number"] == "110000000"
    assert "000123456789" not in r.text
    finance = api.operator("finance")
    r = api.call("PUT", f"/v1/merchants/{merchant_id}/bank_account", finance, json=SEPA)
    assert r.status_code == 200, r.text
    assert r.json()["iban"] == "****3000"
    assert "DE89370400440532013000" not in r.text
    got = api.call("GET", f"/v1/merchants/{merchant_id}/bank_account", api.operator("support"))
    assert got.status_code == 200 and got.json()["iban"] == "****3000"
    with pg(api.database_url) as conn:
        row = conn.execute(
            "SELECT ciphertext, display::text FROM merchant_bank_accounts WHERE merchant_id = %s",
            (merchant_id,),
        ).fetchone()
    assert row is not None
    assert b"DE89370400440532013000" not in bytes(row[0])
    assert "0532013000" not in row[1]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"routing_number": "110000001"}, "routing_number"),
        ({"account_number": "12"}, "account_number"),
        ({"iban": "DE89370400440532013001"}, "iban"),
        ({"currency": "xyz"}, "currency"),
        ({"routing_number": None}, "routing_number"),
    ],
)
def test_bank_account_validation(api: Api, change: dict[str, object], param: str) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    body = {**US, **change}
    if "iban" in change:
        body = {**SEPA, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = api.call("PUT", f"/v1/merchants/{merchant_id}/bank_account", admin, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_bank_account_roles(api: Api) -> None:
    admin = api.operator()
    merchant_id, key = api.merchant(admin)
    path = f"/v1/merchants/{merchant_id}/bank_account"
    for denied in (api.operator("support"), api.operator("security"), key):
        assert api.call("PUT", path, denied, json=US).status_code == 403
    assert api.call("GET", path, admin).status_code == 404
