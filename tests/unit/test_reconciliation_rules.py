"""Reconciliation's pure rules: layouts and their headers, what makes a row loadable, which
resolutions an exception allows and the ledger transfer a write-off posts."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from clearport.core.errors import InvalidRequest, InvalidState
from clearport.ledger.domain import AccountKind
from clearport.reconciliation.domain import (
    ExceptionKind,
    ExceptionStatus,
    ReconciliationException,
    Resolution,
    check_note,
    check_resolvable,
    write_off_transfer,
)
from clearport.reconciliation.formats import (
    FORMATS,
    FileRefused,
    RejectedLine,
    check_header,
    format_for,
    line_problem,
    split_loadable,
)

GOOD = ["att_1", "capture", "2500", "USD", "10", "5", "2", "3", "2026-12-06", ""]


def test_each_connector_type_has_its_header_and_another_type_is_named() -> None:
    assert format_for("simulator").header == format_for("http_acquirer").header
    check_header(FORMATS["iso8583"], FORMATS["iso8583"].header + "\r\n")
    with pytest.raises(FileRefused) as refused:
        check_header(FORMATS["simulator"], FORMATS["iso8583"].header)
    assert refused.value.line_number == 1 and "iso8583" in refused.value.reason
    with pytest.raises(FileRefused, match="Line 1: the header must be"):
        check_header(FORMATS["iso8583"], "reference;type")
    with pytest.raises(InvalidRequest):
        format_for("echo-plugin")


@pytest.mark.parametrize(
    ("index", "value", "problem"),
    [
        (2, "12.50", "amount_minor must be an integer"),
        (4, "", "fee_minor must be an integer"),
        (2, "9" * 20, "amount_minor is out of range"),
        (8, "2026-02-30", "settlement_date is not a calendar date"),
        (8, "6/12/2026", "settlement_date must be YYYY-MM-DD"),
    ],
)
def test_a_value_copy_would_refuse_is_named(index: int, value: str, problem: str) -> None:
    assert line_problem(GOOD) is None
    fields = list(GOOD)
    fields[index] = value
    assert line_problem(fields) == problem


def test_rows_are_numbered_from_line_two_and_bad_ones_say_why() -> None:
    rows = [",".join(GOOD), "", "x,capture,1", '"open,quote']
    out = list(split_loadable(r + "\n" for r in rows))
    assert [n for n, _ in out] == [2, 3, 4, 5]
    assert out[0][1] == GOOD
    assert out[1][1] == RejectedLine(3, "empty line")
    assert out[2][1] == RejectedLine(4, "expected 10 fields, found 3")
    assert isinstance(out[3][1], RejectedLine) and "not a CSV row" in out[3][1].reason


def _exception(**changes: object) -> ReconciliationException:
    base = ReconciliationException(
        id="rcx_01M97F0000000000000000000A",
        run_id="rc_01M97F0000000000000000000A",
        connector="simulator",
        kind=ExceptionKind.AMOUNT_MISMATCH,
        status=ExceptionStatus.OPEN,
        resolution=None,
        reference="att_1",
        network_case_id=None,
        line_number=2,
        line_count=1,
        item_type="capture",
        item_id="pay_1",
        merchant_id="mer_1",
        currency="usd",
        internal_amount=10_000,
        external_amount=9_900,
        external_currency="usd",
        external_fee=25,
        expected_fee=25,
        difference=-100,
        settlement_date=date(2026, 12, 6),
        note=None,
        adjustment_id=None,
        balance_transaction=None,
        resolved_by=None,
        created_at=datetime(2026, 12, 7, tzinfo=UTC),
        resolved_at=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_shortfall_written_off_is_a_loss_and_a_surplus_a_gain() -> None:
    short = write_off_transfer(_exception(difference=-100))
    assert short.debit.kind is AccountKind.RECONCILIATION_LOSSES  # type: ignore[union-attr]
    assert short.credit.kind is AccountKind.PROCESSOR_RECEIVABLE  # type: ignore[union-attr]
    assert short.amount_minor == 100 and short.currency == "usd"
    surplus = write_off_transfer(_exception(difference=40))
    assert surplus.debit.kind is AccountKind.PROCESSOR_RECEIVABLE  # type: ignore[union-attr]
    assert surplus.credit.kind is AccountKind.RECONCILIATION_LOSSES  # type: ignore[union-attr]
    assert surplus.amount_minor == 40


@pytest.mark.parametrize(
    ("changes", "action", "allowed"),
    [
        ({}, Resolution.ADJUST, True),
        ({}, Resolution.WRITE_OFF, True),
        ({"merchant_id": None}, Resolution.ADJUST, False),
        ({"merchant_id": None}, Resolution.WRITE_OFF, True),
        ({"difference": None}, Resolution.WRITE_OFF, False),
        ({"difference": None}, Resolution.ACCEPT, True),
        ({"difference": 0}, Resolution.ADJUST, False),
        ({"status": ExceptionStatus.RESOLVED, "resolution": Resolution.ACCEPT},
         Resolution.ACCEPT, False),
    ],
)  # fmt: skip
def test_which_resolutions_an_exception_allows(
    changes: dict[str, object], action: Resolution, allowed: bool
) -> None:
    found = _exception(**changes)
    if allowed:
        check_resolvable(found, action)
    else:
        with pytest.raises(InvalidState):
            check_resolvable(found, action)


def test_a_note_is_required_and_bounded() -> None:
    assert check_note("ok") == "ok"
    for bad in ("  ", "x" * 501, "card 4242 4242 4242 4242"):
        with pytest.raises(InvalidRequest):
            check_note(bad)
    assert list(itertools.islice(iter(FORMATS), 3)) == ["simulator", "http_acquirer", "iso8583"]
