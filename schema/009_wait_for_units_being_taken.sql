-- A claim that finds no free unit it can lock waits, briefly, for the claims that are taking
-- the units it skipped, before it says "waitlisted" or "sold out". dibs_take_free_unit skips
-- units another transaction has locked (SKIP LOCKED), so a stampede does not queue on one
-- row; but such a unit may be one another claim is taking and has not committed. The caller
-- then counted the held units without it and, seeing none, answered "sold out" with room left
-- in the line (a stampede of 20 on 3 units got one place in line given instead of three), or,
-- had the other claim given the unit back (over its shopper's limit), while the unit was free.
-- Now, when the skipping search finds nothing while units still look free, a second search
-- waits on those units: each is read again once its lock is let go, and taken if still free.
-- The wait is bounded (500 ms, under the 1 s deadlock_timeout): a claim waiting here may
-- hold rows its own settle batch changed (a shopper's live count) that the taker needs next,
-- a cycle Postgres would break only by failing one of the two; at the bound the claim goes on
-- as before, with the units it could lock.

CREATE OR REPLACE FUNCTION dibs_take_free_unit(p_drop text, p_claim bigint, p_ttl_ms int, p_units int,
                                               OUT unit int, OUT fence bigint, OUT expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_start int := floor(random() * p_units)::int;
    v_unit int;
    v_lock_timeout text;
BEGIN
    SELECT f.unit INTO v_unit FROM dibs_units f
     WHERE f.drop_id = p_drop AND f.state = 'free' AND f.unit >= v_start
     ORDER BY f.unit LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF v_unit IS NULL THEN
        SELECT f.unit INTO v_unit FROM dibs_units f
         WHERE f.drop_id = p_drop AND f.state = 'free' AND f.unit < v_start
         ORDER BY f.unit LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF v_unit IS NULL AND EXISTS (SELECT 1 FROM dibs_units f WHERE f.drop_id = p_drop AND f.state = 'free') THEN
        v_lock_timeout := current_setting('lock_timeout');
        PERFORM set_config('lock_timeout', '500ms', true);
        BEGIN
            SELECT f.unit INTO v_unit FROM dibs_units f
             WHERE f.drop_id = p_drop AND f.state = 'free'
             ORDER BY f.unit LIMIT 1 FOR UPDATE;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            v_unit := NULL;
        END;
        PERFORM set_config('lock_timeout', v_lock_timeout, true);
    END IF;
    IF v_unit IS NULL THEN
        RETURN;
    END IF;
    UPDATE dibs_units u
       SET state = 'held', claim_id = p_claim, fence = nextval('dibs_fences'),
           expires_at = clock_timestamp() + p_ttl_ms * interval '1 millisecond'
     WHERE u.drop_id = p_drop AND u.unit = v_unit
    RETURNING u.unit, u.fence, u.expires_at INTO unit, fence, expires_at;
END $$;
