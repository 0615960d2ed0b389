"""One event: what happened to one of a merchant's objects (or, for a platform event, to one of
the platform's), as the outbox stores it, and the types the API documents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clearport.core.errors import invariant
from clearport.core.ids import new_id


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    merchant_id: str | None  # None: a platform event, which belongs to no merchant
    type: str
    object_id: str
    data: dict[str, Any]  # {"object": the object as the API shows it after the change}
    created_at: datetime


# The event types of API.md "Events and webhooks". Merchant events go to the merchant's webhook
# endpoints; platform events to platform endpoints. `webhook_endpoint.disabled` goes to the
# disabled endpoint's owner, whichever it is. Features that do not exist yet (disputes,
# reconciliation) have their types here already, so endpoints may subscribe to them.
WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"
MERCHANT_EVENT_TYPES = frozenset(
    {
        "payment.authorized",
        "payment.declined",
        "payment.failed",
        "payment.captured",
        "payment.voided",
        "payment.expired",
        "payment.refunded",
        "refund.succeeded",
        "refund.failed",
        "settlement.completed",
        "payout.created",
        "payout.paid",
        "payout.failed",
        "dispute.created",
        "dispute.updated",
        "dispute.closed",
        WEBHOOK_ENDPOINT_DISABLED,
    }
)
PLATFORM_EVENT_TYPES = frozenset(
    {"settlement_run.completed", "reconciliation.completed", WEBHOOK_ENDPOINT_DISABLED}
)
EVENT_TYPES = MERCHANT_EVENT_TYPES | PLATFORM_EVENT_TYPES


def event_types_for(merchant_id: str | None) -> frozenset[str]:
    """The types an owner's events may have: a merchant's, or the platform's (None)."""
    return PLATFORM_EVENT_TYPES if merchant_id is None else MERCHANT_EVENT_TYPES


def new_event(
    type_: str,
    shown: dict[str, Any],
    *,
    merchant_id: str | None,
    at: datetime,
    event_id: str | None = None,
) -> Event:
    """The event of a change to `shown` (an object as the API shows it, with its `id`);
    `event_id` one drawn beforehand (`ids.new_ids` for a batch), else a new one."""
    invariant(type_ in event_types_for(merchant_id), f"{type_} is not an event of this owner")
    invariant(event_id is None or event_id.startswith("evt_"), "an event's id is an evt_ id")
    return Event(
        id=new_id("evt") if event_id is None else event_id,
        merchant_id=merchant_id,
        type=type_,
        object_id=str(shown["id"]),
        data={"object": shown},
        created_at=at,
    )
