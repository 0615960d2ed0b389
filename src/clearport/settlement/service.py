"""Nightly settlement: the run, its partitions, payouts and their files, reports.

A run for business date D settles every capture and refund created in [cutoff - lookback,
cutoff) and not yet settled. Exactly once rests on the database, not on this process:

- the run is unique per date (a second start joins the first);
- each partition is settled in ONE transaction that locks its row and marks it done, so a crash
  (even kill -9) rolls the partition back entirely and a re-run redoes it;
- `settlement_items.source_id` is the primary key: an item can never be in two settlements;
- ledger transfer ids derive from the settlement id, so a retried post is idempotent;
- files are pure functions of committed rows, so re-running writes the same bytes.

Partitions can be run by any number of workers (`run_partition`), e.g. as procrastinate jobs.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound, invariant, present
from clearport.core.ids import new_id, parse_id
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.ledger.domain import MAX_BATCH, AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from clearport.settlement.domain import (
    AVAILABLE,
    PAYOUT_TRANSITIONS,
    PAYOUTS_IN_TRANSIT,
    PLATFORM,
    FeeTotals,
    ItemLine,
    ItemTotals,
    Leg,
    Netting,
    Payout,
    PayoutLine,
    Settlement,
    SettlementOptions,
    SettlementRun,
    check_settlement,
    payout_file_format,
    reserve_hold_minor,
    reserve_release_date,
    settlement_legs,
)
from clearport.settlement.fees import REGIONS, InterchangeTable
from clearport.settlement.ports import (
    PayoutDestination,
    PayoutDestinations,
    PayoutFileRenderer,
    ReportSinkLike,
    SettlementStore,
)
from clearport.storage.ports import ObjectStorage
from clearport.vault.cards import BRANDS

FLAG_NO_BANK_ACCOUNT = "no_bank_account"

WAIT_S = 0.5

MAX_WAIT_ROUNDS = 7_200  # one hour of waiting for other workers' partitions

Progress = Callable[[str, int, int], None]


def _ref(owner: str, kind: str, currency: str) -> AccountRef:
    return AccountRef(owner, AccountKind(kind), currency)


class SettlementService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: SettlementStore,
        ledger: LedgerService,
        storage: ObjectStorage,
        report_sink: Callable[[str], ReportSinkLike],
        renderer: PayoutFileRenderer,
        destinations: PayoutDestinations,
        auditor: Auditor,
        clock: Clock,
        tables: Callable[[date], InterchangeTable],
        options: SettlementOptions,
    ) -> None:
        self._uow = uow
        self._store = store
        self._ledger = ledger
        self._storage = storage
        self._report_sink = report_sink
        self._renderer = renderer
        self._destinations = destinations
        self._auditor = auditor
        self._clock = clock
        self._tables = tables
        self.options = options

    # --- dates -----------------------------------------------------------------------------------

    def cutoff_for(self, business_date: date) -> datetime:
        tz = ZoneInfo(self.options.timezone)
        local = datetime.combine(business_date + timedelta(days=1), self.options.cutoff, tz)
        return local.astimezone(UTC)

    def today(self) -> date:
        return self._clock.now().astimezone(ZoneInfo(self.options.timezone)).date()

    # --- the run ---------------------------------------------------------------------------------

    async def start(
        self,
        actor: Principal,
        origin: Origin,
        business_date: date,
        *,
        cutoff_at: datetime | None = None,
    ) -> tuple[SettlementRun, bool]:
        """Create the run for `business_date` (or join the one that exists)."""
        actor.require(Permission.FINANCE_WRITE)
        now = self._clock.now()
        if business_date > self.today():
            raise InvalidRequest(
                "'business_date' is in the future.", field="business_date", code="date_in_future"
            )
        cutoff = cutoff_at or self.cutoff_for(business_date)
        if cutoff > now:
            raise InvalidState(
                f"The cutoff for {business_date.isoformat()} ({cutoff.isoformat()}) has not "
                "passed yet.",
                code="cutoff_not_reached",
            )
        self._tables(business_date)  # refuse early if no pricing table is in effect
        async with self._uow.transaction() as tx:
            if await self._store.get_run_by_date(tx, business_date) is None:
                first = await self._store.first_source_at(tx)
                if first is None or cutoff <= first:
                    raise InvalidRequest(
                        f"'business_date' {business_date.isoformat()} is before the first "
                        "transaction: there is nothing it could settle.",
                        field="business_date",
                        code="date_before_first_transaction",
                    )
            run, created = await self._store.start_run(
                tx,
                run_id=new_id("sr"),
                business_date=business_date,
                cutoff_at=cutoff,
                lookback_from=cutoff - timedelta(days=self.options.lookback_days),
                partitions=self.options.partitions,
                created_by=actor.actor,
                now=now,
            )
            if created:
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="settlement_run.started",
                    resource=run.id,
                    origin=origin,
                    details={"business_date": business_date.isoformat()},
                )
        return run, created

    async def run_for_date(self, business_date: date) -> SettlementRun | None:
        async with self._uow.transaction() as tx:
            return await self._store.get_run_by_date(tx, business_date)

    async def pending_partitions(self, run_id: str) -> list[int]:
        async with self._uow.transaction() as tx:
            return await self._store.pending_partitions(tx, run_id)

    async def run_partition(self, run_id: str, partition: int) -> int:
        """Settle one partition in one transaction; returns its item count (0 if already done)."""
        async with self._uow.transaction() as tx:
            run = await self._store.get_run(tx, run_id)
            if run is None:
                raise NotFound("No such settlement run.")
            if not await self._store.claim_partition(tx, run_id, partition):
                return 0
            items, settlement_ids = await self._settle_partition(tx, run, partition)
            await self._store.mark_partition_done(
                tx, run_id, partition, items, len(settlement_ids), self._clock.now()
            )
        if settlement_ids:
            await self._write_partition_report(run, partition)
        return items

    async def _settle_partition(
        self, tx: Transaction, run: SettlementRun, partition: int
    ) -> tuple[int, list[str]]:
        now = self._clock.now()
        pairs = await self._store.partition_pairs(tx, run, partition)
        if not pairs:
            return 0, []
        ids = {pair: new_id("stl") for pair in pairs}
        await self._store.insert_settlements(
            tx, run, partition, [(ids[p], p[0], p[1]) for p in pairs], now
        )
        table = self._tables(run.business_date)
        rates = []
        for brand in BRANDS:
            for region in REGIONS:
                ic, ic_fb = table.interchange_rate(brand, None, region)
                sf, sf_fb = table.scheme_fee_rate(brand, region)
                rates.append(
                    (brand, region, ic.bps, ic.fixed_minor, ic_fb, sf.bps, sf.fixed_minor, sf_fb)
                )
        fb_ic, fb_sf = table.fallback_interchange, table.fallback_scheme_fee
        aggregates = await self._store.price_items(
            tx, run, partition, rates, (fb_ic.bps, fb_ic.fixed_minor, fb_sf.bps, fb_sf.fixed_minor)
        )
        staged = await self._store.staged_count(tx, run.id, partition)
        priced = sum(a["count"] for a in aggregates.values())
        invariant(priced == staged, f"partition {partition}: {priced} items for {staged} sources")

        merchants = sorted({p[0] for p in pairs})
        terms = await self._store.merchant_terms(tx, merchants)
        carried = await self._store.carried_in(tx, pairs, run.business_date)
        released: dict[tuple[str, str], int] = {}
        release_rows: list[tuple[str, str]] = []
        for hold_id, merchant, currency, amount in await self._store.releases_due(
            tx, merchants, run.business_date
        ):
            released[(merchant, currency)] = released.get((merchant, currency), 0) + amount
            release_rows.append((hold_id, ids[(merchant, currency)]))

        totals: list[dict[str, Any]] = []
        holds: list[tuple[str, str, str, int, date]] = []
        payouts: list[tuple[str, str, str, int, str, date, str | None]] = []
        batch: list[TransferRequest] = []
        for pair in pairs:
            merchant, currency = pair
            stl = ids[pair]
            agg = aggregates.get(stl) or {
                "count": 0, "gross": 0, "refunds": 0, "ic": 0, "sf": 0, "mk": 0,
                "ic_x": 0, "sf_x": 0, "mk_x": 0, "net": 0, "flagged": 0,
            }  # fmt: skip
            reserve_terms, delay_days = terms[merchant]
            fees = FeeTotals(
                interchange_exact=agg["ic_x"],
                scheme_fee_exact=agg["sf_x"],
                markup_exact=agg["mk_x"],
                interchange_charged=agg["ic"],
                scheme_fee_charged=agg["sf"],
                markup_charged=agg["mk"],
            )
            held = reserve_hold_minor(agg["gross"], int(reserve_terms.get("percent_bps", 0)))
            netting = Netting(
                gross_minor=agg["gross"],
                refunds_minor=agg["refunds"],
                fees_minor=fees.charged,
                reserve_held_minor=held,
                reserve_released_minor=released.get(pair, 0),
                carried_in_minor=carried.get(pair, 0),
            )
            item_totals = ItemTotals(
                count=agg["count"],
                gross_minor=agg["gross"],
                refunds_minor=agg["refunds"],
                fees_minor=fees.charged,
                net_minor=agg["net"],
            )
            legs = settlement_legs(merchant, fees, netting)
            check_settlement(merchant, item_totals, fees, netting, legs)
            transfers = [self._transfer(stl, currency, leg) for leg in legs]
            if len(batch) + len(transfers) > MAX_BATCH:
                await self._ledger.post(tx, batch)
                batch = []
            batch.extend(transfers)
            payout_id = None
            if netting.payout_minor > 0:
                payout_id = new_id("po")
                arrival = run.business_date + timedelta(days=delay_days)
                payouts.append(
                    (payout_id, merchant, stl, netting.payout_minor, currency, arrival, None)
                )
            if held > 0:
                hold_days = int(reserve_terms.get("hold_days", 0))
                holds.append(
                    (
                        stl,
                        merchant,
                        currency,
                        held,
                        reserve_release_date(run.business_date, hold_days),
                    )
                )
            totals.append(
                {
                    "id": stl,
                    "count": agg["count"],
                    "gross": agg["gross"],
                    "refunds": agg["refunds"],
                    "fees": fees.charged,
                    "interchange": fees.interchange_charged,
                    "scheme_fees": fees.scheme_fee_charged,
                    "markup": fees.markup_charged,
                    "rounding": fees.rounding_residual,
                    "reserve_held": held,
                    "reserve_released": netting.reserve_released_minor,
                    "net": netting.net_minor,
                    "carried_in": netting.carried_in_minor,
                    "carried_out": netting.carried_out_minor,
                    "payout": netting.payout_minor,
                    "flagged_items": agg["flagged"],
                }
            )
        if batch:
            await self._ledger.post(tx, batch)
        await self._store.complete_settlements(tx, totals, holds, release_rows, payouts, now)
        return priced, [ids[p] for p in pairs]

    @staticmethod
    def _transfer(settlement_id: str, currency: str, leg: Leg) -> TransferRequest:
        return TransferRequest(
            id=f"{settlement_id}:{leg.key}",
            debit=_ref(leg.debit_owner, leg.debit_kind, currency),
            credit=_ref(leg.credit_owner, leg.credit_kind, currency),
            amount_minor=leg.amount_minor,
            currency=currency,
            code=leg.code,
            source=settlement_id,
        )

    async def _write_partition_report(self, run: SettlementRun, partition: int) -> None:
        """The detail report of one partition's settlements: streamed by COPY to CSV, converted
        to Parquet, with a summary checked against the settlements (decision 0405)."""
        prefix = f"settlements/{run.business_date.isoformat()}/{run.id}/partition-{partition:04d}"
        async with self._uow.transaction() as tx:
            sink = self._report_sink(prefix)
            try:
                await self._store.partition_report_csv(tx, run.id, partition, sink.add_csv)
                summary = await self._store.partition_report_summary(tx, run.id, partition)
                invariant(
                    summary["net_minor"] == summary["settlements_net_minor"],
                    f"report of {run.id}/{partition} equals its settlements",
                )
                files = sink.finish(
                    summary
                    | {
                        "run": run.id,
                        "partition": partition,
                        "business_date": run.business_date.isoformat(),
                    }
                )
            except BaseException:
                sink.abort()
                raise
            await self._store.set_partition_report(
                tx,
                run.id,
                partition,
                {
                    "csv": files.csv_uri,
                    "parquet": files.parquet_uri,
                    "summary": files.summary_uri,
                    "sha256": files.sha256,
                },
            )

    async def finalize(self, run_id: str) -> SettlementRun:
        """After every partition: missing reports, payout files, invariants, completion."""
        async with self._uow.transaction() as tx:
            run = await self._store.get_run(tx, run_id)
            if run is None:
                raise NotFound("No such settlement run.")
            if run.status != "running":
                return run
            pending = await self._store.pending_partitions(tx, run_id)
            if pending:
                raise InvalidState(f"{len(pending)} partitions of {run_id} are not settled yet.")
            missing = await self._store.partitions_without_report(tx, run_id)
        for partition in missing:
            await self._write_partition_report(run, partition)
        # Invariants first: a violation aborts the run before any payout file is written.
        async with self._uow.transaction() as tx:
            problems = await self._store.run_invariants(tx, run)
            if problems:
                await self._store.finish_run(
                    tx, run_id, "failed", {"violations": problems}, "; ".join(problems),
                    self._clock.now(),
                )  # fmt: skip
        invariant(not problems, f"settlement run {run_id} violated: {'; '.join(problems)}")
        files = await self.write_payout_files(run.business_date, run.cutoff_at)
        async with self._uow.transaction() as tx:
            await self._store.finish_run(
                tx,
                run_id,
                "completed",
                {"payout_files": files, "violations": []},
                None,
                self._clock.now(),
            )
            finished = await self._store.get_run(tx, run_id)
        return present(finished, "a completed run can be read back")

    async def complete(self, run_id: str, progress: Progress | None = None) -> SettlementRun:
        """Work through the run's pending partitions in this process, then finalize it."""
        async with self._uow.transaction() as tx:
            run = await self._store.get_run(tx, run_id)
        if run is None:
            raise NotFound("No such settlement run.")
        if run.status != "running":
            return run
        todo = await self.pending_partitions(run.id)
        done = run.partitions - len(todo)
        if progress:
            progress("partitions", done, run.partitions)
        # Other processes may be settling some partitions of the same run: take what is free,
        # then wait for theirs (a crashed worker's lock goes with its connection, so its
        # partition becomes free again and is taken here).
        for _ in range(MAX_WAIT_ROUNDS):
            for partition in todo:
                await self.run_partition(run.id, partition)
            todo = await self.pending_partitions(run.id)
            if progress:
                progress("partitions", run.partitions - len(todo), run.partitions)
            if not todo:
                return await self.finalize(run.id)
            await asyncio.sleep(WAIT_S)
        raise InvalidState(f"{len(todo)} partitions of {run.id} are still being settled.")

    async def settle(
        self,
        actor: Principal,
        origin: Origin,
        business_date: date,
        *,
        cutoff_at: datetime | None = None,
        progress: Progress | None = None,
    ) -> SettlementRun:
        """Start (or join) the run and work through its partitions in this process."""
        run, _ = await self.start(actor, origin, business_date, cutoff_at=cutoff_at)
        return await self.complete(run.id, progress)

    # --- payouts ---------------------------------------------------------------------------------

    async def write_payout_files(self, on: date, created_at: datetime) -> list[dict[str, Any]]:
        """Put every pending payout due on or before `on` into that date's file per currency.

        One transaction: file row, payouts -> in_transit and ledger (available -> in transit).
        The file is stored before commit; a crash in between re-renders the same bytes."""
        written: list[dict[str, Any]] = []
        async with self._uow.transaction() as tx:
            due = await self._store.due_payouts(tx, on)
            by_currency: dict[str, list[tuple[Payout, PayoutDestination]]] = {}
            waiting: list[str] = []
            for payout in due:
                dest = await self._destinations.destination(tx, payout.merchant_id)
                if dest is None or dest.currency != payout.currency:
                    waiting.append(payout.id)
                    continue
                by_currency.setdefault(payout.currency, []).append((payout, dest))
            if waiting:
                await self._store.flag_payouts(tx, waiting, FLAG_NO_BANK_ACCOUNT)
            for currency in sorted(by_currency):
                if await self._store.payout_file(tx, on, currency) is not None:
                    continue  # that date's file exists; later payouts go in the next one
                entries = by_currency[currency]
                fmt = payout_file_format(currency)
                file_id = f"pf_{on.strftime('%Y%m%d')}_{currency}"
                lines = [
                    PayoutLine(
                        payout_id=p.id,
                        merchant_id=p.merchant_id,
                        amount_minor=p.amount,
                        currency=currency,
                        account_holder=d.account_holder,
                        execution_date=max(p.arrival_date, on),
                        routing_number=d.routing_number,
                        account_number=d.account_number,
                        iban=d.iban,
                        bic=d.bic,
                    )
                    for p, d in entries
                ]
                data = self._renderer.render(
                    fmt, lines, file_id=file_id, created_at=created_at, execution_date=on
                )
                ext = {"nacha": "ach", "pain001": "xml", "csv": "csv"}[fmt]
                key = f"payouts/{on.isoformat()}/{file_id}.{ext}"
                uri = self._storage.put(key, data)
                digest = hashlib.sha256(data).hexdigest()
                await self._ledger.post(
                    tx,
                    [
                        TransferRequest(
                            id=f"{p.id}:payout",
                            debit=_ref(p.merchant_id, AVAILABLE, currency),
                            credit=_ref(PLATFORM, PAYOUTS_IN_TRANSIT, currency),
                            amount_minor=p.amount,
                            currency=currency,
                            code="payout",
                            source=p.id,
                        )
                        for p, _ in entries
                    ],
                )
                await self._store.record_payout_file(
                    tx,
                    file_id=file_id,
                    business_date=on,
                    currency=currency,
                    fmt=fmt,
                    key=key,
                    uri=uri,
                    sha256=digest,
                    payout_ids=[p.id for p, _ in entries],
                    total=sum(p.amount for p, _ in entries),
                    now=self._clock.now(),
                )
                written.append(
                    {
                        "id": file_id,
                        "format": fmt,
                        "key": key,
                        "sha256": digest,
                        "count": len(lines),
                    }
                )
        return written

    async def mark_payout(
        self,
        actor: Principal,
        origin: Origin,
        payout_id: str,
        status: str,
        failure_code: str | None = None,
    ) -> Payout:
        """Operator: a payout was `paid`, or `failed` (an ACH return): money back to available."""
        actor.require(Permission.FINANCE_WRITE)
        parse_id(payout_id, "po", field="id")
        if status not in ("paid", "failed"):
            raise InvalidRequest("'status' must be 'paid' or 'failed'.", field="status")
        async with self._uow.transaction() as tx:
            payout = await self._store.get_payout(tx, payout_id, for_update=True)
            if payout is None:
                raise NotFound("No such payout.", field="id")
            if status not in PAYOUT_TRANSITIONS[payout.status]:
                raise InvalidState(f"A payout that is {payout.status} cannot become {status}.")
            if status == "failed":
                await self._ledger.post(
                    tx,
                    [
                        TransferRequest(
                            id=f"{payout.id}:return",
                            debit=_ref(PLATFORM, PAYOUTS_IN_TRANSIT, payout.currency),
                            credit=_ref(payout.merchant_id, AVAILABLE, payout.currency),
                            amount_minor=payout.amount,
                            currency=payout.currency,
                            code="payout",
                            source=payout.id,
                        )
                    ],
                )
            await self._store.set_payout_status(
                tx,
                payout.id,
                status,
                failure_code if status == "failed" else None,
                self._clock.now(),
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type=f"payout.{status}",
                resource=payout.id,
                origin=origin,
                details={"failure_code": failure_code} if failure_code else {},
            )
            updated = await self._store.get_payout(tx, payout.id)
        return present(updated, "an updated payout can be read back")

    # --- reads -----------------------------------------------------------------------------------

    @staticmethod
    def _scope(actor: Principal) -> str | None:
        if actor.merchant_id is not None:
            return actor.merchant_id
        actor.require(Permission.FINANCE_READ)
        return None

    async def get_run(self, actor: Principal, run_id: str) -> SettlementRun:
        actor.require(Permission.FINANCE_READ)
        async with self._uow.transaction() as tx:
            run = await self._store.get_run(tx, run_id)
        if run is None:
            raise NotFound("No such settlement run.", field="id")
        return run

    async def get_settlement(self, actor: Principal, settlement_id: str) -> Settlement:
        merchant = self._scope(actor)
        async with self._uow.transaction() as tx:
            s = await self._store.get_settlement(tx, settlement_id)
        if s is None or (merchant is not None and s.merchant_id != merchant):
            raise NotFound("No such settlement.", field="id")
        return s

    async def list_settlements(self, actor: Principal, page: PageRequest) -> Page[Settlement]:
        merchant = self._scope(actor)
        async with self._uow.transaction() as tx:
            return await self._store.list_settlements(tx, page, merchant, None)

    async def list_items(
        self, actor: Principal, settlement_id: str, page: PageRequest
    ) -> Page[ItemLine]:
        await self.get_settlement(actor, settlement_id)
        async with self._uow.transaction() as tx:
            return await self._store.list_items(tx, settlement_id, page)

    async def get_payout(self, actor: Principal, payout_id: str) -> Payout:
        merchant = self._scope(actor)
        async with self._uow.transaction() as tx:
            p = await self._store.get_payout(tx, payout_id)
        if p is None or (merchant is not None and p.merchant_id != merchant):
            raise NotFound("No such payout.", field="id")
        return p

    async def list_payouts(
        self, actor: Principal, page: PageRequest, status: str | None = None
    ) -> Page[Payout]:
        merchant = self._scope(actor)
        async with self._uow.transaction() as tx:
            return await self._store.list_payouts(tx, page, merchant, status)


RunPartition = Callable[[str, int], Awaitable[int]]
