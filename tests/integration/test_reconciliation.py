"""Reconciliation over HTTP against a real PostgreSQL: a settlement file with every exception
kind planted, classified; the same file again changes nothing; each resolution's ledger effect;
late settlement closing an earlier exception; bad rows and files in the wrong layout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.test_payments_api import post
from tests.money_support import balance, capture, dispute, zero_sum
from tests.support import Api, pg

HEADER = (
    "merchant_reference,type,amount_minor,currency,fee_minor,interchange_minor,"
    "scheme_fee_minor,processor_fee_minor,settlement_date,dispute_case_id"
)
BPS, FIXED = 20, 5  # the connector's agreed fees in the tests: 0.20 % + 5


def fee(amount: int) -> int:
    return (amount * BPS + 5000) // 10000 + FIXED


def row(ref: str, amount: int, *, type_: str = "capture", currency: str = "USD",
        fee_minor: int | None = None, day: str | None = None, case: str = "") -> str:  # fmt: skip
    charged = fee(amount) if fee_minor is None else fee_minor
    day = day or datetime.now(UTC).date().isoformat()
    return f"{ref},{type_},{amount},{currency},{charged},{charged - 5},2,3,{day},{case}"


def upload(api: Api, key: str, text: str) -> str:
    r = api.call(
        "POST",
        "/v1/files",
        key,
        files={"file": ("settlement.csv", text.encode(), "text/csv")},
        data={"purpose": "reconciliation"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def reconcile(api: Api, key: str, connector: str, lines: list[str]) -> httpx.Response:
    file_id = upload(api, key, "\n".join([HEADER, *lines]) + "\n")
    return post(api, key, "/v1/reconciliation_runs", {"connector": connector, "file": file_id})


def exceptions(api: Api, key: str, **params: Any) -> list[dict[str, Any]]:
    r = api.call("GET", "/v1/reconciliation_exceptions", key, params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


@dataclass
class Day:
    finance: str
    merchant: str
    key: str
    connector: str
    refs: dict[str, str]  # name -> the reference the processor knows it by
    payments: dict[str, str]


def a_day(api: Api) -> Day:
    """Seven captures, a refund and a chargeback through the simulator, and the connector's fee
    schedule: the internal side of every test here."""
    admin = api.operator("admin")
    finance = api.operator("finance")
    merchant, key = api.merchant(admin)
    names = ("clean", "short", "euro", "fees", "twice", "unpaid", "disputed")
    paid = {name: capture(api, key, 10_000) for name in names}
    refund = post(api, key, f"/v1/payments/{paid['clean']['id']}/refunds", {"amount": 1_000})
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded", refund.text
    dispute(api, admin, paid["disputed"]["id"], 3_000, network_case_id="CASE-1")
    with pg(api.database_url) as conn:
        refs = {
            name: conn.execute(
                "SELECT auth_attempt_id FROM payments WHERE id = %s", (p["id"],)
            ).fetchone()[0]  # type: ignore[index]
            for name, p in paid.items()
        }
        connector = conn.execute(
            "SELECT connector FROM payments WHERE id = %s", (paid["clean"]["id"],)
        ).fetchone()[0]  # type: ignore[index]
        refs["refund"] = conn.execute(
            "SELECT id FROM payment_attempts WHERE refund_id = %s", (refund.json()["id"],)
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO reconciliation_fee_schedules VALUES (%s, 'usd', %s, %s, now())",
            (connector, BPS, FIXED),
        )
    return Day(finance, merchant, key, connector, refs, {n: p["id"] for n, p in paid.items()})


def planted(day: Day) -> list[str]:
    r = day.refs
    return [
        row(r["clean"], 10_000),
        row(r["short"], 9_900),  # amount_mismatch
        row(r["euro"], 10_000, currency="EUR"),  # currency_mismatch
        row(r["fees"], 10_000, fee_minor=fee(10_000) + 50),  # fee_difference
        row(r["twice"], 10_000),
        row(r["twice"], 10_000),  # duplicate
        # "unpaid" is not in the file: missing_external
        row("att_01JD3ZQ5N1T8W6X9Y2A4B7C0ZZ", 4_200),  # missing_internal
        # A processor's row naming a card number: it never reaches the queue.
        row("4242424242424242", 1_100),
        row(r["refund"], 1_000, type_="refund"),
        row(r["disputed"], 10_000),
        row(r["disputed"], 3_000, type_="dispute", case="CASE-1"),
        # A chargeback Clearport has not heard of: it becomes a dispute.
        row(r["clean"], 2_000, type_="dispute", case="CASE-NEW"),
    ]


def test_each_planted_exception_is_classified_and_a_reimport_changes_nothing(api: Api) -> None:
    day = a_day(api)
    first = reconcile(api, day.finance, day.connector, planted(day))
    assert first.status_code == 201, first.text
    run = first.json()
    counts = {k: run[k] for k in ("matched", "missing_internal", "missing_external",
              "amount_mismatch", "currency_mismatch", "fee_difference", "duplicate")}  # fmt: skip
    assert counts == {
        "matched": 4,  # two clean captures, the refund, the known dispute
        "missing_internal": 2,
        "missing_external": 1,
        "amount_mismatch": 1,
        "currency_mismatch": 1,
        "fee_difference": 1,
        "duplicate": 1,
    }
    assert run["disputes_created"] == 1 and run["lines"] == 12 and run["rejected"] == 0
    listed = exceptions(api, day.finance, run=run["id"], status="open")
    unknown = sorted(x["reference"] for x in listed if x["kind"] == "missing_internal")
    assert unknown == ["[REDACTED_PAN]", "att_01JD3ZQ5N1T8W6X9Y2A4B7C0ZZ"]
    assert "4242424242424242" not in str(listed)
    by_kind = {x["kind"]: x for x in listed if x["reference"] != "[REDACTED_PAN]"}
    assert by_kind["amount_mismatch"]["difference"] == -100
    assert by_kind["amount_mismatch"]["merchant"] == day.merchant
    assert by_kind["amount_mismatch"]["item"] == day.payments["short"]
    assert by_kind["missing_external"]["item"] == day.payments["unpaid"]
    assert by_kind["missing_external"]["difference"] == -10_000
    assert by_kind["missing_internal"]["merchant"] is None
    assert by_kind["missing_internal"]["reference"] == "att_01JD3ZQ5N1T8W6X9Y2A4B7C0ZZ"
    assert by_kind["fee_difference"]["expected_fee"] == fee(10_000)
    assert by_kind["fee_difference"]["difference"] == -50
    assert by_kind["currency_mismatch"]["difference"] is None
    assert by_kind["duplicate"]["line_count"] == 2
    # Line numbers survive the file being COPYed in parts at once.
    lines = {k: x["line"] for k, x in by_kind.items()}
    assert lines == {"amount_mismatch": 3, "currency_mismatch": 4, "fee_difference": 5,
                     "duplicate": 6, "missing_internal": 8, "missing_external": None}  # fmt: skip
    became = exceptions(api, day.finance, status="resolved")
    assert [(x["network_case_id"], x["resolution"]) for x in became] == [
        ("CASE-NEW", "dispute_created")
    ]
    with pg(api.database_url) as conn:
        created = conn.execute(
            "SELECT payment_id, amount FROM disputes WHERE network_case_id = 'CASE-NEW'"
        ).fetchall()
        assert created == [(day.payments["clean"], 2_000)]
        events = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'reconciliation.completed'"
        ).fetchone()
        assert events == (1,)
        stored = conn.execute("SELECT count(*) FROM reconciliation_exceptions").fetchone()
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'rcs\\_%'"
        ).fetchone()
    assert leftovers == (0,)  # the run's scratch tables are gone

    # The same file again: the same run, nothing new.
    again = reconcile(api, day.finance, day.connector, planted(day))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == run["id"]
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM reconciliation_exceptions").fetchone() == stored
        assert conn.execute("SELECT count(*) FROM reconciliation_runs").fetchone() == (1,)
    # Another file for the same settlement date is refused: its period is reconciled.
    other = reconcile(api, day.finance, day.connector, planted(day)[:3])
    assert other.status_code == 409 and other.json()["error"]["code"] == "period_reconciled"


def test_the_kinds_do_not_depend_on_which_transactions_share_a_sketch_cell(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sketch only narrows what the close pass reads: with every transaction in its one
    cell, the close pass reads every row and classifies the same, clean matches included."""
    from clearport.reconciliation.store import matching

    monkeypatch.setattr(matching, "sketch_cells", lambda lines: 1)
    day = a_day(api)
    run = reconcile(api, day.finance, day.connector, planted(day))
    assert run.status_code == 201, run.text
    counts = {k: run.json()[k] for k in ("matched", "missing_internal", "missing_external",
              "amount_mismatch", "currency_mismatch", "fee_difference", "duplicate")}  # fmt: skip
    assert counts == {"matched": 4, "missing_internal": 2, "missing_external": 1,
                      "amount_mismatch": 1, "currency_mismatch": 1, "fee_difference": 1,
                      "duplicate": 1}  # fmt: skip
    assert len(exceptions(api, day.finance, run=run.json()["id"], status="open")) == 7


