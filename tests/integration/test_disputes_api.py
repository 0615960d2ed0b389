"""Disputes over HTTP: the lifecycle and its money (ledger zero-sum after every transition, won
and lost), evidence with files, events and the transaction log, inquiries, and the bad input of
the issue: the codes of API.md."""

from __future__ import annotations

import httpx
import psycopg

from tests.integration.test_payments_api import events_of, pay, post
from tests.money_support import (
    PNG,
    assert_list_agrees_with_balance,
    balance,
    capture,
    dispute,
    zero_sum,
)
from tests.support import Api


def upload(api: Api, key: str, data: bytes, purpose: str = "dispute_evidence") -> httpx.Response:
    return api.call(
        "POST",
        "/v1/files",
        key,
        files={"file": ("f", data, "application/octet-stream")},
        data={"purpose": purpose},
    )


def test_a_dispute_from_creation_to_won_and_lost(api: Api) -> None:
    admin = api.operator("admin")
    merchant, key = api.merchant(admin)  # default pricing: a USD dispute costs 15.00
    paid = capture(api, key, 10_000)
    assert balance(api, key)["pending"] == {"usd": 10_000}

    opened = dispute(
        api, admin, paid["id"], 4_000, network_case_id="VISA-77", network_reason_code="10.4"
    )
    assert opened["status"] == "needs_response" and opened["fee"] == 1_500
    assert opened["from_available"] == 0  # nothing available: all from pending
    # Amount and fee are debited at once, each a balance transaction of its own.
    assert balance(api, key)["pending"] == {"usd": 10_000 - 4_000 - 1_500}
    txns = api.call("GET", "/v1/balance_transactions", key).json()["data"]
    mine = sorted(
        (t["type"], t["amount"], t["status"]) for t in txns if t["source"] == opened["id"]
    )
    assert mine == [("chargeback", -4_000, "pending"), ("fee", -1_500, "pending")]
    zero_sum(api)
    assert_list_agrees_with_balance(api, key)
    # A disputed payment is not refunded: the chargeback has the money.
    refused = post(api, key, f"/v1/payments/{paid['id']}/refunds", {"amount": 100})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "invalid_state"

    # Evidence: a file and text, then submitted.
    receipt = upload(api, key, PNG)
    assert receipt.status_code == 201, receipt.text
    file_id = receipt.json()["id"]
    evidence = {"receipt": file_id, "product_description": "Two flat whites"}
    given = post(api, key, f"/v1/disputes/{opened['id']}", {"evidence": evidence})
    assert given.status_code == 200 and given.json()["status"] == "needs_response", given.text
    submitted = post(api, key, f"/v1/disputes/{opened['id']}", {"submit": True})
    assert submitted.json()["status"] == "under_review"
    assert submitted.json()["evidence"] == evidence
    assert submitted.json()["evidence_details"]["submission_count"] == 1
    late = post(api, key, f"/v1/disputes/{opened['id']}", {"evidence": {"customer_name": "X"}})
    assert late.status_code == 409
    # Closing is the operator's; the merchant may not.
    assert (
        post(api, key, f"/v1/disputes/{opened['id']}/close", {"outcome": "won"}).status_code == 403
    )
    won = post(api, admin, f"/v1/disputes/{opened['id']}/close", {"outcome": "won"})
    assert won.status_code == 200 and won.json()["status"] == "won", won.text
    assert won.json()["reversal"].startswith("dpr_")
    assert balance(api, key)["pending"] == {"usd": 10_000}  # amount and fee credited back
    zero_sum(api)
    assert_list_agrees_with_balance(api, key)
    assert events_of(api, key, opened["id"]) == [
        "dispute.created",
        "dispute.updated",
        "dispute.updated",
        "dispute.closed",
    ]
    again = post(api, admin, f"/v1/disputes/{opened['id']}/close", {"outcome": "lost"})
    assert again.status_code == 409
    # Won back, the payment may be refunded again.
    assert post(api, key, f"/v1/payments/{paid['id']}/refunds", {"amount": 100}).status_code == 201

    # Lost: the money stays gone.
    second = dispute(api, admin, paid["id"], 2_000)
    lost = post(api, admin, f"/v1/disputes/{second['id']}/close", {"outcome": "lost"})
    assert lost.json()["status"] == "lost" and lost.json()["reversal"] is None
    assert balance(api, key)["pending"] == {"usd": 10_000 - 100 - 2_000 - 1_500}
    zero_sum(api)
    assert_list_agrees_with_balance(api, key)

    # Every transition is in the transaction log, every one of its steps audited.
    with psycopg.connect(api.database_url) as conn:
        logged = conn.execute(
            "SELECT object_id, from_status, to_status FROM txlog WHERE object_type = 'dispute' "
            "ORDER BY seq"
        ).fetchall()
    assert logged == [
        (opened["id"], None, "needs_response"),
        (opened["id"], "needs_response", "under_review"),
        (opened["id"], "under_review", "won"),
        (second["id"], None, "needs_response"),
        (second["id"], "needs_response", "lost"),
    ]
    listed = api.call("GET", "/v1/disputes", key, params={"payment": paid["id"]}).json()["data"]
    assert [d["id"] for d in listed] == [second["id"], opened["id"]]
    assert merchant == opened["merchant"]


