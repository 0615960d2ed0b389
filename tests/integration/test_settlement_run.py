"""The settlement run against real PostgreSQL: pricing in SQL = the domain, netting, ledger,
payouts and their files, reports, exactly once (re-run, crash and resume, two workers)."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
import sepaxml  # type: ignore[import-untyped]
import xmlschema  # type: ignore[import-untyped]

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.audit.service import Auditor
from clearport.audit.store import PgAuditLog
from clearport.core.clock import SystemClock
from clearport.core.errors import InvalidRequest, InvalidState, InvariantViolation
from clearport.core.ids import new_id
from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.events.service import Outbox
from clearport.events.store import PgEventStore
from clearport.http.representation import ApiRepresentation
from clearport.ledger.domain import PLATFORM, AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from clearport.ledger.store import PgLedgerStore
from clearport.settlement.calendar import HolidayCalendar
from clearport.settlement.domain import SettlementOptions
from clearport.settlement.fees import (
    FeeTotals,
    card_type_of,
    interchange_region,
    parse_pricing,
    price_item,
    region_for_country,
)
from clearport.settlement.interchange_tables import table_for
from clearport.settlement.payout_files import NachaOriginator, SepaDebtor
from clearport.settlement.payout_files.renderer import PayoutFiles
from clearport.settlement.ports import PayoutDestination
from clearport.settlement.report_files import ReportSink
from clearport.settlement.service import SettlementService
from clearport.settlement.service.reports import PartitionReports
from clearport.settlement.store import PgSettlementStore
from clearport.storage.local import LocalDirectoryStorage
from clearport.storage.ports import ObjectStorage
from tests.conftest import truncate_all
from tests.ledger_support import assert_zero_sum
from tests.unit.test_payout_files import parse_nacha

ORIGIN = Origin("local")
TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)
BLENDED = {"model": "blended", "percent_bps": 290, "fixed_minor": {"usd": 30, "eur": 25},
           "brand_overrides": {"amex": {"percent_bps": 350, "fixed_minor": {}}}}  # fmt: skip
ICPP = {"model": "interchange_plus", "markup_bps": 25, "markup_fixed_minor": {"usd": 5, "eur": 5}}


class FakeDestinations:
    def __init__(self) -> None:
        self.accounts: dict[str, PayoutDestination] = {}

    async def destinations(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> dict[str, PayoutDestination]:
        return {m: self.accounts[m] for m in merchant_ids if m in self.accounts}


@dataclass
class Env:
    db: Database
    service: SettlementService
    ledger: LedgerService
    destinations: FakeDestinations
    files: Path
    url: str


def make_service(
    db: Database,
    files: Path,
    destinations: FakeDestinations,
    partitions: int = 4,
    store: PgSettlementStore | None = None,
    storage: ObjectStorage | None = None,
    workers: int | None = None,
    work: Database | None = None,
    outbox: Outbox | None = None,
) -> SettlementService:
    """`workers` and `work`: the options' default (one per CPU) and the main pool, unless
    given; `outbox`: the events' own, unless given."""
    options = SettlementOptions(partitions=partitions, chunk_size=3)
    if workers is not None:
        options = dataclasses.replace(options, workers=workers)
    clock = SystemClock()
    storage = storage or LocalDirectoryStorage(files)
    return SettlementService(
        db,
        store or PgSettlementStore(),
        LedgerService(db, PgLedgerStore(), clock),
        storage,
        lambda prefix: ReportSink(storage, prefix, storage.scratch_dir()),
        PayoutFiles(
            NachaOriginator("091000019", "1234567890", "CLEARPORT", "EXAMPLE BANK"),
            SepaDebtor("Clearport Payouts", "DE89370400440532013000", "COBADEFFXXX"),
        ),
        destinations,
        Auditor(PgAuditLog(), clock),
        clock,
        table_for,
        HolidayCalendar(),
        options,
        outbox or Outbox(PgEventStore(), clock),
        ApiRepresentation(),
        work=work,
    )


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[Env]:
    loop = asyncio.new_event_loop()
    db = Database(database_url, min_size=1, max_size=4)
    loop.run_until_complete(db.open())
    dest = FakeDestinations()
    service = make_service(db, tmp_path / "files", dest)
    e = Env(db, service, LedgerService(db, PgLedgerStore(), SystemClock()), dest,
            tmp_path / "files", database_url)  # fmt: skip
    asyncio.set_event_loop(loop)
    yield e
    loop.run_until_complete(db.close())
    loop.close()
    truncate_all(database_url)


