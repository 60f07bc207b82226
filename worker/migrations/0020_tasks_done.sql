-- Follow-up tasks done outside RegiTijd (the login account and its roles are made in RegiCRM's own screen):
-- HR marks them done, with who and when, so that they leave the list although the store cannot see them done.
CREATE TABLE rt_tasks_done (
    employee_id  integer     NOT NULL REFERENCES rt_employees,
    task         text        NOT NULL CHECK (task IN ('account', 'roles')),
    done_by      text        NOT NULL,
    done_at      timestamptz NOT NULL,
    command_id   uuid        NOT NULL,
    PRIMARY KEY (employee_id, task)
);
