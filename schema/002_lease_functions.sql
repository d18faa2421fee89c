-- The Postgres lease store's operations, each one atomic statement from the client's view.
--
-- Lock order (so two operations never wait on each other in a circle):
--   claim key → drop line → units → claims → shoppers.
-- A unit is always locked before its claim. Locks taken out of order (the settle's units,
-- the promotion's waitlisted claims, the claim's free unit) use SKIP LOCKED, which never
-- waits.
-- Times come from clock_timestamp(), not now(): a call that waited on a lock must not see
-- a lease as live that ran out while it waited.

CREATE TYPE dibs_answer AS (
    code           text,     -- 'ok' or a DibsError code name
    claim_id       bigint,
    user_id        text,
    state          text,
    rejection      text,
    unit           int,
    fence          bigint,
    expires_ms     bigint,   -- milliseconds since the epoch
    queue_position int,
    replayed       boolean,
    order_ref      text
);

CREATE FUNCTION dibs_ms(ts timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT floor(extract(epoch FROM ts) * 1000)::bigint $$;

CREATE FUNCTION dibs_error(p_code text) RETURNS dibs_answer
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_code, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, NULL)::dibs_answer
$$;

-- An answer that is not recorded: the drop is not open yet, or closed.
CREATE FUNCTION dibs_unrecorded(p_rejection text) RETURNS dibs_answer
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW('ok', NULL, NULL, 'rejected', p_rejection, NULL, NULL, NULL, NULL, false, NULL)::dibs_answer
$$;

-- A claim as it is now.
CREATE FUNCTION dibs_current(c dibs_claims) RETURNS dibs_answer
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW('ok', c.id, c.user_id, c.state, c.rejection, c.unit, c.fence, dibs_ms(c.expires_at),
               c.first_position, false, c.order_ref)::dibs_answer
$$;

-- A claim's first answer, which the same Idempotency-Key gets back.
CREATE FUNCTION dibs_first(c dibs_claims, p_replayed boolean) RETURNS dibs_answer
LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW('ok', c.id, c.user_id, c.first_state, c.rejection, c.first_unit, c.first_fence,
               dibs_ms(c.first_expires), c.first_position, p_replayed, NULL)::dibs_answer
$$;

CREATE FUNCTION dibs_replay(c dibs_claims, p_user text) RETURNS dibs_answer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN c.user_id = p_user THEN dibs_first(c, true) ELSE dibs_error('idempotency-key-reused') END
$$;

CREATE FUNCTION dibs_create_drop(
    p_id text, p_backend text, p_units int, p_ttl_ms int, p_limit int, p_capacity int, p_mode text,
    p_opens_ms bigint, p_closes_ms bigint
) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dibs_drops (id, backend, units, hold_ttl_ms, per_user_limit, waitlist_capacity, mode, opens_at, closes_at)
    VALUES (p_id, p_backend, p_units, p_ttl_ms, p_limit, p_capacity, p_mode,
            to_timestamp(p_opens_ms / 1000.0), to_timestamp(p_closes_ms / 1000.0))
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'drop-exists';
    END IF;
    INSERT INTO dibs_drop_lines (drop_id) VALUES (p_id);
    IF p_backend = 'postgres' THEN
        -- One statement for every unit: a million rows in seconds, not a million round trips.
        INSERT INTO dibs_units (drop_id, unit) SELECT p_id, g FROM generate_series(0, p_units - 1) AS g;
    END IF;
    RETURN 'ok';
END $$;

-- Takes one more live claim for the shopper, unless that would pass the limit. The row
-- lock of the upsert makes concurrent claims by one shopper count one at a time.
CREATE FUNCTION dibs_take_live(p_drop text, p_user text, p_limit int) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_live int;
BEGIN
    INSERT INTO dibs_shoppers AS s (drop_id, user_id, live) VALUES (p_drop, p_user, 1)
    ON CONFLICT (drop_id, user_id) DO UPDATE SET live = s.live + 1 WHERE s.live < p_limit
    RETURNING s.live INTO v_live;
    RETURN v_live IS NOT NULL;