def run(coro: Any) -> Any:
    return asyncio.get_event_loop().run_until_complete(coro)


async def add_merchant(
    env: Env, *, country: str, currency: str, pricing: dict[str, Any],
    reserve: dict[str, int] | None = None, delay: int = 0,
) -> str:  # fmt: skip
    mid = new_id("mer")
    async with env.db.transaction() as tx:
        conn: asyncpg.Connection = conn_of(tx)
        await conn.execute(
            """INSERT INTO merchants (id, name, country, mcc, default_currency, pricing,
                   payout_delay_days, reserve) VALUES ($1, 'M', $2, '5999', $3, $4, $5, $6)""",
            mid, country, currency, pricing, delay,
            reserve or {"percent_bps": 0, "hold_days": 0},
        )  # fmt: skip
    return mid


async def capture(
    env: Env,
    merchant: str,
    amount: int,
    currency: str,
    brand: str,
    bin_data: tuple[str, str, str] | None = None,  # (funding, category, issuer country)
) -> str:
    async with env.db.transaction() as tx:
        return await capture_in(tx, env, merchant, amount, currency, brand, bin_data)


async def capture_in(
    tx: Transaction,
    env: Env,
    merchant: str,
    amount: int,
    currency: str,
    brand: str,
    bin_data: tuple[str, str, str] | None = None,
) -> str:
    """A captured payment and its ledger transfer, in the caller's transaction."""
    pay = new_id("pay")
    funding, category, issuer = bin_data or (None, None, None)
    conn: asyncpg.Connection = conn_of(tx)
    await conn.execute(
        """INSERT INTO payments (id, merchant_id, amount, currency, status, capture_requested,
               amount_captured, card_brand, card_bin, card_last4, card_exp_month,
               card_exp_year, card_fingerprint, token_id, auth_attempt_id, connector,
               routing, reference, created_at, updated_at, captured_at, card_funding,
               card_category, card_issuer_country)
           VALUES ($1, $2, $3, $4, 'captured', true, $3, $5, '424242', '4242', 12, 2030,
               'fp', 'tok_x', 'att_x', 'simulator', '{}', $6, now(), now(), now(), $7, $8,
               $9)""",
        pay, merchant, amount, currency, brand, f"order-{pay[-6:]}", funding, category,
        issuer,
    )  # fmt: skip
    await env.ledger.post(
        tx,
        [TransferRequest(
            id=f"{pay}:capture",
            debit=AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, currency),
            credit=AccountRef(merchant, AccountKind.PENDING, currency),
            amount_minor=amount, currency=currency, code="capture", source=pay,
        )],
    )  # fmt: skip
    return pay


async def refund(env: Env, merchant: str, payment: str, amount: int, currency: str) -> str:
    rfd = new_id("rfd")
    async with env.db.transaction() as tx:
        conn: asyncpg.Connection = conn_of(tx)
        await conn.execute(
            """INSERT INTO refunds (id, payment_id, merchant_id, amount, currency, status,
                   attempt_id, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, 'succeeded', 'att_x', now(), now())""",
            rfd, payment, merchant, amount, currency,
        )  # fmt: skip
        await env.ledger.post(
            tx,
            [TransferRequest(
                id=f"{rfd}:refund",
                debit=AccountRef(merchant, AccountKind.PENDING, currency),
                credit=AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, currency),
                amount_minor=amount, currency=currency, code="refund", source=rfd,
            )],
        )  # fmt: skip
    return rfd


