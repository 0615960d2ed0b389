"""The schedule of one simulated run: every operation and every fault, fixed by the seed.

Pure: `schedule(seed, steps)` draws step after step from one `random.Random(seed)`, each step
consuming the generator the same way whatever comes after it, so the first K steps of a longer
schedule are the schedule of K steps. That is what makes a failure's prefix a reproduction
(`clearport simulate money --seed N --steps K`) and shrinking a matter of trying shorter K.

Steps name their targets by position (`target`: the n-th payment the run knows, modulo how many
it knows when the step runs), never by id: ids are made by Clearport at run time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Op(StrEnum):
    TOKENIZE = "tokenize"
    AUTHORIZE = "authorize"
    SALE = "sale"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    DISPUTE = "dispute"
    ADJUSTMENT = "adjustment"
    SETTLE = "settle"  # the clock moves a day on and yesterday is settled
    MARK_PAYOUT = "mark_payout"
    ROTATE_KEY = "rotate_key"
    JANITOR = "janitor"  # the worker's janitor pass (pending attempts, expiries)
    ADVANCE_CLOCK = "advance_clock"


class Fault(StrEnum):
    # At the connector (connectors.faults.Fault), on the step's first connector call.
    TIME_OUT = "connector.time_out"
    LOSE_ANSWER = "connector.lose_answer"
    LATE = "connector.late"
    RESET_BEFORE = "connector.reset_before"
    RESET_AFTER = "connector.reset_after"
    REFUSE = "connector.refuse"
    DUPLICATE = "connector.duplicate"
    # The process dies at an await point `arg` milliseconds into the step.
    CRASH = "process.crash"
    # The `arg`-th row written to `table` meets it, inside its transaction.
    TERMINATE_BACKEND = "database.terminate_backend"
    SERIALIZATION_FAILURE = "database.serialization_failure"
    DEADLOCK = "database.deadlock"
    STATEMENT_TIMEOUT = "database.statement_timeout"
    # The client sends the request `arg` + 1 times with one Idempotency-Key, concurrently.
    CLIENT_RETRIES = "client.retries"


CONNECTOR_FAULTS = (
    Fault.TIME_OUT,
    Fault.LOSE_ANSWER,
    Fault.LATE,
    Fault.RESET_BEFORE,
    Fault.RESET_AFTER,
    Fault.REFUSE,
    Fault.DUPLICATE,
)
DATABASE_FAULTS = (
    Fault.TERMINATE_BACKEND,
    Fault.SERIALIZATION_FAILURE,
    Fault.DEADLOCK,
    Fault.STATEMENT_TIMEOUT,
)
# The tables a database fault may strike: where the money path writes.
FAULT_TABLES = (
    "payments",
    "payment_attempts",
    "refunds",
    "ledger_transfers",
    "txlog",
    "events",
    "idempotency_keys",
    "disputes",
    "adjustments",
    "settlements",
    "settlement_items",
    "payouts",
    "vault_deks",
    "card_tokens",
)

# How often each operation is drawn (out of their sum).
WEIGHTS: dict[Op, int] = {
    Op.TOKENIZE: 3,
    Op.AUTHORIZE: 16,
    Op.SALE: 12,
    Op.CAPTURE: 12,
    Op.VOID: 5,
    Op.REFUND: 10,
    Op.DISPUTE: 5,
    Op.ADJUSTMENT: 4,
    Op.SETTLE: 4,
    Op.MARK_PAYOUT: 3,
    Op.ROTATE_KEY: 2,
    Op.JANITOR: 5,
    Op.ADVANCE_CLOCK: 3,
}
CALLS_OUT = frozenset({Op.AUTHORIZE, Op.SALE, Op.CAPTURE, Op.VOID, Op.REFUND, Op.JANITOR})
IDEMPOTENT = frozenset(
    {Op.AUTHORIZE, Op.SALE, Op.CAPTURE, Op.VOID, Op.REFUND, Op.DISPUTE, Op.ADJUSTMENT}
)
FAULT_RATE_PERCENT = 40
MERCHANTS = 3


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    op: Op
    merchant: int  # which of the run's merchants (0 .. MERCHANTS - 1)
    target: int  # which known object, modulo how many there are when the step runs
    per_mille: int  # a part of an amount (1 .. 1000), or an amount's size class
    declines: bool  # a decline storm: the card is one the issuer declines
    fault: Fault | None = None
    arg: int = 0  # the fault's argument (see Fault)
    table: str | None = None  # a database fault's table

    def describe(self) -> str:
        fault = "" if self.fault is None else f" fault={self.fault}({self.arg}{self._table()})"
        return (
            f"#{self.index} {self.op} merchant={self.merchant} target={self.target} "
            f"per_mille={self.per_mille}{' declines' if self.declines else ''}{fault}"
        )

    def _table(self) -> str:
        return "" if self.table is None else f", {self.table}"


def _fault(rng: random.Random, op: Op, *, faults: bool) -> tuple[Fault | None, int, str | None]:
    roll = rng.randrange(100)
    kind = rng.randrange(100)
    arg = rng.randrange(1, 40)
    table = FAULT_TABLES[rng.randrange(len(FAULT_TABLES))]
    if roll >= FAULT_RATE_PERCENT or not faults:
        return None, 0, None
    if op in CALLS_OUT and kind < 45:
        return CONNECTOR_FAULTS[kind % len(CONNECTOR_FAULTS)], 0, None
    if kind < 65:
        return Fault.CRASH, arg, None
    if kind < 85 or op not in IDEMPOTENT:
        return DATABASE_FAULTS[kind % len(DATABASE_FAULTS)], 1 + arg % 3, table
    return Fault.CLIENT_RETRIES, 1 + arg % 3, None


def schedule(seed: int, steps: int, *, faults: bool = True) -> list[Step]:
    """The first `steps` steps of seed `seed`'s run (without its faults: the same workload,
    a benchmark's baseline)."""
    rng = random.Random(seed)
    ops = list(WEIGHTS)
    weights = [WEIGHTS[op] for op in ops]
    storm = 0
    found: list[Step] = []
    for index in range(steps):
        op = rng.choices(ops, weights)[0]
        merchant = rng.randrange(MERCHANTS)
        target = rng.randrange(1 << 16)
        per_mille = rng.randrange(1, 1001)
        if storm == 0 and rng.randrange(100) < 4:
            storm = rng.randrange(3, 9)  # a decline storm begins
        declines = storm > 0
        storm = max(storm - 1, 0)
        fault, arg, table = _fault(rng, op, faults=faults)
        found.append(Step(index, op, merchant, target, per_mille, declines, fault, arg, table))
    return found
