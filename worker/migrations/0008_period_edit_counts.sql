-- Drift detection compares an employee's local period lists (employments, contracts, schedules) with what
-- the sync last wrote. Aggregating three lists per employee for every change cost more than reading the
-- rest of its state, and they rarely change locally. So triggers count, per employee, the period rows
-- anyone but the sync inserted, changed, deleted or truncated; the sync reads the lists only of employees
-- with edits it has not seen (the others' lists equal what it last wrote). When it writes an employee it
-- records the count it read with the state: an edit made meanwhile still counts as unseen, so it is
-- compared with the next change instead of being forgotten. The sync announces itself per transaction
-- (set_config('nmbrs_sync.writer', 'sync', true)); that setting is reserved for it.
--
-- The counts live in a table of their own: the sync writes rt_employees rows and then their periods, so
-- a trigger that updated rt_employees would take the two locks in the opposite order and deadlock with
-- it. Existing employees start unseen (-1): their first change reads everything, as before.
CREATE TABLE rt_period_edits (
    employee_id  integer PRIMARY KEY REFERENCES rt_employees ON DELETE CASCADE,
    edits        integer NOT NULL
);
ALTER TABLE rt_employees ADD COLUMN period_edits_seen integer NOT NULL DEFAULT -1;

-- SECURITY DEFINER: whoever may edit periods may count the edit, without rights on the counts themselves.
CREATE FUNCTION count_period_edit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO rt_period_edits (employee_id, edits) SELECT employee_id, 1 FROM rt_employees
        ON CONFLICT (employee_id) DO UPDATE SET edits = rt_period_edits.edits + 1;
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO rt_period_edits (employee_id, edits) VALUES (OLD.employee_id, 1)
        ON CONFLICT (employee_id) DO UPDATE SET edits = rt_period_edits.edits + 1;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.employee_id <> OLD.employee_id) THEN
        INSERT INTO rt_period_edits (employee_id, edits) VALUES (NEW.employee_id, 1)
        ON CONFLICT (employee_id) DO UPDATE SET edits = rt_period_edits.edits + 1;
    END IF;
    RETURN NULL;
END
$$;

-- The conditions keep the function from being called at all for the sync's own (bulk) writes.
CREATE TRIGGER rt_employment_periods_edited AFTER INSERT OR UPDATE OR DELETE ON rt_employment_periods
    FOR EACH ROW WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
CREATE TRIGGER rt_contract_periods_edited AFTER INSERT OR UPDATE OR DELETE ON rt_contract_periods
    FOR EACH ROW WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
CREATE TRIGGER rt_schedule_periods_edited AFTER INSERT OR UPDATE OR DELETE ON rt_schedule_periods
    FOR EACH ROW WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
CREATE TRIGGER rt_employment_periods_truncated AFTER TRUNCATE ON rt_employment_periods
    FOR EACH STATEMENT WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
CREATE TRIGGER rt_contract_periods_truncated AFTER TRUNCATE ON rt_contract_periods
    FOR EACH STATEMENT WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
CREATE TRIGGER rt_schedule_periods_truncated AFTER TRUNCATE ON rt_schedule_periods
    FOR EACH STATEMENT WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
