"""Money completeness (issue 13): disputes, adjustments and uploaded files; the transaction log
covers disputes and adjustments; settlement items and settlements carry them; payouts that fail
are paid again; the platform's adjustments account; fixed amounts in pricing per currency.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The dispute fee merchants onboarded before this revision get (their pricing named none), and
# the example fee of new merchants (merchants/domain.py DEFAULT_DISPUTE_FEE_MINOR): minor units
# per currency.
_DEFAULT_DISPUTE_FEES = (
    '{"usd": 1500, "eur": 1500, "gbp": 1500, "cad": 1500, "aud": 2500, "chf": 1500, '
    '"jpy": 2000, "kwd": 5000}'
)


def upgrade() -> None:
    op.execute(
        r"""
-- The platform's side of an adjustment: what it credits merchants, or takes back.
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN ('pending',
    'available', 'reserve', 'processor_receivable', 'fee_revenue', 'interchange_payable',
    'scheme_fee_payable', 'payouts_in_transit', 'rounding', 'adjustments'));

-- Every money movement in the tamper-evident chain: disputes and adjustments too. An
-- adjustment belongs to no payment. (Existing rows keep their values, so their seals hold.)
ALTER TABLE txlog DROP CONSTRAINT txlog_object_type_check;
ALTER TABLE txlog ADD CONSTRAINT txlog_object_type_check
    CHECK (object_type IN ('payment', 'refund', 'dispute', 'adjustment'));
ALTER TABLE txlog ALTER COLUMN payment_id DROP NOT NULL;
ALTER TABLE txlog ADD CONSTRAINT txlog_payment_named
    CHECK (payment_id IS NOT NULL OR object_type = 'adjustment');

-- What chargebacks took from a payment and did not give back (open or lost): it counts against
-- what is left to refund or dispute, like a refund.
ALTER TABLE payments ADD COLUMN amount_disputed bigint NOT NULL DEFAULT 0
    CHECK (amount_disputed >= 0);
ALTER TABLE payments DROP CONSTRAINT payments_check2;
ALTER TABLE payments ADD CONSTRAINT payments_refunds_and_disputes_within_captured
    CHECK (amount_refunded + amount_refund_pending + amount_disputed <= amount_captured);

