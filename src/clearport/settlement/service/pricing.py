"""Settling one partition, inside the transaction that claimed it: open a settlement per merchant
x currency, price and insert the items in SQL, net each settlement in the domain
(settlement/netting.py), post the ledger legs, record totals, reserve holds and releases,
repayments of failed payouts and payouts. The service reads, calls the domain and writes; the
arithmetic lives there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from clearport.core.clock import Clock
from clearport.core.errors import invariant
from clearport.core.ids import new_id
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
    Repayment,
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


def _transfers(netted: SettlementNetting) -> list[TransferRequest]:
    stl = netted.settlement
    return [
        TransferRequest(
            id=f"{stl.id}:{leg.key}",
            debit=AccountRef(leg.debit_owner, AccountKind(leg.debit_kind), stl.currency),
            credit=AccountRef(leg.credit_owner, AccountKind(leg.credit_kind), stl.currency),
            amount_minor=leg.amount_minor,
            currency=stl.currency,
            code=leg.code,
            source=stl.id,
        )
        for leg in netted.legs
    ]


def _batches(netted: Sequence[SettlementNetting]) -> Iterator[list[TransferRequest]]:
    """The partition's transfers in ledger batches of at most MAX_BATCH, a settlement's legs
    never split between two."""
    batch: list[TransferRequest] = []
    for settlement in netted:
        transfers = _transfers(settlement)
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
        opened = [OpenSettlement(new_id("stl"), p.merchant_id, p.currency) for p in pairs]
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
        payouts = [NewPayout(new_id("po"), s.payout) for s in netted if s.payout is not None]
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
        await self._emit(tx, [s.id for s in opened], [p.id for p in payouts])
        totals = await self._store.priced_report_totals(tx, run.id, partition)
        return SettledPartition(priced, len(opened), totals)

    async def _emit(
        self, tx: Transaction, settlement_ids: Sequence[str], payout_ids: Sequence[str]
    ) -> None:
        """`settlement.completed` per merchant settlement and `payout.created` per payout, in
        the partition's transaction: they exist exactly when what they describe does."""
        settlements = await self._store.settlements_by_id(tx, settlement_ids)
        payouts = await self._store.payouts_by_id(tx, payout_ids)
        await self._outbox.emit_all(
            tx,
            [
                ("settlement.completed", self._shown.settlement(s), s.merchant_id)
                for s in settlements
            ]
            + [("payout.created", self._shown.payout(p), p.merchant_id) for p in payouts],
        )
