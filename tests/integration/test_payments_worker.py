"""The janitor (pending attempts, expiry), several workers at once, and the sealed logs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clearport.config import Settings
from clearport.connectors.fake import Answer, FakeConnector
from clearport.core.sensitive import SensitiveStr
from clearport.ledger.domain import AccountKind, AccountRef, TransferRequest
from clearport.payments.domain import PaymentStatus
from clearport.payments.service import InlineCard, NewPayment
from clearport.vault.cards import CardInput
from clearport.wiring import Container
from clearport.worker.jobs import copy_once, run_forever, run_once
from tests.integration.test_payments_api import pay
from tests.payments_support import (
    ShiftedClock,
    merchant_principal,
    with_container,
)
from tests.support import Api, pg


def new_payment(amount: int = 1000, capture: bool = False) -> NewPayment:
    card = CardInput(SensitiveStr("4242424242424242"), 12, 2030)
    return NewPayment(amount, "usd", InlineCard(card, SensitiveStr("123")), capture, None, {})


def scalar(api: Api, query: str, *args: Any) -> Any:
    with pg(api.database_url) as conn:
        row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def test_janitor_finishes_an_approval_whose_answer_was_lost(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    merchant_id, key = api.merchant()
    # The first authorization is approved but its answer is lost on the way back; the second
    # never reaches the processor at all. Both requests die while the connector has them.
    fake = FakeConnector()
    fake.will("authorize", Answer.LOSE_ANSWER, Answer.TIME_OUT)

    async def crashed(c: Container) -> str:
        request = asyncio.create_task(
            c.payments.create(merchant_principal(merchant_id), new_payment(), None)
        )
        await fake.until_held("authorize")
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        return str(
            scalar(
                api,
                "SELECT id FROM payments WHERE merchant_id = %s ORDER BY id DESC LIMIT 1",
                merchant_id,
            )
        )

    async def work(c: Container) -> None:
        pending_id = await crashed(c)
        unknown_id = await crashed(c)
        # Over HTTP, a pending payment can be read but not captured, voided or refunded.
        shown = api.call("GET", f"/v1/payments/{pending_id}", key).json()
        assert shown["status"] == "pending"
        for action in ("capture", "void", "refunds"):
            r = api.call("POST", f"/v1/payments/{pending_id}/{action}", key)
            assert r.status_code == 409
            assert "'pending'" in r.json()["error"]["message"]
        c.payments.janitor_grace_s = 0
        assert await c.payments.resolve_pending(100) == 2
        done = await c.payments.get(merchant_principal(merchant_id), pending_id)
        assert done.status is PaymentStatus.AUTHORIZED
        assert done.auth_code is not None
        failed = await c.payments.get(merchant_principal(merchant_id), unknown_id)
        assert failed.status is PaymentStatus.FAILED
        # The unknown one is reversed at the processor, as an attempt of its own.
        assert fake.reversed == [failed.auth_attempt_id]
        assert await c.payments.resolve_pending(100) == 0

    with_container(
        settings,
        database_url,
        tmp_path,
        work,
        connectors={fake.name: fake},
    )
    assert scalar(api, "SELECT count(*) FROM payment_attempts WHERE status = 'pending'") == 0
    assert scalar(api, "SELECT count(*) FROM payment_attempts WHERE operation = 'reverse'") == 1
    types = scalar(api, "SELECT array_agg(type ORDER BY seq) FROM events")
    assert sorted(types) == ["payment.authorized", "payment.failed"]


def test_expiry_voids_and_emits_once_with_two_workers(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    merchant_id, key = api.merchant()
    clock = ShiftedClock()

    async def work(c: Container) -> None:
        ids = [
            (await c.payments.create(merchant_principal(merchant_id), new_payment(), None)).id
            for _ in range(6)
        ]
        captured = await c.payments.create(
            merchant_principal(merchant_id), new_payment(capture=True), None
        )
        assert await c.payments.expire_authorizations(100) == 0  # not yet 7 days old
        clock.offset = timedelta(days=7, seconds=5)
        # Two janitors at once split the work: each payment expires exactly once.
        other = with_container_async(settings, database_url, tmp_path, clock)
        counts = await asyncio.gather(c.payments.expire_authorizations(100), other)
        assert sum(counts) == 6
        for pid in ids:
            p = await c.payments.get(merchant_principal(merchant_id), pid)
            assert p.status is PaymentStatus.EXPIRED
        still = await c.payments.get(merchant_principal(merchant_id), captured.id)
        assert still.status is PaymentStatus.CAPTURED
        shown = api.call("GET", f"/v1/payments/{ids[0]}", key).json()
        assert shown["status"] == "expired"
        for action in ("capture", "void", "refunds"):
            r = api.call("POST", f"/v1/payments/{ids[0]}/{action}", key)
            assert r.status_code == 409
            assert "'expired'" in r.json()["error"]["message"]

    with_container(settings, database_url, tmp_path, work, clock=clock)
    assert scalar(api, "SELECT count(*) FROM events WHERE type = 'payment.expired'") == 6
    assert scalar(api, "SELECT count(*) FROM txlog WHERE to_status = 'expired'") == 6


async def with_container_async(
    settings: Settings, database_url: str, data_dir: Path, clock: Any
) -> int:
    from clearport.wiring import build_container

    local = settings.model_copy(update={"data_dir": data_dir})
    c = build_container(local, database_url, clock=clock)
    await c.start()
    try:
        return await c.payments.expire_authorizations(100)
    finally:
        await c.stop()


def test_worker_pass_seals_and_purges(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    merchant_id, _ = api.merchant()

    async def work(c: Container) -> None:
        for _ in range(3):
            await c.payments.create(merchant_principal(merchant_id), new_payment(), None)
        first, second = await asyncio.gather(run_once(c), run_once(c))
        # Two passes at once: every row sealed exactly once.
        assert first.sealed["txlog"] + second.sealed["txlog"] == 6
        verdict = await c.chains.verify("txlog")
        assert verdict.ok and verdict.length == 6
        assert (await c.chains.verify("audit")).ok

    with_container(settings, database_url, tmp_path, work)
    assert scalar(api, "SELECT count(*) FROM chain_seals WHERE chain = 'txlog'") == 6
    # The first seal of a chain is signed at once (later ones once the interval has passed).
    assert scalar(api, "SELECT max(seq) FROM chain_checkpoints WHERE chain = 'txlog'") == 6

    async def copy(c: Container) -> dict[str, int]:
        return await copy_once(c, "test")

    assert with_container(settings, database_url, tmp_path, copy)["txlog_checkpoints"] == 1
    assert (tmp_path / "objects" / "txlog" / "checkpoints" / "txlog" / f"{6:015d}.json").exists()


# --- tamper ----------------------------------------------------------------------------------


def _tamper(api: Api, *statements: str) -> None:
    with pg(api.database_url) as conn:
        conn.execute("SET session_replication_role = replica")  # bypass append-only triggers
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _setup_chain(
    api: Api, settings: Settings, database_url: str, data_dir: Path, batches: int = 3
) -> int:
    merchant_id, _ = api.merchant()

    async def work(c: Container) -> int:
        for _ in range(batches):
            for _ in range(2):
                await c.payments.create(merchant_principal(merchant_id), new_payment(), None)
            await c.chains.seal("txlog", 1000, checkpoint_now=True)  # one checkpoint per batch
        await c.chains.copy_checkpoints("txlog", "test", 1000)
        verdict = await c.chains.verify("txlog")
        assert verdict.ok
        return verdict.length

    return with_container(settings, database_url, data_dir, work)


def _verify(
    settings: Settings, database_url: str, data_dir: Path, chain: str = "txlog"
) -> tuple[int | None, str | None]:
    async def work(c: Container) -> tuple[int | None, str | None]:
        v = await c.chains.verify(chain)
        return v.first_bad_seq, v.reason

    return with_container(settings, database_url, data_dir, work)


def _source_of(api: Api, seq: int) -> int:
    return int(
        scalar(api, "SELECT source_seq FROM chain_seals WHERE chain = 'txlog' AND seq = %s", seq)
    )


@pytest.mark.parametrize("kind", ["flip", "delete", "swap"])
def test_tamper_with_rows_is_found_by_the_hashes(
    api: Api, settings: Settings, database_url: str, tmp_path: Path, kind: str
) -> None:
    length = _setup_chain(api, settings, database_url, tmp_path)
    assert length == 12
    target = _source_of(api, 5)
    other = _source_of(api, 9)
    if kind == "flip":
        _tamper(api, f"UPDATE txlog SET amount = amount + 1 WHERE seq = {target}")
    elif kind == "delete":
        _tamper(api, f"DELETE FROM txlog WHERE seq = {target}")
    else:
        # Exchange the whole contents of two rows (each keeps its own seq).
        cols = (
            "object_type, object_id, payment_id, merchant_id, from_status, to_status, amount, "
            "currency, actor, connector_result, occurred_at"
        )
        _tamper(
            api,
            f"UPDATE txlog t SET ({cols}) = (SELECT {cols} FROM txlog o WHERE o.seq = "
            f"CASE t.seq WHEN {target} THEN {other} ELSE {target} END) "
            f"WHERE t.seq IN ({target}, {other})",
        )
    bad, reason = _verify(settings, database_url, tmp_path)
    assert bad == 5, reason


def test_truncating_the_tail_is_found_by_the_stored_checkpoints(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    _setup_chain(api, settings, database_url, tmp_path)
    sources = [_source_of(api, s) for s in (11, 12)]
    # Rows, seals and the database's checkpoints beyond 10 are all cut ...
    _tamper(
        api,
        f"DELETE FROM txlog WHERE seq IN ({sources[0]}, {sources[1]})",
        "DELETE FROM chain_seals WHERE chain = 'txlog' AND seq > 10",
        "DELETE FROM chain_checkpoints WHERE chain = 'txlog' AND seq > 10",
    )
    # ... but the copy in object storage still names position 12: the cut is found right after
    # the last surviving position.
    bad, reason = _verify(settings, database_url, tmp_path)
    assert bad == 11, reason
    assert reason == "checkpoint at 12 but the chain ends at 10"


def test_rewriting_the_whole_chain_is_found_by_the_checkpoints(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    _setup_chain(api, settings, database_url, tmp_path)
    target = _source_of(api, 7)
    _tamper(
        api,
        f"UPDATE txlog SET amount = 1 WHERE seq = {target}",
        "DELETE FROM chain_seals WHERE chain = 'txlog'",
        "DELETE FROM chain_checkpoints WHERE chain = 'txlog'",
    )
    # The attacker reseals and signs new checkpoints, with a key of their own (their data
    # directory, their keyring): the database is consistent again ...
    attacker = tmp_path / "attacker"

    async def reseal(c: Container) -> str:
        await c.chains.seal("txlog", 1000, checkpoint_now=True)
        return (await c.chains.verify("txlog", await c.chains.trusted_verifier())).reason or ""

    # ... yet the checkpoints in object storage, signed by the platform's key, remain: even
    # a verify trusting the attacker's key stops at them.
    assert "checkpoint at 4 is signed by key sha256:" in with_container(
        settings, database_url, attacker, reseal, storage_dir=tmp_path / "objects"
    )
    bad, reason = _verify(settings, database_url, tmp_path)
    # Checkpoints were taken at 4, 8 and 12: the rewrite is located between 5 and 8.
    assert bad == 5, reason


def test_audit_chain_is_sealed_without_updating_audit_events(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    api.merchant()
    api.merchant()

    async def seal(c: Container) -> int:
        return (await c.chains.seal("audit", 1000)).sealed

    sealed = with_container(settings, database_url, tmp_path, seal)
    assert sealed >= 2
    assert _verify(settings, database_url, tmp_path, "audit") == (None, None)
    first = scalar(api, "SELECT source_seq FROM chain_seals WHERE chain = 'audit' AND seq = 2")
    _tamper(api, f"UPDATE audit_events SET actor = 'someone-else' WHERE seq = {first}")
    bad, reason = _verify(settings, database_url, tmp_path, "audit")
    assert bad == 2, reason


def test_worker_pass_expires_lapsed_ledger_holds(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """A ledger hold past its `expires_at` is released by the worker, once."""
    merchant_id, _ = api.merchant()
    receivable = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
    pending = AccountRef(merchant_id, AccountKind.PENDING, "usd")

    async def work(c: Container) -> None:
        now = c.clock.now()
        async with c.db.transaction() as tx:
            await c.ledger.post(
                tx,
                [
                    TransferRequest(
                        id="hold:lapsed",
                        debit=receivable,
                        credit=pending,
                        amount_minor=700,
                        currency="usd",
                        code="adjustment",
                        pending=True,
                        expires_at=now - timedelta(seconds=1),
                    ),
                    TransferRequest(
                        id="hold:live",
                        debit=receivable,
                        credit=pending,
                        amount_minor=300,
                        currency="usd",
                        code="adjustment",
                        pending=True,
                        expires_at=now + timedelta(days=1),
                    ),
                ],
            )
        first = await run_once(c)
        second = await run_once(c)
        assert (first.holds_expired, second.holds_expired) == (1, 0)

    with_container(settings, database_url, tmp_path, work)
    resolutions = scalar(
        api,
        "SELECT count(*) FROM ledger_transfers WHERE pending_id IS NOT NULL",
    )
    assert resolutions == 1


def test_worker_settles_yesterday_on_its_own(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """`clearport worker`'s loop starts yesterday's run after the cutoff and its procrastinate
    worker runs the partitions and the finalize job; later passes join the same run. The clock
    is a day ahead, so "yesterday" is today and today's capture is settled."""
    _, key = api.merchant()
    pay(api, key, amount=1_000, capture=True)
    clock = ShiftedClock()
    clock.offset = timedelta(days=1)
    business_date = datetime.now(UTC).date()
    query = "SELECT status FROM settlement_runs WHERE business_date = %s"

    async def work(c: Container) -> str:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_forever(c, stop))
        try:
            for _ in range(600):  # waits for completion; asserts nothing about speed
                status = scalar_or_none(api, query, business_date)
                if status not in (None, "running"):
                    return str(status)
                await asyncio.sleep(0.1)
            return "still running"
        finally:
            stop.set()
            await loop

    status = with_container(
        settings, database_url, tmp_path, work, clock=clock, worker_interval_s=0.2
    )
    assert status == "completed"
    assert scalar(api, "SELECT count(*) FROM settlement_runs") == 1
    assert scalar(api, "SELECT count(*) FROM settlement_items") == 1


def test_worker_does_not_settle_before_the_first_transaction(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    async def work(c: Container) -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(run_forever(c, stop))
        await asyncio.sleep(1.0)  # several passes at 0.2 s
        stop.set()
        await loop

    with_container(settings, database_url, tmp_path, work, worker_interval_s=0.2)
    assert scalar(api, "SELECT count(*) FROM settlement_runs") == 0
    _, key = api.merchant()
    pay(api, key, amount=1_000, capture=True)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    refused = api.call(
        "POST", "/v1/settlement_runs", api.operator("finance"), json={"business_date": yesterday}
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["param"], error["code"]) == ("business_date", "date_before_first_transaction")


def scalar_or_none(api: Api, query: str, *args: Any) -> Any:
    with pg(api.database_url) as conn:
        row = conn.execute(query, args).fetchone()
    return None if row is None else row[0]
