"""Each page rendered with real data from a seeded platform (a screenshot of each under
bench/out/console/), searches, and XSS payloads shown as text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearport.config import Settings
from tests.e2e.console.conftest import Console
from tests.e2e.console.flows import enrol
from tests.e2e.console.seeding import XSS_METADATA, XSS_NAME, XSS_REFERENCE, Platform, seed
from tests.support import Api
from tests.webhook_support import receiving


@pytest.fixture(scope="module")
def platform(platform_api: Api, settings: Settings) -> Iterator[Platform]:
    with receiving() as receiver:
        yield seed(platform_api, settings, receiver)


@pytest.fixture
def admin_tab(platform: Platform, tab: Console) -> Console:
    enrol(tab, tab_key(platform, tab))
    return tab


def tab_key(platform: Platform, tab: Console) -> str:
    del tab
    return platform.admin


def test_every_page_renders_the_seeded_platform(
    platform: Platform, tab: Console, platform_api: Api
) -> None:
    enrol(tab, platform_api.operator("admin"))
    pages = {
        "overview": (
            "/console/overview",
            ["Approval rate by connector", "Decline reasons", "do_not_honor"],
        ),
        "overview-7d": ("/console/overview?window=7d", ["last 7 days"]),
        "payments": ("/console/payments", [platform.xss_payment, "order-declined"]),
        "payment": (
            f"/console/payments/{platform.declined_payment}",
            ["Routing decision", "do_not_honor"],
        ),
        "merchants": ("/console/merchants", [platform.merchant]),
        "merchant": (
            f"/console/merchants/{platform.merchant}",
            ["Bank account", "Keys", "Suspend"],
        ),
        "routing": ("/console/routing", ["Routing rule sets", "Connectors"]),
        "disputes": ("/console/disputes", [platform.dispute, "needs_response"]),
        "dispute": (f"/console/disputes/{platform.dispute}", ["Submit to the network"]),
        "reconciliation": (
            "/console/reconciliation",
            ["amount_mismatch", "currency_mismatch", "duplicate"],
        ),
        "settlements": ("/console/settlements", ["stl_", "po_", "sr_", "completed", ".csv", "pf_"]),
        "webhooks": ("/console/webhooks", [platform.endpoint]),
        "webhook": (f"/console/webhooks/{platform.endpoint}", ["wd_", "Redeliver"]),
        "audit": ("/console/audit", ["merchant.created", "console.signed_in"]),
    }
    for name, (path, expected) in pages.items():
        answer = tab.go(path)
        assert answer.status == 200, (path, answer.status)
        text = tab.page.inner_text("main")
        for wanted in expected:
            assert wanted in text, (path, wanted)
        tab.shot(name)


def test_payment_search_by_card_reference_status_and_dates(
    platform: Platform, tab: Console, platform_api: Api
) -> None:
    enrol(tab, platform_api.operator("support"))
    payment = platform_api.call(
        "GET", f"/v1/payments/{platform.declined_payment}", platform.admin
    ).json()
    card = payment["card"]
    searches = {
        f"bin={card['bin'][:6]}&last4={card['last4']}": True,
        f"fingerprint={card['fingerprint']}": True,
        "reference=order-declined": True,
        "status=declined": True,
        "status=captured": False,
        "from=2000-01-01&to=2000-01-02": False,
    }
    for params, found in searches.items():
        tab.go(f"/console/payments?{params}")
        assert (platform.declined_payment in tab.page.inner_text("main")) is found, params
    tab.shot("payments-search")
    # An id goes straight to the payment.
    tab.go(f"/console/payments?id={platform.declined_payment}")
    assert tab.page.url.endswith(f"/console/payments/{platform.declined_payment}")


def test_xss_payloads_are_shown_as_text_never_run(
    platform: Platform, tab: Console, platform_api: Api
) -> None:
    enrol(tab, platform_api.operator("admin"))
    tab.go(f"/console/merchants/{platform.xss_merchant}")
    assert XSS_NAME in tab.page.inner_text("h1")
    tab.go(f"/console/payments/{platform.xss_payment}")
    assert tab.page.inner_text("#payment-reference") == XSS_REFERENCE
    assert XSS_METADATA in tab.page.inner_text("#payment-metadata")
    assert tab.page.locator("#payment-metadata b").count() == 0
    tab.shot("payment-xss")
    for path in (
        "/console/merchants",
        "/console/payments",
        f"/console/merchants/{platform.xss_merchant}",
    ):
        tab.go(path)
        assert tab.page.locator("main script, main img").count() == 0
    # Search strings with quotes, HTML and a NUL: escaped, or refused with a 400 page, never a 500.
    answer = tab.go("/console/payments?reference=%22%3E%3Cscript%3Ewindow.__xss%3D5%3C%2Fscript%3E")
    assert answer.status == 200
    assert (
        tab.page.get_attribute("input[name=reference]", "value")
        == '"><script>window.__xss=5</script>'
    )
    answer = tab.go("/console/payments?reference=a%00b")
    assert answer.status == 400 and "control characters" in tab.page.inner_text("main")
    answer = tab.go("/console/payments?bin=%3Cb%3E")
    assert answer.status == 400
    assert tab.page.evaluate("typeof window.__xss") == "undefined"


def test_lists_page_with_cursors(platform: Platform, tab: Console, platform_api: Api) -> None:
    enrol(tab, platform_api.operator("admin"))
    for i in range(27):
        platform_api.merchant(platform.admin, name=f"Paged {i:02d}")
    tab.go("/console/merchants")
    first = tab.page.locator("tbody tr").count()
    assert first == 25
    tab.page.click("text=Older →")
    assert "after=mer_" in tab.page.url
    second = tab.page.inner_text("tbody")
    assert "Paged 00" in second or tab.page.locator("tbody tr").count() > 0


def test_finance_downloads_a_payout_file_audited(
    platform: Platform, tab: Console, platform_api: Api
) -> None:
    enrol(tab, platform_api.operator("finance"))
    tab.go("/console/settlements")
    with tab.page.expect_download() as downloading:
        tab.page.click("form[action^='/console/payout_files/'] button")
    download = downloading.value
    assert download.suggested_filename.endswith(".ach")
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"101")  # NACHA: the file header record
    audited = platform_api.call(
        "GET", "/v1/audit_events", platform.admin, params={"type": "payout_file.downloaded"}
    ).json()["data"]
    assert len(audited) == 1 and audited[0]["resource"].startswith("pf_")
