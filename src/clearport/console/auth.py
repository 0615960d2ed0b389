"""Signing in: operator key and TOTP code; the first sign-in of a key enrols its TOTP (the QR
code and the secret shown once); signing out."""

from __future__ import annotations

import secrets

import segno
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from clearport.console.web import (
    CSRF_FIELD,
    FORM_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    ConsoleRoute,
    container_of,
    origin_of,
    page,
    refuse_forged,
    same_token,
    set_session_cookie,
    sign_in_of,
)
from clearport.core.errors import AuthenticationFailed, RateLimited
from clearport.sessions.service import REFUSED, Enrolling, SessionExpired

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

_MAX_FIELD_CHARS = 200


@router.get("")
async def home() -> Response:
    return RedirectResponse(f"{PREFIX}/overview", status_code=303)


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request, expired=request.query_params.get("expired") == "1")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    binding = request.cookies.get(FORM_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    expected = sign_in_of(request).form_token(binding)
    if not binding or not isinstance(sent, str) or not same_token(sent, expected):
        return refuse_forged(request)
    key, code = _text(form.get("operator_key")), _text(form.get("code"))
    try:
        outcome = await sign_in_of(request).sign_in(key, code, origin_of(request))
    except (AuthenticationFailed, RateLimited):
        return _login_page(request, error=REFUSED, status_code=401)
    if isinstance(outcome, Enrolling):
        qr = segno.make(outcome.uri, error="m")
        response = page(
            request,
            "enrol.html",
            secret=outcome.secret,
            qr_svg=qr.svg_inline(scale=4, dark="#111", light="#fff", omitsize=True),
            form_csrf=outcome.csrf_token,
        )
        set_session_cookie(request, response, outcome.token)
        return response
    response = RedirectResponse(f"{PREFIX}/overview", status_code=303)
    set_session_cookie(request, response, outcome.token)
    return response


@router.get("/enrol")
async def enrol_form(request: Request) -> Response:
    # The secret was shown once, with the sign-in that started the enrolment; it is not shown
    # again. Lost it? Sign in again: a new secret replaces the unconfirmed one.
    return page(
        request,
        "enrol.html",
        secret=None,
        qr_svg=None,
        form_csrf=request.state.session.csrf_token,
    )


@router.post("/enrol")
async def confirm_enrolment(request: Request) -> Response:
    form = await request.form()
    token = request.cookies.get(SESSION_COOKIE, "")
    try:
        outcome = await sign_in_of(request).confirm_enrolment(
            token, _text(form.get("code")), origin_of(request)
        )
    except SessionExpired:
        return RedirectResponse(f"{PREFIX}/login?expired=1", status_code=303)
    except (AuthenticationFailed, RateLimited):
        return page(
            request,
            "enrol.html",
            status_code=401,
            secret=None,
            qr_svg=None,
            form_csrf=request.state.session.csrf_token,
            error="That code is not valid. Check the time on your device and try the next one.",
        )
    response = RedirectResponse(f"{PREFIX}/overview", status_code=303)
    set_session_cookie(request, response, outcome.token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await sign_in_of(request).sign_out(request.cookies.get(SESSION_COOKIE, ""), origin_of(request))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def _login_page(
    request: Request, *, error: str | None = None, expired: bool = False, status_code: int = 200
) -> Response:
    binding = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        status_code=status_code,
        error=error,
        expired=expired,
        form_csrf=sign_in_of(request).form_token(binding),
    )
    response.set_cookie(
        FORM_COOKIE,
        binding,
        path=PREFIX,
        secure=container_of(request).settings.console_cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


def _text(value: object) -> str:
    return value[:_MAX_FIELD_CHARS] if isinstance(value, str) else ""
