"""The console's pure parts: session timing, TOTP steps, money as text, chart geometry, form
dates, the overview's buckets and the BIN prefix range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from clearport.console.charts import count_bars, rate_bars, volume_columns
from clearport.console.forms import day
from clearport.console.web import money
from clearport.core.errors import InvalidRequest, InvariantViolation
from clearport.payments.stats import BucketStat, GroupStat, _every_bucket
from clearport.payments.store import _bin_range
from clearport.sessions import totp
from clearport.sessions.domain import SessionPolicy, key_lockout_subject

AT = datetime(2026, 12, 7, 9, 0, 10, tzinfo=UTC)


def test_session_policy_idle_and_lifetime() -> None:
    policy = SessionPolicy()
    assert policy.idle_since(AT) == AT - timedelta(minutes=15)
    assert policy.expires_at(AT) == AT + timedelta(hours=12)
    with pytest.raises(InvariantViolation):
        SessionPolicy(idle_s=100, lifetime_s=50)


def test_totp_accepts_one_step_of_drift_and_nothing_else() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32
    app = pyotp.TOTP(secret)
    now = totp.step_at(AT)
    for drift in (-1, 0, 1):
        assert (
            totp.matching_step(secret, app.at(AT + timedelta(seconds=30 * drift)), AT)
            == now + drift
        )
    for far in (-3, 2, 5):
        code = app.at(AT + timedelta(seconds=30 * far))
        if code not in {app.at(AT + timedelta(seconds=30 * d)) for d in (-1, 0, 1)}:
            assert totp.matching_step(secret, code, AT) is None
    # Arabic-Indic and full-width digits pass str.isdigit(): they made compare_digest raise.
    for malformed in ("", "12345", "1234567", "abcdef", "12 456", "١٢٣٤٥٦", "１２３４５６"):
        assert totp.matching_step(secret, malformed, AT) is None
    assert totp.provisioning_uri(secret, "key_1").startswith("otpauth://totp/Clearport:key_1?")


def test_lockout_subject_names_the_key() -> None:
    assert key_lockout_subject("key_abc") == "operator_key:key_abc"


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (2599, "usd", "25.99 USD"),
        (-5, "usd", "-0.05 USD"),
        (123456789, "eur", "1,234,567.89 EUR"),
        (500, "jpy", "500 JPY"),
        (1234, "kwd", "1.234 KWD"),
        (0, "usd", "0.00 USD"),
    ],
)
def test_money_is_exact_text(amount: int, currency: str, shown: str) -> None:
    assert money(amount, currency) == shown


def test_form_days_are_utc_day_bounds_and_bad_ones_are_refused() -> None:
    assert day("2026-12-07", "from") == datetime(2026, 12, 7, tzinfo=UTC)
    assert day("2026-12-07", "to", end=True) == datetime(2026, 12, 8, tzinfo=UTC)
    assert day(None, "from") is None
    with pytest.raises(InvalidRequest):
        day("07/12/2026", "from")


def _stat(key: str, approved: int, declined: int) -> GroupStat:
    return GroupStat(key, approved + declined, approved, declined, 0, 0, None, None)


def test_charts_scale_bars_to_their_values() -> None:
    rates = rate_bars(
        "r", [_stat("a", 9, 1), _stat("b", 1, 1), GroupStat("c", 0, 0, 0, 0, 0, None, None)]
    )
    assert [b.label for b in rates.bars] == ["a", "b"]  # no decided payment: no rate to draw
    assert rates.bars[0].width == pytest.approx(rates.bars[1].width * 0.9 / 0.5)
    counts = count_bars("c", [_stat("x", 0, 4), _stat("y", 0, 2)])
    assert counts.bars[0].width == pytest.approx(2 * counts.bars[1].width)
    assert count_bars("none", []).empty
    columns = volume_columns("v", [BucketStat(AT, 4, 3), BucketStat(AT, 2, 2)], "%H")
    assert columns.bars[0].height == pytest.approx(2 * columns.bars[1].height)


def test_every_bucket_of_the_window_is_there() -> None:
    since = AT - timedelta(hours=24)
    found = [BucketStat(since + timedelta(hours=3), 5, 4)]
    buckets = _every_bucket(found, since, timedelta(hours=1), timedelta(hours=24))
    assert len(buckets) == 24
    assert buckets[3] == found[0] and buckets[0] == BucketStat(since, 0, 0)


@pytest.mark.parametrize(
    ("prefix", "clauses", "args"),
    [
        ("424242", ["card_bin >= $1", "card_bin < $2"], ["424242", "424243"]),
        ("400009", ["card_bin >= $1", "card_bin < $2"], ["400009", "400010"]),
        ("099999", ["card_bin >= $1", "card_bin < $2"], ["099999", "100000"]),
        ("999999", ["card_bin >= $1"], ["999999"]),
    ],
)
def test_a_bin_prefix_is_an_index_range(prefix: str, clauses: list[str], args: list[str]) -> None:
    collected: list[object] = []
    assert _bin_range(prefix, collected) == clauses
    assert collected == args
