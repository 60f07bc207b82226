-- Drift detection compares an employee's local period lists (employments, contracts, schedules) with what
-- the sync last wrote. Aggregating three lists per employee for every change cost more than reading the
-- rest of its state, and they rarely change locally. So a trigger counts, per employee, the period rows
-- anyone but the sync inserted, changed or deleted; the sync reads the lists only of employees with edits
-- it has not seen (the others' lists equal what it last wrote). When it writes an employee it records the
-- count it saw when it read the state: an edit made meanwhile still counts as unseen, so it is compared
-- with the next change instead of being forgotten. The sync announces itself per transaction
-- (set_config('nmbrs_sync.writer', 'sync', true)). Existing employees start unseen: their first change
-- reads everything, as before.
ALTER TABLE rt_employees ADD COLUMN period_edits integer NOT NULL DEFAULT 1,
                         ADD COLUMN period_edits_seen integer NOT NULL DEFAULT 0;

CREATE FUNCTION count_period_edit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE rt_employees SET period_edits = period_edits + 1 WHERE employee_id = OLD.employee_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.employee_id <> OLD.employee_id) THEN
        UPDATE rt_employees SET period_edits = period_edits + 1 WHERE employee_id = NEW.employee_id;
    END IF;
    RETURN NULL;
END
$$;

-- The condition keeps the function from being called at all for the sync's own (bulk) writes.
CREATE TRIGGER rt_employment_periods_edited AFTER INSERT OR UPDATE OR DELETE ON rt_employment_periods
    FOR EACH ROW WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
CREATE TRIGGER rt_contract_periods_edited AFTER INSERT OR UPDATE OR DELETE ON rt_contract_periods
    FOR EACH ROW WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
CREATE TRIGGER rt_schedule_periods_edited AFTER INSERT OR UPDATE OR DELETE ON rt_schedule_periods
    FOR EACH ROW WHEN (current_setting('nmbrs_sync.writer', true) IS DISTINCT FROM 'sync')
    EXECUTE FUNCTION count_period_edit();
