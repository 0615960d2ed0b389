"""The nightly run: start (or join) a business date's run, settle its partitions, finalize it.

A run for business date D settles every capture and refund created in [cutoff - lookback,
cutoff) and not yet settled. Exactly once rests on the database, not on this process:

- the run is unique per date (a second start joins the first; one with another cutoff is
  refused, 409);
- starting the run claims every source it stages (`settlement_claims`, primary key on the
  source): no source is ever claimed by two runs. It stages in shares, several at once, each in
  one transaction; a share a crash rolled back is staged by whoever comes to the run next, and
  no partition is settled before every share is in (service/staging.py);
- each partition is settled in ONE transaction that locks its row and marks it done, so a crash
  (even kill -9) rolls the partition back entirely and a re-run redoes it; the staging is
  UNLOGGED, and a partition whose staged rows a crash emptied is staged again from the claims;
- ledger transfer ids derive from the settlement id, so a retried post is idempotent;
- files are pure functions of committed rows, so re-running writes the same bytes.

Partitions can be run by any number of workers (`run_partition`), e.g. as procrastinate jobs,
and `complete` settles up to `SettlementOptions.workers` of them at once, each on a connection
of its own (decision 0914).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound, invariant, present
from clearport.core.ids import new_id
from clearport.core.uow import UnitOfWork
from clearport.events.service import Outbox
from clearport.settlement.domain import SettlementOptions, SettlementRun
from clearport.settlement.fees import InterchangeTable
from clearport.settlement.ports import RunStore, SettlementRepresentation
from clearport.settlement.service.payouts import SettlementPayouts
from clearport.settlement.service.pricing import PartitionPricing
from clearport.settlement.service.reports import PartitionReports
from clearport.settlement.service.staging import RunStaging
from clearport.settlement.service.workers import in_parallel

WAIT_S = 0.5

MAX_WAIT_ROUNDS = 7_200  # one hour of waiting for other workers' partitions

Progress = Callable[[str, int, int], None]


class SettlementRuns:
    def __init__(
        self,
        uow: UnitOfWork,
        store: RunStore,
        pricing: PartitionPricing,
        reports: PartitionReports,
        payouts: SettlementPayouts,
        auditor: Auditor,
        clock: Clock,
        tables: Callable[[date], InterchangeTable],
        options: SettlementOptions,
        outbox: Outbox,
        shown: SettlementRepresentation,
        work: UnitOfWork | None = None,
    ) -> None:
        """`work`: the pool partitions and staging shares run on, `options.workers` of its
        connections at once (the main pool when None)."""
        self._uow = uow
        self._work = work or uow
        self._staging = RunStaging(uow, self._work, store, options.workers)
        self._outbox = outbox
        self._shown = shown
        self._store = store
        self._pricing = pricing
        self._reports = reports
        self._payouts = payouts
        self._auditor = auditor
        self._clock = clock
        self._tables = tables
        self._options = options

    # --- dates -----------------------------------------------------------------------------------

    def cutoff_for(self, business_date: date) -> datetime:
        tz = ZoneInfo(self._options.timezone)
        local = datetime.combine(business_date + timedelta(days=1), self._options.cutoff, tz)
        return local.astimezone(UTC)

    def today(self) -> date:
        return self._clock.now().astimezone(ZoneInfo(self._options.timezone)).date()

    def run_day(self, run: SettlementRun) -> date:
        """The day a run was started, in the settlement's time zone: its payouts exist from
        then, and its files take effect from then (the same day however often it resumes)."""
        return run.created_at.astimezone(ZoneInfo(self._options.timezone)).date()

    # --- the run ---------------------------------------------------------------------------------

    async def start(
        self,
        actor: Principal,
        origin: Origin,
        business_date: date,
        *,
        cutoff_at: datetime | None = None,
    ) -> tuple[SettlementRun, bool]:
        """Create the run for `business_date`, or join the one that exists if `cutoff_at` is
        None or that run's cutoff (another cutoff: InvalidState)."""
        actor.require(Permission.FINANCE_WRITE)
        now = self._clock.now()
        if business_date > self.today():
            raise InvalidRequest(
                "'business_date' is in the future.", field="business_date", code="date_in_future"
            )
        cutoff = cutoff_at or self.cutoff_for(business_date)
        self._tables(business_date)  # refuse early if no pricing table is in effect
        # The date's partition of items, in a short transaction of its own: creating it locks
        # the items table, which the long staging transaction must not hold.
        async with self._uow.transaction() as tx:
            await self._store.prepare_items_partition(tx, business_date)
        async with self._uow.transaction() as tx:
            existing = await self._store.get_run_by_date(tx, business_date)
            if existing is not None:
                _check_same_cutoff(existing, cutoff_at)
            if cutoff > now:
                raise InvalidState(
                    f"The cutoff for {business_date.isoformat()} ({cutoff.isoformat()}) has not "
                    "passed yet.",
                    code="cutoff_not_reached",
                )
            if existing is None:
                first = await self._store.first_source_at(tx)
                if first is None or cutoff <= first:
                    raise InvalidRequest(
                        f"'business_date' {business_date.isoformat()} is before the first "
                        "transaction: there is nothing it could settle.",
                        field="business_date",
                        code="date_before_first_transaction",
                    )
                # The run, its partitions and staging shares, committed before any source is
                # staged: the date's run exists once, whoever stages its shares.
                new_run = await self._store.create_run(
                    tx,
                    run_id=new_id("sr"),
                    business_date=business_date,
                    cutoff_at=cutoff,
                    lookback_from=cutoff - timedelta(days=self._options.lookback_days),
                    partitions=self._options.partitions,
                    stage_shares=self._options.workers,
                    created_by=actor.actor,
                    now=now,
                )
                if new_run is None:  # another start created the date's run first: join it
                    existing = present(
                        await self._store.get_run_by_date(tx, business_date),
                        "the date's run exists",
                    )
                    _check_same_cutoff(existing, cutoff_at)
                else:
                    await self._auditor.record(
                        tx,
                        actor=actor.actor,
                        event_type="settlement_run.started",
                        resource=new_run.id,
                        origin=origin,
                        details={"business_date": business_date.isoformat()},
                    )
        if existing is not None:
            return await self._staging.staged(existing), False
        return await self._staging.staged(present(new_run, "a run was created")), True

    async def run_for_date(self, business_date: date) -> SettlementRun | None:
        async with self._uow.transaction() as tx:
            return await self._store.get_run_by_date(tx, business_date)

    async def pending_partitions(self, run_id: str) -> list[int]:
        async with self._uow.transaction() as tx:
            return await self._store.pending_partitions(tx, run_id)

    async def run_partition(self, run_id: str, partition: int) -> int:
        """Settle one partition in one transaction; returns its item count (0 if already done).
        Its report is streamed by the statement that prices its items into local files, and
        published once the transaction has committed."""
        async with self._uow.transaction() as tx:
            run = await self._store.get_run(tx, run_id)
        if run is None:
            raise NotFound("No such settlement run.")
        run = await self._staging.staged(run)
        sink = self._reports.sink(run, partition)

        async def report(data: bytes) -> None:
            sink.add_csv(data)

        try:
            async with self._work.transaction() as tx:
                if not await self._store.claim_partition(tx, run_id, partition):
                    sink.abort()
                    return 0
                await self._store.restage_if_lost(tx, run, partition)
                settled = await self._pricing.settle(tx, run, partition, self.run_day(run), report)
                await self._store.mark_partition_done(
                    tx, run_id, partition, settled.items, settled.settlements, self._clock.now()
                )
        except BaseException:
            sink.abort()
            raise
        if settled.settlements and settled.report is not None:
            await self._reports.publish(run, partition, sink, settled.report)
        else:
            sink.abort()
        return settled.items

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
        problems: list[str] = []

        async def indexed() -> None:
            # Every item of the date is in: its indexes are built once, now (decision 0900).
            async with self._work.transaction() as tx:
                await self._store.index_items(tx, run.business_date)
                missing = await self._store.partitions_without_report(tx, run_id)
            for partition in missing:
                await self._reports.write(run, partition)

        async def checked() -> None:
            async with self._work.transaction() as tx:
                problems.extend(await self._store.run_invariants(tx, run))
                if problems:
                    await self._store.fail_run(tx, run_id, problems, self._clock.now())

        # The index build (a sort) and the invariants (a scan and a GROUP BY) read the same
        # items and need nothing of each other: on two connections at once when there are
        # workers for both (decision 0914).
        steps = (indexed, checked)
        await in_parallel(self._options.workers, range(len(steps)), lambda i: steps[i]())
        # Invariants before payouts: a violation aborts the run before any payout file.
        invariant(not problems, f"settlement run {run_id} violated: {'; '.join(problems)}")
        files = await self._payouts.write_payout_files(
            run.business_date, run.cutoff_at, self.run_day(run)
        )
        async with self._uow.transaction() as tx:
            await self._store.complete_run(tx, run_id, files, self._clock.now())
            finished = present(await self._store.get_run(tx, run_id), "a completed run is read")
            # A platform event: the run belongs to no merchant.
            await self._outbox.emit(
                tx,
                "settlement_run.completed",
                self._shown.settlement_run(finished),
                merchant_id=None,
            )
        return finished

    async def complete(self, run_id: str, progress: Progress | None = None) -> SettlementRun:
        """Work through the run's pending partitions in this process, then finalize it."""
        async with self._uow.transaction() as tx:
            run = await self._store.get_run(tx, run_id)
        if run is None:
            raise NotFound("No such settlement run.")
        if run.status != "running":
            return run
        run = await self._staging.staged(run)
        todo = await self.pending_partitions(run.id)
        done = run.partitions - len(todo)
        if progress:
            progress("partitions", done, run.partitions)

        async def settle(partition: int) -> None:
            nonlocal done
            await self.run_partition(run.id, partition)
            done += 1
            if progress:
                progress("partitions", done, run.partitions)

        # Other processes may be settling some partitions of the same run: take what is free,
        # `workers` at once, then wait for theirs (a crashed worker's lock goes with its
        # connection, so its partition becomes free again and is taken here).
        for _ in range(MAX_WAIT_ROUNDS):
            await in_parallel(self._options.workers, todo, settle)
            todo = await self.pending_partitions(run.id)
            done = run.partitions - len(todo)
            if progress:
                progress("partitions", done, run.partitions)
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


def _check_same_cutoff(run: SettlementRun, cutoff_at: datetime | None) -> None:
    """A start may join the date's run only asking for no cutoff or for the run's own: a run
    settles one window, so another cutoff is refused rather than answered with a run that
    silently ignores it."""
    if cutoff_at is not None and cutoff_at != run.cutoff_at:
        raise InvalidState(
            f"The run for {run.business_date.isoformat()} ({run.id}) exists with cutoff "
            f"{run.cutoff_at.isoformat()}; a run's cutoff cannot change.",
            field="cutoff",
        )