END $$;

-- Hands a unit that came back (released or expired) to the oldest waitlisted claim, or
-- frees it. The caller holds the unit's row lock.
CREATE FUNCTION dibs_give_unit(p_drop text, p_unit int, p_ttl_ms int) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_next bigint;
    v_fence bigint;
    v_expires timestamptz;
BEGIN
    PERFORM 1 FROM dibs_drop_lines WHERE drop_id = p_drop FOR UPDATE;
    SELECT id INTO v_next FROM dibs_claims
     WHERE drop_id = p_drop AND state = 'waitlisted'
     ORDER BY queue_seq LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF v_next IS NULL THEN
        UPDATE dibs_units SET state = 'free', claim_id = NULL, fence = NULL, expires_at = NULL
         WHERE drop_id = p_drop AND unit = p_unit;
        RETURN false;
    END IF;
    v_fence := nextval('dibs_fences');
    v_expires := clock_timestamp() + p_ttl_ms * interval '1 millisecond';
    UPDATE dibs_units SET state = 'held', claim_id = v_next, fence = v_fence, expires_at = v_expires
     WHERE drop_id = p_drop AND unit = p_unit;
    UPDATE dibs_claims SET state = 'held', unit = p_unit, fence = v_fence, expires_at = v_expires WHERE id = v_next;
    UPDATE dibs_drop_lines SET waitlisted = waitlisted - 1 WHERE drop_id = p_drop;
    RETURN true;
END $$;

