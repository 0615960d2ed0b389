"""The double-entry ledger model: accounts, transfers, two-phase holds. No I/O.

Direction convention
--------------------
A transfer moves a positive integer `amount_minor` in one currency: it DEBITS one account and
CREDITS a different one. Every account keeps four totals (`debits_posted`, `credits_posted`,
`debits_pending`, `credits_pending`). Its balance is read by its *normal side*:

- credit-normal accounts (merchant `pending` / `available` / `reserve`, platform fee revenue,
  interchange and scheme-fee payables, rounding): balance = credits - debits;
- debit-normal accounts (platform processor receivable, payouts in transit):
  balance = debits - credits.

So a capture (debit processor receivable, credit merchant pending) raises both balances: the
processor owes us and we owe the merchant. Over all accounts of a currency, Σ debits = Σ credits
always (checked in `net_by_currency`, by the database at commit, and by the tests).

Actions (`TransferRequest.action`)
----------------------------------
- `POST` (default): moves money now.
- `PENDING` (`pending=True`): a hold; counts in the `*_pending` totals until resolved.
  `expires_at` (optional) lets `LedgerService.expire` release it.
- `POST_PENDING` (`pending_id=<hold id>`): posts `amount_minor` (1 .. hold amount) of the hold;
  the rest is released. Accounts and currency must equal the hold's.
- `VOID_PENDING` (`pending_id=<hold id>, void=True`): releases the whole hold; `amount_minor`
  must equal the hold's amount.
- `EXPIRE_PENDING` is only written by `LedgerService.expire`.
A hold is resolved exactly once (post, void or expiry); a post or void after `expires_at` is
refused (`pending_expired`).

Linked groups: all transfers given to one `LedgerService.post` call form one journal and succeed
or fail together; nothing is written on any rejection. Ids are the caller's idempotency keys: the
same id with the same fields answers "exists" (and changes nothing), with different fields it is
an error (`transfer_exists_with_different_fields`).

Account flags (enforced by the database on the account's totals at the end of each journal):
merchant `available` and `reserve` have "debits must not exceed credits"
(debits_posted + debits_pending <= credits_posted). Merchant `pending` may go negative (a refund
after settlement), and platform accounts carry no flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, NoReturn

from clearport.core.errors import Field, InvalidRequest, InvalidState, NotFound
from clearport.core.ids import new_ids
from clearport.core.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR

PLATFORM = "platform"
MAX_BATCH = 10_000
MAX_ID_LEN = 64
MAX_CODE_LEN = 32

# The balance transaction types of API.md; other codes (e.g. "settle") are ledger-internal.
BALANCE_TRANSACTION_TYPES = frozenset(
    {
        "capture",
        "refund",
        "fee",
        "reserve_hold",
        "reserve_release",
        "chargeback",
        "adjustment",
        "payout",
    }
)


def new_txn_ids(count: int, *, now_ms: int | None = None) -> list[str]:
    """`count` balance transaction ids (`txn_`), made in bulk (`ids.new_ids`)."""
    return new_ids("txn", count, now_ms=now_ms)


class AccountKind(StrEnum):
    # merchant accounts
    PENDING = "pending"
    AVAILABLE = "available"
    RESERVE = "reserve"
    # platform accounts
    PROCESSOR_RECEIVABLE = "processor_receivable"
    FEE_REVENUE = "fee_revenue"
    INTERCHANGE_PAYABLE = "interchange_payable"
    SCHEME_FEE_PAYABLE = "scheme_fee_payable"
    PAYOUTS_IN_TRANSIT = "payouts_in_transit"
    ROUNDING = "rounding"
    # what the platform credits merchants by adjustment (or takes back): its own money
    ADJUSTMENTS = "adjustments"
    # what reconciliation writes off: a processor's shortfall the platform absorbs (or a surplus)
    RECONCILIATION_LOSSES = "reconciliation_losses"


MERCHANT_KINDS = frozenset({AccountKind.PENDING, AccountKind.AVAILABLE, AccountKind.RESERVE})
DEBIT_NORMAL_KINDS = frozenset({AccountKind.PROCESSOR_RECEIVABLE, AccountKind.PAYOUTS_IN_TRANSIT})
# "debits must not exceed credits" (debits_posted + debits_pending <= credits_posted)
NO_OVERDRAFT_KINDS = frozenset({AccountKind.AVAILABLE, AccountKind.RESERVE})


def is_debit_normal(kind: AccountKind) -> bool:
    return kind in DEBIT_NORMAL_KINDS


class TransferAction(StrEnum):
    POST = "post"
    PENDING = "pending"
    POST_PENDING = "post_pending"
    VOID_PENDING = "void_pending"
    EXPIRE_PENDING = "expire_pending"


class LedgerError(InvalidRequest):
    """A transfer the ledger refuses on its own terms; `index` is the position in the batch."""

    default_code = "ledger_rejected"

    def __init__(
        self, message: str, *, code: str, index: int | None = None, field: Field | str | None = None
    ):
        super().__init__(message, code=code, field=field)
        self.index = index


class LedgerStateError(InvalidState):
    """The transfer conflicts with what is recorded (resolved hold, reused id, overdraft)."""

    default_code = "ledger_conflict"

    def __init__(self, message: str, *, code: str, index: int | None = None):
        super().__init__(message, code=code)
        self.index = index


class AccountNotFound(NotFound):
    def __init__(self, message: str, *, index: int | None = None):
        super().__init__(message, code="account_not_found")
        self.index = index


# Codes the database reports, mapped to the error class callers see.
STATE_ERROR_CODES = frozenset(
    {
        "pending_not_found",
        "not_pending",
        "pending_already_resolved",
        "pending_expired",
        "pending_mismatch",
        "amount_exceeds_pending",
        "transfer_exists_with_different_fields",
        "exceeds_credits",
        "exceeds_debits",
        "currency_mismatch",
    }
)


def raise_for(code: str, index: int | None) -> NoReturn:
    """Raise the error class callers see for a code the ledger's store reports."""
    where = f" (transfer {index})" if index is not None else ""
    message = f"Ledger rejected the transfers: {code}{where}."
    if code == "account_not_found":
        raise AccountNotFound(message, index=index)
    if code in STATE_ERROR_CODES or code in {
        "not_expired",
        "void_amount_mismatch",
        "transfer_id_conflict",
    }:
        raise LedgerStateError(message, code=code, index=index)
    raise LedgerError(message, code=code, index=index)


