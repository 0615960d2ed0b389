"""Webhook endpoints and their delivery attempts, as the API shows them
(`http/representation.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from clearport.events.domain import EVENT_TYPES
from clearport.http.models.base import (
    EventId,
    ListOf,
    MerchantId,
    ResponseModel,
    Timestamp,
    WebhookDeliveryId,
    WebhookEndpointId,
    enum_of,
)
from clearport.webhooks.domain import ALL_EVENTS, SECRET_PREFIX

ENABLED_EVENTS = {*EVENT_TYPES, ALL_EVENTS}
EnabledEvent = Annotated[str, Field(json_schema_extra=enum_of(ENABLED_EVENTS))]
# Shown once, in the answer that created it; an idempotent replay of that answer shows it
# masked (secrets never rest in the idempotency store).
SigningSecret = Annotated[
    str, StringConstraints(pattern=rf"^{SECRET_PREFIX}([A-Za-z0-9]+|\[REDACTED\])$")
]


class WebhookEndpoint(ResponseModel):
    id: WebhookEndpointId
    object: Literal["webhook_endpoint"]
    url: str
    enabled_events: list[EnabledEvent] = Field(
        min_length=1, description="The event types sent here; `*` for all this owner's events."
    )
    status: Literal["enabled", "disabled"]
    disabled_reason: Literal["failing", "disabled"] | None = Field(
        description="`failing`: three days without a 2xx; `disabled`: by its owner."
    )
    description: str | None
    merchant: MerchantId | None = Field(
        description="The merchant whose events it receives; null for a platform endpoint."
    )
    created: Timestamp


class NewWebhookEndpoint(WebhookEndpoint):
    secret: SigningSecret = Field(description="The signing secret, shown in this answer only.")


class DeletedWebhookEndpoint(ResponseModel):
    id: WebhookEndpointId
    object: Literal["webhook_endpoint"]
    deleted: Literal[True]


class WebhookDelivery(ResponseModel):
    """One attempt to deliver one event to the endpoint."""

    id: WebhookDeliveryId
    object: Literal["webhook_delivery"]
    endpoint: WebhookEndpointId
    event: EventId
    attempt: int = Field(ge=1, description="1 for the first attempt of this delivery.")
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(
        description="Why there is no 2xx: `timeout`, `connect_failed`, `tls_error`, "
        "`redirect_not_followed`, `refused: …` (the SSRF guard), …"
    )
    duration_ms: int = Field(ge=0)
    next_retry_at: Timestamp | None = Field(
        description="When it is tried again; null after a 2xx or when its three days ran out."
    )
    created: Timestamp


class WebhookEndpointList(ListOf[WebhookEndpoint]):
    pass


class WebhookDeliveryList(ListOf[WebhookDelivery]):
    pass
