-- dibs_lock_claim (confirm, release, extend): when the claim's lease has already run out,
-- the drop line is locked before the unit. Those calls end the expired lease, which locks
-- the drop line in dibs_give_unit; taking it first is the order dibs_settle takes (drop
-- line, then units with SKIP LOCKED), so a claim settling meanwhile waits on the drop line
-- instead of skipping the expired unit (held by this call) and answering "sold out" while
-- the lease had run out. A lease that runs out between the read and the check still takes
-- the old order (unit, then drop line): a window of microseconds instead of the whole call.
CREATE OR REPLACE FUNCTION dibs_lock_claim(p_drop text, p_claim bigint) RETURNS dibs_claims
LANGUAGE plpgsql AS $$
DECLARE
    c dibs_claims;
    v_locked int;
BEGIN
    SELECT * INTO c FROM dibs_claims WHERE id = p_claim AND drop_id = p_drop;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF c.state = 'held' AND c.expires_at <= clock_timestamp() THEN
        -- The lease ran out: this call will end it (dibs_give_unit locks the drop line).
        -- Take the drop line first, the order settling takes, so that a claim settling the
        -- drop meanwhile waits for this instead of skipping the unit and answering "sold out".
        PERFORM 1 FROM dibs_drop_lines WHERE drop_id = c.drop_id FOR UPDATE;
    END IF;
    IF c.unit IS NOT NULL THEN
        PERFORM 1 FROM dibs_units WHERE drop_id = c.drop_id AND unit = c.unit FOR UPDATE;
        v_locked := c.unit;
    END IF;
    SELECT * INTO c FROM dibs_claims WHERE id = p_claim FOR UPDATE;
    IF c.unit IS NOT NULL AND c.unit IS DISTINCT FROM v_locked THEN
        -- Promoted between the two reads: lock its new unit too (rare; out of order).
        PERFORM 1 FROM dibs_units WHERE drop_id = c.drop_id AND unit = c.unit FOR UPDATE;
    END IF;
    RETURN c;
END $$;
