"""The error tree every feature raises. The HTTP layer (`http/errors.py`) maps each class to a
status code and an error type; nothing below it knows about HTTP.

    ClearportError
    ├── InvalidRequest         a request field is wrong (`field` names it)
    ├── AuthenticationFailed   no key, an unknown, revoked or expired key
    ├── PermissionDenied       the key's role may not do this
    ├── NotFound               no such object (or not the caller's: the same answer)
    ├── InvalidState           the object's state forbids this now
    ├── IdempotencyInProgress  the same Idempotency-Key is still being processed
    ├── IdempotencyMismatch    the Idempotency-Key was used for a different request
    ├── RateLimited            too many requests for this key
    ├── ConnectorFailed        the processor refused or did not answer a capture, void or refund
    └── InternalError          our fault (InvariantViolation: a broken invariant)

A field is a path (`("source", "card", "cvc")`); how it is spelled is the caller's business (the
API writes `source[card][cvc]`). A message that names a nested field says `{field}` where the
name goes. Messages never contain card data or secrets: callers pass field names and ids, not
values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

Field = tuple[str, ...]
FIELD_PLACEHOLDER = "{field}"


def dotted(field: Field) -> str:
    """A field as logs and the CLI show it: `source.card.cvc`."""
    return ".".join(field)


class ClearportError(Exception):
    default_code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, field: Field | str | None = None
    ) -> None:
        self.field: Field | None = (field,) if isinstance(field, str) else field
        self.template = message
        self.code = code or self.default_code
        super().__init__(self.message)

    def message_with(self, render: Callable[[Field], str]) -> str:
        """The message, with the field (if it names one) spelled by `render`."""
        if self.field is None or FIELD_PLACEHOLDER not in self.template:
            return self.template
        return self.template.replace(FIELD_PLACEHOLDER, render(self.field))

    @property
    def message(self) -> str:
        return self.message_with(dotted)


class InvalidRequest(ClearportError):
    default_code = "parameter_invalid"


class AuthenticationFailed(ClearportError):
    default_code = "invalid_api_key"


class PermissionDenied(ClearportError):
    default_code = "insufficient_permissions"


class NotFound(ClearportError):
    default_code = "resource_missing"


class InvalidState(ClearportError):
    default_code = "invalid_state"


class IdempotencyInProgress(ClearportError):
    default_code = "idempotency_key_in_use"


class IdempotencyMismatch(ClearportError):
    default_code = "idempotency_key_reused"


class RateLimited(ClearportError):
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConnectorFailed(ClearportError):
    """The connector refused or did not answer a capture, void or refund. Not the client's fault
    and not ours; `code` says which (`connector_error`, `connector_timeout`)."""

    default_code = "connector_error"


class InternalError(ClearportError):
    """Our fault. The message is for logs; the client sees a generic text."""


class InvariantViolation(InternalError):
    default_code = "invariant_violation"


def invariant(condition: bool, message: str) -> None:
    """Crash on a broken invariant; unlike `assert`, this survives `python -O`."""
    if not condition:
        raise InvariantViolation(message)


def present(value: T | None, message: str) -> T:
    """`value`, which cannot be None here; an InvariantViolation naming `message` if it is."""
    if value is None:
        raise InvariantViolation(message)
    return value
