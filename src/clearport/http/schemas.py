"""Request bodies (strict: unknown fields, wrong types and read-only fields are 400s) and the
JSON representations of the foundation's objects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from clearport.access.domain import ApiKey
from clearport.audit.domain import AuditEvent
from clearport.core.clock import unix_seconds
from clearport.core.countries import ASSIGNED_COUNTRIES
from clearport.core.money import CURRENCY_EXPONENTS
from clearport.http.models.base import Currency, enum_of
from clearport.merchants.domain import DEFAULT_DISPUTE_FEE_MINOR, MAX_PAYOUT_DELAY_DAYS, Merchant
from clearport.vault.cards import Brand

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
CountryCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    Field(
        description="An officially assigned ISO 3166-1 alpha-2 code, upper case.",
        json_schema_extra=enum_of(ASSIGNED_COUNTRIES),
    ),
]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=50)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _supported_currency(code: str) -> str:
    if code not in CURRENCY_EXPONENTS:
        raise ValueError("must be a supported lower-case ISO 4217 code")
    return code


CurrencyKey = Annotated[
    str, AfterValidator(_supported_currency), Field(json_schema_extra=enum_of(CURRENCY_EXPONENTS))
]
# A fixed amount means a different sum of money in every currency, so it is never one number:
# minor units per currency (decision 0703). A currency it does not name has no fixed part.
PerCurrency = Annotated[
    dict[CurrencyKey, Annotated[int, Field(ge=0, le=1_000_000_000)]],
    Field(
        max_length=len(CURRENCY_EXPONENTS),
        description='Minor units per currency, e.g. {"usd": 30, "jpy": 40}.',
    ),
]


class BrandRate(StrictModel):
    percent_bps: int = Field(ge=0, le=10_000)
    fixed_minor: PerCurrency


class BlendedPricing(StrictModel):
    model: Literal["blended"]
    percent_bps: int = Field(ge=0, le=10_000)
    fixed_minor: PerCurrency
    brand_overrides: dict[Brand, BrandRate] = Field(default_factory=dict)
    dispute_fee_minor: PerCurrency = Field(
        default_factory=lambda: dict(DEFAULT_DISPUTE_FEE_MINOR),
        description="What a chargeback costs the merchant, per currency (by default the "
        "platform's table).",
    )


class InterchangePlusPricing(StrictModel):
    model: Literal["interchange_plus"]
    markup_bps: int = Field(ge=0, le=10_000)
    markup_fixed_minor: PerCurrency
    dispute_fee_minor: PerCurrency = Field(
        default_factory=lambda: dict(DEFAULT_DISPUTE_FEE_MINOR),
        description="What a chargeback costs the merchant, per currency (by default the "
        "platform's table).",
    )


Pricing = Annotated[BlendedPricing | InterchangePlusPricing, Field(discriminator="model")]


class ReserveTerms(StrictModel):
    percent_bps: int = Field(ge=0, le=10_000)
    hold_days: int = Field(ge=0, le=365)


class MerchantCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Demo Coffee", "country": "US", "mcc": "5814", "default_currency": "usd"}
            ]
        }
    )

    name: ShortText
    country: CountryCode
    mcc: Annotated[
        str,
        StringConstraints(pattern=r"^[0-9]{4}$"),
        Field(description="The 4-digit merchant category code (ISO 18245)."),
    ]
    default_currency: Currency
    pricing: Pricing | None = None
    payout_delay_days: int | None = Field(default=None, ge=0, le=MAX_PAYOUT_DELAY_DAYS)
    reserve: ReserveTerms | None = None
    metadata: Metadata | None = None


class MerchantUpdate(StrictModel):
    name: ShortText | None = None
    status: Literal["active", "suspended", "closed"] | None = None
    pricing: Pricing | None = None
    payout_delay_days: int | None = Field(default=None, ge=0, le=MAX_PAYOUT_DELAY_DAYS)
    reserve: ReserveTerms | None = None
    metadata: Metadata | None = None


class KeyCreate(StrictModel):
    expires_at: int | None = Field(default=None, ge=0, le=253_402_300_799)


class OperatorKeyCreate(StrictModel):
    role: Literal["admin", "support", "finance", "security"]
    expires_at: int | None = Field(default=None, ge=0, le=253_402_300_799)


def merchant_json(m: Merchant) -> dict[str, Any]:
    return {
        "id": m.id,
        "object": "merchant",
        "name": m.name,
        "country": m.country,
        "mcc": m.mcc,
        "default_currency": m.default_currency,
        "status": str(m.status),
        "pricing": m.pricing,
        "payout_delay_days": m.payout_delay_days,
        "reserve": m.reserve,
        "metadata": m.metadata,
        "created": unix_seconds(m.created_at),
    }


def key_json(k: ApiKey, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": k.id,
        "object": "api_key",
        "type": k.kind,
        "merchant": k.merchant_id,
        "role": k.role,
        "mode": k.mode,
        "display": k.display,
        "created": unix_seconds(k.created_at),
        "expires_at": unix_seconds(k.expires_at),
        "revoked": k.revoked_at is not None,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def audit_json(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "object": "audit_event",
        "actor": e.actor,
        "type": e.event_type,
        "created": unix_seconds(e.occurred_at),
        "outcome": str(e.outcome),
        "origin_ip": e.origin_ip,
        "resource": e.resource,
        "details": e.details,
    }


def list_json(data: list[dict[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "url": url, "data": data, "has_more": has_more}
