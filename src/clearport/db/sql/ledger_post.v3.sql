-- ledger_post, version 3 (migration 0019): version 2 with hot platform accounts sharded
-- (decision 0913). Changes:
-- * An account is (owner, kind, currency, shard). Merchant accounts have one row (shard 0).
--   A platform account named by reference is posted to the transaction's shard: the next
--   turn of the sequence ledger_shard_turn modulo N, where N is the setting
--   `clearport.ledger_shards` (default 16), remembered for the rest of the transaction. So
--   concurrent transactions take different rows in turn and do not queue on one row lock, and
--   every post of one transaction uses one shard. Platform accounts carry no balance limit, so no check
--   needs the sum of the shards; the balance of a sharded account is the sum of its rows.
-- * A transfer that resolves a hold is applied to the hold's own shard, so each row's pending
--   totals stay its own holds' (never negative).
-- * A replayed transfer id is the same transfer when its accounts are the same (owner, kind,
--   currency): the shard it landed on the first time does not matter.
-- * The transfer's merchant is read by joining the accounts (version 2 built a jsonb object
--   of every touched account and probed it four times per transfer: a third of a 1,000-transfer
--   batch's time).
-- Same results otherwise. A change is a new file loaded by a new migration; this one never
-- changes.

-- Post one linked group in one call. Accounts named by reference (p_ref_*) are opened on first
-- use; transfers name accounts by id (p_debit/p_credit) or by 1-based index into the refs.
-- Returns a single 'all_created' row when every transfer is new (the caller knows the txn ids
-- it passed), else one row per transfer, in order ('created' | 'exists', txn_id), or a single
-- 'error' row naming the code and the 0-based index. On error nothing at all is written (the
-- inner block's sub-transaction is rolled back) and the caller's transaction stays usable.
CREATE OR REPLACE FUNCTION ledger_post(
    p_ref_owner text[], p_ref_kind text[], p_ref_cur text[],
    p_ids text[], p_txn_ids text[], p_actions text[],
    p_debit bigint[], p_debit_ref integer[], p_credit bigint[], p_credit_ref integer[],
    p_amounts bigint[], p_currencies text[], p_codes text[], p_sources text[],
    p_pending_ids text[], p_expires timestamptz[], p_now timestamptz
) RETURNS TABLE (status text, txn_id text, err_code text, err_index integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_ref_ids bigint[];
    v_debit bigint[];
    v_credit bigint[];
    v_accounts bigint[];
    v_currency jsonb;
    v_eff_acc bigint[];
    v_eff_dp bigint[];
    v_eff_cp bigint[];
    v_eff_dq bigint[];
    v_eff_cq bigint[];
    v_shards integer;
    v_shard smallint;
    v_at timestamptz;
    v_created_at timestamptz;
    v_clock timestamptz;
    v_journal bigint;
    v_created integer;
    v_err record;
    v_detail text;
    v_n integer := cardinality(p_ids);
BEGIN
    p_actions := ledger_expand(p_actions, v_n);
    p_currencies := ledger_expand(p_currencies, v_n);
    p_codes := ledger_expand(p_codes, v_n);
    BEGIN
        IF cardinality(p_ref_owner) > 0 THEN
            IF 'platform' = ANY (p_ref_owner) THEN
                v_shards := coalesce(
                    nullif(current_setting('clearport.ledger_shards', true), '')::integer, 16);
                IF v_shards NOT BETWEEN 1 AND 1024 THEN
                    RAISE EXCEPTION 'clearport.ledger_shards must be 1..1024, not %', v_shards;
                END IF;
                -- one shard per transaction, taken round-robin from a sequence (not the
                -- transaction id: each call's sub-transaction consumes an id too, which left
                -- odd shards nearly unused)
                v_shard := nullif(current_setting('clearport.ledger_tx_shard', true), '')::smallint;
                IF v_shard IS NULL OR v_shard >= v_shards THEN
                    v_shard := (nextval('ledger_shard_turn') % v_shards)::smallint;
                    PERFORM set_config('clearport.ledger_tx_shard', v_shard::text, true);
                END IF;
            ELSE
                v_shard := 0;
            END IF;
            INSERT INTO ledger_accounts AS a (owner, kind, currency, shard, debit_normal,
                debits_must_not_exceed_credits)
            SELECT r.o, r.k, r.c, r.s, r.k IN ('processor_receivable', 'payouts_in_transit'),
                   r.k IN ('available', 'reserve')
              FROM unnest(p_ref_owner, p_ref_kind, p_ref_cur) AS r0(o, k, c)
             CROSS JOIN LATERAL (SELECT r0.o, r0.k, r0.c,
                    CASE WHEN r0.o = 'platform' THEN v_shard ELSE 0::smallint END) AS r(o, k, c, s)
             WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts x
                                WHERE x.owner = r.o AND x.kind = r.k AND x.currency = r.c
                                  AND x.shard = r.s)
             ORDER BY r.o, r.k, r.c
            ON CONFLICT (owner, kind, currency, shard) DO NOTHING;
            SELECT array_agg(a.id ORDER BY r.i) INTO v_ref_ids
              FROM unnest(p_ref_owner, p_ref_kind, p_ref_cur) WITH ORDINALITY AS r(o, k, c, i)
              JOIN ledger_accounts a ON a.owner = r.o AND a.kind = r.k AND a.currency = r.c
                   AND a.shard = CASE WHEN r.o = 'platform' THEN v_shard ELSE 0 END;
        END IF;
        v_debit := ledger_account_ids(p_debit, p_debit_ref, v_ref_ids, v_n);
        v_credit := ledger_account_ids(p_credit, p_credit_ref, v_ref_ids, v_n);
        -- A transfer resolving a hold on another shard of the same platform account is applied
        -- to the hold's shard (its pending totals are that row's).
        IF EXISTS (SELECT 1 FROM unnest(p_pending_ids) AS x WHERE x IS NOT NULL) THEN
            SELECT array_agg(CASE WHEN ud.shard IS DISTINCT FROM pd.shard AND ud.owner = 'platform'
                                       AND (pd.owner, pd.kind, pd.currency)
                                           = (ud.owner, ud.kind, ud.currency)
                                  THEN pd.id ELSE u.d END ORDER BY u.i),
                   array_agg(CASE WHEN uc.shard IS DISTINCT FROM pc.shard AND uc.owner = 'platform'
                                       AND (pc.owner, pc.kind, pc.currency)
                                           = (uc.owner, uc.kind, uc.currency)
                                  THEN pc.id ELSE u.c END ORDER BY u.i)
              INTO v_debit, v_credit
              FROM unnest(v_debit, v_credit, p_pending_ids) WITH ORDINALITY AS u(d, c, pid, i)
              LEFT JOIN ledger_transfers p ON p.id = u.pid
              LEFT JOIN ledger_accounts ud ON ud.id = u.d
              LEFT JOIN ledger_accounts pd ON pd.id = p.debit_account_id
              LEFT JOIN ledger_accounts uc ON uc.id = u.c
              LEFT JOIN ledger_accounts pc ON pc.id = p.credit_account_id;
        END IF;
        SELECT array_agg(DISTINCT x ORDER BY x) INTO v_accounts
          FROM (SELECT unnest(v_ref_ids) UNION ALL SELECT unnest(p_debit)
                UNION ALL SELECT unnest(p_credit)) AS s(x)
         WHERE x IS NOT NULL;

        -- 1. accounts named by id exist, differ and are in the transfer's currency (accounts
        --    named by reference were checked by the domain and opened above; the journal check
        --    at commit re-checks every currency)
        IF p_debit IS NOT NULL OR p_credit IS NOT NULL THEN
            SELECT jsonb_object_agg(id::text, currency) INTO v_currency
              FROM ledger_accounts WHERE id = ANY (v_accounts);
            SELECT q.i, q.err INTO v_err FROM (
                SELECT u.i, CASE
                    WHEN u.d IS NULL OR u.c IS NULL OR NOT v_currency ? u.d::text
                         OR NOT v_currency ? u.c::text THEN 'account_not_found'
                    WHEN u.d = u.c THEN 'same_account'
                    WHEN v_currency ->> u.d::text <> u.cur
                         OR v_currency ->> u.c::text <> u.cur THEN 'currency_mismatch'
                    END AS err
                  FROM unnest(v_debit, v_credit, p_currencies) WITH ORDINALITY
                       AS u(d, c, cur, i)
            ) q WHERE q.err IS NOT NULL ORDER BY q.i LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'LG001', MESSAGE = v_err.err,
                    DETAIL = (v_err.i - 1)::text;
            END IF;
        END IF;

        v_created_at := clock_timestamp();
        v_clock := coalesce(p_now, v_created_at);  -- "now" for hold expiry
        -- 2. holds being resolved (rows not already recorded under their id)
        IF EXISTS (SELECT 1 FROM unnest(p_pending_ids) AS x WHERE x IS NOT NULL) THEN
            SELECT q.i, q.err INTO v_err FROM (
                SELECT u.i, CASE
                    WHEN p.id IS NULL THEN 'pending_not_found'
                    WHEN p.action <> 'pending' THEN 'not_pending'
                    WHEN EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
                        THEN 'pending_already_resolved'
                    WHEN p.debit_account_id <> u.d OR p.credit_account_id <> u.c
                         OR p.currency <> u.cur THEN 'pending_mismatch'
                    WHEN u.act = 'expire_pending'
                         AND (p.expires_at IS NULL OR p.expires_at > v_clock) THEN 'not_expired'
                    WHEN u.act <> 'expire_pending' AND p.expires_at <= v_clock
                        THEN 'pending_expired'
                    WHEN u.act = 'post_pending' AND u.amount > p.amount
                        THEN 'amount_exceeds_pending'
                    WHEN u.act <> 'post_pending' AND u.amount <> p.amount
                        THEN 'void_amount_mismatch'
                    END AS err
                  FROM unnest(p_ids, p_actions, v_debit, v_credit, p_amounts, p_currencies,
                              p_pending_ids) WITH ORDINALITY
                       AS u(id, act, d, c, amount, cur, pid, i)
                  LEFT JOIN ledger_transfers p ON p.id = u.pid
                 WHERE u.pid IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM ledger_transfers e WHERE e.id = u.id)
            ) q WHERE q.err IS NOT NULL ORDER BY q.i LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'LG001', MESSAGE = v_err.err,
                    DETAIL = (v_err.i - 1)::text;
            END IF;
        END IF;

        -- 3. insert the transfers (ids already recorded are skipped) and aggregate their effect
        --    per account. This runs before the account locks, so batches insert in parallel.
        v_journal := nextval(pg_get_serial_sequence('ledger_journals', 'id'));
        WITH ins AS (
            INSERT INTO ledger_transfers (id, txn_id, journal_id, action, debit_account_id,
                credit_account_id, amount, currency, code, source, pending_id, expires_at,
                merchant_id, created_at)
            SELECT u.id, u.txn, v_journal, u.act, u.d, u.c, u.amount, u.cur, u.code, u.src,
                   u.pid, u.exp,
                   CASE WHEN oc.owner <> 'platform' THEN oc.owner
                        WHEN od.owner <> 'platform' THEN od.owner END,
                   v_created_at
              FROM unnest(p_ids, p_txn_ids, p_actions, v_debit, v_credit, p_amounts,
                          p_currencies, p_codes, p_sources, p_pending_ids, p_expires)
                   AS u(id, txn, act, d, c, amount, cur, code, src, pid, exp)
              LEFT JOIN ledger_accounts od ON od.id = u.d
              LEFT JOIN ledger_accounts oc ON oc.id = u.c
            ON CONFLICT (id) DO NOTHING
            RETURNING ledger_transfers.action, ledger_transfers.debit_account_id,
                      ledger_transfers.credit_account_id, ledger_transfers.amount,
                      ledger_transfers.pending_id
        ), eff AS (
            SELECT ins.debit_account_id AS dacc, ins.credit_account_id AS cacc,
                   CASE WHEN ins.action IN ('post', 'post_pending') THEN ins.amount
                        ELSE 0 END AS posted,
                   CASE WHEN ins.action = 'pending' THEN ins.amount
                        WHEN ins.action = 'post' THEN 0
                        ELSE -(SELECT p.amount FROM ledger_transfers p
                                WHERE p.id = ins.pending_id) END AS pend
              FROM ins
        ), per_account AS (
            SELECT acc, sum(dp) AS dp, sum(cp) AS cp, sum(dq) AS dq, sum(cq) AS cq,
                   sum(n) AS n
              FROM (SELECT dacc AS acc, posted AS dp, 0 AS cp, pend AS dq, 0 AS cq, 1 AS n
                      FROM eff
                    UNION ALL
                    SELECT cacc, 0, posted, 0, pend, 0 FROM eff) s
             GROUP BY acc
        )
        SELECT array_agg(acc ORDER BY acc), array_agg(dp ORDER BY acc),
               array_agg(cp ORDER BY acc), array_agg(dq ORDER BY acc),
               array_agg(cq ORDER BY acc), coalesce(sum(n), 0)
          INTO v_eff_acc, v_eff_dp, v_eff_cp, v_eff_dq, v_eff_cq, v_created
          FROM per_account;

        IF v_created > 0 THEN
            -- 4. lock the touched accounts in id order (concurrent batches cannot deadlock),
            --    then one UPDATE per account with the batch's aggregate, and one checkpoint
            --    per account. The journal's time strictly increases per account.
            PERFORM 1 FROM ledger_accounts WHERE id = ANY (v_eff_acc) ORDER BY id FOR UPDATE;
            SELECT greatest(clock_timestamp(), max(updated_at) + interval '1 microsecond')
              INTO v_at FROM ledger_accounts WHERE id = ANY (v_eff_acc);
            WITH upd AS (
                UPDATE ledger_accounts a
                   SET debits_posted = a.debits_posted + pa.dp,
                       credits_posted = a.credits_posted + pa.cp,
                       debits_pending = a.debits_pending + pa.dq,
                       credits_pending = a.credits_pending + pa.cq,
                       updated_at = v_at
                  FROM unnest(v_eff_acc, v_eff_dp, v_eff_cp, v_eff_dq, v_eff_cq)
                       AS pa(acc, dp, cp, dq, cq)
                 WHERE a.id = pa.acc
                RETURNING a.id, a.debits_posted, a.credits_posted, a.debits_pending,
                          a.credits_pending
            )
            INSERT INTO ledger_balances (account_id, at, journal_id, debits_posted,
                credits_posted, debits_pending, credits_pending)
            SELECT upd.id, v_at, v_journal, upd.debits_posted, upd.credits_posted,
                   upd.debits_pending, upd.credits_pending FROM upd;
            INSERT INTO ledger_journals (id, transfer_count, created_at, posted_at)
                OVERRIDING SYSTEM VALUE VALUES (v_journal, v_created, v_created_at, v_at);
        END IF;

        IF v_created = v_n THEN
            RETURN QUERY SELECT 'all_created', NULL::text, NULL::text, NULL::integer;
            RETURN;
        END IF;
        -- 5. ids already recorded: same fields -> 'exists', different fields -> error. An
        --    account is compared as (owner, kind, currency): a platform account's shard is
        --    chosen per transaction, so a replay may name another shard of the same account.
        SELECT u.i INTO v_err
          FROM unnest(p_ids, p_actions, v_debit, v_credit, p_amounts, p_currencies, p_codes,
                      p_sources, p_pending_ids, p_expires) WITH ORDINALITY
               AS u(id, act, d, c, amount, cur, code, src, pid, exp, i)
          JOIN ledger_transfers e ON e.id = u.id
          LEFT JOIN ledger_accounts ed ON ed.id = e.debit_account_id
          LEFT JOIN ledger_accounts ec ON ec.id = e.credit_account_id
          LEFT JOIN ledger_accounts ud ON ud.id = u.d
          LEFT JOIN ledger_accounts uc ON uc.id = u.c
         WHERE e.journal_id <> v_journal
           AND (e.action, ed.owner, ed.kind, ed.currency, ec.owner, ec.kind, ec.currency,
                e.amount, e.currency, e.code, e.source, e.pending_id, e.expires_at)
               IS DISTINCT FROM (u.act, ud.owner, ud.kind, ud.currency, uc.owner, uc.kind,
                uc.currency, u.amount, u.cur, u.code, u.src, u.pid, u.exp)
         ORDER BY u.i LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'LG001',
                MESSAGE = 'transfer_exists_with_different_fields', DETAIL = (v_err.i - 1)::text;
        END IF;
        RETURN QUERY
            SELECT CASE WHEN t.journal_id = v_journal THEN 'created' ELSE 'exists' END,
                   t.txn_id, NULL::text, NULL::integer
              FROM unnest(p_ids) WITH ORDINALITY AS u(id, i)
              JOIN ledger_transfers t ON t.id = u.id
             ORDER BY u.i;
    EXCEPTION
        WHEN SQLSTATE 'LG001' THEN
            GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
            RETURN QUERY SELECT 'error', NULL::text, SQLERRM, v_detail::integer;
        WHEN check_violation THEN
            GET STACKED DIAGNOSTICS v_detail = CONSTRAINT_NAME;
            RETURN QUERY SELECT 'error', NULL::text,
                CASE v_detail
                    WHEN 'ledger_debits_must_not_exceed_credits' THEN 'exceeds_credits'
                    WHEN 'ledger_credits_must_not_exceed_debits' THEN 'exceeds_debits'
                    ELSE 'constraint_violated' END,
                NULL::integer;
        WHEN unique_violation THEN
            GET STACKED DIAGNOSTICS v_detail = CONSTRAINT_NAME;
            RETURN QUERY SELECT 'error', NULL::text,
                CASE v_detail
                    WHEN 'ledger_transfers_resolved_once' THEN 'pending_already_resolved'
                    ELSE 'transfer_id_conflict' END,
                NULL::integer;
        WHEN deadlock_detected THEN
            -- only possible when the caller's transaction already holds ledger locks from an
            -- earlier post and races a concurrent post of the same ids: retry the transaction
            RETURN QUERY SELECT 'error', NULL::text, 'transfer_id_conflict', NULL::integer;
    END;
END $$;
