"""One seed's run: the schedule's steps driven through the real API and services, the faults
injected where the step says, the ledger checked after every step, then the world healed (the
faults stop, clients retry, the janitor and the worker catch up, everything is settled) and
every invariant checked against the simulator's own model and the processor's records.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.connectors.faults import Fault as ConnectorFault
from clearport.core.errors import InvalidRequest, InvalidState, NotFound
from clearport.simulation.database import SimulationStore
from clearport.simulation.model import KnownPayment, Model, Request
from clearport.simulation.schedule import (
    CONNECTOR_FAULTS,
    DATABASE_FAULTS,
    Fault,
    Op,
    Step,
)
from clearport.simulation.world import World

APPROVED_CARDS = ("4242424242424242", "5555555555554444")
DECLINED_CARDS = ("4000000000000002", "4000000000009995")
SETTLE_UNTIL_S = 4 * 86_400  # settlement's lookback is 7 days: the clock stays well inside it
# The statuses an answer may have when nothing was injected: a 5xx there is a bug.
TECHNICAL = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class Violation:
    seed: int
    step: int | None  # None: found after the run healed
    invariant: str
    detail: str

    def line(self) -> str:
        where = "at the end" if self.step is None else f"at step {self.step}"
        return f"seed {self.seed} {where}: {self.invariant}: {self.detail}"


@dataclass
class RunReport:
    seed: int
    steps: int
    violations: list[Violation] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)


def _connector_operation(op: Op) -> tuple[str, ...]:
    match op:
        case Op.AUTHORIZE | Op.SALE:
            return ("authorize",)
        case Op.JANITOR:
            return ("status", "reverse", "void")
        case _:
            return (str(op),)


class Simulation:
    def __init__(self, world: World, store: SimulationStore, seed: int) -> None:
        self.world = world
        self.store = store
        self.seed = seed
        self.model = Model()
        self.report = RunReport(seed, 0)
        self._step: Step | None = None

    def violation(self, invariant: str, detail: str, *, at_end: bool = False) -> None:
        step = None if at_end or self._step is None else self._step.index
        self.report.violations.append(Violation(self.seed, step, invariant, detail))

    # --- the steps ---------------------------------------------------------------------------

    async def run_step(self, step: Step) -> None:
        self._step = step
        self.report.steps = step.index + 1
        action = self._action(step)
        if action is None:
            return
        self.report.operations[str(step.op)] += 1
        fault = step.fault
        if fault in CONNECTOR_FAULTS:
            injected = ConnectorFault(str(fault).removeprefix("connector."))
            for client in self.world.current.faulty.values():
                for operation in _connector_operation(step.op):
                    client.will(operation, injected)
        if fault in DATABASE_FAULTS and step.table is not None:
            await self.store.arm(fault, step.table, step.arg)
        before = sum(len(c.injected) for c in self.world.clients)
        try:
            if fault is Fault.CRASH:
                task = asyncio.create_task(action())
                done, _ = await asyncio.wait({task}, timeout=step.arg / 1000)
                if not done:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    await self.world.crash()
                    self.report.faults[str(Fault.CRASH)] += 1
                else:
                    await task
            else:
                await action()
        except (InvalidRequest, InvalidState, NotFound):
            pass  # a refusal, as the API would answer it (nothing to settle, say)
        except Exception as exc:
            if fault not in DATABASE_FAULTS:
                self.violation("no unexpected error", f"{step.describe()}: {exc!r}")
        finally:
            if fault in DATABASE_FAULTS and await self.store.disarm():
                self.report.faults[str(fault)] += 1
            if fault in CONNECTOR_FAULTS:
                met = sum(len(c.injected) for c in self.world.clients) - before
                self.report.faults[str(fault)] += met
            for client in self.world.current.faulty.values():
                client.clear()

    def _action(self, step: Step) -> Any:
        m = self.world.merchants[step.merchant]
        match step.op:
            case Op.TOKENIZE:
                card = self._card(step)
                return lambda: self._tokenize(step, card)
            case Op.AUTHORIZE | Op.SALE:
                return lambda: self._pay(step, capture=step.op is Op.SALE)
            case Op.CAPTURE | Op.VOID | Op.REFUND | Op.DISPUTE:
                if not self.model.payments:
                    return None
                p = self.model.payments[step.target % len(self.model.payments)]
                return lambda: self._follow_up(step, p)
            case Op.ADJUSTMENT:
                amount = step.per_mille * 7 * (1 if step.target % 3 else -1)
                body = {
                    "merchant": m.id,
                    "amount": amount,
                    "currency": m.currency,
                    "reason": "simulated correction",
                }
                return lambda: self._send(
                    step, "adjustment", "/v1/adjustments", body, self.world.admin
                )
            case Op.SETTLE:
                if self.world.clock.offset >= timedelta(seconds=SETTLE_UNTIL_S):
                    return None
                return self._settle
            case Op.MARK_PAYOUT:
                return lambda: self._mark_payout(step)
            case Op.ROTATE_KEY:
                return lambda: self._rotate(step)
            case Op.JANITOR:
                return self._janitor
            case Op.ADVANCE_CLOCK:
                return lambda: self._advance(step.per_mille * 36 // 10)

    def _card(self, step: Step) -> str:
        cards = DECLINED_CARDS if step.declines else APPROVED_CARDS
        number = cards[step.target % len(cards)]
        self.model.card_numbers.add(number)
        return number

    async def _advance(self, seconds: int) -> None:
        self.world.clock.advance(seconds)

    async def _send(
        self, step: Step, kind: str, path: str, body: dict[str, Any], secret: str
    ) -> dict[str, Any] | None:
        """POST under the step's Idempotency-Key (concurrent copies for CLIENT_RETRIES); the
        first success's body."""
        key = f"sim-{self.seed}-{step.index}"
        request = Request(key, kind, "POST", path, body, secret)
        self.model.requests[key] = request
        copies = step.arg + 1 if step.fault is Fault.CLIENT_RETRIES else 1
        if copies > 1:
            self.report.faults[str(Fault.CLIENT_RETRIES)] += copies - 1

        async def once(delay_ms: int) -> None:
            await asyncio.sleep(delay_ms / 1000)
            answer = await self.world.call("POST", path, secret, body, key)
            request.answers.append((answer.status_code, answer.content))

        await asyncio.gather(*(once(i * 3 * step.arg) for i in range(copies)))
        self._judge(step, request)
        success = request.succeeded
        return None if success is None else dict(json.loads(success[1]))

    def _judge(self, step: Step, request: Request) -> None:
        successes = {body for status, body in request.answers if 200 <= status < 300}
        if len(successes) > 1:
            self.violation("an idempotent retry replays the first answer", request.key)
        injected = step.fault in DATABASE_FAULTS or step.fault is Fault.CRASH
        for status, body in request.answers:
            if status >= 500 and status not in TECHNICAL and not injected:
                self.violation("no 500", f"{step.describe()}: {status} {body[:300]!r}")

    async def _tokenize(self, step: Step, number: str) -> None:
        m = self.world.merchants[step.merchant]
        body = {"card": {"number": number, "exp_month": 12, "exp_year": 2035}}
        token = await self._send(step, "token", "/v1/tokens", body, m.secret)
        if token is not None:
            self.model.tokens.setdefault(step.merchant, []).append(str(token["id"]))

    async def _pay(self, step: Step, *, capture: bool) -> None:
        m = self.world.merchants[step.merchant]
        amount = 100 + step.per_mille * 37
        tokens = self.model.tokens.get(step.merchant, [])
        source: dict[str, Any]
        if tokens and step.target % 2:
            source = {"token": tokens[step.target % len(tokens)]}
        else:
            source = {
                "card": {
                    "number": self._card(step),
                    "exp_month": 12,
                    "exp_year": 2035,
                    "cvc": "123",
                }
            }
        key = f"sim-{self.seed}-{step.index}"
        body = {
            "amount": amount,
            "currency": m.currency,
            "source": source,
            "capture": capture,
            "metadata": {"sim_key": key},
        }
        shown = await self._send(step, "payment", "/v1/payments", body, m.secret)
        if shown is not None:
            self.model.payments.append(
                KnownPayment(
                    str(shown["id"]),
                    step.merchant,
                    amount,
                    m.currency,
                    str(shown.get("connector")),
                    str(shown["status"]),
                    captured=int(shown.get("amount_captured") or 0),
                )
            )

    async def _follow_up(self, step: Step, p: KnownPayment) -> None:
        secret = self.world.merchants[p.merchant].secret
        base = f"/v1/payments/{p.id}"
        match step.op:
            case Op.CAPTURE:
                body: dict[str, Any] = (
                    {}
                    if step.per_mille > 700
                    else {"amount": max(1, p.amount * step.per_mille // 1000)}
                )
                shown = await self._send(step, "capture", f"{base}/capture", body, secret)
                if shown is not None:
                    p.status, p.captured = str(shown["status"]), int(shown["amount_captured"])
            case Op.VOID:
                shown = await self._send(step, "void", f"{base}/void", {}, secret)
                if shown is not None:
                    p.status, p.voided = str(shown["status"]), True
            case Op.REFUND:
                body = (
                    {}
                    if step.per_mille > 800
                    else {"amount": max(1, max(p.captured, 1) * step.per_mille // 1000)}
                )
                shown = await self._send(step, "refund", f"{base}/refunds", body, secret)
                if shown is not None and shown.get("status") == "succeeded":
                    p.refunded += int(shown["amount"])
            case Op.DISPUTE:
                body = {
                    "payment": p.id,
                    "amount": max(1, p.amount * step.per_mille // 2000),
                    "reason": "fraudulent",
                }
                shown = await self._send(step, "dispute", "/v1/disputes", body, self.world.admin)
                if shown is not None:
                    self.model.disputes[str(shown["id"])] = int(shown["amount"])
            case _:
                raise AssertionError(step.op)

    async def _settle(self) -> None:
        clock = self.world.clock
        clock.advance(86_400)
        await self.settle_now()

    async def settle_now(self) -> None:
        c = self.world.container
        day = c.settlement.today() - timedelta(days=1)
        cutoff = clock_seconds(self.world.clock.now())
        self.model.settled_dates.append(day.isoformat())
        await c.settlement.settle(SYSTEM_CLI, Origin(), day, cutoff_at=cutoff)

    async def _mark_payout(self, step: Step) -> None:
        payouts = await self.store.payouts("in_transit")
        if not payouts:
            return
        payout = payouts[step.target % len(payouts)]
        body: dict[str, Any] = (
            {"status": "paid"}
            if step.per_mille > 250
            else {"status": "failed", "failure_code": "R01"}
        )
        await self._send(step, "mark", f"/v1/payouts/{payout}/mark", body, self.world.admin)

    async def _rotate(self, step: Step) -> None:
        vault = self.world.container.vault
        if step.per_mille % 2:
            await vault.rotate_dek(SYSTEM_CLI, Origin(), self.world.merchants[step.merchant].id)
        else:
            await vault.rotate_kek(SYSTEM_CLI, Origin())

    async def _janitor(self) -> None:
        """The worker's pass: attempts past the grace period, expiries, interrupted runs."""
        self.world.clock.advance(self.world.settings.janitor_grace_s + 1)
        await self.worker_pass()

    async def worker_pass(self) -> None:
        c = self.world.container
        await c.payments.resolve_pending(500)
        await c.payments.expire_authorizations(500)
        for run_id in await self.store.running_settlement_runs():
            await c.settlement.complete(run_id)


def clock_seconds(ts: datetime) -> datetime:
    """A settlement cutoff: whole seconds, as the API takes it."""
    return ts.replace(microsecond=0)
