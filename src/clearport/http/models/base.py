"""What every response model shares: the strictness, the list envelope, ids and timestamps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from clearport.core.ids import id_pattern
from clearport.core.money import CURRENCY_EXPONENTS


class ResponseModel(BaseModel):
    """A response object: every key listed, no other (`additionalProperties: false`)."""

    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class ListOf(ResponseModel, Generic[T]):
    """`{"object": "list", "url", "data": [...], "has_more"}`, newest first."""

    object: Literal["list"]
    url: str = Field(description="The path of this list.")
    data: list[T]
    has_more: bool = Field(description="Whether another page follows this one.")


def enum_of(values: Iterable[str]) -> dict[str, Any]:
    """`json_schema_extra` listing the values a string may take, from the code's own table."""
    return {"enum": sorted(values)}


# Ids by kind: `pay_` and 26 Crockford base32 characters (core/ids.py). The same types declare
# path and query parameters, so the document and the validation agree.
AnyId = Annotated[str, StringConstraints(pattern=id_pattern())]
MerchantId = Annotated[str, StringConstraints(pattern=id_pattern("mer"))]
KeyId = Annotated[str, StringConstraints(pattern=id_pattern("key"))]
TokenId = Annotated[str, StringConstraints(pattern=id_pattern("tok"))]
PaymentId = Annotated[str, StringConstraints(pattern=id_pattern("pay"))]
RefundId = Annotated[str, StringConstraints(pattern=id_pattern("rfd"))]
EventId = Annotated[str, StringConstraints(pattern=id_pattern("evt"))]
SettlementId = Annotated[str, StringConstraints(pattern=id_pattern("stl"))]
PayoutId = Annotated[str, StringConstraints(pattern=id_pattern("po"))]
RunId = Annotated[str, StringConstraints(pattern=id_pattern("sr"))]
AuditEventId = Annotated[str, StringConstraints(pattern=id_pattern("aud"))]
BalanceTransactionId = Annotated[str, StringConstraints(pattern=id_pattern("txn"))]
BankAccountId = Annotated[str, StringConstraints(pattern=id_pattern("ba"))]
RequestId = Annotated[str, StringConstraints(pattern=id_pattern("req"))]
WebhookEndpointId = Annotated[str, StringConstraints(pattern=id_pattern("we"))]
WebhookDeliveryId = Annotated[str, StringConstraints(pattern=id_pattern("wd"))]
DisputeId = Annotated[str, StringConstraints(pattern=id_pattern("dp"))]
DisputeReversalId = Annotated[str, StringConstraints(pattern=id_pattern("dpr"))]
AdjustmentId = Annotated[str, StringConstraints(pattern=id_pattern("adj"))]
FileId = Annotated[str, StringConstraints(pattern=id_pattern("file"))]
ConnectorId = Annotated[str, StringConstraints(pattern=id_pattern("con"))]
ReconciliationRunId = Annotated[str, StringConstraints(pattern=id_pattern("rc"))]
ReconciliationExceptionId = Annotated[str, StringConstraints(pattern=id_pattern("rcx"))]
RoutingRuleSetId = Annotated[str, StringConstraints(pattern=id_pattern("rrs"))]
RiskRuleSetId = Annotated[str, StringConstraints(pattern=id_pattern("rks"))]
RoutingSimulationId = Annotated[str, StringConstraints(pattern=id_pattern("rsim"))]

Timestamp = Annotated[int, Field(ge=0, description="Unix seconds.")]
BusinessDate = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"),
    Field(description="YYYY-MM-DD, a calendar date.", json_schema_extra={"format": "date"}),
]
# The domain refuses other codes with its own error code (`currency_unsupported`), so the list is
# stated here for the document rather than enforced by the schema's validation.
Currency = Annotated[
    str,
    Field(
        description="A lower-case ISO 4217 code Clearport accepts.",
        json_schema_extra=enum_of(CURRENCY_EXPONENTS),
    ),
]
Metadata = dict[str, str]