def q(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


async def balance(env: Env, merchant: str, kind: AccountKind, currency: str) -> int:
    async with env.db.transaction() as tx:
        acc = await env.ledger.account(tx, AccountRef(merchant, kind, currency))
    return 0 if acc is None else acc.balance


async def db_now(env: Env) -> datetime:
    async with env.db.transaction() as tx:
        conn: asyncpg.Connection = conn_of(tx)
        value: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return value


US_BANK = PayoutDestination("Acme Inc", "usd", routing_number="021000021", account_number="12345")
EU_BANK = PayoutDestination("Ein GmbH", "eur", iban="DE89370400440532013000", bic="COBADEFFXXX")


def test_settlement_end_to_end(env: Env) -> None:
    async def scenario() -> dict[str, Any]:
        us = await add_merchant(env, country="US", currency="usd", pricing=BLENDED,
                                reserve={"percent_bps": 1000, "hold_days": 0})  # fmt: skip
        eu = await add_merchant(env, country="DE", currency="eur", pricing=ICPP)
        nobank = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        env.destinations.accounts[us] = US_BANK
        env.destinations.accounts[eu] = EU_BANK
        pays = [
            await capture(env, us, 10_000 + i, "usd", ["visa", "amex"][i % 2]) for i in range(7)
        ]
        await refund(env, us, pays[0], 2_500, "usd")
        for i in range(5):
            await capture(env, eu, 4_999 + i * 333, "eur", ["visa", "mastercard", "amex"][i % 3])
        await capture(env, nobank, 5_000, "usd", "visa")
        cutoff = await db_now(env)
        late = await capture(env, us, 777, "usd", "visa")  # after the cutoff: not settled
        result = await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        return {"us": us, "eu": eu, "nobank": nobank, "late": late, "run": result,
                "pending_us": await balance(env, us, AccountKind.PENDING, "usd"),
                "available_us": await balance(env, us, AccountKind.AVAILABLE, "usd"),
                "reserve_us": await balance(env, us, AccountKind.RESERVE, "usd"),
                "available_nobank": await balance(env, nobank, AccountKind.AVAILABLE, "usd"),
                "pending_eu": await balance(env, eu, AccountKind.PENDING, "eur")}  # fmt: skip

    r = run(scenario())
    url = env.url
    assert r["run"].status == "completed"
    assert q(url, "SELECT count(*) FROM settlement_items")[0][0] == 7 + 1 + 5 + 1
    assert q(url, "SELECT count(*) FROM settlement_items WHERE payment_id = %s", r["late"]) == [
        (0,)
    ]
    # SQL pricing equals the domain's, item by item.
    table = table_for(YESTERDAY)
    for mid, country, pricing in ((r["us"], "US", BLENDED), (r["eu"], "DE", ICPP)):
        for typ, gross, brand, ic, sf, mk, flags, currency in q(
            url, "SELECT type, gross, brand, interchange, scheme_fee, markup, flags, currency "
            "FROM settlement_items WHERE merchant_id = %s", mid,
        ):  # fmt: skip
            region = region_for_country(country)
            priced = price_item(parse_pricing(pricing), table, kind=typ, amount_minor=abs(gross),
                                currency=currency, brand=brand, card_type=None,
                                region=region)  # fmt: skip
            assert (ic, sf, mk) == (priced.interchange_minor, priced.scheme_fee_minor,
                                    priced.markup_minor)  # fmt: skip
            assert flags == ",".join(priced.flags)
    # The US merchant: 10% reserve of gross held, the rest paid by ACH; pending only holds
    # the late capture; available was moved to payouts in transit by the file.
    (gross, refunds, fees, held, net, payout) = q(
        url, "SELECT gross, refunds, fees, reserve_held, net, payout FROM settlements "
        "WHERE merchant_id = %s", r["us"])[0]  # fmt: skip
    assert gross == sum(10_000 + i for i in range(7)) and refunds == 2_500
    assert held == round(gross / 10) and net == gross - refunds - fees - held == payout
    assert r["pending_us"] == 777 and r["available_us"] == 0 and r["reserve_us"] == held
    assert r["pending_eu"] == 0
    statuses = dict(q(url, "SELECT merchant_id, status FROM payouts"))
    assert statuses == {r["us"]: "in_transit", r["eu"]: "in_transit", r["nobank"]: "pending"}
    assert q(url, "SELECT flag FROM payouts WHERE merchant_id = %s", r["nobank"]) == [
        ("no_bank_account",)
    ]
    assert r["available_nobank"] > 0  # waits in available, flagged
    # Files: NACHA for USD, pain.001 for EUR.
    files = {cur: (fmt, key) for cur, fmt, key in q(
        url, "SELECT currency, format, object_key FROM payout_files")}  # fmt: skip
    assert files["usd"][0] == "nacha" and files["eur"][0] == "pain001"
    ach = parse_nacha((env.files / files["usd"][1]).read_bytes())
    entries = [rec for rec in ach if rec["type"] == "6"]
    assert [int(e["amount"]) for e in entries] == [payout]
    xsd = Path(os.path.dirname(sepaxml.__file__)) / "schemas" / "pain.001.001.03.xsd"
    xmlschema.XMLSchema(str(xsd)).validate((env.files / files["eur"][1]).read_text())
    # Reports: totals equal the settlement rows and the ledger.
    for stl, report, fees_row, count in q(
        url, "SELECT id, report, fees, count FROM settlements"
    ):  # fmt: skip
        with Path(report["csv"].removeprefix("file://")).open() as f:
            rows = [row for row in csv.DictReader(f) if row["settlement_id"] == stl]
        assert len(rows) == count
        assert sum(int(x["commission_minor"]) for x in rows) == fees_row
        table = pq.read_table(report["parquet"].removeprefix("file://"))
        mine = table.filter(pc.equal(table.column("settlement_id"), stl))
        assert mine.num_rows == count
        assert pc.sum(mine.column("commission_minor")).as_py() == fees_row
    # What merchants were charged = fee revenue + the rounding account (residuals close it).
    revenue = q(url, "SELECT sum(markup) FROM settlements WHERE currency = 'usd'")[0][0]
    assert run(balance(env, PLATFORM, AccountKind.FEE_REVENUE, "usd")) + run(
        balance(env, PLATFORM, AccountKind.ROUNDING, "usd")) == revenue  # fmt: skip
    assert_zero_sum(url)


def test_pricing_in_sql_uses_the_domains_regions(env: Env) -> None:
    """Interchange++ merchants of every region: SQL prices each item as price_item does with
    region_for_country (the country -> region table is written once, in the domain)."""
    countries = ["US", "GB", "DE", "NO", "IS", "JP", "BR", "CH"]

    async def scenario() -> dict[str, str]:
        merchants = {}
        for country in countries:
            m = await add_merchant(env, country=country, currency="usd", pricing=ICPP)
            merchants[m] = country
            for brand in ("visa", "mastercard", "amex", "discover"):
                await capture(env, m, 12_345, "usd", brand)
        cutoff = await db_now(env)
        await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        return merchants

    merchants = run(scenario())
    table = table_for(YESTERDAY)
    rows = q(env.url, "SELECT merchant_id, gross, brand, interchange, scheme_fee, markup, flags "
             "FROM settlement_items")  # fmt: skip
    assert len(rows) == 4 * len(countries)
    regions = set()
    for mid, gross, brand, ic, sf, mk, flags in rows:
        region = region_for_country(merchants[mid])
        regions.add(region)
        priced = price_item(parse_pricing(ICPP), table, kind="capture", amount_minor=gross,
                            currency="usd", brand=brand, card_type=None,
                            region=region)  # fmt: skip
        assert (ic, sf, mk, flags) == (priced.interchange_minor, priced.scheme_fee_minor,
                                       priced.markup_minor, ",".join(priced.flags))  # fmt: skip
    assert regions == {"us", "uk", "eea", "intl"}


def test_half_even_ties_in_sql_pricing_equal_the_domains(env: Env) -> None:
    """Pricing in bigint units (decision 0901) rounds exact halves to even, both ways, as
    price_item does: 290 bps of 500 + 30 is 44.5 -> 44, of 1,500 + 30 is 73.5 -> 74; amex's
    350 bps of 100 is 3.5 -> 4, of 300 is 10.5 -> 10; a 25 bps markup of 200 is 0.5 -> 0, of
    600 is 1.5 -> 2; and each settlement's exact fee sums stay exact."""
    amounts = (17, 100, 200, 300, 500, 600, 1_500)  # 17: fractions that sum

    async def scenario() -> dict[str, dict[str, Any]]:
        merchants = {}
        for pricing in (BLENDED, ICPP):
            m = await add_merchant(env, country="US", currency="usd", pricing=pricing)
            merchants[m] = pricing
            for amount in amounts:
                for brand in ("visa", "amex"):
                    await capture(env, m, amount, "usd", brand)
        cutoff = await db_now(env)
        await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        return merchants

    merchants = run(scenario())
    table = table_for(YESTERDAY)
    rows = q(env.url, "SELECT merchant_id, gross, brand, interchange, scheme_fee, markup, flags "
             "FROM settlement_items")  # fmt: skip
    assert len(rows) == 2 * len(amounts) * 2
    markups: dict[tuple[str, str, int], int] = {}
    for mid, gross, brand, ic, sf, mk, flags in rows:
        priced = price_item(parse_pricing(merchants[mid]), table, kind="capture",
                            amount_minor=gross, currency="usd", brand=brand, card_type=None,
                            region="us")  # fmt: skip
        assert (ic, sf, mk, flags) == (priced.interchange_minor, priced.scheme_fee_minor,
                                       priced.markup_minor, ",".join(priced.flags))  # fmt: skip
        markups[(merchants[mid]["model"], brand, gross)] = mk
    assert [markups[("blended", "visa", a)] for a in (500, 1_500)] == [44, 74]
    assert [markups[("blended", "amex", a)] for a in (100, 300)] == [4, 10]
    # 0.5 + 5 -> 6 and 1.5 + 5 -> 6: one tie up, one down.
    assert [markups[("interchange_plus", "visa", a)] for a in (200, 600)] == [6, 6]
    # Each settlement: the fees charged (its items' rounded fees) and the rounding residual
    # against the half-even rounding of its EXACT sums, as the domain adds them up.
    expected: dict[str, FeeTotals] = {mid: FeeTotals() for mid in merchants}
    for mid, gross, brand, *_ in rows:
        expected[mid].add(price_item(parse_pricing(merchants[mid]), table, kind="capture",
                                     amount_minor=gross, currency="usd", brand=brand,
                                     card_type=None, region="us"))  # fmt: skip
    settled = q(env.url, "SELECT merchant_id, fees, interchange, scheme_fees, markup, rounding "
                "FROM settlements")  # fmt: skip
    assert len(settled) == 2
    for mid, fees, ic, sf, mk, rounding in settled:
        fee = expected[mid]
        assert (fees, ic, sf, mk, rounding) == (
            fee.charged, fee.interchange_charged, fee.scheme_fee_charged, fee.markup_charged,
            fee.rounding_residual,
        )  # fmt: skip


def test_interchange_by_the_cards_funding_and_issuer_region(env: Env) -> None:
    """Cards with BIN data price at their own row (no fallback flag): by funding and category,
    in the acquiring region when issued there, inter-regional when issued elsewhere."""
    cards = [
        ("debit", "consumer", "US"),
        ("credit", "consumer", "US"),
        ("prepaid", "consumer", "US"),
        ("credit", "commercial", "US"),
        ("debit", "consumer", "DE"),  # issued in the EEA, acquired in the US: intl
        None,  # not in the BIN table: the fallback, flagged
    ]

    async def scenario() -> dict[str, tuple[str, str, str] | None]:
        m = await add_merchant(env, country="US", currency="usd", pricing=ICPP)
        made = {}
        for card in cards:
            made[await capture(env, m, 10_000, "usd", "visa", card)] = card
        cutoff = await db_now(env)
        await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        return made

    made = run(scenario())
    table = table_for(YESTERDAY)
    rows = q(env.url, "SELECT payment_id, interchange, flags FROM settlement_items")
    assert len(rows) == len(cards)
    seen = {}
    for payment_id, ic, flags in rows:
        card = made[payment_id]
        funding, category, issuer = card or (None, None, None)
        priced = price_item(parse_pricing(ICPP), table, kind="capture", amount_minor=10_000,
                            currency="usd", brand="visa", card_type=card_type_of(funding, category),
                            region=interchange_region("US", issuer))  # fmt: skip
        assert (ic, flags) == (priced.interchange_minor, ",".join(priced.flags)), card
        seen[card] = (ic, flags)
    assert all("interchange_fallback" not in flags for card, (_, flags) in seen.items() if card)
    assert "interchange_fallback" in seen[None][1]
    # Debit is cheaper than credit, and a foreign card is priced inter-regionally.
    assert seen[("debit", "consumer", "US")][0] < seen[("credit", "consumer", "US")][0]
    assert interchange_region("US", "DE") == "intl" and interchange_region("DE", "FR") == "eea"


def test_rerun_changes_nothing_and_files_are_identical(env: Env) -> None:
    async def scenario() -> None:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        env.destinations.accounts[m] = US_BANK
        for i in range(5):
            await capture(env, m, 1_001 + i, "usd", "visa")
        cutoff = await db_now(env)
        first = await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        assert first.status == "completed"

    run(scenario())
    snapshot = lambda: (  # noqa: E731
        q(env.url, "SELECT count(*), sum(amount) FROM ledger_transfers"),
        q(env.url, "SELECT id, net, payout, report FROM settlements ORDER BY id"),
        q(env.url, "SELECT id, status FROM payouts ORDER BY id"),
        {p: p.read_bytes() for p in env.files.rglob("*") if p.is_file()},
    )
    before = snapshot()
    again = run(env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY))
    assert again.status == "completed" and snapshot() == before
    # Reports rebuilt from the database (as after a crash before they were written) are
    # byte-identical.
    report_files = {
        p: p.read_bytes() for p in (env.files / "settlements").rglob("*") if p.is_file()
    }
    assert len(report_files) == 3
    for p in report_files:
        p.unlink()
    q(env.url, "UPDATE settlements SET report = NULL RETURNING id")
    run_ = run(env.service.run_for_date(YESTERDAY))
    storage = LocalDirectoryStorage(env.files)
    reports = PartitionReports(
        env.db, PgSettlementStore(), lambda p: ReportSink(storage, p, storage.scratch_dir())
    )
    for (partition,) in q(env.url, "SELECT DISTINCT partition FROM settlements"):
        run(reports.write(run_, partition))
    assert {p: p.read_bytes() for p in report_files} == report_files


