-- Undoes 005: dibs_settle skips expired units locked by others again (SKIP LOCKED, after
-- the drop line), as 002 had it.
--
-- 005 made settling wait for expired units instead. But a row lock taken after waiting is
-- kept even when the row no longer matches: when a burst of claims all found the same
-- expired units, the first ended them and every other kept locks on the now free units
-- until it committed, so claims that did not need to settle skipped them all and answered
-- "sold out" with up to 13 units free (a dibs-load pause-postgres run, traced in Postgres's
-- log: free={21,31,38,...} at the answer). The window 005 closed is open again: a confirm or
-- release ending an expired lease holds its unit while a claim settles (see README).
CREATE OR REPLACE FUNCTION dibs_settle(p_drop text, p_ttl_ms int, OUT expired int, OUT promoted int)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    c dibs_claims;
    -- A variable, not clock_timestamp() in the WHERE: a volatile call cannot bound an index
    -- scan, and the claim path would read every held unit of the drop.
    v_now timestamptz := clock_timestamp();
BEGIN
    expired := 0;
    promoted := 0;
    IF NOT EXISTS (SELECT 1 FROM dibs_units
                    WHERE drop_id = p_drop AND state = 'held' AND expires_at <= v_now) THEN
        RETURN;
    END IF;
    PERFORM 1 FROM dibs_drop_lines WHERE drop_id = p_drop FOR UPDATE;
    v_now := clock_timestamp();
    FOR r IN SELECT unit, claim_id FROM dibs_units
              WHERE drop_id = p_drop AND state = 'held' AND expires_at <= v_now
              ORDER BY expires_at FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE dibs_claims SET state = 'expired' WHERE id = r.claim_id RETURNING * INTO c;
        UPDATE dibs_shoppers SET live = live - 1 WHERE drop_id = p_drop AND user_id = c.user_id;
        expired := expired + 1;
        IF dibs_give_unit(p_drop, r.unit, p_ttl_ms) THEN
            promoted := promoted + 1;
        END IF;
    END LOOP;
END $$;
