"""Reading events: a merchant sees its own, an operator with merchants.read everyone's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clearport.access.domain import Principal, PrincipalKind, Role
from clearport.core.errors import NotFound, PermissionDenied
from clearport.core.ids import new_id
from clearport.core.pagination import PageRequest
from clearport.core.uow import FakeUnitOfWork
from clearport.events.domain import Event
from clearport.events.fake import FakeEventStore
from clearport.events.service import EventQueries

AT = datetime(2030, 1, 1, tzinfo=UTC)


def merchant(merchant_id: str) -> Principal:
    return Principal(PrincipalKind.MERCHANT, key_id="key_m", merchant_id=merchant_id)


async def queries() -> tuple[EventQueries, list[Event]]:
    store = FakeEventStore()
    uow = FakeUnitOfWork(store)
    written = [
        Event(new_id("evt"), owner, kind, f"pay_{i}", {"object": {}}, AT + timedelta(seconds=i))
        for i, (owner, kind) in enumerate(
            [("mer_a", "payment.authorized"), ("mer_b", "payment.captured")]
            + [("mer_a", "payment.captured")] * 3
        )
    ]
    async with uow.transaction() as tx:
        await store.insert(tx, written)
    return EventQueries(uow, store), written


async def test_merchants_see_their_own_events_only() -> None:
    events, written = await queries()
    mine = await events.list(merchant("mer_a"), PageRequest(limit=10), {})
    # Newest first by sequence (the order written), never by id.
    assert [e.id for e in mine.data] == [
        e.id for e in reversed(written) if e.merchant_id == "mer_a"
    ]
    other = written[1]
    with pytest.raises(NotFound, match=other.id):
        await events.get(merchant("mer_a"), other.id)
    captured = await events.list(
        merchant("mer_a"), PageRequest(limit=2), {"type": "payment.captured"}
    )
    assert len(captured.data) == 2 and captured.has_more


async def test_operators_need_merchants_read() -> None:
    events, written = await queries()
    support = Principal(PrincipalKind.OPERATOR, key_id="key_o", role=Role.SUPPORT)
    assert (await events.get(support, written[1].id)).merchant_id == "mer_b"
    page = await events.list(support, PageRequest(limit=10), {"created_gte": AT + timedelta(1)})
    assert page.data == []
    nobody = Principal(PrincipalKind.OPERATOR, key_id="key_x", role=None)
    with pytest.raises(PermissionDenied):
        await events.list(nobody, PageRequest(), {})
