"""GET /v1/balance and GET /v1/balance_transactions over HTTP."""

from __future__ import annotations

import asyncio
import time

from clearport.db.database import Database
from clearport.ledger.domain import AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from tests.ledger_support import assert_zero_sum, with_ledger
from tests.support import Api


def _seed(database_url: str, merchant_id: str, other_id: str) -> None:
    recv = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
    pend = AccountRef(merchant_id, AccountKind.PENDING, "usd")
    avail = AccountRef(merchant_id, AccountKind.AVAILABLE, "usd")
    reserve = AccountRef(merchant_id, AccountKind.RESERVE, "usd")
    fees = AccountRef("platform", AccountKind.FEE_REVENUE, "usd")

    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            await ledger.post(
                tx,
                [
                    TransferRequest(
                        "pay_a:capture", recv, pend, 10_000, "usd", "capture", source="pay_a"
                    ),
                    TransferRequest("pay_a:fee", pend, fees, 300, "usd", "fee", source="pay_a"),
                    TransferRequest(
                        "pay_b:capture", recv, pend, 5_000, "usd", "capture", source="pay_b"
                    ),
                    TransferRequest(
                        "rfd_a:refund", pend, recv, 1_000, "usd", "refund", source="rfd_a"
                    ),
                    TransferRequest("settle:1", pend, avail, 8_000, "usd", "settle"),
                    TransferRequest("rsv:1", avail, reserve, 500, "usd", "reserve_hold"),
                    TransferRequest(
                        "other:capture",
                        recv,
                        AccountRef(other_id, AccountKind.PENDING, "usd"),
                        777,
                        "usd",
                        "capture",
                        source="pay_o",
                    ),
                ],
            )

    asyncio.run(with_ledger(database_url, scenario))


def test_balance_and_transactions(api: Api) -> None:
    merchant_id, secret = api.merchant()
    other_id, other_secret = api.merchant()
    before = int(time.time()) - 1
    _seed(api.database_url, merchant_id, other_id)

    balance = api.call("GET", "/v1/balance", secret)
    assert balance.status_code == 200, balance.text
    assert balance.json() == {
        "object": "balance",
        "pending": [{"amount": 5_700, "currency": "usd"}],
        "available": [{"amount": 7_500, "currency": "usd"}],
        "reserve": [{"amount": 500, "currency": "usd"}],
    }
    listed = api.call("GET", "/v1/balance_transactions?limit=100", secret).json()
    assert listed["object"] == "list" and listed["has_more"] is False
    by_type = sorted((t["type"], t["amount"], t["status"]) for t in listed["data"])
    # "settle" is ledger-internal: not a balance transaction type
    assert by_type == [
        ("capture", 5_000, "pending"),
        ("capture", 10_000, "pending"),
        ("fee", -300, "pending"),
        ("refund", -1_000, "pending"),
        ("reserve_hold", -500, "available"),
    ]
    first = listed["data"][0]
    assert first["id"].startswith("txn_") and first["object"] == "balance_transaction"
    assert first["net"] == first["amount"] and first["created"] >= before

    captures = api.call("GET", "/v1/balance_transactions?type=capture", secret).json()
    assert {t["source"] for t in captures["data"]} == {"pay_a", "pay_b"}
    page1 = api.call("GET", "/v1/balance_transactions?limit=2", secret).json()
    assert page1["has_more"] is True and len(page1["data"]) == 2
    page2 = api.call(
        "GET",
        f"/v1/balance_transactions?limit=10&starting_after={page1['data'][1]['id']}",
        secret,
    ).json()
    ids = [t["id"] for t in page1["data"] + page2["data"]]
    assert len(ids) == 5 and len(set(ids)) == 5 and ids == sorted(ids, reverse=True)
    future = before + 3600
    empty = api.call("GET", f"/v1/balance_transactions?created[gte]={future}", secret).json()
    assert empty["data"] == []
    assert api.call("GET", "/v1/balance_transactions?type=settle", secret).status_code == 400

    # merchants see only their own; another merchant's id is a 404
    assert api.call("GET", f"/v1/balance?merchant={other_id}", secret).status_code == 404
    other = api.call("GET", "/v1/balance_transactions", other_secret).json()
    assert [t["amount"] for t in other["data"]] == [777]

    # operators name the merchant
    support = api.operator("support")
    op = api.call("GET", f"/v1/balance?merchant={merchant_id}", support)
    assert op.status_code == 200 and op.json() == balance.json()
    assert api.call("GET", "/v1/balance", support).status_code == 400
    missing = "mer_01JD3ZZZZZZZZZZZZZZZZZZZZZ"
    assert api.call("GET", f"/v1/balance?merchant={missing}", support).status_code == 404
    assert api.call("GET", "/v1/balance?merchant=nope", support).status_code == 400
    assert_zero_sum(api.database_url)
