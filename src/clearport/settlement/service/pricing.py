"""Settling one partition, inside the transaction that claimed it: open a settlement per merchant
x currency, price and insert the items in SQL, net each settlement in the domain
(settlement/netting.py), post the ledger legs, record totals, reserve holds and releases,
repayments of failed payouts and payouts. The service reads, calls the domain and writes; the
arithmetic lives there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from clearport.core.clock import Clock
from clearport.core.errors import invariant
from clearport.core.ids import new_ids
from clearport.core.money import CURRENCY_EXPONENTS
from clearport.core.uow import Transaction
from clearport.events.service import Outbox
from clearport.ledger.domain import MAX_BATCH, AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from clearport.settlement.domain import (
    MerchantCurrency,
    NewPayout,
    OpenSettlement,
    PartitionReportTotals,
    Payout,
    Repayment,
    Settlement,
    SettlementNetting,
    SettlementRun,
)
from clearport.settlement.fees import InterchangeTable
from clearport.settlement.netting import net_partition
from clearport.settlement.ports import (
    BankingCalendar,
    PayoutStore,
    PricingStore,
    SettlementRepresentation,
)
from clearport.vault.cards import BRANDS


@dataclass(frozen=True, slots=True)
class SettledPartition:
    items: int
    settlements: int
    report: PartitionReportTotals | None = None  # the summary of the report lines it streamed


def _transfers(
    netted: SettlementNetting, accounts: dict[tuple[str, str, str], AccountRef]
) -> list[TransferRequest]:
    """The settlement's legs as ledger transfers; `accounts` the refs made so far, shared by
    the partition's legs (each merchant's accounts and the platform's recur: one ref each)."""
    stl = netted.settlement

    def ref(owner: str, kind: str) -> AccountRef:
        key = (owner, kind, stl.currency)
        found = accounts.get(key)
        if found is None:
            found = accounts[key] = AccountRef(owner, AccountKind(kind), stl.currency)
        return found

    return [
        TransferRequest(
            id=f"{stl.id}:{leg.key}",
            debit=ref(leg.debit_owner, leg.debit_kind),
            credit=ref(leg.credit_owner, leg.credit_kind),
            amount_minor=leg.amount_minor,
            currency=stl.currency,
            code=leg.code,
            source=stl.id,
        )
        for leg in netted.legs
    ]


def completed_settlement(
    run: SettlementRun, netted: SettlementNetting, payout_id: str | None, created_at: datetime
) -> Settlement:
    """The settlement as its row reads once the partition recorded it (`insert_settlements`
    opened it at `created_at`, `complete_settlements` wrote its totals and its payout), without
    reading it back: what `settlement.completed` shows."""
    stl, t = netted.settlement, netted.totals
    return Settlement(
        id=stl.id,
        run_id=run.id,
        business_date=run.business_date,
        merchant_id=stl.merchant_id,
        currency=stl.currency,
        count=t.count,
        gross=t.gross_minor,
        refunds=t.refunds_minor,
        fees=t.fees_minor,
        interchange=t.interchange_minor,
        scheme_fees=t.scheme_fees_minor,
        markup=t.markup_minor,
        rounding=t.rounding_minor,
        reserve_held=t.reserve_held_minor,
        reserve_released=t.reserve_released_minor,
        net=t.net_minor,
        carried_in=t.carried_in_minor,
        carried_out=t.carried_out_minor,
        payout=t.payout_minor,
        payout_id=payout_id,
        flagged_items=t.flagged_items,
        report=None,  # written when the run finalizes
        created_at=created_at,
        disputes=t.disputes_minor,
        adjustments=t.adjustments_minor,
        dispute_fees=t.dispute_fees_minor,
        repaid=t.repaid_minor,
    )


def created_payout(payout: NewPayout, created_at: datetime) -> Payout:
    """The payout as `complete_settlements` inserted it: pending, in no file, unflagged."""
    due = payout.due
    return Payout(
        id=payout.id,
        merchant_id=due.merchant_id,
        settlement_id=due.settlement_id,
        amount=due.amount_minor,
        currency=due.currency,
        status="pending",
        arrival_date=due.arrival_date,
        payout_file_id=None,
        flag=None,
        failure_code=None,
        created_at=created_at,
        updated_at=created_at,
    )


def _batches(netted: Sequence[SettlementNetting]) -> Iterator[list[TransferRequest]]:
    """The partition's transfers in ledger batches of at most MAX_BATCH, a settlement's legs
    never split between two."""
    batch: list[TransferRequest] = []
    accounts: dict[tuple[str, str, str], AccountRef] = {}
    for settlement in netted:
        transfers = _transfers(settlement, accounts)
        if len(batch) + len(transfers) > MAX_BATCH:
            yield batch
            batch = []
        batch.extend(transfers)
    if batch:
        yield batch


