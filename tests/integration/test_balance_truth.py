"""Balance transactions tell the truth: over random histories of captures, refunds, disputes
(won, lost), adjustments, settlement runs and payouts (paid, failed), the transactions of each
status add up to the balance of that name after every step, and the ledger stays zero-sum."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearport.config import Settings
from tests.integration.test_payments_api import post
from tests.integration.test_settlement_api import US_BANK, wait_run
from tests.money_support import assert_list_agrees_with_balance, capture, zero_sum
from tests.support import Api

pytestmark = pytest.mark.slow

# Settlement runs are one per business date: each run of every example takes the next date,
# later than the one before (carried deficits go forward), after the pricing table's start.
_DAYS_AGO = itertools.count(300, -1)

step = st.one_of(
    st.tuples(st.just("capture"), st.integers(100, 20_000)),
    st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 100)),
    st.tuples(st.just("dispute"), st.integers(0, 9), st.integers(1, 100), st.booleans()),
    st.tuples(st.just("close"), st.integers(0, 9), st.booleans()),
    st.tuples(st.just("adjust"), st.integers(-5_000, 5_000).filter(bool)),
    st.tuples(st.just("settle")),
    st.tuples(st.just("payout"), st.booleans()),
)


def _settle(api: Api, admin: str, settings: Settings) -> None:
    time.sleep(1.05)
    day = (datetime.now(UTC) - timedelta(days=next(_DAYS_AGO))).date().isoformat()
    started = post(
        api, admin, "/v1/settlement_runs", {"business_date": day, "cutoff": int(time.time())}
    )
    assert started.status_code == 201, started.text
    assert wait_run(api, admin, started.json()["id"], settings)["status"] == "completed"


def _apply(
    settings: Settings,
    api: Api,
    admin: str,
    merchant: str,
    key: str,
    op: tuple[Any, ...],
    state: dict[str, list[Any]],
) -> None:
    payments, disputes = state["payments"], state["disputes"]
    match op:
        case ("capture", amount):
            payments.append(capture(api, key, amount))
        case ("refund", i, percent) if payments:
            p = api.call("GET", f"/v1/payments/{payments[i % len(payments)]['id']}", key).json()
            amount = max(1, (p["amount_captured"] - p["amount_refunded"]) * percent // 100)
            r = post(api, key, f"/v1/payments/{p['id']}/refunds", {"amount": amount})
            assert r.status_code in (201, 400, 409), r.text  # disputed or nothing left
        case ("dispute", i, percent, inquiry) if payments:
            p = payments[i % len(payments)]
            r = post(
                api,
                admin,
                "/v1/disputes",
                {
                    "payment": p["id"],
                    "reason": "general",
                    "amount": max(1, p["amount"] * percent // 100),
                    "inquiry": inquiry,
                },
            )
            assert r.status_code in (201, 400), r.text  # 400: more than is left to dispute
            if r.status_code == 201:
                disputes.append(r.json())
        case ("close", i, won) if disputes:
            d = disputes[i % len(disputes)]
            r = post(
                api, admin, f"/v1/disputes/{d['id']}/close", {"outcome": "won" if won else "lost"}
            )
            assert r.status_code in (200, 409), r.text  # 409: closed already
        case ("adjust", amount):
            r = post(
                api,
                admin,
                "/v1/adjustments",
                {"merchant": merchant, "amount": amount, "currency": "usd", "reason": "correction"},
            )
            assert r.status_code == 201, r.text
        case ("settle",):
            _settle(api, admin, settings)
        case ("payout", paid):
            sent = api.call("GET", "/v1/payouts", key, params={"status": "in_transit"}).json()
            if sent["data"]:
                r = post(
                    api,
                    admin,
                    f"/v1/payouts/{sent['data'][0]['id']}/mark",
                    {"status": "paid" if paid else "failed", "failure_code": "R01"},
                )
                assert r.status_code == 200, r.text


@settings(
    max_examples=8,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(step, min_size=4, max_size=14))
def test_the_list_and_the_balance_agree_at_every_moment(
    api: Api, settings: Settings, history: list[Any]
) -> None:
    admin = api.operator("admin")
    merchant, key = api.merchant(admin, payout_delay_days=0)
    assert (
        api.call("PUT", f"/v1/merchants/{merchant}/bank_account", admin, json=US_BANK).status_code
        == 200
    )
    state: dict[str, list[Any]] = {"payments": [], "disputes": []}
    for op in [*history, ("settle",)]:
        _apply(settings, api, admin, merchant, key, op, state)
        assert_list_agrees_with_balance(api, key)
    zero_sum(api)