@dataclass(frozen=True, slots=True)
class AccountRef:
    """An account named by owner ("platform" or a mer_ id), kind and currency."""

    owner: str
    kind: AccountKind
    currency: str


@dataclass(frozen=True, slots=True)
class TransferRequest:
    id: str
    debit: AccountRef | int  # an AccountRef (opened on first use) or an existing account id
    credit: AccountRef | int
    amount_minor: int
    currency: str
    code: str
    source: str | None = None
    pending: bool = False
    pending_id: str | None = None
    void: bool = False
    expires_at: datetime | None = None

    @property
    def action(self) -> TransferAction:
        if self.pending_id is not None:
            return TransferAction.VOID_PENDING if self.void else TransferAction.POST_PENDING
        return TransferAction.PENDING if self.pending else TransferAction.POST


class PostResult(NamedTuple):
    id: str
    status: str  # "created" | "exists"
    txn_id: str


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    owner: str
    kind: AccountKind
    currency: str
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def balance(self) -> int:
        """Posted balance on the account's normal side."""
        return normal_balance(self.kind, self.debits_posted, self.credits_posted)

    @property
    def pending_balance(self) -> int:
        return normal_balance(self.kind, self.debits_pending, self.credits_pending)


def normal_balance(kind: AccountKind, debits: int, credits: int) -> int:
    return debits - credits if is_debit_normal(kind) else credits - debits


