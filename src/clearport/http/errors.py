"""Mapping every failure to the documented error shape; never a stack trace, never card data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from clearport.core.errors import (
    AuthenticationFailed,
    ClearportError,
    ConnectorFailed,
    Field,
    IdempotencyInProgress,
    IdempotencyMismatch,
    InternalError,
    InvalidRequest,
    InvalidState,
    InvariantViolation,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from clearport.http.responses import JSONResponse

log = structlog.get_logger("clearport.api")

# Fields the API sets itself; sending one gets a specific message rather than "unknown".
READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "object",
        "created",
        "status",
        "amount_captured",
        "amount_refunded",
        "fee",
        "fees",
        "net",
        "livemode",
        "fingerprint",
        "brand",
        "last4",
        "bin",
        "auth_code",
        "network_reference",
        "decline_code",
        "connector",
        "routing",
        "secret",
        "display",
    }
)


class UnsupportedMediaType(InvalidRequest):
    """A body labelled other than the route's media type: an HTTP matter, so it lives here."""

    default_code = "unsupported_media_type"


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "req_unknown"))


def error_body(
    request_id: str, *, error_type: str, code: str, message: str, param: str | None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "code": code, "message": message}
    if param is not None:
        error["param"] = param
    error["request_id"] = request_id
    return {"error": error}


# Each class of the core error tree as HTTP answers it: (status, error type). A subclass answers
# like the nearest class listed (LedgerStateError is an InvalidState: 409).
STATUS_OF: dict[type[ClearportError], tuple[int, str]] = {
    UnsupportedMediaType: (415, "invalid_request_error"),
    InvalidRequest: (400, "invalid_request_error"),
    AuthenticationFailed: (401, "authentication_error"),
    PermissionDenied: (403, "permission_error"),
    NotFound: (404, "invalid_request_error"),
    InvalidState: (409, "invalid_request_error"),
    IdempotencyInProgress: (409, "idempotency_error"),
    IdempotencyMismatch: (422, "idempotency_error"),
    RateLimited: (429, "rate_limit_error"),
    ConnectorFailed: (502, "api_error"),
    InternalError: (500, "api_error"),
    ClearportError: (500, "api_error"),
}


def status_of(exc: ClearportError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    raise InvariantViolation("every ClearportError has a status")  # pragma: no cover


def param_name(field: Field) -> str:
    """A field path as the API spells it: ("source", "card", "cvc") -> source[card][cvc]."""
    return field[0] + "".join(f"[{part}]" for part in field[1:])


def clearport_error_response(request: Request, exc: ClearportError) -> JSONResponse:
    status, error_type = status_of(exc)
    if status >= 500:
        # The detail goes to the (redacted) log; the client gets a generic text.
        log.error("internal_error", code=exc.code, detail=exc.message)
        message = "An internal error occurred. Retry later or contact support."
    else:
        message = exc.message_with(param_name)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return JSONResponse(
        error_body(
            request_id_of(request),
            error_type=error_type,
            code=exc.code,
            message=message,
            param=None if exc.field is None else param_name(exc.field),
        ),
        status_code=status,
        headers=headers,
    )


def _param_of(loc: Sequence[int | str], body: Any) -> str | None:
    """The parameter a validation error's location names, as the request spells it.

    Pydantic's location also names the union member it tried (`pricing`, `blended`,
    `percent_bps` for a tagged union). Walking the request's body along the location tells them
    apart: a part short of the last that is no key of the object there is such a name, and is
    left out, so the client reads `pricing[percent_bps]`, the field it sent."""
    if not loc:
        return None
    if loc[0] in ("query", "path", "header"):
        return param_name(tuple(str(p) for p in loc[1:])) if len(loc) > 1 else None
    parts = loc[1:] if loc[0] == "body" else loc
    kept: list[str] = []
    value = body
    for index, part in enumerate(parts):
        if part == "[key]":  # the key itself was refused: the parameter is the key's path
            break
        if isinstance(value, dict):
            if part not in value and index < len(parts) - 1:
                continue  # a union member's name
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            value = None
        kept.append(str(part))
    return param_name(tuple(kept)) if kept else None


def validation_error_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"type": "value_error", "loc": (), "msg": ""}
    kind = str(first.get("type", "value_error"))
    param = _param_of(first.get("loc", ()), getattr(exc, "body", None))
    leaf = param.rsplit("[", 1)[-1].rstrip("]") if param else None
    if kind == "extra_forbidden" and leaf in READ_ONLY_FIELDS:
        code, message = "parameter_read_only", f"'{param}' is read-only and cannot be set."
    elif kind == "extra_forbidden":
        code, message = "parameter_unknown", f"Received unknown parameter: '{param}'."
    elif param is None:
        code, message = "body_invalid", "The request body must be a JSON object."
    elif kind == "missing":
        code, message = "parameter_missing", f"Missing required parameter: '{param}'."
    else:
        # Pydantic's message describes the rule, never echoes the value.
        code, message = "parameter_invalid", f"Invalid '{param}': {first.get('msg', '')}."
    return JSONResponse(
        error_body(
            request_id_of(request),
            error_type="invalid_request_error",
            code=code,
            message=message,
            param=param,
        ),
        status_code=400,
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this URL. Starlette's own 405 names only the methods
    of the first route whose path matched, though GET and PATCH of one URL are two routes."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def http_error_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = {}
    if exc.status_code == 404:
        code, message = "resource_missing", "Unrecognized request URL."
    elif exc.status_code == 405:
        code, message = "method_not_allowed", "This method is not allowed on this URL."
        headers["Allow"] = ", ".join(allowed_methods(request))
    else:
        code, message = "invalid_request", str(exc.detail)
    status = exc.status_code if exc.status_code in (404, 405) else 400
    return JSONResponse(
        error_body(
            request_id_of(request),
            error_type="invalid_request_error",
            code=code,
            message=message,
            param=None,
        ),
        status_code=status,
        headers=headers,
    )


def unexpected_error_response(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error_class=type(exc).__name__)
    return JSONResponse(
        error_body(
            request_id_of(request),
            error_type="api_error",
            code="internal_error",
            message="An internal error occurred. Retry later or contact support.",
            param=None,
        ),
        status_code=500,
    )


def error_response_for(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ClearportError):
        return clearport_error_response(request, exc)
    if isinstance(exc, RequestValidationError):
        return validation_error_response(request, exc)
    if isinstance(exc, StarletteHTTPException):
        return http_error_response(request, exc)
    return unexpected_error_response(request, exc)