class PartitionPricing:
    def __init__(
        self,
        store: PricingStore,
        payouts: PayoutStore,
        ledger: LedgerService,
        tables: Callable[[date], InterchangeTable],
        calendar: BankingCalendar,
        clock: Clock,
        outbox: Outbox,
        shown: SettlementRepresentation,
    ) -> None:
        self._store = store
        self._payouts = payouts
        self._ledger = ledger
        self._tables = tables
        self._calendar = calendar
        self._clock = clock
        self._outbox = outbox
        self._shown = shown

    async def _repayments(
        self, tx: Transaction, pairs: Sequence[MerchantCurrency]
    ) -> list[Repayment]:
        """Failed payouts' money to pay again, per pair that has some. Each pair's free
        available balance is locked here, before the partition posts to the ledger."""
        found = []
        failed_of = await self._payouts.failed_payouts_to_repay(tx, pairs)
        for pair in pairs:
            failed = failed_of.get(pair)
            if not failed:
                continue
            free = await self._payouts.lock_free_available(tx, pair.merchant_id, pair.currency)
            invariant(free >= 0, f"{pair}: pending payouts exceed the available balance")
            found.append(Repayment(pair.merchant_id, pair.currency, free, tuple(failed)))
        return found

    async def settle(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        run_day: date,
        report: Callable[[bytes], Awaitable[None]],
    ) -> SettledPartition:
        """Settle the partition, streaming its report lines (CSV) to `report` from the pass
        that prices its items; its payouts exist from `run_day` (the run's own day, not the
        clock's: a resumed run nets exactly as the first try)."""
        now = self._clock.now()
        pairs = await self._store.partition_pairs(tx, run, partition)
        if not pairs:
            return SettledPartition(0, 0)
        opened = [
            OpenSettlement(stl_id, p.merchant_id, p.currency)
            for stl_id, p in zip(new_ids("stl", len(pairs)), pairs, strict=True)
        ]
        await self._store.insert_settlements(tx, run, partition, opened, now)
        rates = self._tables(run.business_date).rate_grid(BRANDS, CURRENCY_EXPONENTS)
        aggregates = await self._store.price_items(tx, run, partition, rates, report)
        staged = await self._store.staged_count(tx, run.id, partition)
        priced = sum(a.count for a in aggregates)
        invariant(priced == staged, f"partition {partition}: {priced} items for {staged} sources")
        merchants = sorted({p.merchant_id for p in pairs})
        repayments = await self._repayments(tx, pairs)
        netted = net_partition(
            run.business_date,
            opened,
            aggregates=aggregates,
            terms=await self._store.merchant_terms(tx, merchants),
            carried_in=await self._store.carried_in(tx, pairs, run.business_date),
            releases_due=await self._store.releases_due(tx, merchants, run.business_date),
            repayments=repayments,
            created_on=run_day,
            banking=self._calendar.next_banking_day,
        )
        settlement_of = {s.pair: s.id for s in opened}
        due = [s.payout for s in netted if s.payout is not None]
        payouts = [
            NewPayout(po_id, d) for po_id, d in zip(new_ids("po", len(due)), due, strict=True)
        ]
        for batch in _batches(netted):
            await self._ledger.post(tx, batch)
        await self._store.complete_settlements(
            tx,
            [s.totals for s in netted],
            [s.hold for s in netted if s.hold is not None],
            [release for s in netted for release in s.releases],
            payouts,
            now,
            [
                (payout_id, settlement_of[MerchantCurrency(r.merchant_id, r.currency)])
                for r in repayments
                for payout_id in r.payout_ids
            ],
        )
        await self._emit(tx, run, netted, payouts, now)
        totals = await self._store.priced_report_totals(tx, run.id, partition)
        return SettledPartition(priced, len(opened), totals)

    async def _emit(
        self,
        tx: Transaction,
        run: SettlementRun,
        netted: Sequence[SettlementNetting],
        payouts: Sequence[NewPayout],
        now: datetime,
    ) -> None:
        """`settlement.completed` per merchant settlement and `payout.created` per payout, in
        the partition's transaction: they exist exactly when what they describe does. Each
        shows its object as the partition just wrote it (built from what it wrote, not read
        back: the same values, in the order of their ids as a read-back by id gave them)."""
        payout_of = {p.due.settlement_id: p.id for p in payouts}
        settlements = sorted(
            (completed_settlement(run, s, payout_of.get(s.settlement.id), now) for s in netted),
            key=lambda s: s.id,
        )
        created = sorted((created_payout(p, now) for p in payouts), key=lambda p: p.id)
        await self._outbox.emit_all(
            tx,
            [
                ("settlement.completed", self._shown.settlement(s), s.merchant_id)
                for s in settlements
            ]
            + [("payout.created", self._shown.payout(p), p.merchant_id) for p in created],
        )
