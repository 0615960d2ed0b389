-- stl_round_half_even, version 1 (migration 0005): settlement pricing's rounding in SQL.
-- A change is a new file loaded by a new migration; this one never changes.

-- Half-even rounding of an exact numeric to whole minor units (settlement/fees.round_half_even).
CREATE FUNCTION stl_round_half_even(x numeric) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN abs(x - trunc(x)) = 0.5 THEN (2 * round(x / 2))::bigint
                ELSE round(x)::bigint END
$$;