def test_a_share_that_fails_rolls_every_share_back_and_leaves_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One connection's share of the sketch fails while the other's runs: both are rolled back
    once both have ended, the run records nothing and leaves no scratch, and the next run of
    the same file works on the same connections' pool."""
    from clearport.reconciliation.store import matching

    real = matching.sketch_sql

    def failing(fmt: Any, stage_part: str, *args: Any) -> str:
        sql = real(fmt, stage_part, *args)
        return sql if stage_part.endswith("0") else sql.replace("sum(sign *", "sum(1 / 0 *", 1)

    day = a_day(api)
    lines = [row(day.refs["clean"], 10_000), row(day.refs["short"], 9_900)]
    monkeypatch.setattr(matching, "sketch_sql", failing)
    failed = reconcile(api, day.finance, day.connector, lines)
    assert failed.status_code == 500, failed.text
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM reconciliation_runs").fetchone() == (0,)
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'rcs\\_%'"
        ).fetchone()
        assert leftovers == (0,)
    monkeypatch.setattr(matching, "sketch_sql", real)
    again = reconcile(api, day.finance, day.connector, lines)
    assert again.status_code == 201, again.text
    assert (again.json()["matched"], again.json()["amount_mismatch"]) == (1, 1)


def test_a_scratch_drop_that_fails_beside_the_record_leaves_the_run_and_no_scratch(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping the staged file beside the record only frees space early: when it fails, the
    run still stands and the scratch is dropped after the run's transaction, as always."""
    from clearport.reconciliation.store import matching

    async def failing(self: Any, txs: Any, scratch: Any) -> None:
        raise RuntimeError("the drop failed")

    monkeypatch.setattr(matching.PgMatching, "drop_file", failing)
    day = a_day(api)
    run = reconcile(api, day.finance, day.connector, [row(day.refs["clean"], 10_000)])
    assert run.status_code == 201, run.text
    assert run.json()["matched"] == 1
    with pg(api.database_url) as conn:
        leftovers = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'rcs\\_%'"
        ).fetchone()
        assert leftovers == (0,)


