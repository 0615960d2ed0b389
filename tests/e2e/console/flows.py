"""What a person does in the console, as steps the tests share: enrolling and signing in,
reading the CSRF token of a page's forms."""

from __future__ import annotations

import time

import pyotp

from tests.e2e.console.conftest import Console


def code_for(secret: str, *, steps_ahead: int = 0) -> str:
    """The app's code now, or `steps_ahead` 30-second steps later (a code is good once, and
    one step of drift is accepted: a second sign-in within the same step uses the next)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrol(tab: Console, key: str) -> str:
    """The first sign-in with `key`: the enrolment page shows the QR code and the secret once;
    the secret read from it gives the code that confirms. Returns the secret."""
    tab.go("/console/login")
    tab.page.fill("input[name=operator_key]", key)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_selector("#totp-secret")
    secret = tab.page.inner_text("#totp-secret").strip()
    tab.page.fill("input[name=code]", code_for(secret))
    tab.page.click("form[action='/console/enrol'] button[type=submit]")
    tab.page.wait_for_url("**/console/overview")
    tab.key, tab.totp_secret = key, secret
    return secret


def sign_in(tab: Console, key: str, secret: str, *, steps_ahead: int = 1) -> None:
    tab.go("/console/login")
    tab.page.fill("input[name=operator_key]", key)
    tab.page.fill("input[name=code]", code_for(secret, steps_ahead=steps_ahead))
    tab.page.click("button[type=submit]")


def csrf_of(tab: Console) -> str:
    return tab.page.get_attribute("input[name=csrf_token]", "value") or ""
