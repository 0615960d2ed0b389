"""The one error shape every failure answers with (API.md "Errors", `http/errors.py`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from clearport.http.models.base import RequestId, ResponseModel

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "idempotency_error",
    "rate_limit_error",
    "api_error",
]


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class ErrorDetail(ResponseModel):
    type: ErrorType
    code: str = Field(
        description="What went wrong, for programs: `parameter_invalid`, `resource_missing`, "
        "`invalid_state`, `amount_too_large` ...",
        examples=["parameter_invalid"],
    )
    message: str = Field(
        description="For people: names the parameter, never echoes a card number or a secret."
    )
    # Absent when no single parameter is at fault (never null).
    param: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The parameter at fault, spelled as sent: `source[card][cvc]`.",
        json_schema_extra=_without_default,
    )
    request_id: RequestId = Field(description="The same as the `Request-Id` header.")


class Error(ResponseModel):
    error: ErrorDetail