def test_a_reference_twice_on_both_sides_is_two_matches(api: Api) -> None:
    """Two captures the processor knows by one reference, each settled once: the file's two
    rows and the two items are the same multiset, so nothing is owed either way and nothing is
    an exception (decision 0711); a third row would be a duplicate."""
    day = a_day(api)
    twin = capture(api, day.key, 10_000)
    with pg(api.database_url) as conn:
        conn.execute(
            "UPDATE payments SET auth_attempt_id = %s WHERE id = %s",
            (day.refs["twice"], twin["id"]),
        )
    r = day.refs
    both = [row(r["twice"], 10_000), row(r["twice"], 10_000)]
    run = reconcile(api, day.finance, day.connector, [row(r["clean"], 10_000), *both])
    assert run.status_code == 201, run.text
    assert (run.json()["matched"], run.json()["duplicate"]) == (3, 0)
    later = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    third = reconcile(api, day.finance, day.connector, [row(r["twice"], 10_000, day=later)])
    assert third.status_code == 201, third.text
    assert third.json()["duplicate"] == 1


def test_resolutions_move_money_as_they_say(api: Api) -> None:
    day = a_day(api)
    run = reconcile(api, day.finance, day.connector, planted(day)).json()
    by_kind = {
        x["kind"]: x
        for x in exceptions(api, day.finance, run=run["id"], status="open")
        if x["reference"] != "[REDACTED_PAN]"
    }
    before = balance(api, day.key)["pending"]["usd"]

    adjusted = post(
        api,
        day.finance,
        f"/v1/reconciliation_exceptions/{by_kind['amount_mismatch']['id']}/resolve",
        {"action": "adjust", "note": "Processor settled 1.00 less"},
    )
    assert adjusted.status_code == 200, adjusted.text
    assert adjusted.json()["status"] == "resolved" and adjusted.json()["adjustment"]
    assert balance(api, day.key)["pending"]["usd"] == before - 100
    again = post(
        api,
        day.finance,
        f"/v1/reconciliation_exceptions/{by_kind['amount_mismatch']['id']}/resolve",
        {"action": "accept", "note": "twice"},
    )
    assert again.status_code == 409

    written_off = post(
        api,
        day.finance,
        f"/v1/reconciliation_exceptions/{by_kind['missing_external']['id']}/resolve",
        {"action": "write_off", "note": "Processor lost it"},
    )
    assert written_off.status_code == 200, written_off.text
    assert written_off.json()["balance_transaction"].startswith("txn_")
    assert balance(api, day.key)["pending"]["usd"] == before - 100  # not the merchant's money
    with pg(api.database_url) as conn:
        losses = conn.execute(
            # a platform account is the sum of its shards (decision 0913)
            "SELECT sum(debits_posted)::bigint, sum(credits_posted)::bigint FROM ledger_accounts "
            "WHERE owner = 'platform' AND kind = 'reconciliation_losses' AND currency = 'usd'"
        ).fetchone()
    assert losses == (10_000, 0)
    zero_sum(api)

    # Across currencies nothing can be posted: only accepting it closes it.
    euro = by_kind["currency_mismatch"]["id"]
    refused = post(
        api, day.finance, f"/v1/reconciliation_exceptions/{euro}/resolve",
        {"action": "adjust", "note": "no"},
    )  # fmt: skip
    assert refused.status_code == 409, refused.text
    accepted = post(
        api, day.finance, f"/v1/reconciliation_exceptions/{euro}/resolve",
        {"action": "accept", "note": "Booked in EUR by the processor; ticket 42"},
    )  # fmt: skip
    assert accepted.status_code == 200 and accepted.json()["resolution"] == "accept"
    # No merchant is known for what Clearport never recorded: adjust is refused.
    unknown = by_kind["missing_internal"]["id"]
    assert (
        post(
            api,
            day.finance,
            f"/v1/reconciliation_exceptions/{unknown}/resolve",
            {"action": "adjust", "note": "x"},
        ).status_code
        == 409
    )
    # Read-only roles read the queue, never resolve it; every resolution is audited.
    support = api.operator("support")
    assert len(exceptions(api, support, status="open")) == 4
    assert (
        post(
            api,
            support,
            f"/v1/reconciliation_exceptions/{unknown}/resolve",
            {"action": "accept", "note": "x"},
        ).status_code
        == 403
    )
    assert exceptions(api, day.finance, kind="duplicate", status="open")[0]["line_count"] == 2
    assert exceptions(api, day.finance, older_than_days=1) == []
    with pg(api.database_url) as conn:
        audited = conn.execute(
            "SELECT count(*) FROM audit_events WHERE event_type = "
            "'reconciliation_exception.resolved'"
        ).fetchone()
    assert audited == (3,)
    metrics = api.call("GET", "/metrics").text
    assert 'clearport_reconciliation_open_exceptions{age="0-1d",kind="duplicate"} 1.0' in metrics