def test_crash_mid_run_then_resume_settles_exactly_once(env: Env) -> None:
    class Crash(Exception):
        pass

    class CrashingStore(PgSettlementStore):
        async def complete_settlements(self, *args: Any, **kwargs: Any) -> None:
            await super().complete_settlements(*args, **kwargs)
            raise Crash  # after items, ledger and totals were written: all rolled back

    async def scenario() -> None:
        merchants = [await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
                     for _ in range(8)]  # fmt: skip
        for i, m in enumerate(merchants):
            for j in range(3):
                await capture(env, m, 2_000 + i * 10 + j, "usd", "visa")
        cutoff = await db_now(env)
        run_, _ = await env.service.start(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        # Two partitions that have items (merchant ids are random, so some may be empty).
        parts = [p for (p,) in q(env.url, "SELECT DISTINCT partition FROM settlement_sources "
                                 "ORDER BY 1")]  # fmt: skip
        assert len(parts) >= 2
        await env.service.run_partition(run_.id, parts[0])
        crashing = make_service(env.db, env.files, env.destinations, store=CrashingStore())
        with pytest.raises(Crash):
            await crashing.run_partition(run_.id, parts[1])
        with pytest.raises(InvalidState):
            await env.service.finalize(run_.id)
        done = await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY)
        assert done.status == "completed"

    run(scenario())
    assert q(env.url, "SELECT count(*), sum(gross) FROM settlement_items") == [
        (24, sum(2_000 + i * 10 + j for i in range(8) for j in range(3)))
    ]
    assert q(env.url, "SELECT count(*) FROM settlements") == [(8,)]
    assert_zero_sum(env.url)


