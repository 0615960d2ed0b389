"""An in-memory `LedgerStore` for the fast test tier, faithful to `ledger_post` where the
services can tell: accounts opened on first use, a linked group written whole or not at all,
transfer ids as idempotency keys ("exists" for the same fields, an error for different ones),
holds resolved exactly once, currencies checked, the no-overdraft flag of merchant `available`
and `reserve`, and every currency summing to zero after every post.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from clearport.core.clock import Clock
from clearport.core.errors import invariant
from clearport.core.pagination import Page, PageRequest, filtered, paginate
from clearport.core.uow import Transaction
from clearport.ledger.domain import (
    NO_OVERDRAFT_KINDS,
    PLATFORM,
    Account,
    AccountRef,
    BalanceTransaction,
    PostResult,
    TransferAction,
    TransferRequest,
    merchant_view,
    raise_for,
)
from clearport.merchants.fake import FakeMerchantRepository


@dataclass(frozen=True, slots=True)
class FakeTransfer:
    """A transfer as recorded: accounts by id, the action resolved."""

    id: str
    txn_id: str
    action: TransferAction
    debit: int
    credit: int
    amount_minor: int
    currency: str
    code: str
    source: str | None
    pending_id: str | None
    expires_at: datetime | None
    merchant_id: str | None
    created_at: datetime

    def same_request(self, other: FakeTransfer) -> bool:
        return (
            self.action,
            self.debit,
            self.credit,
            self.amount_minor,
            self.currency,
            self.code,
            self.source,
            self.pending_id,
            self.expires_at,
        ) == (
            other.action,
            other.debit,
            other.credit,
            other.amount_minor,
            other.currency,
            other.code,
            other.source,
            other.pending_id,
            other.expires_at,
        )


@dataclass(slots=True)
class _State:
    accounts: dict[int, Account] = field(default_factory=dict)
    by_ref: dict[AccountRef, int] = field(default_factory=dict)
    transfers: dict[str, FakeTransfer] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)  # holds posted, voided or expired
    # (account id, at, totals after the journal): what `account_as_of` reads
    checkpoints: list[tuple[int, datetime, Account]] = field(default_factory=list)


class FakeLedgerStore:
    def __init__(self, clock: Clock, merchants: FakeMerchantRepository | None = None) -> None:
        self._clock = clock
        self._merchants = merchants
        self._state = _State()

    def snapshot(self) -> object:
        return copy.deepcopy(self._state)

    def restore(self, snapshot: object) -> None:
        self._state = copy.deepcopy(cast(_State, snapshot))

    @property
    def transfers(self) -> list[FakeTransfer]:
        return list(self._state.transfers.values())

    async def post(
        self,
        tx: Transaction,
        transfers: Sequence[TransferRequest],
        txn_ids: Sequence[str],
        *,
        now: datetime | None = None,
    ) -> list[PostResult]:
        return self._post(transfers, [t.action for t in transfers], txn_ids, now)

    def _post(
        self,
        transfers: Sequence[TransferRequest],
        actions: Sequence[TransferAction],
        txn_ids: Sequence[str],
        now: datetime | None,
    ) -> list[PostResult]:
        invariant(len(txn_ids) == len(transfers), "one txn id per transfer")
        state = copy.deepcopy(self._state)  # the linked group is written whole or not at all
        created_at = self._clock.now()
        clock = now or created_at
        wanted = [
            self._resolve(state, t, action, txn, created_at)
            for t, action, txn in zip(transfers, actions, txn_ids, strict=True)
        ]
        for index, t in enumerate(wanted):
            self._check_accounts(state, t, index)
        for index, t in enumerate(wanted):
            if t.pending_id is not None and t.id not in state.transfers:
                self._check_hold(state, t, index, clock)
        new = [t for t in wanted if t.id not in state.transfers]
        for t in new:
            state.transfers[t.id] = t
            self._apply(state, t)
            if t.pending_id is not None:
                state.resolved.add(t.pending_id)
        if new:
            self._check_flags(state, {a for t in new for a in (t.debit, t.credit)})
            self._checkpoint(state, {a for t in new for a in (t.debit, t.credit)})
        for index, t in enumerate(wanted):
            recorded = state.transfers[t.id]
            if recorded is not t and not recorded.same_request(t):
                raise_for("transfer_exists_with_different_fields", index)
        self._check_zero_sum(state)
        self._state = state
        if len(new) == len(wanted):
            return [PostResult(t.id, "created", t.txn_id) for t in wanted]
        return [
            PostResult(t.id, "created" if recorded is t else "exists", recorded.txn_id)
            for t, recorded in ((t, state.transfers[t.id]) for t in wanted)
        ]

    def _account_id(self, state: _State, ref: AccountRef | int) -> int:
        if isinstance(ref, int):
            return ref
        if ref not in state.by_ref:
            account_id = len(state.by_ref) + 1
            state.by_ref[ref] = account_id
            state.accounts[account_id] = Account(account_id, ref.owner, ref.kind, ref.currency)
        return state.by_ref[ref]

    def _resolve(
        self,
        state: _State,
        t: TransferRequest,
        action: TransferAction,
        txn_id: str,
        created_at: datetime,
    ) -> FakeTransfer:
        debit, credit = self._account_id(state, t.debit), self._account_id(state, t.credit)
        owners = [state.accounts[a].owner for a in (credit, debit) if a in state.accounts]
        return FakeTransfer(
            id=t.id,
            txn_id=txn_id,
            action=action,
            debit=debit,
            credit=credit,
            amount_minor=t.amount_minor,
            currency=t.currency,
            code=t.code,
            source=t.source,
            pending_id=t.pending_id,
            expires_at=t.expires_at,
            merchant_id=next((o for o in owners if o != PLATFORM), None),
            created_at=created_at,
        )

    def _check_accounts(self, state: _State, t: FakeTransfer, index: int) -> None:
        debit, credit = state.accounts.get(t.debit), state.accounts.get(t.credit)
        if debit is None or credit is None:
            raise_for("account_not_found", index)
        if t.debit == t.credit:
            raise_for("same_account", index)
        if debit.currency != t.currency or credit.currency != t.currency:
            raise_for("currency_mismatch", index)

    def _check_hold(self, state: _State, t: FakeTransfer, index: int, clock: datetime) -> None:
        hold = state.transfers.get(t.pending_id or "")
        if hold is None:
            raise_for("pending_not_found", index)
        elif hold.action is not TransferAction.PENDING:
            raise_for("not_pending", index)
        elif hold.id in state.resolved:
            raise_for("pending_already_resolved", index)
        elif (hold.debit, hold.credit, hold.currency) != (t.debit, t.credit, t.currency):
            raise_for("pending_mismatch", index)
        elif t.action is TransferAction.EXPIRE_PENDING and (
            hold.expires_at is None or hold.expires_at > clock
        ):
            raise_for("not_expired", index)
        elif (
            t.action is not TransferAction.EXPIRE_PENDING
            and hold.expires_at is not None
            and hold.expires_at <= clock
        ):
            raise_for("pending_expired", index)
        elif t.action is TransferAction.POST_PENDING and t.amount_minor > hold.amount_minor:
            raise_for("amount_exceeds_pending", index)
        elif t.action is not TransferAction.POST_PENDING and t.amount_minor != hold.amount_minor:
            raise_for("void_amount_mismatch", index)

    def _apply(self, state: _State, t: FakeTransfer) -> None:
        posted = t.amount_minor if t.action in _POSTING else 0
        if t.action is TransferAction.PENDING:
            pending = t.amount_minor
        elif t.action is TransferAction.POST:
            pending = 0
        else:
            pending = -state.transfers[t.pending_id or ""].amount_minor
        debit, credit = state.accounts[t.debit], state.accounts[t.credit]
        state.accounts[t.debit] = replace(
            debit,
            debits_posted=debit.debits_posted + posted,
            debits_pending=debit.debits_pending + pending,
        )
        state.accounts[t.credit] = replace(
            credit,
            credits_posted=credit.credits_posted + posted,
            credits_pending=credit.credits_pending + pending,
        )

    def _check_flags(self, state: _State, touched: set[int]) -> None:
        for account_id in touched:
            a = state.accounts[account_id]
            if a.kind in NO_OVERDRAFT_KINDS and (
                a.debits_posted + a.debits_pending > a.credits_posted
            ):
                raise_for("exceeds_credits", None)

    def _checkpoint(self, state: _State, touched: set[int]) -> None:
        # The journal's time strictly increases per account, as in `ledger_post`.
        latest = [at for account_id, at, _ in state.checkpoints if account_id in touched]
        at = self._clock.now()
        if latest and max(latest) >= at:
            at = max(latest) + timedelta(microseconds=1)
        state.checkpoints.extend((a, at, state.accounts[a]) for a in sorted(touched))

    def _check_zero_sum(self, state: _State) -> None:
        net: dict[str, int] = {}
        for a in state.accounts.values():
            net[a.currency] = net.get(a.currency, 0) + a.debits_posted - a.credits_posted
        invariant(all(v == 0 for v in net.values()), f"the ledger does not sum to zero: {net}")

    async def expire(
        self, tx: Transaction, now: datetime, txn_ids: Sequence[str]
    ) -> list[PostResult]:
        lapsed = sorted(
            (
                t
                for t in self._state.transfers.values()
                if t.action is TransferAction.PENDING
                and t.expires_at is not None
                and t.expires_at <= now
                and t.id not in self._state.resolved
            ),
            key=lambda t: (t.expires_at, t.id),
        )[: len(txn_ids)]
        if not lapsed:
            return []
        transfers = [
            TransferRequest(
                id=f"expire:{t.txn_id}",
                debit=t.debit,
                credit=t.credit,
                amount_minor=t.amount_minor,
                currency=t.currency,
                code=t.code,
                source=t.source,
                pending_id=t.id,
            )
            for t in lapsed
        ]
        return self._post(
            transfers,
            [TransferAction.EXPIRE_PENDING] * len(transfers),
            txn_ids[: len(transfers)],
            now,
        )

    async def accounts(self, tx: Transaction, owner: str) -> list[Account]:
        return sorted(
            (a for a in self._state.accounts.values() if a.owner == owner), key=lambda a: a.id
        )

    async def account(self, tx: Transaction, ref: AccountRef) -> Account | None:
        account_id = self._state.by_ref.get(ref)
        return None if account_id is None else self._state.accounts[account_id]

    async def account_as_of(self, tx: Transaction, ref: AccountRef, at: datetime) -> Account | None:
        account_id = self._state.by_ref.get(ref)
        if account_id is None:
            return None
        account = self._state.accounts[account_id]
        before = [
            totals for a, when, totals in self._state.checkpoints if a == account_id and when <= at
        ]
        empty = Account(account.id, account.owner, account.kind, account.currency)
        return before[-1] if before else empty

    async def balance_transactions(
        self, tx: Transaction, merchant_id: str, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[BalanceTransaction]:
        types = filters["types"]
        views = [
            self._view(t, merchant_id)
            for t in self._state.transfers.values()
            if t.merchant_id == merchant_id and t.action in _POSTING and t.code in types
        ]
        chosen = filtered(
            views, filters, equal={"type": lambda v: v.type}, created_at=lambda v: v.created_at
        )
        return paginate(chosen, page, lambda v: v.id)

    def _view(self, t: FakeTransfer, merchant_id: str) -> BalanceTransaction:
        debit, credit = self._state.accounts[t.debit], self._state.accounts[t.credit]
        amount, status = merchant_view(
            t.code,
            t.amount_minor,
            debit.owner,
            debit.kind,
            credit.owner,
            credit.kind,
            merchant_id,
        )
        delay_days = 0
        if self._merchants is not None and merchant_id in self._merchants.merchants:
            delay_days = self._merchants.merchants[merchant_id].payout_delay_days
        delay = timedelta(days=delay_days) if status == "pending" else timedelta(0)
        return BalanceTransaction(
            id=t.txn_id,
            type=t.code,
            amount_minor=amount,
            currency=t.currency,
            source=t.source,
            status=status,
            available_on=t.created_at + delay,
            created_at=t.created_at,
        )

    async def merchant_exists(self, tx: Transaction, merchant_id: str) -> bool:
        return self._merchants is not None and merchant_id in self._merchants.merchants

    def balance(self, ref: AccountRef) -> int:
        """The posted balance on the account's normal side (0 for an account never used)."""
        account_id = self._state.by_ref.get(ref)
        return 0 if account_id is None else self._state.accounts[account_id].balance


_POSTING = frozenset({TransferAction.POST, TransferAction.POST_PENDING})