def test_a_later_file_settling_a_missing_item_closes_its_exception(api: Api) -> None:
    day = a_day(api)
    run = reconcile(api, day.finance, day.connector, planted(day)).json()
    missing = exceptions(api, day.finance, kind="missing_external")[0]
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    late = reconcile(
        api,
        day.finance,
        day.connector,
        [
            row(day.refs["unpaid"], 10_000, day=tomorrow),
            row(day.refs["clean"], 10_000, day=tomorrow),
        ],
    )
    assert late.status_code == 201, late.text
    # "unpaid" was missing yesterday and is settled now; "clean" was settled already: twice.
    assert late.json()["matched_late"] == 1 and late.json()["duplicate"] == 1
    closed = api.call("GET", f"/v1/reconciliation_exceptions/{missing['id']}", day.finance).json()
    assert closed["status"] == "resolved" and closed["resolution"] == "matched_late"
    assert run["id"] != late.json()["id"]
    listed = api.call(
        "GET", "/v1/reconciliation_runs", day.finance, params={"connector": day.connector}
    )
    assert [r["id"] for r in listed.json()["data"]] == [late.json()["id"], run["id"]]
    none = api.call("GET", "/v1/reconciliation_runs", day.finance, params={"connector": "other"})
    assert none.json()["data"] == []


