"""Reconciliation (issue 16): runs over processor settlement files, the rows they rejected, the
exception queue, and the processors' agreed fee schedules; the platform's account for what a
reconciliation writes off.

The file's rows themselves are staged in a temporary table of the run's own session (recomputable
from the file, so never logged): only the exceptions, the rejected rows and the counts are kept.

Revision ID: 0013
Revises: 0015
"""

from alembic import op

revision = "0013"
down_revision = "0015"
branch_labels = None
depends_on = None

_KINDS = (
    "'pending', 'available', 'reserve', 'processor_receivable', 'fee_revenue', "
    "'interchange_payable', 'scheme_fee_payable', 'payouts_in_transit', 'rounding', 'adjustments'"
)


def upgrade() -> None:
    op.execute(
        f"""
-- What a reconciliation writes off (or the processor paid beyond what was due): the platform's.
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check
    CHECK (kind IN ({_KINDS}, 'reconciliation_losses'));

CREATE TABLE reconciliation_runs (
    id                text PRIMARY KEY,
    connector         text NOT NULL,
    connector_type    text NOT NULL,
    file_id           text,
    file_sha256       text NOT NULL,
    -- The settlement dates the file covers: [period_start, period_end).
    period_start      date NOT NULL,
    period_end        date NOT NULL CHECK (period_end > period_start),
    lines             bigint NOT NULL CHECK (lines >= 0),
    rejected          bigint NOT NULL CHECK (rejected >= 0),
    matched           bigint NOT NULL CHECK (matched >= 0),
    missing_internal  bigint NOT NULL CHECK (missing_internal >= 0),
    missing_external  bigint NOT NULL CHECK (missing_external >= 0),
    amount_mismatch   bigint NOT NULL CHECK (amount_mismatch >= 0),
    currency_mismatch bigint NOT NULL CHECK (currency_mismatch >= 0),
    fee_difference    bigint NOT NULL CHECK (fee_difference >= 0),
    duplicate         bigint NOT NULL CHECK (duplicate >= 0),
    matched_late      bigint NOT NULL CHECK (matched_late >= 0),
    disputes_created  bigint NOT NULL CHECK (disputes_created >= 0),
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL,
    -- The same file twice is one run (a re-import changes nothing).
    UNIQUE (connector, file_sha256)
);
CREATE INDEX reconciliation_runs_connector ON reconciliation_runs (connector, period_start);

-- Rows of a file that could not be read: reported by line number, never applied.
CREATE TABLE reconciliation_rejected_lines (
    run_id      text NOT NULL
                    REFERENCES reconciliation_runs (id) DEFERRABLE INITIALLY DEFERRED,
    line_number bigint NOT NULL,
    reason      text NOT NULL,
    PRIMARY KEY (run_id, line_number)
);

CREATE TABLE reconciliation_exceptions (
    id                text PRIMARY KEY,
    -- Written in the run's transaction before the run's own row (which carries their counts).
    run_id            text NOT NULL
                          REFERENCES reconciliation_runs (id) DEFERRABLE INITIALLY DEFERRED,
    connector         text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('missing_internal', 'missing_external',
                          'amount_mismatch', 'currency_mismatch', 'fee_difference', 'duplicate')),
    status            text NOT NULL CHECK (status IN ('open', 'resolved')),
    -- matched_late: a later file settled it; dispute_created: the processor's chargeback is
    -- now a Clearport dispute.
    resolution        text CHECK (resolution IN ('accept', 'adjust', 'write_off',
                          'matched_late', 'dispute_created')),
    -- The transaction as the processor names it (attempt id, network reference or case id).
    reference         text NOT NULL,
    network_case_id   text,  -- a dispute row's case
    line_number       bigint,
    line_count        integer NOT NULL CHECK (line_count >= 0),
    item_type         text NOT NULL CHECK (item_type IN ('capture', 'refund', 'dispute')),
    item_id           text,
    merchant_id       text,
    currency          text NOT NULL,
    internal_amount   bigint,
    external_amount   bigint,
    external_currency text,
    external_fee      bigint,
    expected_fee      bigint,
    -- Signed minor units in `currency`: what the processor's figures mean for the merchant
    -- against what Clearport credited it (+: the merchant is owed more). NULL: not one currency.
    difference        bigint,
    settlement_date   date,
    note              text,
    adjustment_id     text,
    balance_transaction text,
    resolved_by       text,
    created_at        timestamptz NOT NULL,
    resolved_at       timestamptz,
    CHECK ((status = 'resolved') = (resolution IS NOT NULL))
);
CREATE INDEX reconciliation_exceptions_run ON reconciliation_exceptions (run_id, id);
CREATE INDEX reconciliation_exceptions_queue ON reconciliation_exceptions (status, kind, id);
-- An item's open missing_external exception is closed when a later file settles it.
CREATE INDEX reconciliation_exceptions_open_items ON reconciliation_exceptions (connector, item_id)
    WHERE status = 'open' AND kind = 'missing_external';

-- The internal side of a run is bounded by time: captures and successful refunds of one
-- connector in the period (and the look-back before it), found without reading all history.
CREATE INDEX reconciliation_captures ON payments (connector, captured_at)
    WHERE amount_captured > 0;
CREATE INDEX reconciliation_refund_attempts ON payment_attempts (connector, completed_at)
    WHERE operation = 'refund' AND status = 'succeeded';

-- A file's text that reaches an exception (the reference of a row Clearport does not know, a
-- case id) with a card number in it keeps no card number: a Luhn-valid run of 13-19 digits is
-- masked as core/redaction.py masks it. Applied to the few rows kept, never to every row.
CREATE FUNCTION reconciliation_masked(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    run text;
    total integer;
    digit integer;
    masked text := value;
BEGIN
    IF value !~ '[0-9]{{13}}' THEN
        RETURN value;
    END IF;
    FOR run IN SELECT (regexp_matches(value, '(?:^|[^0-9])([0-9]{{13,19}})(?=[^0-9]|$)', 'g'))[1]
    LOOP
        total := 0;
        FOR i IN 1..length(run) LOOP
            digit := substr(run, length(run) - i + 1, 1)::integer;
            IF i % 2 = 0 THEN
                digit := digit * 2;
                IF digit > 9 THEN
                    digit := digit - 9;
                END IF;
            END IF;
            total := total + digit;
        END LOOP;
        IF total % 10 = 0 THEN
            masked := replace(masked, run, '[REDACTED_PAN]');
        END IF;
    END LOOP;
    RETURN masked;
END
$$;

-- What a processor agreed to charge per transaction: the fees a settlement file is checked
-- against (no schedule for a currency: its fees are not checked).
CREATE TABLE reconciliation_fee_schedules (
    connector    text NOT NULL,
    currency     text NOT NULL,
    percent_bps  integer NOT NULL CHECK (percent_bps BETWEEN 0 AND 10000),
    fixed_minor  bigint NOT NULL CHECK (fixed_minor >= 0),
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (connector, currency)
);
"""
    )


def downgrade() -> None:
    op.execute(
        f"""
DROP FUNCTION reconciliation_masked(text);
DROP INDEX reconciliation_refund_attempts, reconciliation_captures;
DROP TABLE reconciliation_fee_schedules, reconciliation_exceptions,
    reconciliation_rejected_lines, reconciliation_runs;
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN ({_KINDS}));
"""
    )
