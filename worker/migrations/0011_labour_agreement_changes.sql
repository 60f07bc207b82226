-- Nmbrs tells only an employee's current labour agreement (CAO). The sync remembers each change of it, so the
-- leave calculation gives the days before the change the old CAO's extra leave instead of rewriting past years.
CREATE TABLE rt_labour_agreement_changes (
    employee_id  int  NOT NULL REFERENCES rt_employees (employee_id) ON DELETE CASCADE,
    changed_on   date NOT NULL,  -- the new CAO's first day: the day the sync applied it (Dutch calendar)
    from_id      int,            -- rt_labour_agreements.nmbrs_id of the old CAO; NULL: none
    to_id        int,
    PRIMARY KEY (employee_id, changed_on)
);