def test_bad_rows_are_reported_by_line_and_the_rest_applies(api: Api) -> None:
    day = a_day(api)
    r = day.refs
    lines = [
        row(r["clean"], 10_000),
        f"{r['short']},capture,ten,USD,25,20,2,3,2026-01-01,",  # not a number: COPY refuses it
        row(r["euro"], 10_000).replace(",USD,", ",US,"),  # not a currency code
        row(r["fees"], 10_000).replace(f",{fee(10_000)},", f",{fee(10_000) + 1},", 1),
        row(r["twice"], 10_000, type_="chargeback"),
        "x,capture,1",  # a row cut short
    ]
    run = reconcile(api, day.finance, day.connector, lines)
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["lines"] == 6 and body["rejected"] == 5 and body["matched"] == 1
    assert [(x["line"], x["reason"]) for x in body["rejected_lines"]] == [
        (3, "amount_minor must be an integer"),
        (4, "currency must be a three-letter ISO 4217 code"),
        (5, "fee_minor must be interchange_minor + scheme_fee_minor + processor_fee_minor"),
        (6, "type must be capture, refund or dispute"),
        (7, "expected 10 fields, found 3"),
    ]
    # Rows COPY takes but the rules refuse are found in the matching pass, by line, too.
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    later = [row(r["unpaid"], 10_000, day=tomorrow)] * 3 + [
        row(r["clean"], 10_000, day=tomorrow, currency="US"),
        row(r["disputed"], 10_000, day=tomorrow, type_="refund", case="CASE-9"),
    ]
    checked = reconcile(api, day.finance, day.connector, later)
    assert checked.status_code == 201, checked.text
    assert [(x["line"], x["reason"]) for x in checked.json()["rejected_lines"]] == [
        (5, "currency must be a three-letter ISO 4217 code"),
        (6, "dispute_case_id is given for disputes, and only for them"),
    ]
    # Nothing was half-applied: the rejected rows' payments are not matched either way.
    assert {x["item"] for x in exceptions(api, day.finance, kind="missing_external")} >= {
        day.payments["short"],
        day.payments["euro"],
    }


def test_a_value_copy_refuses_in_one_part_only_is_reported_and_the_rest_applies(
    api: Api,
) -> None:
    """The file's halves are COPYed at once, each in its own transaction; here only the last
    half holds a value COPY refuses, so the first half's part had committed when the slow path
    took over: it starts again from empty tables and loses or doubles nothing."""
    day = a_day(api)
    r = day.refs
    lines = [row(r[name], 10_000) for name in ("clean", "short", "euro", "fees", "twice")]
    lines.append(f"{r['unpaid']},capture,ten,USD,25,20,2,3,2026-01-01,")
    run = reconcile(api, day.finance, day.connector, lines)
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["lines"] == 6 and body["rejected"] == 1 and body["matched"] == 5, body
    assert [(x["line"], x["reason"]) for x in body["rejected_lines"]] == [
        (7, "amount_minor must be an integer")
    ]


def test_amounts_past_bigint_arithmetic_are_rejected_rows_not_errors(api: Api) -> None:
    """Amounts and fees COPY accepts as bigint but whose fee arithmetic would overflow one: each
    row is rejected with its reason, the others apply (a 500 here once lost the whole file)."""
    day = a_day(api)
    r = day.refs
    top = 2**63 - 1
    lines = [
        row(r["clean"], 10_000),
        f"{r['short']},capture,{top},USD,{fee(10_000)},{fee(10_000) - 5},2,3,"
        f"{datetime.now(UTC).date().isoformat()},",
        f"{r['euro']},capture,10000,USD,{top},{top},{top},{top},"
        f"{datetime.now(UTC).date().isoformat()},",
        row(r["fees"], 10**12 + 1),
    ]
    run = reconcile(api, day.finance, day.connector, lines)
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["lines"] == 4 and body["rejected"] == 3 and body["matched"] == 1, body
    assert [(x["line"], x["reason"]) for x in body["rejected_lines"]] == [
        (3, "amount_minor must be positive, at most 1000000000000"),
        (4, "fees are required, not negative, at most 1000000000000"),
        (5, "amount_minor must be positive, at most 1000000000000"),
    ]


