"""Card validation tables, the SensitiveStr wrapper and property tests for Luhn."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearport.core.errors import InvalidRequest
from clearport.core.sensitive import SensitiveStr, luhn_valid
from clearport.vault.cards import CardInput, bin_of, detect_brand, validate_card, validate_cvc

TODAY = date(2026, 11, 24)


def card(number: str, month: int = 12, year: int = 2030, holder: str | None = None) -> CardInput:
    return CardInput(SensitiveStr(number), month, year, holder)


def with_luhn(prefix_and_body: str) -> str:
    """Append the check digit that makes the number Luhn-valid."""
    for check in "0123456789":
        if luhn_valid(prefix_and_body + check):
            return prefix_and_body + check
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("4222222222222", "visa"),  # 13 digits
        (with_luhn("424242424242424242"), "visa"),  # 19 digits
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),  # 2-series
        (with_luhn("272099999999999"), "mastercard"),  # top of the 2-series
        ("378282246310005", "amex"),
        ("371449635398431", "amex"),
        ("6011111111111117", "discover"),
        (with_luhn("644000000000000"), "discover"),
        ("3530111333300000", "jcb"),
        ("36227206271667", "diners"),  # 14 digits
        ("3056930009020004", "diners"),
        ("6200000000000005", "unionpay"),
        (with_luhn("810000000000000000"), "unionpay"),  # 19 digits
        ("6759649826438453", "maestro"),
        (with_luhn("50000000000"), "maestro"),  # 12 digits
        ("4242 4242 4242 4242", "visa"),  # spaces typed between groups
        ("4242-4242-4242-4242", "visa"),
    ],
)
def test_valid_cards_and_brands(number: str, brand: str) -> None:
    assert validate_card(card(number), TODAY) == brand


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("4242424242424241", "incorrect_number"),  # Luhn fails
        ("42424242424242a2", "parameter_invalid"),
        ("4242", "parameter_invalid"),  # too short
        (with_luhn("42424242424242424242"), "parameter_invalid"),  # 21 digits
        (with_luhn("42424242424242"), "incorrect_number"),  # 15-digit Visa
        (with_luhn("3782822463100"), "incorrect_number"),  # 14-digit Amex
        (with_luhn("3782822463100051"), "incorrect_number"),  # 16-digit Amex
        (with_luhn("55555555555544"), "incorrect_number"),  # 15-digit Mastercard
        (with_luhn("999999999999999"), "card_brand_unsupported"),
        ("１２３４５６７８９０１２３", "parameter_invalid"),  # non-ASCII digits
    ],
)
def test_invalid_numbers_name_the_param(number: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_card(card(number), TODAY)
    assert info.value.field == ("card", "number")
    assert info.value.code == code
    assert number not in info.value.message


@pytest.mark.parametrize(
    ("month", "year", "field"),
    [
        (0, 2030, ("card", "exp_month")),
        (13, 2030, ("card", "exp_month")),
        (10, 2026, ("card", "exp_month")),  # last month: expired
        (12, 2025, ("card", "exp_year")),
        (1, 30, ("card", "exp_year")),  # two-digit year
        (1, 2090, ("card", "exp_year")),
    ],
)
def test_expiry(month: int, year: int, field: tuple[str, ...]) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_card(card("4242424242424242", month, year), TODAY)
    assert info.value.field == field


def test_card_valid_through_end_of_expiry_month() -> None:
    assert validate_card(card("4242424242424242", 11, 2026), TODAY) == "visa"
    assert validate_card(card("4242424242424242", 11, 2026), date(2026, 11, 30)) == "visa"
    with pytest.raises(InvalidRequest):
        validate_card(card("4242424242424242", 11, 2026), date(2026, 12, 1))


@pytest.mark.parametrize("holder", ["", "x" * 101, "Ann\nSmith"])
def test_holder_name(holder: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_card(card("4242424242424242", holder=holder), TODAY)
    assert info.value.field == ("card", "holder_name")


def test_field_prefix_for_payments() -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_card(card("4242424242424241"), TODAY, field_prefix=("source", "card"))
    assert info.value.field == ("source", "card", "number")


@pytest.mark.parametrize(
    ("cvc", "brand", "ok"),
    [
        ("123", "visa", True),
        ("1234", "visa", False),
        ("12", "visa", False),
        ("1234", "amex", True),
        ("123", "amex", False),
        ("12a", "mastercard", False),
    ],
)
def test_cvc(cvc: str, brand: str, ok: bool) -> None:
    if ok:
        validate_cvc(SensitiveStr(cvc), brand)
        return
    with pytest.raises(InvalidRequest) as info:
        validate_cvc(SensitiveStr(cvc), brand, field=("source", "cvc"))
    assert info.value.field == ("source", "cvc")
    assert cvc not in info.value.message


def test_bin_is_8_digits_for_16_plus() -> None:
    assert bin_of("4242424242424242") == "42424242"
    assert bin_of("378282246310005") == "378282"
    assert detect_brand("2221000000000009") == "mastercard"
    assert detect_brand("2220990000000000") is None


def test_sensitive_str_never_shows_its_value() -> None:
    secret = SensitiveStr("4111111111111111")
    assert "4111111111111111" not in repr(secret)
    assert repr(secret) == "SensitiveStr('****1111')"
    assert str(secret) == "[REDACTED]"
    assert f"{secret}" == "[REDACTED]"
    assert "4111111111111111" not in repr(card("4111111111111111"))
    assert secret.reveal() == "4111111111111111"
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]
    assert SensitiveStr("123") == SensitiveStr("123")
    assert repr(SensitiveStr("123")) == "SensitiveStr('****')"


# --- Luhn properties ---------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_luhn_check_digit_always_exists_and_is_unique(body: str) -> None:
    valid = [d for d in "0123456789" if luhn_valid(body + d)]
    assert len(valid) == 1


@settings(max_examples=200)
@given(st.text(alphabet="0123456789", min_size=2, max_size=19), st.data())
def test_luhn_detects_every_single_digit_error(number: str, data: st.DataObject) -> None:
    number = with_luhn(number[:-1])
    index = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != number[index]]))
    changed = number[:index] + replacement + number[index + 1 :]
    assert luhn_valid(number)
    assert not luhn_valid(changed)


@settings(max_examples=200)
@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
def test_luhn_matches_reference_implementation(number: str) -> None:
    def reference(n: str) -> bool:
        digits = [int(c) for c in n][::-1]
        odd = sum(digits[0::2])
        even = sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
        return (odd + even) % 10 == 0

    assert luhn_valid(number) == reference(number)


@settings(max_examples=100)
@given(st.text(min_size=1, max_size=20).filter(lambda s: not (s.isascii() and s.isdigit())))
def test_luhn_rejects_non_digits(text: str) -> None:
    assert not luhn_valid(text)


def test_fingerprint_is_stable_per_merchant_and_survives_the_redactor() -> None:
    from clearport.core.redaction import redact
    from clearport.vault.domain import fingerprint

    key = bytes(32)
    first = fingerprint(key, "mer_A", "4242424242424242")
    assert first == fingerprint(key, "mer_A", "4242424242424242")
    assert first != fingerprint(key, "mer_B", "4242424242424242")
    assert len(first) == 26
    for i in range(2_000):
        value = fingerprint(key, "mer_A", str(4_000_000_000_000_000 + i))
        assert redact(value) == value
