-- Every period of service of an Nmbrs employee (a rehire has several): the leave calculation needs them all.
CREATE TABLE rt_employment_periods (
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    employment_id    integer     NOT NULL,
    start_date       date        NOT NULL,
    end_date         date,
    PRIMARY KEY (employee_id, employment_id, start_date)
);
