"""Ledger schema (issue 4): accounts with totals and flags, immutable transfers, journals
checked at commit, per-journal balance checkpoints, and `ledger_post` (one round trip).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from clearport.db.migrate import stored_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
-- One row per (owner, kind, currency). Totals are maintained per journal (aggregate, then one
-- UPDATE per touched account), so a hot account is written once per batch, not per transfer.
-- The flags are enforced here, by CHECK constraints on the totals (see decision 0200).
CREATE TABLE ledger_accounts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner           text NOT NULL CHECK (owner = 'platform' OR owner LIKE 'mer\_%'),
    kind            text NOT NULL CHECK (kind IN ('pending', 'available', 'reserve',
                        'processor_receivable', 'fee_revenue', 'interchange_payable',
                        'scheme_fee_payable', 'payouts_in_transit', 'rounding')),
    currency        text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    debit_normal    boolean NOT NULL,
    debits_must_not_exceed_credits boolean NOT NULL DEFAULT false,
    credits_must_not_exceed_debits boolean NOT NULL DEFAULT false,
    debits_posted   bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner, kind, currency),
    CONSTRAINT ledger_debits_must_not_exceed_credits CHECK (
        NOT debits_must_not_exceed_credits OR debits_posted + debits_pending <= credits_posted),
    CONSTRAINT ledger_credits_must_not_exceed_debits CHECK (
        NOT credits_must_not_exceed_debits OR credits_posted + credits_pending <= debits_posted),
    CONSTRAINT ledger_merchant_kinds CHECK (
        (kind IN ('pending', 'available', 'reserve')) = (owner <> 'platform'))
);

-- Flags and identity never change once an account is opened.
CREATE FUNCTION ledger_accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger accounts are never deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.owner, NEW.kind, NEW.currency, NEW.debit_normal, NEW.debits_must_not_exceed_credits,
        NEW.credits_must_not_exceed_debits, NEW.id)
       IS DISTINCT FROM (OLD.owner, OLD.kind, OLD.currency, OLD.debit_normal,
        OLD.debits_must_not_exceed_credits, OLD.credits_must_not_exceed_debits, OLD.id) THEN
        RAISE EXCEPTION 'ledger account identity and flags are immutable'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ledger_accounts_guard BEFORE UPDATE OR DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_accounts_guard();

-- One journal per `ledger_post` call: the linked group.
CREATE TABLE ledger_journals (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_count integer NOT NULL CHECK (transfer_count > 0),
    created_at     timestamptz NOT NULL,  -- the transfers' created_at
    posted_at      timestamptz NOT NULL   -- when applied to the balances (under the locks)
);

-- Immutable. Account ids are validated (under lock) by ledger_post and re-checked by the
-- journal's deferred check, so no per-row foreign keys on the hot path.
CREATE TABLE ledger_transfers (
    id                text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    txn_id            text NOT NULL UNIQUE,
    journal_id        bigint NOT NULL,
    action            text NOT NULL CHECK (action IN ('post', 'pending', 'post_pending',
                          'void_pending', 'expire_pending')),
    debit_account_id  bigint NOT NULL,
    credit_account_id bigint NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text NOT NULL,
    code              text NOT NULL CHECK (length(code) BETWEEN 1 AND 32),
    source            text,
    pending_id        text,
    expires_at        timestamptz,
    merchant_id       text,
    created_at        timestamptz NOT NULL,
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((action IN ('post', 'pending')) = (pending_id IS NULL)),
    CHECK (expires_at IS NULL OR action = 'pending')
);
-- A hold is resolved (posted, voided or expired) exactly once.
CREATE UNIQUE INDEX ledger_transfers_resolved_once ON ledger_transfers (pending_id)
    WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_journal ON ledger_transfers (journal_id);
CREATE INDEX ledger_transfers_code_created ON ledger_transfers (code, created_at);
-- A merchant's balance transactions (merchant_id: the merchant whose account the transfer
-- touches, credit side first; NULL for platform-only transfers).
CREATE INDEX ledger_transfers_merchant ON ledger_transfers (merchant_id, txn_id)
    WHERE merchant_id IS NOT NULL;
CREATE INDEX ledger_transfers_expiry ON ledger_transfers (expires_at)
    WHERE action = 'pending' AND expires_at IS NOT NULL;

-- A checkpoint of an account's totals after each journal that touched it: balance as of T is
-- one index probe (account_id, at <= T). `at` strictly increases per account.
CREATE TABLE ledger_balances (
    account_id      bigint NOT NULL,
    at              timestamptz NOT NULL,
    journal_id      bigint NOT NULL,
    debits_posted   bigint NOT NULL,
    credits_posted  bigint NOT NULL,
    debits_pending  bigint NOT NULL,
    credits_pending bigint NOT NULL,
    PRIMARY KEY (account_id, at)
);

CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_journals_append_only BEFORE UPDATE OR DELETE ON ledger_journals
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_balances_append_only BEFORE UPDATE OR DELETE ON ledger_balances
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- At commit: every journal has all its transfers, each transfer's accounts are in its
-- currency, and the journal nets to zero per currency.
CREATE FUNCTION ledger_check_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    bad text;
BEGIN
    -- EXECUTE plans afresh each time: a plan cached while the table was empty (a seq scan)
    -- would otherwise be kept by the session as the table grows.
    EXECUTE $q$
        SELECT coalesce(sum(g.cnt), 0) / 2, string_agg(g.cur, ',') FILTER (WHERE g.bad)
          FROM (SELECT coalesce(v.cur, '?') AS cur, count(*) AS cnt,
                       sum(v.delta) <> 0 OR bool_or(v.cur IS DISTINCT FROM v.tcur) AS bad
                  FROM ledger_transfers t
                  LEFT JOIN ledger_accounts d ON d.id = t.debit_account_id
                  LEFT JOIN ledger_accounts c ON c.id = t.credit_account_id
                 CROSS JOIN LATERAL (VALUES (d.currency, t.amount, t.currency),
                                            (c.currency, -t.amount, t.currency))
                       AS v(cur, delta, tcur)
                 WHERE t.journal_id = $1
                 GROUP BY coalesce(v.cur, '?')) g
    $q$ INTO n, bad USING NEW.id;
    IF n <> NEW.transfer_count THEN
        RAISE EXCEPTION 'ledger journal % has % transfers, expected %', NEW.id, n,
            NEW.transfer_count USING ERRCODE = 'check_violation';
    END IF;
    -- Postings per account currency: +amount on the debit account, -amount on the credit one.
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger journal % does not net to zero in %', NEW.id, bad
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_journal_nets_to_zero AFTER INSERT ON ledger_journals
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_journal();
"""
    )
    op.execute(stored_sql("ledger_post.v1"))


def downgrade() -> None:
    op.execute(
        """
DROP FUNCTION ledger_post(text[], text[], text[], text[], text[], text[], bigint[], integer[],
    bigint[], integer[], bigint[], text[], text[], text[], text[], timestamptz[], timestamptz);
DROP TABLE ledger_balances;
DROP TABLE ledger_transfers;
DROP TABLE ledger_journals;
DROP FUNCTION ledger_check_journal();
DROP FUNCTION ledger_account_ids(bigint[], integer[], bigint[], integer);
DROP FUNCTION ledger_expand(anyarray, integer);
DROP TABLE ledger_accounts;
DROP FUNCTION ledger_accounts_guard();
"""
    )
