-- The ledger: drops, their units, the claims made on them, shoppers' live counts and the
-- sales. Postgres is the system of record for both backends; the `units`, `claims` and
-- `shoppers` rows carry the lease state of drops on the Postgres backend.

CREATE TABLE dibs_drops (
    id                text PRIMARY KEY CHECK (id ~ '^[a-z0-9-]{1,64}$'),
    backend           text NOT NULL CHECK (backend IN ('postgres', 'redis')),
    units             int NOT NULL CHECK (units BETWEEN 1 AND 1000000),
    hold_ttl_ms       int NOT NULL CHECK (hold_ttl_ms BETWEEN 1000 AND 3600000),
    per_user_limit    int NOT NULL CHECK (per_user_limit >= 1),
    waitlist_capacity int NOT NULL CHECK (waitlist_capacity >= 0),
    mode              text NOT NULL CHECK (mode IN ('first-come', 'draw')),
    opens_at          timestamptz NOT NULL,
    closes_at         timestamptz CHECK (closes_at > opens_at),
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Counters that change only off the hot path of a free unit: the waitlist and draw entries.
CREATE TABLE dibs_drop_lines (
    drop_id    text PRIMARY KEY REFERENCES dibs_drops (id) ON DELETE CASCADE,
    waitlisted int NOT NULL DEFAULT 0 CHECK (waitlisted >= 0),
    queue_seq  bigint NOT NULL DEFAULT 0,
    entries    int NOT NULL DEFAULT 0
);

-- One row per unit. state: free | held | sold. A held unit has its claim, fence and expiry.
CREATE TABLE dibs_units (
    drop_id    text NOT NULL REFERENCES dibs_drops (id) ON DELETE CASCADE,
    unit       int NOT NULL,
    state      text NOT NULL DEFAULT 'free' CHECK (state IN ('free', 'held', 'sold')),
    claim_id   bigint,
    fence      bigint,
    expires_at timestamptz,
    PRIMARY KEY (drop_id, unit),
    CHECK ((state = 'free') = (claim_id IS NULL))
) WITH (fillfactor = 70);

CREATE INDEX dibs_units_free ON dibs_units (drop_id, unit) WHERE state = 'free';
CREATE INDEX dibs_units_held ON dibs_units (drop_id, expires_at) WHERE state = 'held';

-- Fences are strictly increasing per drop because they are strictly increasing overall;
-- a sequence hands them out without a hot row.
CREATE SEQUENCE dibs_fences;

CREATE TABLE dibs_claims (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    drop_id         text NOT NULL REFERENCES dibs_drops (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    user_id         text NOT NULL,
    state           text NOT NULL CHECK (state IN (
                        'held', 'confirmed', 'released', 'expired', 'waitlisted', 'lapsed',
                        'entered', 'lost', 'rejected')),
    rejection       text CHECK (rejection IN ('sold-out', 'limit-reached')),
    token_hash      bytea,
    unit            int,
    fence           bigint,
    expires_at      timestamptz,
    -- The first answer, replayed for the same Idempotency-Key.
    first_state     text NOT NULL,
    first_position  int,
    first_unit      int,
    first_fence     bigint,
    first_expires   timestamptz,
    queue_seq       bigint,
    order_ref       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (drop_id, idempotency_key)
);

CREATE INDEX dibs_claims_waitlist ON dibs_claims (drop_id, queue_seq) WHERE state = 'waitlisted';

-- A shopper's live claims on a drop (held, waitlisted, entered, confirmed); the CHECK and
-- the conditional upsert in the claim function keep the per-user limit under concurrency.
CREATE TABLE dibs_shoppers (
    drop_id text NOT NULL REFERENCES dibs_drops (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    live    int NOT NULL CHECK (live >= 0),
    PRIMARY KEY (drop_id, user_id)
);

-- The sale ledger, for both backends: the final guard against selling a unit twice.
CREATE TABLE dibs_sales (
    drop_id      text NOT NULL REFERENCES dibs_drops (id) ON DELETE RESTRICT,
    unit         int NOT NULL,
    claim_number bigint NOT NULL,
    fence        bigint NOT NULL,
    order_ref    text,
    confirmed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (drop_id, unit)
);