def validate_account_ref(ref: AccountRef, *, index: int, side: str) -> None:
    if not isinstance(ref.kind, AccountKind):
        raise LedgerError("Unknown account kind.", code="account_kind_invalid", index=index)
    if ref.kind in MERCHANT_KINDS:
        if not ref.owner.startswith("mer_"):
            raise LedgerError(
                f"A {ref.kind} account belongs to a merchant.", code="owner_invalid", index=index
            )
    elif ref.owner != PLATFORM:
        raise LedgerError(
            f"A {ref.kind} account belongs to the platform.", code="owner_invalid", index=index
        )
    if ref.currency not in CURRENCY_EXPONENTS:
        raise LedgerError(
            f"Unsupported currency on the {side} account.", code="currency_invalid", index=index
        )


def validate_transfer(
    t: TransferRequest, index: int, valid_refs: set[AccountRef] | None = None
) -> None:
    """Checks that need no stored state. Raises LedgerError naming the transfer's index.

    `valid_refs` caches account references already checked (a batch names few accounts)."""
    if not isinstance(t.id, str) or not 1 <= len(t.id) <= MAX_ID_LEN:
        raise LedgerError(
            f"Transfer ids are 1-{MAX_ID_LEN} characters.", code="id_invalid", index=index
        )
    if type(t.amount_minor) is not int or t.amount_minor <= 0:
        raise LedgerError("Amounts are positive integers.", code="amount_invalid", index=index)
    if t.amount_minor > MAX_AMOUNT_MINOR:
        raise LedgerError("Amount is too large.", code="amount_too_large", index=index)
    if t.currency not in CURRENCY_EXPONENTS:
        raise LedgerError("Unsupported currency.", code="currency_invalid", index=index)
    if not isinstance(t.code, str) or not 1 <= len(t.code) <= MAX_CODE_LEN:
        raise LedgerError("A transfer needs a code.", code="code_invalid", index=index)
    if t.debit == t.credit:
        raise LedgerError(
            "Debit and credit accounts must differ.", code="same_account", index=index
        )
    for side, ref in (("debit", t.debit), ("credit", t.credit)):
        if isinstance(ref, AccountRef):
            if valid_refs is None or ref not in valid_refs:
                validate_account_ref(ref, index=index, side=side)
                if valid_refs is not None:
                    valid_refs.add(ref)
            if ref.currency != t.currency:
                raise LedgerStateError(
                    f"The {side} account's currency differs from the transfer's.",
                    code="currency_mismatch",
                    index=index,
                )
        elif type(ref) is not int or ref <= 0:
            raise LedgerError(
                "Account ids are positive integers.", code="account_invalid", index=index
            )
    if t.pending and t.pending_id is not None:
        raise LedgerError(
            "A transfer is either a hold or resolves one.",
            code="pending_flags_invalid",
            index=index,
        )
    if t.void and t.pending_id is None:
        raise LedgerError(
            "A void names the hold (pending_id).", code="pending_flags_invalid", index=index
        )
    if t.expires_at is not None and not t.pending:
        raise LedgerError("Only holds expire.", code="pending_flags_invalid", index=index)
    if t.pending_id is not None and not 1 <= len(t.pending_id) <= MAX_ID_LEN:
        raise LedgerError("pending_id is invalid.", code="id_invalid", index=index)


def validate_batch(transfers: Sequence[TransferRequest]) -> None:
    if not 1 <= len(transfers) <= MAX_BATCH:
        raise LedgerError(f"Post 1-{MAX_BATCH} transfers at a time.", code="batch_size_invalid")
    seen: set[str] = set()
    resolving: set[str] = set()
    valid_refs: set[AccountRef] = set()
    for i, t in enumerate(transfers):
        validate_transfer(t, i, valid_refs)
        if t.id in seen:
            raise LedgerError(
                "A transfer id appears twice in one batch.", code="duplicate_id_in_batch", index=i
            )
        seen.add(t.id)
        if t.pending_id is not None:
            if t.pending_id in resolving:
                raise LedgerStateError(
                    "A hold is resolved twice in one batch.",
                    code="pending_already_resolved",
                    index=i,
                )
            resolving.add(t.pending_id)


