"""The console's sign-in over plain HTTP (no browser): cookie attributes in production mode,
the sign-in form's CSRF binding, errors as pages, and the console kept out of the API's
OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from clearport.config import Settings
from tests.support import Api, ThreadedServer

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')


@pytest.fixture(scope="module")
def secure_server(database_url: str, settings: Settings) -> Iterator[ThreadedServer]:
    """The console as production serves it: `Secure` cookies (the default)."""
    from clearport.cli.asgi import build_app
    from clearport.wiring import build_container

    assert settings.console_cookie_secure
    srv = ThreadedServer(build_app(build_container(settings, database_url)))
    srv.start()
    yield srv
    srv.stop()


def _sign_in_form(client: httpx.Client, url: str) -> str:
    """The sign-in form's token, its binding cookie set on `client` (httpx sends a `Secure`
    cookie over https only)."""
    page = client.get(f"{url}/console/login")
    assert page.status_code == 200
    client.cookies.set("clearport_console_form", page.cookies["clearport_console_form"])
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def test_cookies_are_secure_httponly_strict_and_the_form_token_is_bound(
    secure_server: ThreadedServer, api: Api
) -> None:
    key = api.operator("admin")
    with httpx.Client(timeout=30) as client:
        page = client.get(f"{secure_server.url}/console/login")
        form_cookie = page.headers["set-cookie"]
        assert "Secure" in form_cookie and "HttpOnly" in form_cookie
        assert "SameSite=strict" in form_cookie and "Path=/console" in form_cookie
        token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        # httpx keeps Secure cookies for https only: the binding cookie is sent by hand.
        binding = page.cookies["clearport_console_form"]
        client.cookies.set("clearport_console_form", binding)
        answer = client.post(
            f"{secure_server.url}/console/login",
            data={"operator_key": key, "code": "", "csrf_token": token},
        )
        assert answer.status_code == 200 and SECRET.search(answer.text)
        session_cookie = answer.headers["set-cookie"]
        assert session_cookie.startswith("clearport_console=")
        for attribute in ("Secure", "HttpOnly", "SameSite=strict", "Path=/console"):
            assert attribute in session_cookie
        # The same token with another binding cookie (another browser's form) is refused.
        client.cookies.set("clearport_console_form", "another")
        forged = client.post(
            f"{secure_server.url}/console/login",
            data={"operator_key": key, "code": "", "csrf_token": token},
        )
        assert forged.status_code == 403


def test_without_a_session_pages_send_to_sign_in_and_posts_do_nothing(
    secure_server: ThreadedServer, api: Api
) -> None:
    admin = api.operator("admin")
    merchant_id, _ = api.merchant(admin)
    with httpx.Client(timeout=30) as client:
        for method, path in (
            ("GET", "/console/payments"),
            ("POST", f"/console/merchants/{merchant_id}/status"),
        ):
            client.cookies.set("clearport_console", "not-a-session")
            answer = client.request(method, secure_server.url + path, data={"status": "suspended"})
            assert answer.status_code == 303
            assert answer.headers["location"] == "/console/login?expired=1"
    assert api.call("GET", f"/v1/merchants/{merchant_id}", admin).json()["status"] == "active"


def test_unknown_merchant_or_odd_keys_get_one_answer(
    secure_server: ThreadedServer, api: Api
) -> None:
    with httpx.Client(timeout=30) as client:
        token = _sign_in_form(client, secure_server.url)
        answers = [
            client.post(
                f"{secure_server.url}/console/login",
                data={"operator_key": key, "code": "123456", "csrf_token": token},
            )
            for key in ("ok_unknown", "sk_test_notanoperator", "<script>")
        ]
    assert {a.status_code for a in answers} == {401}
    assert len({re.sub(r'value="[^"]+"', "", a.text) for a in answers}) == 1
    assert "<script>" not in answers[-1].text.split("</header>")[1]


def test_the_console_is_not_in_the_api_document(secure_server: ThreadedServer) -> None:
    document = httpx.get(f"{secure_server.url}/openapi.json", timeout=30).json()
    assert not [path for path in document["paths"] if path.startswith("/console")]


def test_odd_tokens_and_bodies_are_refused_never_a_500(secure_server: ThreadedServer) -> None:
    """A non-ASCII token made `hmac.compare_digest` raise (a 500); a broken multipart body is
    the parser's 400."""
    with httpx.Client(timeout=30) as client:
        _sign_in_form(client, secure_server.url)
        for token in ("é" * 43, "\u2603", ""):
            answer = client.post(
                f"{secure_server.url}/console/login",
                data={"operator_key": "ok_x", "code": "", "csrf_token": token},
            )
            assert answer.status_code == 403, token
        broken = client.post(
            f"{secure_server.url}/console/login",
            content=b"--nope\r\nContent-Disposition: form-data\r\n\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=other"},
        )
        assert broken.status_code in (400, 403)
