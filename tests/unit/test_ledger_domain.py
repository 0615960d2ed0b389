"""The ledger model without I/O: direction convention, validation, zero-sum, ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearport.core.ids import is_id
from clearport.ledger.domain import (
    Account,
    AccountKind,
    AccountRef,
    LedgerError,
    LedgerStateError,
    TransferRequest,
    merchant_view,
    net_by_currency,
    new_txn_ids,
    normal_balance,
    postings_of,
    validate_batch,
)

M = "mer_01JD3ZZZZZZZZZZZZZZZZZZZZZ"
RECV = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
PEND = AccountRef(M, AccountKind.PENDING, "usd")


def test_direction_convention() -> None:
    # A capture debits the processor receivable and credits the merchant's pending account:
    # both balances go up, because one is debit-normal and the other credit-normal.
    recv = Account(1, "platform", AccountKind.PROCESSOR_RECEIVABLE, "usd", debits_posted=100)
    pend = Account(2, M, AccountKind.PENDING, "usd", credits_posted=100)
    assert (recv.balance, pend.balance) == (100, 100)
    assert normal_balance(AccountKind.PAYOUTS_IN_TRANSIT, 30, 10) == 20
    for kind in (
        AccountKind.AVAILABLE,
        AccountKind.RESERVE,
        AccountKind.FEE_REVENUE,
        AccountKind.INTERCHANGE_PAYABLE,
        AccountKind.SCHEME_FEE_PAYABLE,
        AccountKind.ROUNDING,
    ):
        assert normal_balance(kind, 30, 10) == -20
    held = Account(3, M, AccountKind.AVAILABLE, "usd", debits_pending=5)
    assert held.pending_balance == -5


def test_merchant_view_signs() -> None:
    avail = AccountKind.AVAILABLE
    assert merchant_view(
        "capture", 10, "platform", AccountKind.PROCESSOR_RECEIVABLE, M, AccountKind.PENDING, M
    ) == (10, "pending")
    assert merchant_view(
        "refund", 10, M, AccountKind.PENDING, "platform", AccountKind.PROCESSOR_RECEIVABLE, M
    ) == (-10, "pending")
    assert merchant_view("reserve_hold", 7, M, avail, M, AccountKind.RESERVE, M) == (
        -7,
        "available",
    )
    assert merchant_view("reserve_release", 7, M, AccountKind.RESERVE, M, avail, M) == (
        7,
        "available",
    )
    with pytest.raises(ValueError):
        merchant_view(
            "capture", 1, "platform", AccountKind.FEE_REVENUE, "platform", AccountKind.ROUNDING, M
        )


@pytest.mark.parametrize(
    ("transfer", "code"),
    [
        (TransferRequest("a", RECV, PEND, 0, "usd", "capture"), "amount_invalid"),
        (TransferRequest("a", RECV, PEND, -1, "usd", "capture"), "amount_invalid"),
        (TransferRequest("a", RECV, PEND, 10**13, "usd", "capture"), "amount_too_large"),
        (TransferRequest("", RECV, PEND, 1, "usd", "capture"), "id_invalid"),
        (TransferRequest("x" * 65, RECV, PEND, 1, "usd", "capture"), "id_invalid"),
        (TransferRequest("a", PEND, PEND, 1, "usd", "capture"), "same_account"),
        (TransferRequest("a", 5, 5, 1, "usd", "capture"), "same_account"),
        (TransferRequest("a", RECV, PEND, 1, "xxx", "capture"), "currency_invalid"),
        (TransferRequest("a", RECV, PEND, 1, "usd", ""), "code_invalid"),
        (
            TransferRequest(
                "a", RECV, AccountRef("platform", AccountKind.AVAILABLE, "usd"), 1, "usd", "capture"
            ),
            "owner_invalid",
        ),
        (
            TransferRequest(
                "a", AccountRef(M, AccountKind.FEE_REVENUE, "usd"), PEND, 1, "usd", "fee"
            ),
            "owner_invalid",
        ),
        (
            TransferRequest("a", RECV, PEND, 1, "usd", "capture", pending=True, pending_id="h"),
            "pending_flags_invalid",
        ),
        (TransferRequest("a", RECV, PEND, 1, "usd", "capture", void=True), "pending_flags_invalid"),
        (TransferRequest("a", -3, PEND, 1, "usd", "capture"), "account_invalid"),
    ],
)
def test_validation_codes(transfer: TransferRequest, code: str) -> None:
    with pytest.raises(LedgerError) as err:
        validate_batch([TransferRequest("ok", RECV, PEND, 1, "usd", "capture"), transfer])
    assert err.value.code == code and err.value.index == 1


def test_currency_mismatch_and_batch_limits() -> None:
    with pytest.raises(LedgerStateError) as err:
        validate_batch([TransferRequest("a", RECV, PEND, 1, "eur", "capture")])
    assert err.value.code == "currency_mismatch"
    with pytest.raises(LedgerError) as empty:
        validate_batch([])
    assert empty.value.code == "batch_size_invalid"


@settings(max_examples=50)
@given(
    st.lists(
        st.tuples(st.sampled_from(["usd", "eur", "jpy"]), st.integers(1, 10**12)),
        min_size=1,
        max_size=20,
    )
)
def test_transfers_always_net_to_zero(legs: list[tuple[str, int]]) -> None:
    transfers = [
        TransferRequest(f"t{i}", 1, 2, amount, cur, "capture")
        for i, (cur, amount) in enumerate(legs)
    ]
    assert set(net_by_currency(postings_of(transfers)).values()) == {0}


def test_bulk_txn_ids_are_well_formed_unique_and_time_prefixed() -> None:
    ids = new_txn_ids(2_000, now_ms=1_732_412_345_678)
    assert len(set(ids)) == 2_000
    assert all(is_id(i, "txn") for i in ids)
    assert len({i[:14] for i in ids}) == 1
    later = new_txn_ids(1, now_ms=1_732_412_345_679)[0]
    assert later[:14] > ids[0][:14]
