"""What every console page shares: the route class (session, CSRF, errors as pages), templates
and their helpers, cookies.

`ConsoleRoute` wraps each console endpoint, as `http.context.ApiRoute` wraps each API one: it
resumes the session from its cookie (an expired or missing one goes back to the sign-in page,
nothing performed), checks the CSRF token of every POST against the session's before the
endpoint runs (a forged or missing one is a 403, nothing changed), and renders errors from the
core tree as pages. Roles are the services' business: a support operator posting a write form
gets the services' PermissionDenied, a 403 page (decision 1001).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from clearport.access.domain import Origin, Permission, Principal, Role, role_allows
from clearport.core.errors import (
    AuthenticationFailed,
    ClearportError,
    InvalidRequest,
    InvalidState,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from clearport.core.money import exponent
from clearport.sessions.domain import ConsoleSession, SessionStage
from clearport.sessions.service import ConsoleSignIn
from clearport.wiring import Container

log = structlog.get_logger("clearport.console")

PREFIX = "/console"
SESSION_COOKIE = "clearport_console"
FORM_COOKIE = "clearport_console_form"  # binds the sign-in form's CSRF token, before a session
CSRF_FIELD = "csrf_token"
# Paths that need no session, and the one an enrolling session may reach.
PUBLIC_PATHS = frozenset({f"{PREFIX}/login"})
ENROLLING_PATHS = frozenset({f"{PREFIX}/enrol"})

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def container_of(request: Request) -> Container:
    return cast(Container, request.app.state.container)


def sign_in_of(request: Request) -> ConsoleSignIn:
    return container_of(request).console_sign_in


def origin_of(request: Request) -> Origin:
    return Origin(ip=request.client.host if request.client else "unknown")


def session_of(request: Request) -> ConsoleSession:
    return cast(ConsoleSession, request.state.session)


def principal_of(request: Request) -> Principal:
    return session_of(request).principal


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = super().get_route_handler()
        public = self.path in PUBLIC_PATHS
        wanted = SessionStage.ENROLLING if self.path in ENROLLING_PATHS else SessionStage.ACTIVE

        async def handler(request: Request) -> Response:
            try:
                if not public:
                    session = await sign_in_of(request).resume(request.cookies.get(SESSION_COOKIE))
                    if session is None or session.stage is not wanted:
                        return to_sign_in(
                            expired=session is None and SESSION_COOKIE in request.cookies
                        )
                    request.state.session = session
                    if request.method == "POST" and not await _csrf_ok(request, session):
                        return refuse_forged(request)
                return await endpoint(request)
            except Exception as exc:
                return error_page(request, exc)

        return handler


async def _csrf_ok(request: Request, session: ConsoleSession) -> bool:
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    return isinstance(sent, str) and same_token(sent, session.csrf_token)


def same_token(sent: str, expected: str) -> bool:
    """Constant-time, on bytes: `compare_digest` refuses non-ASCII text with a TypeError, and a
    forged token may hold anything."""
    return hmac.compare_digest(sent.encode(), expected.encode())


def refuse_forged(request: Request) -> Response:
    return page(
        request,
        "error.html",
        status_code=403,
        title="Forbidden",
        message="The form's security token is missing or wrong; nothing was changed. "
        "Reload the page and try again.",
    )


def to_sign_in(*, expired: bool = False) -> Response:
    response = RedirectResponse(
        f"{PREFIX}/login" + ("?expired=1" if expired else ""), status_code=303
    )
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = container_of(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=PREFIX,
        secure=settings.console_cookie_secure,
        httponly=True,
        samesite="strict",
    )


_STATUS = (
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvalidState, 409),
    (RateLimited, 429),
    (InvalidRequest, 400),
)


def error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StarletteHTTPException) and 400 <= exc.status_code < 500:
        # A malformed form body (Starlette's parser), an unknown method on a route.
        return page(
            request,
            "error.html",
            status_code=exc.status_code,
            title="Bad request",
            message="The request could not be read.",
        )
    if isinstance(exc, RequestValidationError):
        return page(
            request,
            "error.html",
            status_code=400,
            title="Bad request",
            message="A value in the request is not valid.",
        )
    if isinstance(exc, ClearportError):
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                return page(
                    request,
                    "error.html",
                    status_code=status,
                    title=_TITLES[status],
                    message=exc.message,
                )
    # Never a stack trace or a value on the page; the log gets the exception's type only.
    log.error("console.error", path=request.url.path, error=type(exc).__name__)
    return page(
        request,
        "error.html",
        status_code=500,
        title="Something went wrong",
        message="Something went wrong on our side; nothing you sent was shown.",
    )


_TITLES = {
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    409: "Not possible now",
    429: "Too many requests",
    400: "Bad request",
}


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    """A page, with the session (when there is one) and the helpers every template uses."""
    session: ConsoleSession | None = getattr(request.state, "session", None)
    role = Role(session.role) if session is not None else None

    def can(permission: str) -> bool:
        return role is not None and role_allows(role, Permission(permission))

    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf": session.csrf_token if session is not None else "",
            "can": can,
            "role": role,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )


# --- helpers the templates use ------------------------------------------------------------------


def money(amount_minor: int | None, currency: str | None) -> str:
    """`2599, "usd"` -> `25.99 USD`, exact (integer arithmetic, never a float)."""
    if amount_minor is None or currency is None:
        return ""
    digits = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**digits)
    shown = f"{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    return f"{sign}{shown} {currency.upper()}"


def when(value: datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.env.filters["money"] = money
TEMPLATES.env.filters["when"] = when