-- Uploaded files (evidence, processor files): the bytes are in object storage.
CREATE TABLE files (
    id          text PRIMARY KEY,
    merchant_id text REFERENCES merchants (id),  -- NULL: an operator's file
    purpose     text NOT NULL CHECK (purpose IN ('dispute_evidence', 'reconciliation')),
    type        text NOT NULL CHECK (type IN ('pdf', 'png', 'jpeg', 'csv')),
    size        bigint NOT NULL CHECK (size > 0),
    sha256      text NOT NULL,
    object_key  text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX files_merchant ON files (merchant_id, id);

CREATE TABLE disputes (
    id                     text PRIMARY KEY,
    merchant_id            text NOT NULL REFERENCES merchants (id),
    payment_id             text NOT NULL REFERENCES payments (id),
    connector              text NOT NULL,
    inquiry                boolean NOT NULL,
    amount                 bigint NOT NULL CHECK (amount > 0),
    fee                    bigint NOT NULL CHECK (fee >= 0),
    currency               text NOT NULL,
    status                 text NOT NULL CHECK (status IN ('needs_response', 'under_review', 'won',
                               'lost', 'warning_needs_response', 'warning_under_review',
                               'warning_closed')),
    reason                 text NOT NULL,
    network_reason_code    text,
    network_case_id        text,
    evidence               jsonb NOT NULL DEFAULT '{}',
    evidence_due_by        timestamptz NOT NULL,
    evidence_submitted_at  timestamptz,
    submission_count       integer NOT NULL DEFAULT 0,
    -- How much of amount + fee the merchant's available balance paid (the rest: pending).
    from_available         bigint NOT NULL DEFAULT 0 CHECK (from_available >= 0),
    -- The credit of a won dispute is a source of its own (a settlement item): its id.
    reversal_id            text UNIQUE,
    created_by             text NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    closed_at              timestamptz,
    CHECK (inquiry = (status LIKE 'warning\_%')),
    CHECK (NOT inquiry OR (fee = 0 AND from_available = 0)),
    CHECK (from_available <= amount + fee),
    CHECK ((reversal_id IS NOT NULL) <= (status = 'won'))
);
-- One dispute per network case and connector; the inquiry a chargeback escalates from may share
-- its case.
CREATE UNIQUE INDEX disputes_network_case ON disputes (connector, network_case_id, inquiry)
    WHERE network_case_id IS NOT NULL;
CREATE INDEX disputes_merchant ON disputes (merchant_id, id);
CREATE INDEX disputes_payment ON disputes (payment_id, id);

CREATE TABLE adjustments (
    id                  text PRIMARY KEY,
    merchant_id         text NOT NULL REFERENCES merchants (id),
    amount              bigint NOT NULL CHECK (amount <> 0),
    currency            text NOT NULL,
    reason              text NOT NULL CHECK (length(reason) > 0),
    balance_transaction text NOT NULL,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL
);
CREATE INDEX adjustments_merchant ON adjustments (merchant_id, id);

-- Settlement sources and items of the new kinds. A dispute's fee was charged when it was
-- created (`fee` of the source): the item shows it, the run does not charge it again. An
-- adjustment carries its sign; it belongs to no payment.
ALTER TABLE settlement_sources DROP CONSTRAINT settlement_sources_amount_check;
ALTER TABLE settlement_sources ADD CONSTRAINT settlement_sources_amount_check
    CHECK (amount > 0 OR (type = 'adjustment' AND amount <> 0));
ALTER TABLE settlement_sources ADD COLUMN fee bigint NOT NULL DEFAULT 0 CHECK (fee >= 0);

ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_type_check;
ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_check2;
ALTER TABLE settlement_items ADD CONSTRAINT settlement_items_type_check
    CHECK (type IN ('capture', 'refund', 'dispute', 'dispute_reversal', 'adjustment'));
ALTER TABLE settlement_items ADD CONSTRAINT settlement_items_gross_sign CHECK (CASE
    WHEN type IN ('capture', 'dispute_reversal') THEN gross > 0
    WHEN type IN ('refund', 'dispute') THEN gross < 0
    ELSE gross <> 0 END);
ALTER TABLE settlement_items ALTER COLUMN payment_id DROP NOT NULL;
ALTER TABLE settlement_items ADD CONSTRAINT settlement_items_payment_named
    CHECK (payment_id IS NOT NULL OR type = 'adjustment');

-- disputes: disputed amounts taken minus those given back (won); adjustments: signed;
-- dispute_fees: within fees; repaid: failed payouts' money paid again by this settlement.
ALTER TABLE settlements ADD COLUMN disputes bigint NOT NULL DEFAULT 0,
    ADD COLUMN adjustments bigint NOT NULL DEFAULT 0,
    ADD COLUMN dispute_fees bigint NOT NULL DEFAULT 0,
    ADD COLUMN repaid bigint NOT NULL DEFAULT 0 CHECK (repaid >= 0);
ALTER TABLE settlements DROP CONSTRAINT settlements_check;
ALTER TABLE settlements DROP CONSTRAINT settlements_check1;
ALTER TABLE settlements ADD CONSTRAINT settlements_net CHECK (
    gross - refunds - disputes + adjustments - fees - reserve_held + reserve_released = net);
ALTER TABLE settlements ADD CONSTRAINT settlements_carry CHECK (
    net + carried_in + repaid = payout + carried_out);

-- A failed payout's money is paid again by the pair's next settlement: which one.
ALTER TABLE payouts ADD COLUMN repaid_by text REFERENCES settlements (id);
CREATE INDEX payouts_to_repay ON payouts (merchant_id, currency)
    WHERE status = 'failed' AND repaid_by IS NULL;
CREATE INDEX payouts_pending_pair ON payouts (merchant_id, currency) WHERE status = 'pending';
-- A NACHA return names the payout by the identification number its entry was sent with: the
-- payout id's last 15 characters (settlement/payout_files/nacha.py).
CREATE INDEX payouts_identification ON payouts (right(id, 15));

-- Fixed amounts in pricing are per currency: a number meant the merchant's default currency.
CREATE FUNCTION pg_temp.per_currency(value jsonb, currency text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(value) = 'number' THEN
        CASE WHEN value = '0'::jsonb THEN '{}'::jsonb ELSE jsonb_build_object(currency, value) END
        ELSE coalesce(value, '{}'::jsonb) END
$$;
UPDATE merchants SET pricing = CASE pricing ->> 'model'
    WHEN 'blended' THEN pricing
        || jsonb_build_object('fixed_minor',
               pg_temp.per_currency(pricing -> 'fixed_minor', default_currency))
        || jsonb_build_object('brand_overrides', coalesce((
               SELECT jsonb_object_agg(b.key, b.value || jsonb_build_object('fixed_minor',
                          pg_temp.per_currency(b.value -> 'fixed_minor', default_currency)))
                 FROM jsonb_each(coalesce(pricing -> 'brand_overrides', '{}'::jsonb)) b),
               '{}'::jsonb))
    ELSE pricing
        || jsonb_build_object('markup_fixed_minor',
               pg_temp.per_currency(pricing -> 'markup_fixed_minor', default_currency))
    END
    || jsonb_build_object('dispute_fee_minor',
           coalesce(pricing -> 'dispute_fee_minor', '"""
        + _DEFAULT_DISPUTE_FEES
        + """'::jsonb));
"""
    )


def downgrade() -> None:
    op.execute(
        """
UPDATE merchants SET pricing = (pricing - 'dispute_fee_minor') || CASE pricing ->> 'model'
    WHEN 'blended' THEN jsonb_build_object(
        'fixed_minor', coalesce((pricing -> 'fixed_minor' ->> default_currency)::bigint, 0),
        'brand_overrides', coalesce((
            SELECT jsonb_object_agg(b.key, b.value || jsonb_build_object('fixed_minor',
                       coalesce((b.value -> 'fixed_minor' ->> default_currency)::bigint, 0)))
              FROM jsonb_each(coalesce(pricing -> 'brand_overrides', '{}'::jsonb)) b),
            '{}'::jsonb))
    ELSE jsonb_build_object('markup_fixed_minor',
        coalesce((pricing -> 'markup_fixed_minor' ->> default_currency)::bigint, 0))
    END;
DROP INDEX payouts_identification;
DROP INDEX payouts_pending_pair;
DROP INDEX payouts_to_repay;
ALTER TABLE payouts DROP COLUMN repaid_by;
ALTER TABLE settlements DROP CONSTRAINT settlements_carry;
ALTER TABLE settlements DROP CONSTRAINT settlements_net;
ALTER TABLE settlements DROP COLUMN disputes, DROP COLUMN adjustments, DROP COLUMN dispute_fees,
    DROP COLUMN repaid;
ALTER TABLE settlements ADD CONSTRAINT settlements_check
    CHECK (gross - refunds - fees - reserve_held + reserve_released = net);
ALTER TABLE settlements ADD CONSTRAINT settlements_check1
    CHECK (net + carried_in = payout + carried_out);
ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_payment_named;
ALTER TABLE settlement_items ALTER COLUMN payment_id SET NOT NULL;
ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_gross_sign;
ALTER TABLE settlement_items DROP CONSTRAINT settlement_items_type_check;
ALTER TABLE settlement_items ADD CONSTRAINT settlement_items_type_check
    CHECK (type IN ('capture', 'refund'));
ALTER TABLE settlement_items ADD CONSTRAINT settlement_items_check2
    CHECK ((type = 'capture') = (gross > 0));
ALTER TABLE settlement_sources DROP COLUMN fee;
ALTER TABLE settlement_sources DROP CONSTRAINT settlement_sources_amount_check;
ALTER TABLE settlement_sources ADD CONSTRAINT settlement_sources_amount_check CHECK (amount > 0);
DROP TABLE adjustments;
DROP TABLE disputes;
DROP TABLE files;
ALTER TABLE payments DROP CONSTRAINT payments_refunds_and_disputes_within_captured;
ALTER TABLE payments ADD CONSTRAINT payments_check2
    CHECK (amount_refunded + amount_refund_pending <= amount_captured);
ALTER TABLE payments DROP COLUMN amount_disputed;
ALTER TABLE txlog DROP CONSTRAINT txlog_payment_named;
ALTER TABLE txlog ALTER COLUMN payment_id SET NOT NULL;
ALTER TABLE txlog DROP CONSTRAINT txlog_object_type_check;
ALTER TABLE txlog ADD CONSTRAINT txlog_object_type_check
    CHECK (object_type IN ('payment', 'refund'));
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN ('pending',
    'available', 'reserve', 'processor_receivable', 'fee_revenue', 'interchange_payable',
    'scheme_fee_payable', 'payouts_in_transit', 'rounding'));
"""
    )