-- Ends a held claim's lease (released or expired) and passes its unit on.
CREATE FUNCTION dibs_end_lease(c dibs_claims, p_ttl_ms int, p_state text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dibs_claims SET state = p_state WHERE id = c.id;
    PERFORM dibs_give_unit(c.drop_id, c.unit, p_ttl_ms);
    UPDATE dibs_shoppers SET live = live - 1 WHERE drop_id = c.drop_id AND user_id = c.user_id;
END $$;

-- Ends every expired lease of the drop and promotes waitlisted claims onto the units.
-- One index probe when nothing expired, which is the claim path's common case.
CREATE FUNCTION dibs_settle(p_drop text, p_ttl_ms int, OUT expired int, OUT promoted int)
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

-- Takes a free unit nobody else is taking, for claim p_claim: the first free one at or
-- after a random start, else the first before it. Starting anywhere spreads concurrent
-- claimers over the index instead of queueing them all on its first, dead-entry-laden pages.
CREATE FUNCTION dibs_take_free_unit(p_drop text, p_claim bigint, p_ttl_ms int, p_units int,
                                    OUT unit int, OUT fence bigint, OUT expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_start int := floor(random() * p_units)::int;
    v_unit int;
BEGIN
    SELECT f.unit INTO v_unit FROM dibs_units f
     WHERE f.drop_id = p_drop AND f.state = 'free' AND f.unit >= v_start
     ORDER BY f.unit LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF v_unit IS NULL THEN
        SELECT f.unit INTO v_unit FROM dibs_units f
         WHERE f.drop_id = p_drop AND f.state = 'free' AND f.unit < v_start
         ORDER BY f.unit LIMIT 1 FOR UPDATE SKIP LOCKED;
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

CREATE FUNCTION dibs_claim(p_drop text, p_user text, p_key text, p_token_hash text) RETURNS dibs_answer
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
        IF NOT dibs_take_live(p_drop, p_user, d.per_user_limit) THEN
            UPDATE dibs_claims SET rejection = 'limit-reached', token_hash = NULL WHERE id = v_id RETURNING * INTO c;
            RETURN dibs_first(c, false);
        END IF;
        UPDATE dibs_drop_lines SET entries = entries + 1 WHERE drop_id = p_drop RETURNING entries INTO v_position;
        UPDATE dibs_claims SET state = 'entered', first_state = 'entered', first_position = v_position
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
           SET rejection = CASE WHEN coalesce(v_live, 0) >= d.per_user_limit THEN 'limit-reached' ELSE 'sold-out' END,
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

-- Locks a claim for confirm, release or extend: its unit first, then the claim (the lock
-- order). Returns NULL for an unknown claim or a claim of another drop.
CREATE FUNCTION dibs_lock_claim(p_drop text, p_claim bigint) RETURNS dibs_claims
LANGUAGE plpgsql AS $$
DECLARE
    c dibs_claims;
    v_locked int;
BEGIN
    SELECT * INTO c FROM dibs_claims WHERE id = p_claim AND drop_id = p_drop;
    IF NOT FOUND THEN
        RETURN NULL;
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

-- The checks confirm and extend share, in the reference model's order: the token, then
-- expiry (ending a lease that ran out), then the state, then the fence. 'ok' when the
-- claim holds a live lease under p_fence.
CREATE FUNCTION dibs_check_lease(c dibs_claims, p_token_hash text, p_fence bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_ttl int;
BEGIN
    IF c.id IS NULL THEN
        RETURN 'unknown-claim';
    END IF;
    IF c.token_hash IS NULL OR c.token_hash <> decode(p_token_hash, 'hex') THEN
        RETURN 'invalid-hold-token';
    END IF;
    IF c.state = 'held' AND c.expires_at <= clock_timestamp() THEN
        SELECT hold_ttl_ms INTO v_ttl FROM dibs_drops WHERE id = c.drop_id;
        PERFORM dibs_end_lease(c, v_ttl, 'expired');
        RETURN 'lease-expired';
    END IF;
    IF c.state = 'expired' THEN
        RETURN 'lease-expired';
    END IF;
    IF c.state <> 'held' THEN
        RETURN 'not-held';
    END IF;
    IF c.fence <> p_fence THEN
        RETURN 'stale-fence';
    END IF;
    RETURN 'ok';
END $$;

CREATE FUNCTION dibs_confirm(p_drop text, p_claim bigint, p_token_hash text, p_fence bigint, p_order_ref text)
RETURNS dibs_answer
LANGUAGE plpgsql AS $$
DECLARE
    c dibs_claims;
    v_code text;
BEGIN
    c := dibs_lock_claim(p_drop, p_claim);
    IF c.state = 'confirmed' AND c.token_hash = decode(p_token_hash, 'hex') THEN
        -- Confirming again (a retry) answers with the sale it made.
        RETURN CASE WHEN c.fence = p_fence THEN dibs_current(c) ELSE dibs_error('stale-fence') END;
    END IF;
    v_code := dibs_check_lease(c, p_token_hash, p_fence);
    IF v_code <> 'ok' THEN
        RETURN dibs_error(v_code);
    END IF;
    -- The sale is written in the transaction that checked the lease; the ledger's primary
    -- key on (drop, unit) refuses a second sale of the unit whatever else goes wrong.
    UPDATE dibs_units SET state = 'sold', expires_at = NULL WHERE drop_id = c.drop_id AND unit = c.unit;
    UPDATE dibs_claims SET state = 'confirmed', order_ref = p_order_ref WHERE id = c.id RETURNING * INTO c;
    INSERT INTO dibs_sales (drop_id, unit, claim_number, fence, order_ref)
    VALUES (c.drop_id, c.unit, c.id, c.fence, p_order_ref);
    RETURN dibs_current(c);
END $$;

CREATE FUNCTION dibs_release(p_drop text, p_claim bigint, p_token_hash text) RETURNS dibs_answer
LANGUAGE plpgsql AS $$
DECLARE
    c dibs_claims;
    v_ttl int;
BEGIN
    c := dibs_lock_claim(p_drop, p_claim);
    IF c.id IS NULL THEN
        RETURN dibs_error('unknown-claim');
    END IF;
    IF c.token_hash IS NULL OR c.token_hash <> decode(p_token_hash, 'hex') THEN
        RETURN dibs_error('invalid-hold-token');
    END IF;
    IF c.state = 'held' THEN
        SELECT hold_ttl_ms INTO v_ttl FROM dibs_drops WHERE id = c.drop_id;
        PERFORM dibs_end_lease(c, v_ttl,
            CASE WHEN c.expires_at <= clock_timestamp() THEN 'expired' ELSE 'released' END);
    ELSIF c.state = 'waitlisted' THEN
        PERFORM 1 FROM dibs_drop_lines WHERE drop_id = c.drop_id FOR UPDATE;
        UPDATE dibs_claims SET state = 'lapsed' WHERE id = c.id;
        UPDATE dibs_drop_lines SET waitlisted = waitlisted - 1 WHERE drop_id = c.drop_id;
        UPDATE dibs_shoppers SET live = live - 1 WHERE drop_id = c.drop_id AND user_id = c.user_id;
    ELSIF c.state = 'entered' THEN
        UPDATE dibs_claims SET state = 'lost' WHERE id = c.id;
        UPDATE dibs_shoppers SET live = live - 1 WHERE drop_id = c.drop_id AND user_id = c.user_id;
    ELSIF c.state IN ('confirmed', 'rejected') THEN
        RETURN dibs_error('not-held');
    END IF;
    SELECT * INTO c FROM dibs_claims WHERE id = c.id;
    RETURN dibs_current(c);
END $$;

CREATE FUNCTION dibs_extend(p_drop text, p_claim bigint, p_token_hash text, p_fence bigint) RETURNS dibs_answer
LANGUAGE plpgsql AS $$
DECLARE
    c dibs_claims;
    v_code text;
    v_expires timestamptz;
BEGIN
    c := dibs_lock_claim(p_drop, p_claim);
    v_code := dibs_check_lease(c, p_token_hash, p_fence);
    IF v_code <> 'ok' THEN
        RETURN dibs_error(v_code);
    END IF;
    SELECT clock_timestamp() + hold_ttl_ms * interval '1 millisecond' INTO v_expires
      FROM dibs_drops WHERE id = c.drop_id;
    UPDATE dibs_units SET expires_at = v_expires WHERE drop_id = c.drop_id AND unit = c.unit;
    UPDATE dibs_claims SET expires_at = v_expires WHERE id = c.id RETURNING * INTO c;
    RETURN dibs_current(c);
END $$;

CREATE FUNCTION dibs_status(p_drop text, p_claim bigint) RETURNS dibs_answer
LANGUAGE plpgsql AS $$
DECLARE
    c dibs_claims;
    v_ttl int;
BEGIN
    SELECT hold_ttl_ms INTO v_ttl FROM dibs_drops WHERE id = p_drop;
    IF NOT FOUND THEN
        RETURN dibs_error('unknown-claim');
    END IF;
    PERFORM dibs_settle(p_drop, v_ttl);
    SELECT * INTO c FROM dibs_claims WHERE id = p_claim AND drop_id = p_drop;
    IF NOT FOUND THEN
        RETURN dibs_error('unknown-claim');
    END IF;
    RETURN dibs_current(c);
END $$;

CREATE FUNCTION dibs_reap(p_drop text, OUT code text, OUT expired int, OUT promoted int)
LANGUAGE plpgsql AS $$
DECLARE
    v_ttl int;
BEGIN
    SELECT hold_ttl_ms INTO v_ttl FROM dibs_drops WHERE id = p_drop;
    IF NOT FOUND THEN
        code := 'unknown-drop';
        RETURN;
    END IF;
    code := 'ok';
    SELECT s.expired, s.promoted INTO expired, promoted FROM dibs_settle(p_drop, v_ttl) AS s;
END $$;

CREATE FUNCTION dibs_inspect(p_drop text, OUT code text, OUT units int, OUT free int, OUT held int,
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
    PERFORM dibs_settle(p_drop, v_ttl);
    SELECT count(*) FILTER (WHERE u.state = 'free'), count(*) FILTER (WHERE u.state = 'held'),
           count(*) FILTER (WHERE u.state = 'sold')
      INTO free, held, sold FROM dibs_units u WHERE u.drop_id = p_drop;
    SELECT l.waitlisted INTO waitlisted FROM dibs_drop_lines l WHERE l.drop_id = p_drop;
END $$;
