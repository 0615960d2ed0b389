"""Signing in: TOTP enrolled through the page a person uses, sessions, lockout, CSRF, headers."""

from __future__ import annotations

import pyotp

from tests.e2e.console.conftest import Console
from tests.e2e.console.flows import code_for, csrf_of, enrol, sign_in
from tests.support import Api, pg


def test_first_sign_in_enrols_totp_then_key_and_code_sign_in(
    tab: Console, platform_api: Api
) -> None:
    key = platform_api.operator("admin")
    tab.go("/console/login")
    tab.shot("login")
    tab.page.fill("input[name=operator_key]", key)
    tab.page.click("button[type=submit]")
    # The QR code is an SVG drawn on the server, with the secret beside it, shown once.
    assert tab.page.locator(".qr svg path.qrline").count() == 1
    secret = tab.page.inner_text("#totp-secret").strip()
    assert len(secret) == 32
    tab.shot("enrol")
    # Reloading the enrolment page does not show the secret again.
    tab.go("/console/enrol")
    assert tab.page.locator("#totp-secret").count() == 0
    tab.page.fill("input[name=code]", code_for(secret))
    tab.page.click("form[action='/console/enrol'] button[type=submit]")
    tab.page.wait_for_url("**/console/overview")

    cookie = next(c for c in tab.page.context.cookies() if c["name"] == "clearport_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"

    with pg(platform_api.database_url) as conn:
        stored = conn.execute(
            "SELECT t.status, s.* FROM operator_totp t JOIN vault_secrets s ON s.id = t.secret_id"
        ).fetchall()
        sessions = conn.execute("SELECT count(*) FROM operator_sessions").fetchone()
        events = [
            r[0]
            for r in conn.execute(
                "SELECT event_type FROM audit_events WHERE event_type LIKE 'console.%' "
                "ORDER BY occurred_at"
            )
        ]
    # Sealed by the vault: the base32 secret is nowhere in the stored row.
    assert len(stored) == 1 and stored[0][0] == "enrolled"
    assert secret.encode() not in repr(stored[0]).encode()
    assert sessions == (1,)
    assert events == [
        "console.totp_enrolment_started",
        "console.totp_enrolled",
        "console.signed_in",
    ]

    # Signing out ends the session; the key and a fresh code sign in again (no new enrolment).
    tab.page.click("form.signout button")
    tab.page.wait_for_url("**/console/login")
    tab.go("/console/payments")
    assert tab.page.url.endswith("/console/login")
    sign_in(tab, key, secret)
    tab.page.wait_for_url("**/console/overview")


def test_the_same_code_signs_in_only_once(tab: Console, platform_api: Api) -> None:
    key = platform_api.operator("support")
    secret = enrol(tab, key)
    code = code_for(secret, steps_ahead=1)
    for expected in ("/console/overview", "/console/login"):
        tab.page.context.clear_cookies()
        tab.go("/console/login")
        tab.page.fill("input[name=operator_key]", key)
        tab.page.fill("input[name=code]", code)
        tab.page.click("button[type=submit]")
        tab.page.wait_for_load_state()
        assert tab.page.url.endswith(expected)


def test_ten_wrong_codes_lock_the_key_out_for_30_minutes_audited(
    tab: Console, platform_api: Api
) -> None:
    key = platform_api.operator("admin")
    secret = enrol(tab, key)
    tab.page.context.clear_cookies()
    right = pyotp.TOTP(secret)
    wrong = f"{(int(right.now()) + 1) % 1_000_000:06d}"
    for _ in range(10):
        sign_in(tab, key, secret, steps_ahead=99)  # a code far in the future: wrong
        assert "not valid" in tab.page.inner_text(".error")
    del wrong
    sign_in(tab, key, secret)  # the right code, refused while the key is locked out
    assert tab.page.url.endswith("/console/login")
    assert "locked out" in tab.page.inner_text(".error")
    tab.shot("login-locked-out")
    with pg(platform_api.database_url) as conn:
        key_id = conn.execute(
            "SELECT key_id FROM operator_totp ORDER BY created_at DESC LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        locked = conn.execute(
            "SELECT locked_until - now() > interval '29 minutes' FROM auth_failures "
            "WHERE subject = %s",
            (f"operator_key:{key_id}",),
        ).fetchone()
        audited = conn.execute(
            "SELECT details->>'lockout_s' FROM audit_events "
            "WHERE event_type = 'console.key_locked_out' AND resource = %s",
            (f"operator_key:{key_id}",),
        ).fetchall()
        refusals = conn.execute(
            "SELECT details->>'reason', count(*) FROM audit_events "
            "WHERE event_type = 'console.sign_in_failed' AND resource = %s GROUP BY 1 ORDER BY 1",
            (f"operator_key:{key_id}",),
        ).fetchall()
    assert locked == (True,)
    assert audited == [("1800",)]
    assert refusals == [("key_locked", 1), ("totp_invalid", 10)]


def test_an_idle_session_goes_back_to_sign_in_and_its_action_is_not_performed(
    tab: Console, platform_api: Api
) -> None:
    admin = platform_api.operator("admin")
    merchant_id, _ = platform_api.merchant(admin)
    enrol(tab, platform_api.operator("admin"))
    tab.go(f"/console/merchants/{merchant_id}")
    # 16 minutes without a request: past the 15-minute idle timeout.
    with pg(platform_api.database_url) as conn:
        conn.execute("UPDATE operator_sessions SET last_seen_at = now() - interval '16 minutes'")
    tab.page.click("form[action$='/status'] button:has-text('Suspend')")
    tab.page.wait_for_url("**/console/login?expired=1")
    assert "session ended" in tab.page.inner_text("main")
    got = platform_api.call("GET", f"/v1/merchants/{merchant_id}", admin).json()
    assert got["status"] == "active"


def test_forged_or_missing_csrf_token_is_refused_and_changes_nothing(
    tab: Console, platform_api: Api
) -> None:
    admin = platform_api.operator("admin")
    merchant_id, _ = platform_api.merchant(admin)
    enrol(tab, platform_api.operator("admin"))
    tab.go(f"/console/merchants/{merchant_id}")
    good = csrf_of(tab)
    target = f"{tab.url}/console/merchants/{merchant_id}/status"
    forged = (
        {"status": "suspended", "csrf_token": good[:-2] + "xx"},
        {"status": "suspended", "csrf_token": "é" * len(good)},  # non-ASCII: still a 403
        {"status": "suspended"},
    )
    for form in forged:
        answer = tab.page.request.post(target, form=form)
        assert answer.status == 403
        assert "security token" in answer.text()
    assert (
        platform_api.call("GET", f"/v1/merchants/{merchant_id}", admin).json()["status"] == "active"
    )
    # The sign-in form has its own token, bound to a cookie: a forged one is refused too.
    refused = tab.page.request.post(
        f"{tab.url}/console/login", form={"operator_key": admin, "code": "", "csrf_token": "x"}
    )
    assert refused.status == 403


def test_every_console_answer_carries_a_strict_csp_and_no_script(
    tab: Console, platform_api: Api
) -> None:
    enrol(tab, platform_api.operator("admin"))
    for path in ("/console/login", "/console/overview", "/console/static/console.css"):
        answer = tab.page.request.get(tab.url + path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
    tab.go("/console/overview")
    assert tab.page.locator("script").count() == 0
