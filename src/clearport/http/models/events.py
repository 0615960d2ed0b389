"""Events, as the API shows them (`http/representation.py`): `data.object` is the object the
event is about, as the API showed it right after the change."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clearport.events.domain import EVENT_TYPES
from clearport.http.models.base import EventId, ListOf, ResponseModel, Timestamp, enum_of
from clearport.http.models.disputes import Dispute
from clearport.http.models.payments import Payment, Refund
from clearport.http.models.settlement import Payout, Settlement, SettlementRun
from clearport.http.models.webhooks import WebhookEndpoint


class EventData(ResponseModel):
    object: Annotated[
        Payment | Refund | Dispute | Settlement | Payout | SettlementRun | WebhookEndpoint,
        Field(discriminator="object"),
    ] = Field(description="The object as the API showed it right after the change.")


class Event(ResponseModel):
    id: EventId
    object: Literal["event"]
    type: str = Field(json_schema_extra=enum_of(EVENT_TYPES))
    created: Timestamp
    data: EventData


class EventList(ListOf[Event]):
    pass
