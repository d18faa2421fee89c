-- The per-unit, per-claim and per-shopper rows drop their foreign keys to dibs_drops.
--
-- A foreign key check locks the referenced drop row (FOR KEY SHARE) for every inserted row:
-- creating a 1,000,000-unit drop took 20 s instead of 3.5 s, and every claim of a drop took
-- a share lock on one hot row. These rows are only ever written by the dibs_* functions,
-- which create them for an existing drop (dibs_create_drop, dibs_claim), so the keys
-- guarded nothing the functions do not. Deleting a drop now deletes its rows explicitly
-- (dibs_delete_drop). The sale ledger keeps its foreign key: sales are few, and precious.

ALTER TABLE dibs_units DROP CONSTRAINT dibs_units_drop_id_fkey;
ALTER TABLE dibs_claims DROP CONSTRAINT dibs_claims_drop_id_fkey;
ALTER TABLE dibs_shoppers DROP CONSTRAINT dibs_shoppers_drop_id_fkey;

-- Removes a drop that has no sales and everything leased under it (benchmarks, tests).
CREATE FUNCTION dibs_delete_drop(p_id text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM dibs_sales WHERE drop_id = p_id) THEN
        RETURN 'has-sales';
    END IF;
    DELETE FROM dibs_units WHERE drop_id = p_id;
    DELETE FROM dibs_claims WHERE drop_id = p_id;
    DELETE FROM dibs_shoppers WHERE drop_id = p_id;
    DELETE FROM dibs_drops WHERE id = p_id;
    RETURN 'ok';
END $$;