@dataclass(frozen=True, slots=True)
class Posting:
    """One side of a transfer, for the zero-sum check."""

    currency: str
    debit_minor: int
    credit_minor: int


def net_by_currency(postings: Iterable[Posting]) -> dict[str, int]:
    """Σ debits - Σ credits per currency; a balanced journal gives all zeros."""
    out: dict[str, int] = {}
    for p in postings:
        out[p.currency] = out.get(p.currency, 0) + p.debit_minor - p.credit_minor
    return out


def postings_of(transfers: Iterable[TransferRequest]) -> list[Posting]:
    out: list[Posting] = []
    for t in transfers:
        out.append(Posting(t.currency, t.amount_minor, 0))
        out.append(Posting(t.currency, 0, t.amount_minor))
    return out


@dataclass(frozen=True, slots=True)
class BalanceTransaction:
    """A transfer as one merchant sees it (API.md "balance transaction")."""

    id: str  # txn_...
    type: str
    amount_minor: int  # signed: + into the merchant's balances, - out of them
    currency: str
    source: str | None
    status: str  # "pending" | "available"
    available_on: datetime
    created_at: datetime

    def settled(self, at: datetime) -> BalanceTransaction:
        """This transaction once the settlement of its source has made it available (at `at`)."""
        return replace(self, status="available", available_on=at)


def merchant_balances(
    accounts: Mapping[AccountKind, Mapping[str, int]], carried: Mapping[str, int]
) -> dict[AccountKind, dict[str, int]]:
    """A merchant's balance as the API shows it: its accounts, with the deficit that settlements
    carry (`carried`, per currency, never positive) shown where it belongs.

    A settlement whose total is negative pays nothing and keeps the deficit in the `pending`
    account (`available` may not go negative: decision 0201), although the money it stands for
    is settled: the merchant owes it. Shown as it is, `pending` would hold settled money and the
    balance transactions (available once settled) would not add up to it. So the deficit is
    shown in `available`, negative, and `pending` without it (decision 0701)."""
    out = {kind: dict(by_currency) for kind, by_currency in accounts.items()}
    for currency, deficit in carried.items():
        if deficit == 0:
            continue
        pending = out.setdefault(AccountKind.PENDING, {})
        available = out.setdefault(AccountKind.AVAILABLE, {})
        pending[currency] = pending.get(currency, 0) - deficit
        available[currency] = available.get(currency, 0) + deficit
    return out


def merchant_view(
    code: str,
    amount_minor: int,
    debit_owner: str,
    debit_kind: AccountKind,
    credit_owner: str,
    credit_kind: AccountKind,
    merchant_id: str,
) -> tuple[int, str]:
    """(signed amount, status) of a transfer for `merchant_id`.

    Money credited to one of the merchant's accounts from outside counts +, debited to the
    outside counts -; a move between the merchant's own accounts is - when it goes into the
    reserve (a hold) and + otherwise (a release). Status is "pending" when the merchant's side
    is the `pending` account.
    """
    debit_mine = debit_owner == merchant_id
    credit_mine = credit_owner == merchant_id
    if credit_mine and not debit_mine:
        sign, kind = 1, credit_kind
    elif debit_mine and not credit_mine:
        sign, kind = -1, debit_kind
    elif debit_mine and credit_mine:
        sign = -1 if credit_kind == AccountKind.RESERVE else 1
        kind = credit_kind if sign == 1 else debit_kind
    else:
        raise ValueError("transfer does not touch this merchant")
    status = "pending" if kind == AccountKind.PENDING else "available"
    return sign * amount_minor, status
