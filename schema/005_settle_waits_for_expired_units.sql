-- dibs_settle locked the drop line first and then skipped expired units locked by someone
-- else (SKIP LOCKED). A confirm or release of an expired lease holds its unit while it ends
-- that lease, so a claim settling meanwhile skipped the unit, found nothing free and
-- answered "sold out" while the lease had run out: dibs-load's pause-postgres run caught it
-- (a unit expired during the pause, its late confirm held the row when claims resumed).
--
-- Now the expired units are locked first, in unit order, waiting for whoever holds them;
-- the drop line after. That is the order confirm and release take (unit, then drop line in
-- dibs_give_unit), so waiting cannot close a circle: every other holder of the drop line
-- (a claim that settled) only takes units with SKIP LOCKED. A unit whose lease the holder
-- ended is no longer 'held' when the lock comes, and the recheck drops it.
CREATE OR REPLACE FUNCTION dibs_settle(p_drop text, p_ttl_ms int, OUT expired int, OUT promoted int)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    c dibs_claims;
    -- A variable, not clock_timestamp() in the WHERE: a volatile call cannot bound an index
    -- scan, and the claim path would read every held unit of the drop.
    v_now timestamptz := clock_timestamp();
    v_units int[];
BEGIN
    expired := 0;
    promoted := 0;
    IF NOT EXISTS (SELECT 1 FROM dibs_units
                    WHERE drop_id = p_drop AND state = 'held' AND expires_at <= v_now) THEN
        RETURN;
    END IF;
    SELECT array_agg(s.unit) INTO v_units FROM (
        SELECT unit FROM dibs_units
         WHERE drop_id = p_drop AND state = 'held' AND expires_at <= v_now
         ORDER BY unit FOR UPDATE) AS s;
    IF v_units IS NULL THEN
        RETURN;  -- their holders ended them all
    END IF;
    PERFORM 1 FROM dibs_drop_lines WHERE drop_id = p_drop FOR UPDATE;
    FOR r IN SELECT unit, claim_id FROM dibs_units
              WHERE drop_id = p_drop AND unit = ANY (v_units) AND state = 'held' AND expires_at <= v_now
              ORDER BY expires_at, unit
    LOOP
        UPDATE dibs_claims SET state = 'expired' WHERE id = r.claim_id RETURNING * INTO c;
        UPDATE dibs_shoppers SET live = live - 1 WHERE drop_id = p_drop AND user_id = c.user_id;
        expired := expired + 1;
        IF dibs_give_unit(p_drop, r.unit, p_ttl_ms) THEN
            promoted := promoted + 1;
        END IF;
    END LOOP;
END $$;
