-- What the HTTP service keeps besides leases: cancelled drops, API keys (salted hashes,
-- never the secret) and the answers kept for Idempotency-Keys when no Redis is configured.

ALTER TABLE dibs_drops ADD COLUMN cancelled_at timestamptz;

CREATE TABLE dibs_api_keys (
    id         text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    scope      text NOT NULL CHECK (scope IN ('storefront', 'operator')),
    salt       bytea NOT NULL,
    hash       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- state: pending (a request is being answered; ends at expires_at if its process died)
-- or done (the answer, kept until expires_at).
CREATE TABLE dibs_idempotency (
    key         text PRIMARY KEY,
    fingerprint bytea NOT NULL,
    state       text NOT NULL CHECK (state IN ('pending', 'done')),
    status      int,
    body        bytea,
    expires_at  timestamptz NOT NULL
);

CREATE INDEX dibs_idempotency_expiry ON dibs_idempotency (expires_at);

-- Marks a key in flight unless a live entry has it; answers what was there.
-- Returns (outcome, fingerprint, status, body): outcome is 'started', 'pending' or 'done'.
CREATE FUNCTION dibs_idempotency_begin(p_key text, p_fingerprint bytea, p_pending_ms bigint)
RETURNS TABLE (outcome text, fingerprint bytea, status int, body bytea)
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    r dibs_idempotency%ROWTYPE;
BEGIN
    -- An expired entry is gone for every purpose; the upsert below takes its place.
    INSERT INTO dibs_idempotency AS i (key, fingerprint, state, expires_at)
    VALUES (p_key, p_fingerprint, 'pending', v_now + p_pending_ms * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, state = 'pending', status = NULL, body = NULL,
            expires_at = EXCLUDED.expires_at
        WHERE i.expires_at <= v_now
    RETURNING * INTO r;
    IF FOUND THEN
        RETURN QUERY SELECT 'started'::text, NULL::bytea, NULL::int, NULL::bytea;
        RETURN;
    END IF;
    SELECT * INTO r FROM dibs_idempotency i WHERE i.key = p_key;
    RETURN QUERY SELECT r.state, r.fingerprint, r.status, r.body;
END $$;

-- Sets a drop's claim window; answers nothing when the drop is unknown.
CREATE FUNCTION dibs_reschedule(p_id text, p_opens_ms bigint, p_closes_ms bigint)
RETURNS SETOF dibs_drops
LANGUAGE sql AS $$
    UPDATE dibs_drops
       SET opens_at = to_timestamp(p_opens_ms / 1000.0), closes_at = to_timestamp(p_closes_ms / 1000.0)
     WHERE id = p_id
    RETURNING *;
$$;
