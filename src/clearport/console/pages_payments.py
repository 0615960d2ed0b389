"""Payments: search (id, reference, BIN + last 4, fingerprint, status, merchant, date range) and
detail (every attempt, the routing decision with its failovers, the risk rules fired, refunds,
disputes, ledger entries, events and their webhook deliveries, the place of its entries in the
signed transaction-log chain)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from clearport.access.domain import Permission, role_allows
from clearport.console.forms import day, listing, page_of, query
from clearport.console.web import PREFIX, ConsoleRoute, container_of, page, principal_of
from clearport.core.errors import InvalidRequest, NotFound
from clearport.core.pagination import PageRequest
from clearport.payments.domain import PaymentStatus

router = APIRouter(prefix=f"{PREFIX}/payments", route_class=ConsoleRoute, include_in_schema=False)

_DETAIL_ROWS = 50  # refunds, disputes, ledger entries, events of one payment: at most this many


@router.get("")
async def payments(request: Request) -> Response:
    wanted = query(request, "id")
    if wanted is not None:
        return RedirectResponse(f"{PREFIX}/payments/{_payment_id(wanted)}", status_code=303)
    filters = _filters(request)
    found = await container_of(request).payments.list(
        principal_of(request), page_of(request, "pay"), filters
    )
    return page(
        request,
        "payments.html",
        title="Payments",
        statuses=[s.value for s in PaymentStatus],
        form=dict(request.query_params),
        **listing(found, request),
    )


@router.get("/{payment_id}")
async def payment(request: Request, payment_id: str) -> Response:
    container, actor = container_of(request), principal_of(request)
    found = await container.payments.get(actor, _payment_id(payment_id))
    first = PageRequest(_DETAIL_ROWS)
    refunds = await container.payments.list_refunds(actor, first, {"payment_id": found.id})
    disputes = await container.disputes.list(actor, first, {"payment_id": found.id})
    events = await container.events.list(actor, first, {"object_id": found.id})
    sources = [found.id, *(r.id for r in refunds.data), *(d.id for d in disputes.data)]
    entries: list[Any] = []
    for source in sources[:_DETAIL_ROWS]:
        listed = await container.ledger.list_balance_transactions(
            actor, found.merchant_id, first, {"source": source}
        )
        entries.extend(listed.data)
    attempts = await container.payments.attempts(actor, found.id, _DETAIL_ROWS)
    deliveries = await _deliveries(request, [e.id for e in events.data])
    places = await container.chains.places(sources, _DETAIL_ROWS)
    return page(
        request,
        "payment.html",
        attempts=attempts,
        deliveries=deliveries,
        places=places,
        title=found.id,
        payment=found,
        routing=found.routing,
        risk=found.risk,
        refunds=refunds.data,
        disputes=disputes.data,
        events=events.data,
        entries=entries[:_DETAIL_ROWS],
    )


async def _deliveries(request: Request, event_ids: list[str]) -> Sequence[Any] | None:
    """The events' webhook deliveries, for those who may see endpoints (`webhooks.manage`);
    None for the others (the page says so instead of failing)."""
    actor = principal_of(request)
    if actor.role is None or not role_allows(actor.role, Permission.WEBHOOKS_MANAGE):
        return None
    return await container_of(request).webhooks.attempts_for_events(actor, event_ids, _DETAIL_ROWS)


def _filters(request: Request) -> dict[str, Any]:
    status = query(request, "status")
    if status is not None and status not in {s.value for s in PaymentStatus}:
        raise InvalidRequest("'status' is not a payment status.", field="status")
    card_bin, last4 = query(request, "bin"), query(request, "last4")
    for name, value, lengths in (("bin", card_bin, (6, 7, 8)), ("last4", last4, (4,))):
        if value is not None and (not value.isdigit() or len(value) not in lengths):
            raise InvalidRequest(
                f"'{name}' must be {' or '.join(map(str, lengths))} digits.", field=name
            )
    return {
        "status": status,
        "reference": query(request, "reference"),
        "merchant": query(request, "merchant"),
        "bin_prefix": card_bin,
        "last4": last4,
        "fingerprint": query(request, "fingerprint"),
        "created_gte": day(query(request, "from"), "from"),
        "created_lt": day(query(request, "to"), "to", end=True),
    }


def _payment_id(value: str) -> str:
    if not value.startswith("pay_") or len(value) > 64 or not value.replace("_", "").isalnum():
        raise NotFound(f"No such payment: '{value[:64]}'.")
    return value
