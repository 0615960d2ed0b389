"""The error hierarchy every layer raises and the API maps to HTTP.

    ClearportError
    ├── InvalidRequest        400 invalid_request_error (param names the field)
    ├── AuthenticationFailed  401 authentication_error
    ├── PermissionDenied      403 permission_error
    ├── NotFound              404 invalid_request_error / resource_missing
    ├── InvalidState          409 invalid_request_error / invalid_state
    ├── IdempotencyInProgress 409 idempotency_error
    ├── IdempotencyMismatch   422 idempotency_error
    ├── RateLimited           429 rate_limit_error
    └── InternalError         500 api_error

Messages must never contain card data or secrets: callers pass field names and ids, not values.
"""

from __future__ import annotations


class ClearportError(Exception):
    http_status = 500
    error_type = "api_error"
    default_code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param


class InvalidRequest(ClearportError):
    http_status = 400
    error_type = "invalid_request_error"
    default_code = "parameter_invalid"


class AuthenticationFailed(ClearportError):
    http_status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDenied(ClearportError):
    http_status = 403
    error_type = "permission_error"
    default_code = "insufficient_permissions"


class NotFound(ClearportError):
    http_status = 404
    error_type = "invalid_request_error"
    default_code = "resource_missing"


class InvalidState(ClearportError):
    http_status = 409
    error_type = "invalid_request_error"
    default_code = "invalid_state"


class IdempotencyInProgress(ClearportError):
    http_status = 409
    error_type = "idempotency_error"
    default_code = "idempotency_key_in_use"


class IdempotencyMismatch(ClearportError):
    http_status = 422
    error_type = "idempotency_error"
    default_code = "idempotency_key_reused"


class RateLimited(ClearportError):
    http_status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InternalError(ClearportError):
    """Our fault. The message is for logs; the client sees a generic text."""


class InvariantViolation(InternalError):
    default_code = "invariant_violation"


def invariant(condition: bool, message: str) -> None:
    """Crash on a broken invariant; unlike `assert`, this survives `python -O`."""
    if not condition:
        raise InvariantViolation(message)