def test_two_workers_on_one_date_settle_exactly_once(env: Env, tmp_path: Path) -> None:
    async def scenario() -> None:
        merchants = [await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
                     for _ in range(10)]  # fmt: skip
        for i, m in enumerate(merchants):
            await capture(env, m, 3_000 + i, "usd", "mastercard")
            await capture(env, m, 4_000 + i, "usd", "visa")
        cutoff = await db_now(env)
        other_db = Database(env.url, min_size=1, max_size=2)
        await other_db.open()
        try:
            other = make_service(other_db, env.files, env.destinations)
            run_, _ = await env.service.start(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
            parts = await env.service.pending_partitions(run_.id)

            async def worker(svc: SettlementService) -> int:
                return sum([await svc.run_partition(run_.id, p) for p in parts])

            counts = await asyncio.gather(worker(env.service), worker(other))
            assert sum(counts) == 20
            await env.service.finalize(run_.id)
        finally:
            await other_db.close()

    run(scenario())
    assert q(env.url, "SELECT count(*) FROM settlement_items") == [(20,)]
    assert q(env.url, "SELECT count(*) FROM settlement_runs") == [(1,)]
    assert_zero_sum(env.url)


def test_negative_net_is_carried_forward_and_reserve_released(env: Env) -> None:
    async def scenario() -> None:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED,
                               reserve={"percent_bps": 500, "hold_days": 1})  # fmt: skip
        env.destinations.accounts[m] = US_BANK
        p = await capture(env, m, 1_000, "usd", "visa")
        await refund(env, m, p, 900, "usd")
        await refund(env, m, p, 100, "usd")  # net = -fees - reserve: negative
        cut1 = await db_now(env)
        await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cut1)
        (c1,) = q(env.url, "SELECT carried_out, payout, reserve_held FROM settlements")
        assert c1[0] == -(59 + 50) and c1[1] == 0 and c1[2] == 50  # fee 2.9% + 30; 5% reserve
        assert await balance(env, m, AccountKind.PENDING, "usd") == c1[0]
        await capture(env, m, 10_000, "usd", "visa")
        cut2 = await db_now(env)
        await env.service.settle(SYSTEM_CLI, ORIGIN, TODAY, cutoff_at=cut2)
        (row,) = q(env.url, "SELECT carried_in, reserve_released, reserve_held, fees, payout "
                   "FROM settlements WHERE business_date = %s", TODAY)  # fmt: skip
        carried_in, released, held, fees, payout = row
        assert (carried_in, released) == (c1[0], 50)
        assert payout == 10_000 - fees - held + released + carried_in
        assert await balance(env, m, AccountKind.PENDING, "usd") == 0
        assert await balance(env, m, AccountKind.RESERVE, "usd") == held

    run(scenario())
    assert_zero_sum(env.url)


