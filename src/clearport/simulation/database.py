"""The simulation's own SQL: a database of the simulation's, put back as migrated before each
seed, the switch that injects database faults, and the queries the invariants read.

Each seed starts from the database as the migrations left it (`simfault.reset()`: every table
emptied and what the migrations wrote put back), so no run sees another's rows and a settlement
of a business date is the run's alone. Emptying a few hundred rows costs milliseconds where a fresh
database per seed costs a checkpoint for its drop. The database carries one trigger
function (`simfault.strike`) on the tables the money path writes: armed with a table, a kind and
n, the n-th row written to that table meets the fault inside its transaction. The countdown is a
sequence, which no rollback undoes, so a fault strikes once. Nothing here is part of Clearport's
schema: it exists only in simulation databases, and no Clearport service reads it (the
simulator's own connection, beside Clearport's pool, as a test's would be).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from clearport.simulation.schedule import FAULT_TABLES, Fault

PROCESSOR_SCHEMA = "simulator_sim"

_FAULT_SQL = """
CREATE SCHEMA simfault;
CREATE TABLE simfault.armed (tbl text PRIMARY KEY, kind text NOT NULL, strike_at bigint NOT NULL);
CREATE SEQUENCE simfault.tick;
CREATE FUNCTION simfault.strike() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    armed simfault.armed;
BEGIN
    SELECT * INTO armed FROM simfault.armed WHERE tbl = TG_TABLE_NAME;
    IF NOT FOUND OR nextval('simfault.tick') <> armed.strike_at THEN
        RETURN NULL;
    END IF;
    CASE armed.kind
        WHEN 'database.serialization_failure' THEN
            RAISE EXCEPTION 'simulated serialization failure' USING ERRCODE = '40001';
        WHEN 'database.deadlock' THEN
            RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = '40P01';
        WHEN 'database.statement_timeout' THEN
            RAISE EXCEPTION 'canceling statement due to statement timeout'
                USING ERRCODE = '57014';
        ELSE
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(1);  -- the signal lands here: the backend dies mid-transaction
    END CASE;
    RETURN NULL;
END $$;
"""


# What the migrations wrote is kept aside once (simreset), and put back by reset(). The
# append-only tables refuse DELETE: they are emptied with row triggers off (replica role).
_RESET_SQL = """
CREATE SCHEMA simreset;
CREATE TABLE simreset.kept (snapshot text PRIMARY KEY, target text NOT NULL);
DO $$
DECLARE
    t record;
    n bigint;
BEGIN
    FOR t IN SELECT schemaname, tablename FROM pg_tables
              WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'simfault', 'simreset')
    LOOP
        EXECUTE format('SELECT count(*) FROM %I.%I', t.schemaname, t.tablename) INTO n;
        IF n > 0 THEN
            EXECUTE format('CREATE TABLE simreset.%I AS SELECT * FROM %I.%I',
                           t.schemaname || '__' || t.tablename, t.schemaname, t.tablename);
            INSERT INTO simreset.kept VALUES (t.schemaname || '__' || t.tablename,
                                              format('%I.%I', t.schemaname, t.tablename));
        END IF;
    END LOOP;
END $$;
CREATE FUNCTION simfault.reset() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t record;
    k record;
BEGIN
    -- Row triggers off (the append-only guards, foreign keys): DELETE, not TRUNCATE, because a
    -- TRUNCATE syncs a new file per table and index at commit, seconds on a busy disk.
    SET LOCAL session_replication_role = replica;
    FOR t IN SELECT schemaname, tablename FROM pg_tables
              WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'simfault', 'simreset')
    LOOP
        EXECUTE format('DELETE FROM %I.%I', t.schemaname, t.tablename);
    END LOOP;
    FOR k IN SELECT snapshot, target FROM simreset.kept LOOP
        EXECUTE format('INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM simreset.%I',
                       k.target, k.snapshot);
    END LOOP;
    PERFORM setval('simfault.tick', 1, false);
    DELETE FROM simfault.armed;
END $$;
"""


def _trigger_sql(table: str) -> str:
    return (
        f"CREATE TRIGGER simfault AFTER INSERT OR UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION simfault.strike()"
    )


def server_url(url: str, database: str) -> str:
    """`url` with its database replaced. Parsed, not split at the last slash: an embedded
    server's URL names its socket directory in the query (`?host=/tmp/…`)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def install_faults(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(_FAULT_SQL)
            for table in FAULT_TABLES:
                await conn.execute(_trigger_sql(table))
            await conn.execute(_RESET_SQL)
    finally:
        await conn.close()


