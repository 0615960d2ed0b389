"""What operators do in the console, and what the platform does next: a rule set refused by the
checker, fixed, activated, and the next payment routed by it; a merchant suspended and its next
payment refused; a dispute answered; support's read-only view, and its hand-made POST refused."""

from __future__ import annotations

import json

from tests.e2e.console.conftest import Console
from tests.e2e.console.flows import csrf_of, enrol
from tests.integration.test_payments_api import CARD, post
from tests.money_support import capture, dispute
from tests.support import Api


def _rules(connector: str) -> str:
    return json.dumps({
        "rules": [{"name": "visa-to-sim", "when": {"brand": "visa"},
                   "then": {"connectors": [connector]}}],
        "default": {"connectors": ["simulator"]},
    })  # fmt: skip


def test_rule_set_rejected_fixed_activated_then_routes_the_next_payment(
    tab: Console, platform_api: Api
) -> None:
    admin = platform_api.operator("admin")
    _, key = platform_api.merchant(admin)
    enrol(tab, platform_api.operator("admin"))
    tab.go("/console/routing/routing/new")
    tab.page.fill("textarea[name=body]", _rules("no-such-acquirer"))
    tab.page.click("button[value=check]")
    verdict = tab.page.inner_text("#verdict")
    assert "no-such-acquirer" in verdict and "visa-to-sim" in verdict, verdict
    tab.shot("rule-editor-rejected")
    # Saving the same set is refused too: nothing was stored.
    tab.page.click("button[value=save]")
    assert "no-such-acquirer" in tab.page.inner_text("#verdict")
    assert platform_api.call("GET", "/v1/routing_rule_sets", admin).json()["data"] == []

    tab.page.fill("textarea[name=body]", _rules("simulator"))
    tab.page.click("button[value=check]")
    assert "no problem found" in tab.page.inner_text("#verdict")
    tab.shot("rule-editor-accepted")
    tab.page.click("button[value=save]")
    tab.page.wait_for_url("**/console/routing/routing/rrs_*")
    rule_set_id = tab.page.url.split("/")[-1].split("?")[0]
    tab.page.click("button:has-text('Activate')")
    assert "Activated" in tab.page.inner_text(".notice")
    tab.page.click("button:has-text('Replay')")
    assert "visa-to-sim" in tab.page.inner_text("main")
    tab.shot("rule-set-activated")

    paid = post(platform_api, key, "/v1/payments",
                {"amount": 1500, "currency": "usd", "source": {"card": dict(CARD)}})  # fmt: skip
    assert paid.status_code == 201, paid.text
    routing = paid.json()["routing"]
    assert routing["rule_set"] == rule_set_id and routing["rule"] == "visa-to-sim"
    with_audit = platform_api.call(
        "GET", "/v1/audit_events", admin, params={"resource": rule_set_id}
    ).json()["data"]
    assert {e["type"] for e in with_audit} >= {
        "routing_rule_set.created",
        "routing_rule_set.activated",
    }


def test_suspended_merchant_cannot_pay(tab: Console, platform_api: Api) -> None:
    admin = platform_api.operator("admin")
    merchant_id, key = platform_api.merchant(admin)
    enrol(tab, platform_api.operator("admin"))
    tab.go(f"/console/merchants/{merchant_id}")
    tab.page.click("form[action$='/status'] button:has-text('Suspend')")
    assert "suspended" in tab.page.inner_text("h1")
    tab.shot("merchant-suspended")
    refused = post(platform_api, key, "/v1/payments",
                   {"amount": 1500, "currency": "usd", "source": {"card": dict(CARD)}})  # fmt: skip
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "merchant_inactive"


def test_new_key_secret_is_shown_once(tab: Console, platform_api: Api) -> None:
    admin = platform_api.operator("admin")
    merchant_id, _ = platform_api.merchant(admin)
    enrol(tab, platform_api.operator("admin"))
    tab.go(f"/console/merchants/{merchant_id}")
    tab.page.click("button:has-text('New secret key')")
    secret = tab.page.inner_text("#new-secret")
    assert secret.startswith("sk_test_")
    assert platform_api.call("GET", "/v1/balance", secret).status_code == 200
    tab.go(f"/console/merchants/{merchant_id}")
    assert secret not in tab.page.content()


