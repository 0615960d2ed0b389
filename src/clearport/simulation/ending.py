"""The end of a run: the world healed, then every invariant checked.

Healing is what production does after trouble: late answers land, clients retry what was never
answered (same Idempotency-Key), the janitor and the worker catch up until no attempt is pending,
and the day is settled. Then the simulator compares its model, the processor's own records and
Clearport's tables, replays every success, re-runs every settlement, verifies the chains and
looks for card numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.core.errors import InvalidRequest
from clearport.simulation.runner import Simulation, clock_seconds
from clearport.txlog.service import CHAINS

STANDING = frozenset({"approved", "captured"})
HELD = frozenset({"authorized", "captured", "refunded"})
RELEASED = frozenset({"voided", "reversed"})
Report = Callable[[str, str], None]
HEAL_ROUNDS = 12
RETRY_BACKOFF_S = 3_700  # past the janitor's longest postponement (payments.lost)


async def heal(sim: Simulation) -> None:
    world = sim.world
    await asyncio.gather(*(c.settle_late() for c in world.clients), return_exceptions=True)
    await world.calm()
    if any(not r.settled for r in sim.model.requests.values()):
        # An abandoned key stays locked for the lock timeout (PostgreSQL's clock, not ours).
        await asyncio.sleep(world.settings.idempotency_lock_timeout_s + 0.2)
    for _ in range(HEAL_ROUNDS):
        world.clock.advance(RETRY_BACKOFF_S)
        await sim.worker_pass()
        for request in [r for r in sim.model.requests.values() if not r.settled]:
            answer = await world.call(
                "POST", request.path, request.secret, request.body, request.key
            )
            request.answers.append((answer.status_code, answer.content))
        if not await sim.store.pending_attempts():
            break
    world.clock.advance(86_400)
    with contextlib.suppress(InvalidRequest):  # nothing was ever captured: nothing to settle
        await sim.settle_now()


def _files_digest(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


async def check_end(sim: Simulation) -> None:
    def bad(invariant: str, detail: str) -> None:
        sim.violation(invariant, detail, at_end=True)

    store = sim.store
    for problem in await store.ledger_imbalances():
        bad("every journal sums to zero; every balance equals its postings", problem)
    for attempt in await store.pending_attempts():
        bad("the janitor resolves every attempt", f"{attempt['operation']} {attempt['id']} pending")
    await _check_processor(sim, bad)
    await _check_model(sim, bad)
    for what in await store.unsettled_sources():
        bad("every capture, refund, dispute and adjustment is settled exactly once", what)
    for what in await store.phantom_items():
        bad("gross = net + fees + reserve movements", what)
    await _check_replays(sim, bad)
    await _check_rerun(sim, bad)
    c = sim.world.container
    for chain in CHAINS:
        await c.chains.seal(chain, 100_000, checkpoint_now=True)
        verdict = await c.chains.verify(chain)
        if not verdict.ok:
            bad("the txlog and audit chains verify", f"{chain}: {verdict.reason}")
    numbers = sorted(sim.model.card_numbers)
    for where in await store.texts_containing(numbers):
        bad("no card number in anything the run wrote", where)
    root = sim.world.settings.storage_root
    for path in sorted(root.rglob("*")) if root.exists() else []:
        if path.is_file() and any(n.encode() in path.read_bytes() for n in numbers):
            bad("no card number in anything the run wrote", str(path.relative_to(root)))


async def _check_processor(sim: Simulation, bad: Report) -> None:
    payments = {p["id"]: p for p in await sim.store.payments()}
    by_auth = {p["auth_attempt_id"]: p for p in payments.values()}
    attempts = {a["id"]: a for a in await sim.store.authorization_attempts()}
    records = await sim.store.processor_records()
    originals = {r["reference"]: r for r in records if r["kind"] in ("authorize", "sale")}
    standing_per_payment: Counter[str] = Counter()
    for ref, record in originals.items():
        if record["state"] not in STANDING:
            continue
        attempt = attempts.get(ref)
        if attempt is not None:
            standing_per_payment[attempt["payment_id"]] += 1
        ours = by_auth.get(ref)
        if ours is None or ours["status"] not in HELD:
            status = "unknown" if ours is None else ours["status"]
            bad(
                "no approval we do not know about (lost)",
                f"the processor holds {record['kind']} {ref} ({record['amount']}); ours: {status}",
            )
    for payment_id, n in standing_per_payment.items():
        if n > 1:
            bad("no charge taken twice", f"{payment_id} stands {n} times at the processor")
    for p in payments.values():
        original = originals.get(p["auth_attempt_id"])
        if p["status"] in HELD:
            if original is None or original["state"] not in STANDING:
                state = "nothing" if original is None else original["state"]
                bad(
                    "ours and the processor's agree", f"{p['id']} {p['status']}, processor: {state}"
                )
                continue
            if (
                original["captured"] != p["amount_captured"]
                or original["refunded"] != p["amount_refunded"]
            ):
                bad(
                    "ours and the processor's agree",
                    f"{p['id']} captured/refunded {p['amount_captured']}/{p['amount_refunded']}, "
                    f"processor {original['captured']}/{original['refunded']}",
                )
        elif (
            p["status"] in ("voided", "expired")
            and original is not None
            and original["state"] not in RELEASED
        ):
            bad(
                "ours and the processor's agree",
                f"{p['id']} {p['status']}, processor: {original['state']}",
            )


async def _check_model(sim: Simulation, bad: Report) -> None:
    payments = {p["id"]: p for p in await sim.store.payments()}
    for known in sim.model.payments:
        ours = payments.get(known.id)
        if ours is None:
            bad("nothing acknowledged is lost", f"payment {known.id} is gone")
            continue
        if (ours["amount"], ours["currency"]) != (known.amount, known.currency):
            bad("nothing acknowledged is lost", f"payment {known.id} changed amount")
        if known.captured and ours["amount_captured"] != known.captured:
            bad(
                "nothing acknowledged is lost",
                f"{known.id}: captured {known.captured} acknowledged, "
                f"{ours['amount_captured']} held",
            )
        if known.voided and ours["status"] != "voided":
            bad("nothing acknowledged is lost", f"{known.id}: voided, now {ours['status']}")
        if ours["amount_refunded"] < known.refunded:
            bad("nothing acknowledged is lost", f"{known.id}: refunds acknowledged missing")
    keys = await sim.store.rows(
        "SELECT metadata->>'sim_key' AS key, count(*) AS n FROM payments "
        "GROUP BY 1 HAVING count(*) > 1"
    )
    for row in keys:
        bad(
            "an idempotent retry never creates a second object",
            f"{row['key']}: {row['n']} payments",
        )
    counts = await sim.store.counts()
    for table, kind in (
        ("payments", "payment"),
        ("refunds", "refund"),
        ("disputes", "dispute"),
        ("adjustments", "adjustment"),
    ):
        if counts[table] > sim.model.sent(kind):
            bad(
                "an idempotent retry never creates a second object",
                f"{counts[table]} {table} from {sim.model.sent(kind)} requests",
            )
    for dispute_id in sim.model.disputes:
        if not await sim.store.rows("SELECT 1 FROM disputes WHERE id = $1", dispute_id):
            bad("nothing acknowledged is lost", f"dispute {dispute_id} is gone")


async def _check_replays(sim: Simulation, bad: Report) -> None:
    before = await sim.store.counts()
    for request in sim.model.requests.values():
        first = request.succeeded
        if first is None:
            continue
        answer = await sim.world.call(
            "POST", request.path, request.secret, request.body, request.key
        )
        if (answer.status_code, answer.content) != first:
            bad(
                "an idempotent retry replays the first answer",
                f"{request.key} {request.path}: {first[0]} then {answer.status_code}",
            )
    if await sim.store.counts() != before:
        bad("an idempotent retry never creates a second object", "replays created objects")


async def _check_rerun(sim: Simulation, bad: Report) -> None:
    root = sim.world.settings.storage_root
    files = _files_digest(root)
    rows = await sim.store.rows(
        "SELECT s.*, (SELECT json_agg(i ORDER BY source_id) FROM settlement_items i "
        "WHERE i.settlement_id = s.id) AS items FROM settlements s ORDER BY id"
    )
    c = sim.world.container
    runs = await sim.store.rows("SELECT business_date, cutoff_at FROM settlement_runs")
    for run in runs:
        await c.settlement.settle(
            SYSTEM_CLI, Origin(), run["business_date"], cutoff_at=clock_seconds(run["cutoff_at"])
        )
    again = await sim.store.rows(
        "SELECT s.*, (SELECT json_agg(i ORDER BY source_id) FROM settlement_items i "
        "WHERE i.settlement_id = s.id) AS items FROM settlements s ORDER BY id"
    )
    if json.dumps(rows, default=str) != json.dumps(again, default=str):
        bad("a settlement re-run is byte-identical", "settlements or items changed")
    if _files_digest(root) != files:
        bad("a settlement re-run is byte-identical", "files in object storage changed")