async def create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class SimulationStore:
    """One connection of the simulator's own to the run's database."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @staticmethod
    async def connect(url: str) -> SimulationStore:
        return SimulationStore(await asyncpg.connect(url))

    async def close(self) -> None:
        await self._conn.close()

    async def reset(self) -> None:
        """The database as the migrations left it."""
        async with self._conn.transaction():
            await self._conn.execute("SELECT simfault.reset()")

    async def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._conn.fetch(query, *args)]

    # --- faults ------------------------------------------------------------------------------

    async def arm(self, fault: Fault, table: str, nth: int) -> None:
        async with self._conn.transaction():
            await self._conn.execute("DELETE FROM simfault.armed")
            await self._conn.execute("SELECT setval('simfault.tick', 1, false)")
            await self._conn.execute(
                "INSERT INTO simfault.armed (tbl, kind, strike_at) VALUES ($1, $2, $3)",
                table,
                str(fault),
                nth,
            )

    async def disarm(self) -> bool:
        """Disarm; True if the armed fault struck."""
        armed = await self._conn.fetchrow("SELECT strike_at FROM simfault.armed")
        await self._conn.execute("DELETE FROM simfault.armed")
        if armed is None:
            return False
        ticks = await self._conn.fetchval(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM simfault.tick"
        )
        return bool(ticks >= armed["strike_at"])

    # --- reads for the invariants ----------------------------------------------------------

    async def ledger_imbalances(self) -> list[str]:
        """Every journal sums to zero per currency; every account's totals equal its
        transfers; the ledger as a whole sums to zero per currency."""
        found: list[str] = []
        for row in await self._conn.fetch(
            """
            SELECT t.journal_id, t.id FROM ledger_transfers t
              JOIN ledger_accounts d ON d.id = t.debit_account_id
              JOIN ledger_accounts c ON c.id = t.credit_account_id
             WHERE d.currency <> t.currency OR c.currency <> t.currency
            """
        ):
            found.append(f"journal {row['journal_id']}: transfer {row['id']} mixes currencies")
        for row in await self._conn.fetch(
            "SELECT currency FROM ledger_accounts GROUP BY currency "
            "HAVING sum(debits_posted) <> sum(credits_posted) "
            "OR sum(debits_pending) <> sum(credits_pending)"
        ):
            found.append(f"the ledger does not sum to zero in {row['currency']}")
        for row in await self._conn.fetch(
            """
            WITH moves AS (
                SELECT debit_account_id AS account, action, amount, 1 AS debit FROM ledger_transfers
                UNION ALL
                SELECT credit_account_id, action, amount, 0 FROM ledger_transfers
            ), holds AS (
                SELECT p.id, p.debit_account_id, p.credit_account_id, p.amount
                  FROM ledger_transfers p
                 WHERE p.action = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
            ), totals AS (
                SELECT account,
                       sum(amount) FILTER (WHERE debit = 1 AND action IN ('post', 'post_pending'))
                           AS dp,
                       sum(amount) FILTER (WHERE debit = 0 AND action IN ('post', 'post_pending'))
                           AS cp
                  FROM moves GROUP BY account
            )
            SELECT a.id, a.owner, a.kind, a.currency FROM ledger_accounts a
              LEFT JOIN totals t ON t.account = a.id
             WHERE a.debits_posted <> coalesce(t.dp, 0) OR a.credits_posted <> coalesce(t.cp, 0)
                OR a.debits_pending <> coalesce(
                       (SELECT sum(amount) FROM holds h WHERE h.debit_account_id = a.id), 0)
                OR a.credits_pending <> coalesce(
                       (SELECT sum(amount) FROM holds h WHERE h.credit_account_id = a.id), 0)
            """
        ):
            found.append(
                f"account {row['owner']}/{row['kind']}/{row['currency']} does not equal its "
                "postings"
            )
        return found

    async def payments(self) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT id, merchant_id, amount, currency, status, amount_captured, amount_refunded, "
            "amount_refund_pending, amount_disputed, auth_attempt_id, pending_operation "
            "FROM payments ORDER BY id"
        )

    async def pending_attempts(self) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT id, payment_id, operation, connector FROM payment_attempts "
            "WHERE status = 'pending' ORDER BY id"
        )

    async def authorization_attempts(self) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT id, payment_id, status, decline_code FROM payment_attempts "
            "WHERE operation = 'authorize'"
        )

    async def processor_records(self) -> list[dict[str, Any]]:
        exists = await self._conn.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", f"{PROCESSOR_SCHEMA}.transactions"
        )
        if not exists:
            return []
        return await self.rows(
            f"SELECT reference, host, kind, original, amount, state, captured, refunded "
            f"FROM {PROCESSOR_SCHEMA}.transactions ORDER BY created_at, reference"
        )

    async def counts(self) -> dict[str, int]:
        """How many objects of each kind exist (an idempotent replay adds none)."""
        counted: dict[str, int] = {}
        for table in ("payments", "refunds", "disputes", "adjustments", "card_tokens"):
            counted[table] = int(await self._conn.fetchval(f"SELECT count(*) FROM {table}"))
        return counted

    async def unsettled_sources(self) -> list[str]:
        """Money that moved and has no settlement item (once everything was settled)."""
        rows = await self._conn.fetch(
            """
            SELECT 'capture ' || p.id AS what FROM payments p
             WHERE p.amount_captured > 0
               AND NOT EXISTS (SELECT 1 FROM settlement_items i
                                WHERE i.source_id = p.id AND i.gross = p.amount_captured)
            UNION ALL
            SELECT 'refund ' || r.id FROM refunds r
             WHERE r.status = 'succeeded'
               AND NOT EXISTS (SELECT 1 FROM settlement_items i
                                WHERE i.source_id = r.id AND i.gross = -r.amount)
            UNION ALL
            SELECT 'dispute ' || d.id FROM disputes d
             WHERE NOT d.inquiry
               AND NOT EXISTS (SELECT 1 FROM settlement_items i
                                WHERE i.source_id = d.id AND i.gross = -d.amount)
            UNION ALL
            SELECT 'dispute reversal ' || d.reversal_id FROM disputes d
             WHERE d.reversal_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM settlement_items i
                                WHERE i.source_id = d.reversal_id AND i.gross = d.amount)
            UNION ALL
            SELECT 'adjustment ' || a.id FROM adjustments a
             WHERE NOT EXISTS (SELECT 1 FROM settlement_items i
                                WHERE i.source_id = a.id AND i.gross = a.amount)
            """
        )
        return [r["what"] for r in rows]

    async def phantom_items(self) -> list[str]:
        """Settlement items whose source does not exist, or that disagree with the sums."""
        rows = await self._conn.fetch(
            """
            SELECT 'item ' || i.source_id || ' has no source' AS what FROM settlement_items i
             WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = i.source_id)
               AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = i.source_id)
               AND NOT EXISTS (SELECT 1 FROM disputes d
                                WHERE d.id = i.source_id OR d.reversal_id = i.source_id)
               AND NOT EXISTS (SELECT 1 FROM adjustments a WHERE a.id = i.source_id)
            UNION ALL
            SELECT 'item ' || source_id || ': gross <> net + commission' FROM settlement_items
             WHERE gross <> net + commission
            UNION ALL
            SELECT 'settlement ' || id || ': gross - refunds - disputes + adjustments - fees'
                   || ' - reserve movements <> net' FROM settlements
             WHERE gross - refunds - disputes + adjustments - fees - reserve_held
                   + reserve_released <> net
            UNION ALL
            SELECT 'settlement ' || s.id || ': its items do not add up to it' FROM settlements s
              JOIN (SELECT settlement_id,
                           sum(gross) FILTER (WHERE type = 'capture') AS gross,
                           -sum(gross) FILTER (WHERE type = 'refund') AS refunds,
                           sum(gross) FILTER (WHERE type = 'adjustment') AS adjustments
                      FROM settlement_items GROUP BY settlement_id) i
                ON i.settlement_id = s.id
             WHERE s.gross <> coalesce(i.gross, 0) OR s.refunds <> coalesce(i.refunds, 0)
                OR s.adjustments <> coalesce(i.adjustments, 0)
            """
        )
        return [r["what"] for r in rows]

    async def running_settlement_runs(self) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT id FROM settlement_runs WHERE status = 'running' ORDER BY business_date"
        )
        return [r["id"] for r in rows]

    async def payouts(self, status: str) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT id FROM payouts WHERE status = $1 ORDER BY id", status
        )
        return [r["id"] for r in rows]

    async def texts_containing(self, needles: list[str]) -> list[str]:
        """Every table (ours and the processor's) whose rows' text holds one of `needles`."""
        tables = await self._conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema', 'simfault')"
        )
        found: list[str] = []
        hexed = [n.encode().hex() for n in needles]
        for t in tables:
            name = f'"{t["table_schema"]}"."{t["table_name"]}"'
            # As text, and as the hex a bytea column shows (a stored response body).
            hit = await self._conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {name} x "
                "WHERE x::text LIKE ANY ($1::text[]) OR x::text LIKE ANY ($2::text[]))",
                [f"%{n}%" for n in needles],
                [f"%{h}%" for h in hexed],
            )
            if hit:
                found.append(f"{name} holds a card number")
        return found
