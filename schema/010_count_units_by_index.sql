-- dibs_counts counted a drop's unit rows in one pass over them. Once the drop was a sizeable
-- part of dibs_units the planner made that pass a scan of the whole table, every drop's rows
-- (0.4-1.1 s for a 1,000,000-unit drop among 6,800,000 units of 3,000 drops), for each read
-- of a drop's counts and each gauge read. It now counts the free and the held units through
-- their partial indexes (index-only scans of this drop's entries: O(free + held), which a
-- drop's sales shrink), in one statement so both come from one snapshot, and takes the sold
-- ones as the rest (a drop has a row for each of its units, each free, held or sold).
CREATE OR REPLACE FUNCTION dibs_counts(p_drop text, OUT code text, OUT units int, OUT free int, OUT held int,
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
    SELECT (SELECT count(*) FROM dibs_units u WHERE u.drop_id = p_drop AND u.state = 'free'),
           (SELECT count(*) FROM dibs_units u WHERE u.drop_id = p_drop AND u.state = 'held')
      INTO free, held;
    sold := units - free - held;
    SELECT l.waitlisted INTO waitlisted FROM dibs_drop_lines l WHERE l.drop_id = p_drop;
END $$;
