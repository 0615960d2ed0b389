"""Merchants, their terms, API keys (merchant and operator) and the audit trail, as the API
shows them (`http/schemas.py`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from clearport.access.domain import Role
from clearport.audit.domain import Outcome
from clearport.http.models.base import (
    AuditEventId,
    Currency,
    KeyId,
    ListOf,
    MerchantId,
    Metadata,
    ResponseModel,
    Timestamp,
)
from clearport.http.schemas import Pricing, ReserveTerms
from clearport.merchants.domain import MerchantStatus


class Merchant(ResponseModel):
    id: MerchantId
    object: Literal["merchant"]
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    mcc: str = Field(pattern=r"^[0-9]{4}$")
    default_currency: Currency
    status: MerchantStatus
    pricing: Pricing
    payout_delay_days: int = Field(ge=0)
    reserve: ReserveTerms
    metadata: Metadata
    created: Timestamp


KeyMode = Literal["test", "live"]
# A secret is shown once, in the answer that created it; an idempotent replay of that answer
# shows it masked (secrets never rest in the idempotency store).
MerchantSecret = Annotated[
    str, StringConstraints(pattern=r"^sk_(test|live)_([A-Za-z0-9]+|\[REDACTED\])$")
]
OperatorSecret = Annotated[str, StringConstraints(pattern=r"^ok_([A-Za-z0-9]+|\[REDACTED\])$")]


class MerchantKey(ResponseModel):
    """A merchant's secret key, without its secret."""

    id: KeyId
    object: Literal["api_key"]
    type: Literal["merchant"]
    merchant: MerchantId
    role: None
    mode: KeyMode
    display: str = Field(description="The prefix and the last four characters.")
    created: Timestamp
    expires_at: Timestamp | None
    revoked: bool


class NewMerchantKey(MerchantKey):
    """A merchant key as created: the secret appears in this answer only."""

    secret: MerchantSecret


class OperatorKey(ResponseModel):
    """An operator key, without its secret."""

    id: KeyId
    object: Literal["api_key"]
    type: Literal["operator"]
    merchant: None
    role: Role
    mode: KeyMode
    display: str = Field(description="The prefix and the last four characters.")
    created: Timestamp
    expires_at: Timestamp | None
    revoked: bool


class NewOperatorKey(OperatorKey):
    """An operator key as created: the secret appears in this answer only."""

    secret: OperatorSecret


class AuditEvent(ResponseModel):
    id: AuditEventId
    object: Literal["audit_event"]
    actor: str
    type: str
    created: Timestamp
    outcome: Outcome
    origin_ip: str
    resource: str
    details: dict[str, Any]


class MerchantList(ListOf[Merchant]):
    pass


class MerchantKeyList(ListOf[MerchantKey]):
    pass


class AuditEventList(ListOf[AuditEvent]):
    pass
