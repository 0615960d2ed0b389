"""Bulk load for the settlement benchmark: merchants, captured payments, 2% refunds and their
ledger transfers, with COPY (no per-row API calls). Bench/demo data only.

The ledger rows are written as one journal per table load, and the accounts' totals are set from
the same rows, so the ledger's invariants (journal nets to zero, totals = transfers) hold.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time

import psycopg

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BRANDS = ("visa", "visa", "visa", "mastercard", "mastercard", "amex", "discover")
CHUNK_ROWS = 50_000


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


_TO_CROCKFORD = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET
)  # RFC 4648 base32 digit i -> Crockford digit i: same values, same order


def _id(prefix: str, ms: int, n: int, salt: int) -> str:
    """prefix + 10 chars of ms + 6 of salt + 10 of n (130 bits), like core/ids.new_id."""
    value = ((ms << 80) | (salt << 50) | n) << 6  # 136 bits = 17 bytes
    return f"{prefix}_" + base64.b32encode(value.to_bytes(17, "big"))[:26].decode().translate(
        _TO_CROCKFORD
    )


def _chunks(rows: Iterator[str], size: int = CHUNK_ROWS) -> Iterator[bytes]:
    buf: list[str] = []
    for row in rows:
        buf.append(row)
        if len(buf) >= size:
            yield "".join(buf).encode()
            buf = []
    if buf:
        yield "".join(buf).encode()


def seed(
    url: str,
    *,
    payments: int,
    merchants: int,
    business_date: date,
    refund_ratio: float = 0.02,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Load `payments` captures (and refunds) spread over `merchants`, created on the date."""
    rng = random.Random(42)
    salt = rng.randrange(32**6)
    start = datetime.combine(business_date, time(0), UTC)
    day_ms = 86_400_000 - 1
    base_ms = int(start.timestamp() * 1000)
    merchant_ids = [_id("mer", base_ms, i, salt) for i in range(merchants)]
    refunds = int(payments * refund_ratio)
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SET synchronous_commit = off")  # bench data: a crash just means re-seed
        with conn.cursor() as cur:
            with cur.copy(
                "COPY merchants (id, name, country, mcc, default_currency, pricing, "
                "payout_delay_days, reserve) FROM STDIN"
            ) as copy:
                blended = json.dumps(
                    {"model": "blended", "percent_bps": 290, "fixed_minor": {"usd": 30},
                     "brand_overrides": {"amex": {"percent_bps": 350, "fixed_minor": {}}}}
                )  # fmt: skip
                icpp = json.dumps(
                    {
                        "model": "interchange_plus",
                        "markup_bps": 40,
                        "markup_fixed_minor": {"usd": 5},
                    }
                )
                reserve = json.dumps({"percent_bps": 500, "hold_days": 7})
                no_reserve = json.dumps({"percent_bps": 0, "hold_days": 0})
                for i, mid in enumerate(merchant_ids):
                    pricing = icpp if i % 4 == 0 else blended
                    res = reserve if i % 10 == 0 else no_reserve
                    copy.write(f"{mid}\tBench {i}\tUS\t5999\tusd\t{pricing}\t0\t{res}\n".encode())
            # Accounts: each merchant's pending, the platform's processor receivable.
            cur.execute(
                """INSERT INTO ledger_accounts (owner, kind, currency, debit_normal)
                   SELECT unnest(%s::text[]), 'pending', 'usd', false
                   ON CONFLICT DO NOTHING""",
                (merchant_ids,),
            )
            cur.execute(
                """INSERT INTO ledger_accounts (owner, kind, currency, debit_normal)
                   VALUES ('platform', 'processor_receivable', 'usd', true)
                   ON CONFLICT DO NOTHING"""
            )
            accounts: dict[str, int] = dict(
                cur.execute(
                    "SELECT owner, id FROM ledger_accounts WHERE currency = 'usd' "
                    "AND kind IN ('pending', 'processor_receivable')"
                ).fetchall()
            )
            receivable = accounts["platform"]
            journal = cur.execute(
                "INSERT INTO ledger_journals (transfer_count, created_at, posted_at) "
                "VALUES (%s, %s, %s) RETURNING id",
                (payments + refunds, start, start),
            ).fetchone()
            assert journal is not None
            journal_id = journal[0]

            amounts = [rng.randrange(100, 50_000) for _ in range(min(payments, 100_003))]
            pay_merchant = [rng.randrange(merchants) for _ in range(min(payments, 100_019))]

            def payment(n: int) -> tuple[str, int, int, int, str]:
                ms = base_ms + (n * day_ms) // max(payments, 1)
                return (
                    _id("pay", ms, n, salt),
                    pay_merchant[n % len(pay_merchant)],
                    amounts[n % len(amounts)],
                    ms,
                    BRANDS[n % len(BRANDS)],
                )

            def ts(ms: int) -> str:
                return datetime.fromtimestamp(ms / 1000, UTC).isoformat()

            def payment_rows() -> Iterator[str]:
                for n in range(payments):
                    pid, m, amount, ms, brand = payment(n)
                    t = ts(ms)
                    yield (
                        f"{pid}\t{merchant_ids[m]}\t{amount}\tusd\tcaptured\tt\t{amount}\t"
                        f"{brand}\t424242\t4242\t12\t2030\tfp\ttok_bench\tatt_bench\t"
                        f"simulator\t{{}}\t\\N\t{t}\t{t}\t{t}\n"
                    )

            with cur.copy(
                "COPY payments (id, merchant_id, amount, currency, status, capture_requested, "
                "amount_captured, card_brand, card_bin, card_last4, card_exp_month, "
                "card_exp_year, card_fingerprint, token_id, auth_attempt_id, connector, routing, "
                "reference, created_at, updated_at, captured_at) FROM STDIN"
            ) as copy:
                for i, chunk in enumerate(_chunks(payment_rows())):
                    copy.write(chunk)
                    if progress:
                        progress("payments", min((i + 1) * CHUNK_ROWS, payments))

            step = max(payments // max(refunds, 1), 1)

            def refund_rows() -> Iterator[str]:
                for r in range(refunds):
                    pid, m, amount, ms, _ = payment(r * step)
                    t = ts(ms + 1)
                    yield (
                        f"{_id('rfd', ms + 1, r, salt)}\t{pid}\t{merchant_ids[m]}\t"
                        f"{max(amount // 2, 1)}\tusd\tsucceeded\tatt_bench\t{t}\t{t}\n"
                    )

            with cur.copy(
                "COPY refunds (id, payment_id, merchant_id, amount, currency, status, attempt_id, "
                "created_at, updated_at) FROM STDIN"
            ) as copy:
                for chunk in _chunks(refund_rows()):
                    copy.write(chunk)

            def transfer_rows() -> Iterator[str]:
                for n in range(payments):
                    pid, m, amount, ms, _ = payment(n)
                    yield (
                        f"{pid}:capture\t{_id('txn', ms, n, salt)}\t{journal_id}\tpost\t"
                        f"{receivable}\t{accounts[merchant_ids[m]]}\t{amount}\tusd\tcapture\t"
                        f"{pid}\t{merchant_ids[m]}\t{ts(ms)}\n"
                    )
                for r in range(refunds):
                    pid, m, amount, ms, _ = payment(r * step)
                    rid = _id("rfd", ms + 1, r, salt)
                    yield (
                        f"{rid}:refund\t{_id('txn', ms + 1, payments + r, salt)}\t{journal_id}\t"
                        f"post\t{accounts[merchant_ids[m]]}\t{receivable}\t{max(amount // 2, 1)}"
                        f"\tusd\trefund\t{rid}\t{merchant_ids[m]}\t{ts(ms + 1)}\n"
                    )

            with cur.copy(
                "COPY ledger_transfers (id, txn_id, journal_id, action, debit_account_id, "
                "credit_account_id, amount, currency, code, source, merchant_id, created_at) "
                "FROM STDIN"
            ) as copy:
                for i, chunk in enumerate(_chunks(transfer_rows())):
                    copy.write(chunk)
                    if progress:
                        progress("transfers", min((i + 1) * CHUNK_ROWS, payments + refunds))
            # Account totals from the rows just loaded.
            cur.execute(
                """WITH d AS (SELECT debit_account_id AS a, sum(amount) s FROM ledger_transfers
                               WHERE journal_id = %(j)s GROUP BY 1),
                        c AS (SELECT credit_account_id AS a, sum(amount) s FROM ledger_transfers
                               WHERE journal_id = %(j)s GROUP BY 1)
                   UPDATE ledger_accounts la
                      SET debits_posted = la.debits_posted + coalesce(d.s, 0),
                          credits_posted = la.credits_posted + coalesce(c.s, 0)
                     FROM ledger_accounts x LEFT JOIN d ON d.a = x.id LEFT JOIN c ON c.a = x.id
                    WHERE la.id = x.id AND (d.s IS NOT NULL OR c.s IS NOT NULL)""",
                {"j": journal_id},
            )
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        conn.commit()
    return {"merchants": merchants, "payments": payments, "refunds": refunds}


def export_captures_csv(url: str, path: str) -> int:
    """The seeded capture transfers as CSV (the benchmark's COPY baseline input)."""
    n = 0
    with psycopg.connect(url) as conn, conn.cursor() as cur, open(path, "wb") as f:
        with cur.copy(
            "COPY (SELECT id, source, amount, currency, code, created_at FROM ledger_transfers "
            "WHERE code = 'capture') TO STDOUT WITH (FORMAT csv)"
        ) as copy:
            for data in copy:
                f.write(data)
        n = cur.rowcount
    return n


def copy_baseline(url: str, path: str) -> None:
    """COPY the CSV into a fresh unindexed table: what loading the rows alone costs."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_baseline")
        conn.execute(
            "CREATE TABLE bench_copy_baseline (id text, source text, amount bigint, "
            "currency text, code text, created_at timestamptz)"
        )
        with (
            conn.cursor() as cur,
            open(path, "rb") as f,
            cur.copy("COPY bench_copy_baseline FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            while data := f.read(1 << 20):
                copy.write(data)
        conn.execute("DROP TABLE bench_copy_baseline")
