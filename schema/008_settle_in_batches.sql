-- Leases that ran out are settled at most 64 at a time, oldest first, instead of all in the
-- first call that notices them: a wave of holds running out together (20,000 on the Redis
-- store took 141 ms in one call) no longer holds the drop line, and so every claim of the
-- drop, for the whole wave. A claim whose answer depends on the rest ("limit reached" while
-- the shopper's own lease ran out, a place in line or "sold out" while a unit would come
-- free) settles on, a batch at a time, until a batch finds nothing it can lock; as before,
-- units locked by another call are skipped (SKIP LOCKED), the other call ends their lease.
-- The counts (dibs_counts: the gauges, GET drop, the sold-out check) settle one batch; the
-- operator's inspect, status and reap still settle everything. dibs_settle_batch is
-- dibs_settle (002) with LIMIT; dibs_claim is 007's with the batch and the two loops.

CREATE FUNCTION dibs_settle_batch(p_drop text, p_ttl_ms int, p_batch int, OUT expired int, OUT promoted int)
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
              ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE dibs_claims SET state = 'expired' WHERE id = r.claim_id RETURNING * INTO c;
        UPDATE dibs_shoppers SET live = live - 1 WHERE drop_id = p_drop AND user_id = c.user_id;
        expired := expired + 1;
        IF dibs_give_unit(p_drop, r.unit, p_ttl_ms) THEN
            promoted := promoted + 1;
        END IF;
    END LOOP;
END $$;

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
    v_settled int;
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

    PERFORM dibs_settle_batch(p_drop, d.hold_ttl_ms, 64);

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
    -- The shopper's own lease may have run out behind the batch: settle on before saying so.
    WHILE coalesce(v_live, 0) >= d.per_user_limit LOOP
        SELECT s.expired INTO v_settled FROM dibs_settle_batch(p_drop, d.hold_ttl_ms, 64) AS s;
        EXIT WHEN v_settled = 0;
        SELECT live INTO v_live FROM dibs_shoppers WHERE drop_id = p_drop AND user_id = p_user;
    END LOOP;
    IF coalesce(v_live, 0) >= d.per_user_limit THEN
        UPDATE dibs_claims
           SET rejection = CASE WHEN dibs_all_sold(p_drop) THEN 'sold-out' ELSE 'limit-reached' END, token_hash = NULL
         WHERE id = v_id RETURNING * INTO c;
        RETURN dibs_first(c, false);
    END IF;

    SELECT * INTO v_unit, v_fence, v_expires FROM dibs_take_free_unit(p_drop, v_id, d.hold_ttl_ms, d.units);
    -- A unit may come free behind the batch (a unit is free only while nobody waits, so
    -- taking it keeps the order): settle on, a batch at a time, before waiting or "sold out".
    WHILE v_unit IS NULL LOOP
        SELECT s.expired INTO v_settled FROM dibs_settle_batch(p_drop, d.hold_ttl_ms, 64) AS s;
        EXIT WHEN v_settled = 0;
        SELECT * INTO v_unit, v_fence, v_expires FROM dibs_take_free_unit(p_drop, v_id, d.hold_ttl_ms, d.units);
    END LOOP;

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

-- dibs_inspect's counts after one batch of settling.
CREATE FUNCTION dibs_counts(p_drop text, OUT code text, OUT units int, OUT free int, OUT held int,
                            OUT sold int, OUT waitlisted int)
LANGUAGE plpgsql AS $$
DECLARE
    v_ttl int;
BEGIN
    SELECT d.hold_ttl_ms, d.units INTO v_ttl, units FROM dibs_drops d WHERE d.id = p_drop;
    IF NOT FOUND THEN
        code := 'unknown-drop';
        RETURN;
    END IF;
    code := 'ok';
    PERFORM dibs_settle_batch(p_drop, v_ttl, 64);
    SELECT count(*) FILTER (WHERE u.state = 'free'), count(*) FILTER (WHERE u.state = 'held'),
           count(*) FILTER (WHERE u.state = 'sold')
      INTO free, held, sold FROM dibs_units u WHERE u.drop_id = p_drop;
    SELECT l.waitlisted INTO waitlisted FROM dibs_drop_lines l WHERE l.drop_id = p_drop;
END $$;
