-- A drop whose every unit is sold stays so: from then on every new claim is answered
-- "sold out", a shopper at the per-user limit too (before, they heard "limit reached").
-- The HTTP service reads a sold drop's answered keys once and answers every other key
-- from memory; with this, no claim that commits later can add to them. Checked only where
-- the answer would otherwise be "limit reached" (and for draws), through the partial
-- indexes of free and held units. The rest of dibs_claim is 005's.
--
-- Written as ordered scalar subqueries, not NOT EXISTS: the function's plan is generic (the
-- drop is a parameter), and for EXISTS over "free" a generic plan expects many rows and
-- picks a sequential scan of every drop's units (0.4 s a call with 4 million unit rows);
-- the ORDER BY of the partial index's columns keeps it on the index (0.1 ms).
CREATE OR REPLACE FUNCTION dibs_all_sold(p_drop text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (SELECT unit FROM dibs_units WHERE drop_id = p_drop AND state = 'free'
             ORDER BY drop_id, unit LIMIT 1) IS NULL
       AND (SELECT unit FROM dibs_units WHERE drop_id = p_drop AND state = 'held'
             ORDER BY drop_id, expires_at LIMIT 1) IS NULL
$$;

CREATE OR REPLACE FUNCTION dibs_claim(p_drop text, p_user text, p_key text, p_token_hash text) RETURNS dibs_answer
LANGUAGE plpgsql AS $$
DECLARE
    d dibs_drops;
    c dibs_claims;
    v_now timestamptz := clock_timestamp();
    v_id bigint;
    v_unit int;
    v_fence bigint;
    v_expires timestamptz;
    v_position int;
    v_seq bigint;
    v_waitlisted int;
    v_live int;
BEGIN
    SELECT * INTO d FROM dibs_drops WHERE id = p_drop;
    IF NOT FOUND THEN
        RETURN dibs_error('unknown-drop');
    END IF;
    SELECT * INTO c FROM dibs_claims WHERE drop_id = p_drop AND idempotency_key = p_key;
    IF FOUND THEN
        RETURN dibs_replay(c, p_user);
    END IF;
    IF v_now < d.opens_at THEN
        RETURN dibs_unrecorded('not-open');
    END IF;
    IF d.closes_at IS NOT NULL AND v_now >= d.closes_at THEN
        RETURN dibs_unrecorded('closed');
    END IF;

    -- Record the claim first: a concurrent claim with the same key waits here, then replays.
    INSERT INTO dibs_claims (drop_id, idempotency_key, user_id, state, first_state, token_hash)
    VALUES (p_drop, p_key, p_user, 'rejected', 'rejected', decode(p_token_hash, 'hex'))
    ON CONFLICT (drop_id, idempotency_key) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT * INTO c FROM dibs_claims WHERE drop_id = p_drop AND idempotency_key = p_key;
        RETURN dibs_replay(c, p_user);
    END IF;

    PERFORM dibs_settle(p_drop, d.hold_ttl_ms);

    IF d.mode = 'draw' THEN
        IF dibs_all_sold(p_drop) THEN
            UPDATE dibs_claims SET rejection = 'sold-out', token_hash = NULL WHERE id = v_id RETURNING * INTO c;
            RETURN dibs_first(c, false);
        END IF;
        IF NOT dibs_take_live(p_drop, p_user, d.per_user_limit) THEN
            UPDATE dibs_claims SET rejection = 'limit-reached', token_hash = NULL WHERE id = v_id RETURNING * INTO c;
            RETURN dibs_first(c, false);
        END IF;
        UPDATE dibs_drop_lines SET entries = entries + 1 WHERE drop_id = p_drop RETURNING entries INTO v_position;
        UPDATE dibs_claims SET state = 'entered', first_state = 'entered', first_position = v_position
         WHERE id = v_id RETURNING * INTO c;
        RETURN dibs_first(c, false);
    END IF;

    -- A shopper already at the limit hears so before any unit is locked. Taking a unit and
    -- giving it back (below) made concurrent claims skip it (SKIP LOCKED) and answer "sold
    -- out" while it was free: dibs-load caught it under pause-postgres, where every shopper
    -- claims three times. Read without a lock: a count going down concurrently (a release)
    -- lets this answer come first; one going up (the same shopper's concurrent claim) still
    -- takes the path below.
    SELECT live INTO v_live FROM dibs_shoppers WHERE drop_id = p_drop AND user_id = p_user;
    IF coalesce(v_live, 0) >= d.per_user_limit THEN
        UPDATE dibs_claims
           SET rejection = CASE WHEN dibs_all_sold(p_drop) THEN 'sold-out' ELSE 'limit-reached' END, token_hash = NULL
         WHERE id = v_id RETURNING * INTO c;
        RETURN dibs_first(c, false);
    END IF;

    SELECT * INTO v_unit, v_fence, v_expires FROM dibs_take_free_unit(p_drop, v_id, d.hold_ttl_ms, d.units);

    IF v_unit IS NULL AND d.waitlist_capacity > 0 THEN
        SELECT waitlisted INTO v_waitlisted FROM dibs_drop_lines WHERE drop_id = p_drop;
        IF v_waitlisted < d.waitlist_capacity
           AND EXISTS (SELECT 1 FROM dibs_units WHERE drop_id = p_drop AND state = 'held') THEN
            -- Line up under the line's lock, looking for a unit once more: a release that
            -- committed meanwhile either promoted someone or left its unit free for us.
            SELECT waitlisted INTO v_waitlisted FROM dibs_drop_lines WHERE drop_id = p_drop FOR UPDATE;
            SELECT * INTO v_unit, v_fence, v_expires FROM dibs_take_free_unit(p_drop, v_id, d.hold_ttl_ms, d.units);
            IF v_unit IS NULL AND v_waitlisted < d.waitlist_capacity
               AND EXISTS (SELECT 1 FROM dibs_units WHERE drop_id = p_drop AND state = 'held') THEN
                UPDATE dibs_drop_lines SET waitlisted = waitlisted + 1, queue_seq = queue_seq + 1
                 WHERE drop_id = p_drop RETURNING waitlisted, queue_seq INTO v_position, v_seq;
            END IF;
        END IF;
    END IF;

    IF v_unit IS NULL AND v_position IS NULL THEN
        -- Sold out; a shopper at their limit hears that instead, as the reference model says.
        SELECT live INTO v_live FROM dibs_shoppers WHERE drop_id = p_drop AND user_id = p_user;
        UPDATE dibs_claims
           SET rejection = CASE WHEN coalesce(v_live, 0) >= d.per_user_limit AND NOT dibs_all_sold(p_drop)
                                THEN 'limit-reached' ELSE 'sold-out' END,
               token_hash = NULL
         WHERE id = v_id RETURNING * INTO c;
        RETURN dibs_first(c, false);
    END IF;

    IF NOT dibs_take_live(p_drop, p_user, d.per_user_limit) THEN
        -- Over the limit: give back what this transaction took; nobody else has seen it.
        IF v_unit IS NOT NULL THEN
            UPDATE dibs_units SET state = 'free', claim_id = NULL, fence = NULL, expires_at = NULL
             WHERE drop_id = p_drop AND unit = v_unit;
        ELSE
            UPDATE dibs_drop_lines SET waitlisted = waitlisted - 1 WHERE drop_id = p_drop;
        END IF;
        UPDATE dibs_claims SET rejection = 'limit-reached', token_hash = NULL WHERE id = v_id RETURNING * INTO c;
        RETURN dibs_first(c, false);
    END IF;

    IF v_unit IS NOT NULL THEN
        UPDATE dibs_claims
           SET state = 'held', first_state = 'held', unit = v_unit, fence = v_fence, expires_at = v_expires,
               first_unit = v_unit, first_fence = v_fence, first_expires = v_expires
         WHERE id = v_id RETURNING * INTO c;
    ELSE
        UPDATE dibs_claims
           SET state = 'waitlisted', first_state = 'waitlisted', first_position = v_position, queue_seq = v_seq
         WHERE id = v_id RETURNING * INTO c;
    END IF;
    RETURN dibs_first(c, false);
END $$;
