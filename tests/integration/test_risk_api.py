"""Risk rule sets over HTTP: a blocked payment is declined `blocked` without a connector, a
dry-run hit is recorded and not enforced, velocity counts across processes."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin, Principal, PrincipalKind
from clearport.config import Settings
from clearport.core.errors import InvalidRequest
from clearport.core.sensitive import SensitiveStr
from clearport.payments.authorize import InlineCard, NewPayment
from clearport.payments.domain import PaymentStatus
from clearport.risk.plugins import risk_conditions
from clearport.vault.cards import CardInput
from clearport.wiring import Container
from tests.payments_support import merchant_principal, with_container
from tests.support import Api, pg

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def risk_set(api: Api, admin: str, rules: list[dict[str, Any]], status: int = 201) -> str:
    r = api.call("POST", "/v1/risk_rule_sets", admin, json={"rules": rules})
    assert r.status_code == status, r.text
    if status != 201:
        return str(r.json()["error"]["param"])
    rule_set_id = str(r.json()["id"])
    activated = api.call("POST", f"/v1/risk_rule_sets/{rule_set_id}/activate", admin)
    assert activated.status_code == 200, activated.text
    return rule_set_id


def pay(api: Api, key: str, amount: int = 1000, number: str = CARD["number"]) -> dict[str, Any]:
    r = api.call(
        "POST",
        "/v1/payments",
        key,
        json={
            "amount": amount,
            "currency": "usd",
            "source": {"card": {**CARD, "number": number}},
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_an_enforced_hit_blocks_and_a_dry_run_hit_is_recorded(api: Api) -> None:
    admin = api.operator("admin")
    rule_set_id = risk_set(
        api,
        admin,
        [
            {
                "name": "bad-bins",
                "mode": "enforce",
                "kind": "block_list",
                "field": "bin",
                "values": ["424242"],
            },
            {
                "name": "big",
                "mode": "dry_run",
                "kind": "amount_limit",
                "currency": "usd",
                "max_amount": 5000,
            },
        ],
    )
    _, key = api.merchant(admin)
    blocked = pay(api, key)
    assert (blocked["status"], blocked["decline_code"]) == ("declined", "blocked")
    assert blocked["connector"] is None and blocked["routing"] is None
    assert blocked["risk"] == {
        "rule_set": rule_set_id,
        "version": blocked["risk"]["version"],
        "rules_fired": [{"name": "bad-bins", "kind": "block_list", "mode": "enforce"}],
        "mode": "enforce",
    }
    # Recorded like any decline: the event, the txlog; no connector was asked.
    events = api.call("GET", "/v1/events", key).json()["data"]
    assert [e["type"] for e in events] == ["payment.declined"]
    with pg(api.database_url) as conn:
        attempts = conn.execute(
            "SELECT connector, status, decline_code FROM payment_attempts WHERE payment_id = %s",
            (blocked["id"],),
        ).fetchall()
    assert attempts == [("", "declined", "blocked")]

    # Another card, over the dry-run limit: recorded, not enforced.
    passed = pay(api, key, amount=9000, number="5555555555554444")
    assert passed["status"] == "authorized"
    assert passed["risk"]["mode"] == "dry_run"
    assert passed["risk"]["rules_fired"] == [
        {"name": "big", "kind": "amount_limit", "mode": "dry_run"}
    ]
    clean = pay(api, key, amount=100, number="5555555555554444")
    assert clean["risk"]["rules_fired"] == [] and clean["risk"]["mode"] is None


def test_rule_errors_name_the_rule(api: Api) -> None:
    admin = api.operator("admin")
    param = risk_set(
        api,
        admin,
        [
            {
                "name": "v",
                "mode": "enforce",
                "kind": "velocity",
                "per": "merchant",
                "window_s": 60,
                "max_amount": 100,
            }
        ],
        status=400,
    )
    assert param == "rules[0][currency]"
    param = risk_set(
        api,
        admin,
        [{"name": "x", "mode": "enforce", "kind": "no_such_plugin", "params": {}}],
        status=400,
    )
    assert param == "rules[0][kind]"


async def test_velocity_counts_across_two_processes_within_its_bound(
    api: Api, vault_container: Container
) -> None:
    admin = api.operator("admin")
    risk_set(
        api,
        admin,
        [
            {
                "name": "card-3-per-hour",
                "mode": "enforce",
                "kind": "velocity",
                "per": "card_fingerprint",
                "window_s": 3600,
                "max_count": 3,
            }
        ],
    )
    merchant_id, key = api.merchant(admin)
    other = vault_container.payments
    principal = Principal(PrincipalKind.MERCHANT, key_id="key_test", merchant_id=merchant_id)

    async def pay_in_the_other_process(number: str) -> PaymentStatus:
        card = CardInput(SensitiveStr(number), 12, 2030)
        created = await other.create(
            principal, NewPayment(1000, "usd", InlineCard(card, None), False, None, {}), None
        )
        return created.status

    # Sequential, alternating between the processes: exact.
    number = "4000056655665556"
    seen = [
        pay(api, key, number=number)["status"],
        str(await pay_in_the_other_process(number)),
        pay(api, key, number=number)["status"],
        str(await pay_in_the_other_process(number)),
        pay(api, key, number=number)["status"],
    ]
    assert seen == ["authorized", "authorized", "authorized", "declined", "declined"]
    # The blocked attempts do not count: the card is still at three.
    with pg(api.database_url) as conn:
        counted = conn.execute(
            "SELECT count(*) FROM payments WHERE decline_code IS DISTINCT FROM 'blocked' "
            "AND merchant_id = %s",
            (merchant_id,),
        ).fetchone()
    assert counted == (3,)

    # A burst of 8 at once from both processes on a fresh card: at most max_count plus the
    # requests in flight together (decision 0520), and never fewer than max_count.
    burst_card = "5555555555554444"
    http_side = [asyncio.to_thread(pay, api, key, 1000, burst_card) for _ in range(4)]
    other_side = [pay_in_the_other_process(burst_card) for _ in range(4)]
    results = await asyncio.gather(*http_side, *other_side)
    statuses = [r["status"] if isinstance(r, dict) else str(r) for r in results]
    approved = statuses.count("authorized")
    assert 3 <= approved <= 3 + len(results) - 1
    assert set(statuses) <= {"authorized", "declined"}


@pytest.fixture
def risk_plugin_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(PLUGINS))
    importlib.invalidate_caches()
    yield
    importlib.invalidate_caches()


def test_a_plugin_condition_blocks_and_a_bad_plugin_is_left_out(
    risk_plugin_installed: None, api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    conditions = risk_conditions()
    assert set(conditions) == {"high_risk_mcc"}  # not the broken one, not the impostor
    merchant_id, _ = api.merchant(mcc="7995")
    card = CardInput(SensitiveStr("4242424242424242"), 12, 2030)
    new = NewPayment(1500, "usd", InlineCard(card, SensitiveStr("123")), False, None, {})

    async def work(c: Container) -> None:
        refused = {
            "rules": [
                {
                    "name": "g",
                    "mode": "enforce",
                    "kind": "high_risk_mcc",
                    "params": {"mccs": "7995"},
                }
            ]
        }
        with pytest.raises(InvalidRequest) as bad:
            await c.risk_rules.create(SYSTEM_CLI, Origin("test"), refused)
        assert bad.value.field == ("rules", "0", "params")
        body = {
            "rules": [
                {
                    "name": "gambling",
                    "mode": "enforce",
                    "kind": "high_risk_mcc",
                    "params": {"mccs": ["7995"]},
                }
            ]
        }
        created = await c.risk_rules.create(SYSTEM_CLI, Origin("test"), body)
        await c.risk_rules.activate(SYSTEM_CLI, Origin("test"), created.id)
        payment = await c.payments.create(merchant_principal(merchant_id), new, None)
        assert (payment.status, payment.decline_code) == (PaymentStatus.DECLINED, "blocked")
        assert payment.risk is not None
        assert payment.risk["rules_fired"] == [
            {"name": "gambling", "kind": "high_risk_mcc", "mode": "enforce"}
        ]

    with_container(settings, database_url, tmp_path, work)


def test_a_blocked_payment_is_replayed_under_its_idempotency_key(api: Api) -> None:
    admin = api.operator("admin")
    risk_set(
        api,
        admin,
        [
            {
                "name": "no-us",
                "mode": "enforce",
                "kind": "block_list",
                "field": "issuer_country",
                "values": ["US"],
            },
            {
                "name": "all-bins",
                "mode": "enforce",
                "kind": "block_list",
                "field": "bin",
                "values": ["4"],
            },
        ],
    )
    _, key = api.merchant(admin)
    body = {"amount": 700, "currency": "usd", "source": {"card": dict(CARD)}}
    first = api.call("POST", "/v1/payments", key, json=body, idempotency_key="blocked-1")
    again = api.call("POST", "/v1/payments", key, json=body, idempotency_key="blocked-1")
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json() and first.json()["decline_code"] == "blocked"