def test_dispute_answered_from_the_console(tab: Console, platform_api: Api) -> None:
    admin = platform_api.operator("admin")
    _, key = platform_api.merchant(admin)
    opened = dispute(platform_api, admin, capture(platform_api, key, 5000)["id"], 5000)
    enrol(tab, platform_api.operator("finance"))
    tab.go(f"/console/disputes/{opened['id']}")
    tab.page.fill("input[name=product_description]", "Blue widget, delivered <on time>")
    tab.page.fill("input[name=shipping_tracking_number]", "1Z999")
    tab.page.click("button:has-text('Submit to the network')")
    assert "under review" in tab.page.inner_text(".notice")
    tab.shot("dispute-answered")
    got = platform_api.call("GET", f"/v1/disputes/{opened['id']}", admin).json()
    assert got["status"] == "under_review"
    assert got["evidence"]["product_description"] == "Blue widget, delivered <on time>"


def test_support_sees_no_write_control_and_a_hand_made_post_is_refused(
    tab: Console, platform_api: Api
) -> None:
    admin = platform_api.operator("admin")
    merchant_id, key = platform_api.merchant(admin)
    opened = dispute(platform_api, admin, capture(platform_api, key, 5000)["id"], 5000)
    enrol(tab, platform_api.operator("support"))
    for path in (
        f"/console/merchants/{merchant_id}",
        "/console/merchants",
        "/console/routing",
        f"/console/disputes/{opened['id']}",
        "/console/settlements",
        "/console/reconciliation",
    ):
        tab.go(path)
        # Every form that posts is the sign-out one: no write control at all.
        posting = tab.page.locator("form[method=post]").count()
        assert posting == tab.page.locator("form.signout").count() == 1, path
    tab.go(f"/console/merchants/{merchant_id}")
    tab.shot("support-merchant")
    answer = tab.page.request.post(
        f"{tab.url}/console/merchants/{merchant_id}/status",
        form={"status": "suspended", "csrf_token": csrf_of(tab)},
    )
    assert answer.status == 403
    assert (
        platform_api.call("GET", f"/v1/merchants/{merchant_id}", admin).json()["status"] == "active"
    )
    answer = tab.page.request.post(
        f"{tab.url}/console/routing/routing/new",
        form={"body": "{}", "action": "save", "csrf_token": csrf_of(tab)},
    )
    assert answer.status == 403
    # The audit log is for admin and security: support has no link to it, and gets the 403
    # page, not the events, when it goes there anyway.
    assert tab.page.locator("nav a[href='/console/audit']").count() == 0
    assert tab.page.locator("nav a[href='/console/payments']").count() == 1
    assert tab.go("/console/audit").status == 403


def test_payout_terms_out_of_range_are_refused_with_a_page_not_stored(
    tab: Console, platform_api: Api
) -> None:
    """The bound lived in the API's schema only: from the console, -5 reached the database's
    CHECK and answered 500. It is the merchants service's rule now."""
    admin = platform_api.operator("admin")
    merchant_id, _ = platform_api.merchant(admin)
    enrol(tab, platform_api.operator("finance"))
    tab.go(f"/console/merchants/{merchant_id}")
    for value, status in (("-5", 400), ("91", 400), ("x", 400), ("3", 200)):
        tab.page.fill("input[name=payout_delay_days]", value)
        with tab.page.expect_navigation() as navigation:
            tab.page.click("form[action$='/payout_settings'] button")
        assert navigation.value.status == status, value
        if status == 400:
            assert "payout_delay_days" in tab.page.inner_text("main")
            tab.go(f"/console/merchants/{merchant_id}")
    got = platform_api.call("GET", f"/v1/merchants/{merchant_id}", admin).json()
    assert got["payout_delay_days"] == 3