def test_an_inquiry_moves_no_money_and_a_chargeback_escalates_it(api: Api) -> None:
    admin = api.operator("admin")
    _, key = api.merchant(admin)
    paid = capture(api, key, 5_000)
    inquiry = dispute(api, admin, paid["id"], 5_000, inquiry=True, network_case_id="MC-1")
    assert inquiry["status"] == "warning_needs_response" and inquiry["fee"] == 0
    assert balance(api, key)["pending"] == {"usd": 5_000}
    chargeback = dispute(api, admin, paid["id"], 5_000, network_case_id="MC-1")
    assert chargeback["status"] == "needs_response"
    closed = api.call("GET", f"/v1/disputes/{inquiry['id']}", key).json()
    assert closed["status"] == "warning_closed"
    assert balance(api, key)["pending"] == {"usd": 5_000 - 5_000 - 1_500}
    zero_sum(api)


def test_bad_input_answers_with_the_codes_of_the_contract(api: Api) -> None:
    admin = api.operator("admin")
    merchant, key = api.merchant(admin)
    paid = capture(api, key, 3_000)
    refunded = post(api, key, f"/v1/payments/{paid['id']}/refunds", {"amount": 1_000})
    assert refunded.status_code == 201

    def create(body: dict[str, object]) -> tuple[int, dict[str, object]]:
        r = post(api, admin, "/v1/disputes", {"reason": "general", **body})
        return r.status_code, r.json().get("error", {})

    # Above captured - refunded: 400 amount_too_large.
    status, error = create({"payment": paid["id"], "amount": 2_001})
    assert (status, error["code"], error["param"]) == (400, "amount_too_large", "amount")
    # Not captured: 409 invalid_state.
    authorized = pay(api, key)
    status, error = create({"payment": authorized["id"], "amount": 100})
    assert (status, error["code"]) == (409, "invalid_state")
    # A second dispute of one network case: 409 duplicate_dispute.
    assert create({"payment": paid["id"], "amount": 100, "network_case_id": "C-9"})[0] == 201
    status, error = create({"payment": paid["id"], "amount": 100, "network_case_id": "C-9"})
    assert (status, error["code"]) == (409, "duplicate_dispute")
    # Another merchant's payment is a missing one.
    _, other = api.merchant(admin)
    theirs = capture(api, other, 1_000)
    assert create({"payment": theirs["id"], "amount": 100})[0] == 201  # operators see all
    # Evidence files: too large or of a refused type: 400.
    too_big = upload(api, key, b"%PDF-" + bytes(5 * 1024 * 1024))
    assert too_big.status_code == 400
    assert too_big.json()["error"]["code"] == "file_too_large"
    executable = upload(api, key, b"MZ\x90\x00" + bytes(100))
    assert executable.status_code == 400
    assert executable.json()["error"]["code"] == "file_type_refused"
    csv_as_evidence = upload(api, key, b"a,b\n1,2\n")
    assert csv_as_evidence.status_code == 400
    assert upload(api, key, b"a,b\n1,2\n", "reconciliation").status_code == 403
    json_body = api.call("POST", "/v1/files", key, json={"purpose": "dispute_evidence"})
    assert json_body.status_code == 415
    # Evidence is stored and sent in events and webhooks: a card number in it is refused, and
    # the error does not repeat it.
    (open_dispute,) = api.call("GET", "/v1/disputes", key).json()["data"]
    pan = post(
        api,
        key,
        f"/v1/disputes/{open_dispute['id']}",
        {"evidence": {"uncategorized_text": "card 4242 4242 4242 4242 was used"}},
    )
    assert pan.status_code == 400 and "4242" not in pan.text
    assert pan.json()["error"]["param"] == "evidence[uncategorized_text]"
    # Adjustments: without a reason, or in a currency the merchant does not settle: 400.
    finance = api.operator("finance")
    no_reason = post(
        api,
        finance,
        "/v1/adjustments",
        {"merchant": merchant, "amount": 100, "currency": "usd", "reason": " "},
    )
    assert no_reason.status_code == 400 and no_reason.json()["error"]["param"] == "reason"
    missing = post(
        api, finance, "/v1/adjustments", {"merchant": merchant, "amount": 100, "currency": "usd"}
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "reason"
    yen = post(
        api,
        finance,
        "/v1/adjustments",
        {"merchant": merchant, "amount": 100, "currency": "jpy", "reason": "fix"},
    )
    assert yen.status_code == 400 and yen.json()["error"]["code"] == "currency_not_settled"
    support = api.operator("support")
    denied = post(
        api,
        support,
        "/v1/adjustments",
        {"merchant": merchant, "amount": 100, "currency": "usd", "reason": "fix"},
    )
    assert denied.status_code == 403
    ok = post(
        api,
        finance,
        "/v1/adjustments",
        {"merchant": merchant, "amount": -100, "currency": "usd", "reason": "fee fix"},
    )
    assert ok.status_code == 201 and ok.json()["balance_transaction"].startswith("txn_")
    # Nothing half-written by the refusals: one adjustment, the disputes that were created.
    with psycopg.connect(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM adjustments").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM disputes").fetchone() == (2,)
    zero_sum(api)


def test_a_retried_dispute_is_the_same_dispute(api: Api) -> None:
    admin = api.operator("admin")
    _, key = api.merchant(admin)
    paid = capture(api, key, 3_000)
    body = {"payment": paid["id"], "amount": 1_000, "reason": "duplicate"}
    first = api.call("POST", "/v1/disputes", admin, json=body, idempotency_key="dp-1")
    again = api.call("POST", "/v1/disputes", admin, json=body, idempotency_key="dp-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    with psycopg.connect(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM disputes").fetchone() == (1,)