def test_refund_and_dispute_exceptions_name_their_item_merchant_and_reference(api: Api) -> None:
    """What an exception shows of a refund or a chargeback comes with the item the close pass
    read (once looked up per exception: a refund's look-up scanned every payment attempt)."""
    day = a_day(api)
    r = day.refs
    lines = [
        row(r["refund"], 900, type_="refund"),  # refunded 1,000
        row(r["disputed"], 10_000),
        row(r["disputed"], 2_500, type_="dispute", case="CASE-1"),  # disputed 3,000
    ]
    run = reconcile(api, day.finance, day.connector, lines)
    assert run.status_code == 201, run.text
    with pg(api.database_url) as conn:
        refund_id = conn.execute(
            "SELECT refund_id FROM payment_attempts WHERE id = %s", (r["refund"],)
        ).fetchone()[0]  # type: ignore[index]
        dispute_id = conn.execute(
            "SELECT id FROM disputes WHERE network_case_id = 'CASE-1'"
        ).fetchone()[0]  # type: ignore[index]
    shown = {
        x["item_type"]: (x["item"], x["merchant"], x["currency"], x["reference"],
                         x["network_case_id"], x["difference"])
        for x in exceptions(api, day.finance, run=run.json()["id"], kind="amount_mismatch")
    }  # fmt: skip
    assert shown == {
        "refund": (refund_id, day.merchant, "usd", r["refund"], None, 100),
        "dispute": (dispute_id, day.merchant, "usd", r["disputed"], "CASE-1", 500),
    }


def test_a_capture_the_processor_cannot_name_is_missing_external(api: Api) -> None:
    """On a format that names captures by network reference, a capture without one cannot be
    in the processor's file: it is reported missing_external (it was once skipped silently,
    neither matched nor reported), shown by Clearport's own reference for it."""
    day = a_day(api)
    admin = api.operator("admin")
    made = post(api, admin, "/v1/connectors", {"name": "iso-recon", "type": "iso8583",
                "settings": {"host": "127.0.0.1", "port": 1}})  # fmt: skip
    assert made.status_code == 201, made.text
    names = ("clean", "short", "euro", "unpaid")
    with pg(api.database_url) as conn:
        for number, name in enumerate(names):
            conn.execute(
                "UPDATE payments SET connector = 'iso-recon', network_reference = %s WHERE id = %s",
                (None if name == "unpaid" else f"RRN{number:09d}", day.payments[name]),
            )
        conn.execute(
            "INSERT INTO reconciliation_fee_schedules VALUES ('iso-recon', 'usd', %s, %s, now())",
            (BPS, FIXED),
        )
    iso_header = HEADER.replace("merchant_reference", "retrieval_reference_number")
    lines = [row(f"RRN{number:09d}", 10_000) for number, name in enumerate(names)
             if name != "unpaid"]  # fmt: skip
    file_id = upload(api, day.finance, "\n".join([iso_header, *lines]) + "\n")
    run = post(api, day.finance, "/v1/reconciliation_runs",
               {"connector": "iso-recon", "file": file_id})  # fmt: skip
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["matched"] == 3 and body["missing_external"] == 1, body
    [missing] = exceptions(api, day.finance, run=body["id"], kind="missing_external")
    assert missing["item"] == day.payments["unpaid"], missing
    assert missing["reference"] == day.refs["unpaid"], missing  # its attempt id


def test_a_file_in_another_layout_is_refused_whole_with_its_line(api: Api) -> None:
    day = a_day(api)
    iso_header = HEADER.replace("merchant_reference", "retrieval_reference_number")
    file_id = upload(api, day.finance, iso_header + "\n" + row(day.refs["clean"], 10_000) + "\n")
    r = post(api, day.finance, "/v1/reconciliation_runs",
             {"connector": day.connector, "file": file_id})  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "file_format_invalid"
    assert "Line 1:" in r.json()["error"]["message"] and "iso8583" in r.json()["error"]["message"]
    # The right header over rows of another layout: not one row reads, the file is refused.
    semicolons = [row(day.refs["clean"], 10_000).replace(",", ";")] * 2
    ragged = reconcile(api, day.finance, day.connector, semicolons)
    assert ragged.status_code == 400, ragged.text
    assert ragged.json()["error"]["message"] == "Line 2: expected 10 fields, found 1"
    unknown = reconcile(api, day.finance, "no-such-connector", [row(day.refs["clean"], 10_000)])
    assert unknown.status_code == 404
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM reconciliation_runs").fetchone() == (0,)


def test_currencies_compare_exactly_as_their_integer_codes(api: Api) -> None:
    """The matching compares currencies as hashtext(lower(code)): one-to-one over every
    three-letter code, so two different currencies never compare equal."""
    with pg(api.database_url) as conn:
        distinct = conn.execute(
            "SELECT count(DISTINCT hashtext(a || b || c)), count(*) FROM "
            "(SELECT chr(n) AS a FROM generate_series(97, 122) AS n) AS x, "
            "(SELECT chr(n) AS b FROM generate_series(97, 122) AS n) AS y, "
            "(SELECT chr(n) AS c FROM generate_series(97, 122) AS n) AS z"
        ).fetchone()
    assert distinct == (17_576, 17_576)
