"""Routing rule sets over HTTP: the checker refusing what can never match, activation, the
decision on the payment, failover walking the rule's candidates, BIN data reaching the card and
the rules, and an activation seen by a second process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from clearport.bins.service import SAMPLE_FILE
from clearport.config import Settings
from clearport.wiring import Container, build_container
from tests.integration.test_cache_invalidation import DELIVERY_BOUND_S
from tests.support import Api, pg

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def rule_set(api: Api, admin: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    r = api.call("POST", "/v1/routing_rule_sets", admin, json=body)
    assert r.status_code == status, r.text
    return dict(r.json())


def activate(api: Api, admin: str, rule_set_id: str) -> dict[str, Any]:
    r = api.call("POST", f"/v1/routing_rule_sets/{rule_set_id}/activate", admin)
    assert r.status_code == 200, r.text
    return dict(r.json())


def pay(api: Api, key: str, number: str = CARD["number"], **body: Any) -> dict[str, Any]:
    r = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 1000, "currency": "usd", "source": {"card": {**CARD, "number": number}}}
        | body,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def register_dead(api: Api, admin: str, name: str) -> None:
    """An HTTP acquirer nobody listens for: every call is refused (a technical failure)."""
    r = api.call(
        "POST",
        "/v1/connectors",
        admin,
        json={"name": name, "type": "http_acquirer", "settings": {"url": "http://127.0.0.1:9"}},
    )
    assert r.status_code == 201, r.text


def test_the_checker_refuses_a_shadowed_rule_naming_it(api: Api) -> None:
    admin = api.operator("admin")
    refused = rule_set(
        api,
        admin,
        {
            "rules": [
                {"name": "visa", "when": {"brand": "visa"}, "then": {"connectors": ["simulator"]}},
                {
                    "name": "visa-debit",
                    "when": {"brand": "visa", "funding": "debit"},
                    "then": {"connectors": ["simulator"]},
                },
            ],
            "default": {"connectors": ["simulator"]},
        },
        status=400,
    )
    error = refused["error"]
    assert error["code"] == "rule_unreachable"
    assert error["param"] == "rules[1]"
    assert "'visa-debit'" in error["message"] and "'visa'" in error["message"]
    unknown = rule_set(
        api,
        admin,
        {
            "rules": [{"name": "a", "when": {}, "then": {"connectors": ["nowhere"]}}],
            "default": {"connectors": ["simulator"]},
        },
        status=400,
    )["error"]
    assert unknown["code"] == "rule_invalid" and "'nowhere'" in unknown["message"]
    contradiction = rule_set(
        api,
        admin,
        {
            "rules": [
                {
                    "name": "mc-on-4",
                    "when": {"brand": "mastercard", "bin_prefix": "4"},
                    "then": {"connectors": ["simulator"]},
                }
            ],
            "default": {"connectors": ["simulator"]},
        },
        status=400,
    )["error"]
    assert "contradict" in contradiction["message"]
    no_currency = rule_set(
        api,
        admin,
        {
            "rules": [{"name": "big", "when": {"amount_gte": 5}, "then": {"connectors": ["x"]}}],
            "default": {"connectors": ["simulator"]},
        },
        status=400,
    )["error"]
    assert no_currency["param"] == "rules[0][when][currency]"
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM routing_rule_sets").fetchone() == (0,)


def test_activate_and_read_the_decision_on_the_payment_with_failover(api: Api) -> None:
    admin = api.operator("admin")
    register_dead(api, admin, "acquirer-dead")
    created = rule_set(
        api,
        admin,
        {
            "rules": [
                {
                    "name": "big-usd",
                    "when": {"currency": "usd", "amount_gte": 50000},
                    "then": {"connectors": ["acquirer-dead", "simulator"]},
                }
            ],
            "default": {"connectors": ["simulator"]},
        },
    )
    assert (created["object"], created["status"]) == ("routing_rule_set", "draft")
    _, key = api.merchant(admin)
    # A draft routes nothing.
    assert pay(api, key, amount=60000)["routing"]["rule_set"] is None
    active = activate(api, admin, created["id"])
    assert active["status"] == "active" and active["activated"] is not None

    small = pay(api, key, amount=100)
    assert small["routing"] | {"failover": []} == {
        "rule_set": created["id"],
        "version": created["version"],
        "rule": "default",
        "candidates": ["simulator"],
        "chosen": "simulator",
        "reason": "no rule matched: the default",
        "failover": [],
    }
    big = pay(api, key, amount=60000)
    assert big["status"] == "authorized"
    assert big["connector"] == "simulator"
    assert big["routing"]["rule"] == "big-usd"
    assert big["routing"]["candidates"] == ["acquirer-dead", "simulator"]
    assert big["routing"]["failover"] == [
        {"connector": "acquirer-dead", "decline_code": "connection_refused"}
    ]
    assert api.call("GET", f"/v1/payments/{big['id']}", key).json()["routing"] == big["routing"]

    # A second version replaces the first: one active at a time, both audited.
    second = rule_set(
        api,
        admin,
        {"rules": [], "default": {"connectors": ["simulator"]}},
    )
    activate(api, admin, second["id"])
    first_now = api.call("GET", f"/v1/routing_rule_sets/{created['id']}", admin).json()
    assert first_now["status"] == "inactive" and second["version"] > created["version"]
    assert pay(api, key, amount=60000)["routing"]["version"] == second["version"]
    with pg(api.database_url) as conn:
        audited = conn.execute(
            "SELECT event_type FROM audit_events WHERE resource = %s ORDER BY seq",
            (created["id"],),
        ).fetchall()
    assert audited == [("routing_rule_set.created",), ("routing_rule_set.activated",)]


def test_who_may_read_and_write_rule_sets(api: Api) -> None:
    admin, support, finance = (api.operator(r) for r in ("admin", "support", "finance"))
    body = {"rules": [], "default": {"connectors": ["simulator"]}}
    created = rule_set(api, admin, body)
    for reader in (support, finance):
        assert api.call("GET", "/v1/routing_rule_sets", reader).status_code == 200
        assert api.call("POST", "/v1/routing_rule_sets", reader, json=body).status_code == 403
        path = f"/v1/routing_rule_sets/{created['id']}/activate"
        assert api.call("POST", path, reader).status_code == 403
    _, merchant_key = api.merchant(admin)
    assert api.call("GET", "/v1/routing_rule_sets", merchant_key).status_code == 403


@pytest.fixture
async def second_process(database_url: str, settings: Settings) -> AsyncIterator[Container]:
    """Another process with long cache lifetimes: only an announcement can tell it of a change."""
    local = settings.model_copy(update={"rules_cache_ttl_s": 3600.0})
    container = build_container(local, database_url)
    await container.start()
    try:
        yield container
    finally:
        await container.stop()


async def _until(check: Any, expected: Any) -> None:
    deadline = time.monotonic() + DELIVERY_BOUND_S
    while (seen := await check()) != expected:
        assert time.monotonic() < deadline, f"still {seen!r}, not {expected!r}"
        await asyncio.sleep(0.02)


async def test_an_activation_and_a_bin_import_reach_another_process(
    api: Api, second_process: Container
) -> None:
    router = second_process.router
    admin = api.operator("admin")

    async def active_version() -> int | None:
        rules = await router.active_set()
        return None if rules is None else rules.version

    await _until(active_version, None)
    created = rule_set(api, admin, {"rules": [], "default": {"connectors": ["simulator"]}})
    activate(api, admin, created["id"])
    await _until(active_version, created["version"])

    # The BIN table, imported by this process, reaches the server's tokenization.
    _, key = api.merchant(admin)
    await second_process.bins.import_text(SAMPLE_FILE.read_text())

    async def funding() -> tuple[str | None, str | None]:
        card = pay(api, key, number="4000056655665556")["card"]
        return card["funding"], card["issuer_country"]

    await _until(funding, ("debit", "US"))


async def test_bin_data_reaches_the_card_and_the_rules(
    api: Api, vault_container: Container
) -> None:
    await vault_container.bins.import_text(SAMPLE_FILE.read_text())
    admin = api.operator("admin")
    register_dead(api, admin, "acquirer-debit")
    created = rule_set(
        api,
        admin,
        {
            "rules": [
                {
                    "name": "debit",
                    "when": {"funding": "debit", "issuer_country": ["US", "GB"]},
                    "then": {"connectors": ["simulator"]},
                },
                {
                    "name": "prepaid-mc",
                    "when": {"brand": "mastercard", "bin_range": ["510510", "510510"]},
                    "then": {"connectors": ["simulator"]},
                },
            ],
            "default": {"connectors": ["simulator"]},
        },
    )
    activate(api, admin, created["id"])
    _, key = api.merchant(admin)
    deadline = time.monotonic() + DELIVERY_BOUND_S
    while (debit := pay(api, key, number="4000056655665556"))["card"]["funding"] is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert debit["card"] | {"fingerprint": ""} == {
        "brand": "visa",
        "bin": "40000566",
        "last4": "5556",
        "exp_month": 12,
        "exp_year": 2030,
        "fingerprint": "",
        "funding": "debit",
        "category": "consumer",
        "issuer_country": "US",
    }
    assert debit["routing"]["rule"] == "debit"
    assert pay(api, key, number="5105105105105100")["routing"]["rule"] == "prepaid-mc"
    credit = pay(api, key)  # 4242...: credit, US
    assert (credit["card"]["funding"], credit["routing"]["rule"]) == ("credit", "default")
    # A token remembers what the BIN table said.
    token = api.call(
        "POST",
        "/v1/tokens",
        key,
        json={"card": {"number": "4000056655665556", "exp_month": 12, "exp_year": 2030}},
    ).json()
    assert token["card"]["funding"] == "debit"
    by_token = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 500, "currency": "usd", "source": {"token": token["id"]}},
    ).json()
    assert by_token["routing"]["rule"] == "debit"