def test_payout_return_and_bad_input(env: Env) -> None:
    async def scenario() -> None:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        env.destinations.accounts[m] = US_BANK
        await capture(env, m, 5_000, "usd", "visa")
        cutoff = await db_now(env)
        with pytest.raises(InvalidRequest):
            await env.service.settle(SYSTEM_CLI, ORIGIN, TODAY + timedelta(days=2))
        with pytest.raises(InvalidState):  # today's cutoff (midnight tonight) has not passed
            await env.service.settle(SYSTEM_CLI, ORIGIN, TODAY)
        await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        (po,) = q(env.url, "SELECT id, amount FROM payouts")
        failed = await env.service.mark_payout(SYSTEM_CLI, ORIGIN, po[0], "failed", "R01")
        assert failed.status == "failed" and failed.failure_code == "R01"
        assert await balance(env, m, AccountKind.AVAILABLE, "usd") == po[1]
        with pytest.raises(InvalidState):
            await env.service.mark_payout(SYSTEM_CLI, ORIGIN, po[0], "paid")

    run(scenario())
    assert_zero_sum(env.url)


def test_invariant_violation_aborts_the_run(env: Env) -> None:
    async def scenario() -> None:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        await capture(env, m, 5_000, "usd", "visa")
        cutoff = await db_now(env)
        run_, _ = await env.service.start(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        for p in await env.service.pending_partitions(run_.id):
            await env.service.run_partition(run_.id, p)
        # Tamper: a settlement total that no longer equals its items.
        async with env.db.transaction() as tx:
            conn: asyncpg.Connection = conn_of(tx)
            await conn.execute("DELETE FROM settlement_items WHERE type = 'capture'")
        with pytest.raises(InvariantViolation):
            await env.service.finalize(run_.id)

    run(scenario())
    assert q(env.url, "SELECT status FROM settlement_runs") == [("failed",)]


def test_partitions_as_procrastinate_jobs_two_workers(env: Env) -> None:
    from clearport.settlement.jobs import SettlementJobs

    async def scenario() -> None:
        merchants = [await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
                     for _ in range(12)]  # fmt: skip
        for i, m in enumerate(merchants):
            await capture(env, m, 6_000 + i, "usd", "visa")
        cutoff = await db_now(env)
        run_, _ = await env.service.start(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        other_db = Database(env.url, min_size=1, max_size=2)
        await other_db.open()
        try:
            other = make_service(other_db, env.files, env.destinations)
            async with (
                SettlementJobs(env.service, env.url) as a,
                SettlementJobs(other, env.url) as b,
            ):
                assert await a.enqueue(run_) == 4
                assert await b.enqueue(run_) == 0  # already queued: not twice
                await asyncio.gather(
                    a.run_worker(wait=False, concurrency=2),
                    b.run_worker(wait=False, concurrency=2),
                )
                # The finalize job was queued by whichever worker settled the last partition.
                await a.run_worker(wait=False)
        finally:
            await other_db.close()

    run(scenario())
    assert q(env.url, "SELECT status FROM settlement_runs") == [("completed",)]
    assert q(env.url, "SELECT count(*), count(DISTINCT source_id) FROM settlement_items") == [
        (12, 12)
    ]
    assert q(env.url, "SELECT count(*) FROM settlement_partitions WHERE status = 'done'") == [(4,)]
    assert_zero_sum(env.url)


def test_two_settle_commands_at_once_join_one_run(env: Env) -> None:
    async def scenario() -> None:
        for i in range(6):
            m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
            await capture(env, m, 7_000 + i, "usd", "visa")
        cutoff = await db_now(env)
        other_db = Database(env.url, min_size=1, max_size=2)
        await other_db.open()
        try:
            other = make_service(other_db, env.files, env.destinations)
            a, b = await asyncio.gather(
                env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff),
                other.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff),
            )
            assert a.id == b.id and a.status == b.status == "completed"
        finally:
            await other_db.close()

    run(scenario())
    assert q(env.url, "SELECT count(*), count(DISTINCT source_id) FROM settlement_items") == [
        (6, 6)
    ]
    assert_zero_sum(env.url)
