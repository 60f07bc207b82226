-- The target store: RegiCRM (persons, organisations, accounts, kenmerken) and RegiTijd (companies,
-- employees, reference data, contract/schedule periods, leave and hours, time-writing categories),
-- plus the sync state (links, blocks, pending decisions, audit log, step status).

-- RegiCRM -------------------------------------------------------------------------------------------

CREATE TABLE crm_organisations (
    organisation_id  serial      PRIMARY KEY,
    external_ref     text        UNIQUE,          -- id in a loaded starting state (target load)
    name             text        NOT NULL,
    kvk_number       text,
    email            text,
    phone            text,
    postcode         text,
    website          text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text        NOT NULL DEFAULT 'load'
);

CREATE TABLE crm_persons (
    person_id        serial      PRIMARY KEY,
    external_ref     text        UNIQUE,
    first_name       text,
    initials         text,
    prefix           text,                          -- tussenvoegsel
    last_name        text        NOT NULL,
    birthday         date,
    gender           text,
    email_work       text,
    email_private    text,
    phone_work       text,
    phone_mobile     text,
    phone_private    text,
    postcode         text,
    organisation_id  integer     REFERENCES crm_organisations,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text        NOT NULL DEFAULT 'load',
    -- Case- and accent-free last name for the candidate search ('Çelik' -> 'celik'); the matcher scores.
    match_name       text        GENERATED ALWAYS AS (lower(translate(last_name,
        'ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽž',
        'AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZz'))) STORED
);
CREATE INDEX crm_persons_match_name ON crm_persons (match_name);
CREATE INDEX crm_persons_birthday ON crm_persons (birthday);

CREATE TABLE crm_accounts (
    account_id       serial      PRIMARY KEY,
    person_id        integer     NOT NULL UNIQUE REFERENCES crm_persons,
    username         text        NOT NULL UNIQUE,
    roles            text[]      NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- kenmerken: grant roles in the other Regi applications, e.g. 'RegiPersoneel: Personeelslid'.
CREATE TABLE crm_characteristics (
    person_id        integer     NOT NULL REFERENCES crm_persons,
    characteristic   text        NOT NULL,
    PRIMARY KEY (person_id, characteristic)
);

-- RegiTijd reference data (owned by Nmbrs, created/updated automatically) ----------------------------

CREATE TABLE rt_departments (
    nmbrs_id         integer     PRIMARY KEY,
    code             text,
    description      text        NOT NULL,
    active           boolean     NOT NULL DEFAULT true
);

CREATE TABLE rt_functions (
    nmbrs_id         integer     PRIMARY KEY,
    code             text,
    description      text        NOT NULL,
    active           boolean     NOT NULL DEFAULT true
);

CREATE TABLE rt_labour_agreements (
    nmbrs_id                  integer  PRIMARY KEY,
    number                    text,
    description               text     NOT NULL,
    active                    boolean  NOT NULL DEFAULT true,
    -- Extra-statutory leave is configured locally per CAO (hours per year at full time).
    extra_leave_hours_fulltime numeric(8, 2) NOT NULL DEFAULT 0,
    fulltime_hours_per_week    numeric(6, 2) NOT NULL DEFAULT 40
);

-- RegiTijd companies and employees ------------------------------------------------------------------

CREATE TABLE rt_companies (
    company_id        serial      PRIMARY KEY,
    organisation_id   integer     NOT NULL REFERENCES crm_organisations,
    nmbrs_company_id  integer     UNIQUE,
    name              text        NOT NULL,
    active            boolean     NOT NULL DEFAULT true,
    nmbrs_synced      jsonb       -- Nmbrs-owned values as last written by the sync (drift detection)
);

CREATE TABLE rt_employees (
    employee_id          serial      PRIMARY KEY,
    person_id            integer     NOT NULL REFERENCES crm_persons,
    source               text        NOT NULL CHECK (source IN ('nmbrs', 'manual')),  -- manual = blue
    nmbrs_employee_id    integer     UNIQUE,
    company_id           integer     REFERENCES rt_companies,
    number               text,
    function_id          integer     REFERENCES rt_functions,
    department_id        integer     REFERENCES rt_departments,
    labour_agreement_id  integer     REFERENCES rt_labour_agreements,
    employment_start     date,
    employment_end       date,
    active               boolean     NOT NULL DEFAULT true,
    -- Locally owned: never touched by the sync.
    manager_employee_id  integer     REFERENCES rt_employees,
    is_manager           boolean     NOT NULL DEFAULT false,
    nmbrs_synced         jsonb,      -- Nmbrs-owned values as last written by the sync (drift detection)
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (source = 'manual' OR nmbrs_employee_id IS NOT NULL)
);
CREATE INDEX rt_employees_person ON rt_employees (person_id);

CREATE TABLE rt_contract_periods (
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    contract_id      integer     NOT NULL,
    start_date       date        NOT NULL,
    end_date         date,
    hours_per_week   numeric(6, 2),
    PRIMARY KEY (employee_id, contract_id, start_date)
);

CREATE TABLE rt_schedule_periods (
    employee_id          integer      NOT NULL REFERENCES rt_employees,
    start_date           date         NOT NULL,
    hours_per_week       numeric(6, 2) NOT NULL,
    parttime_percentage  numeric(6, 2),
    PRIMARY KEY (employee_id, start_date)
);

-- Leave and hours: locally owned inputs, computed balances.
CREATE TABLE rt_leave_adjustments (
    adjustment_id    serial      PRIMARY KEY,
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    booked_on        date        NOT NULL,
    hours            numeric(8, 2) NOT NULL,
    reason           text
);

CREATE TABLE rt_leave_taken (
    entry_id         serial      PRIMARY KEY,
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    taken_on         date        NOT NULL,
    hours            numeric(8, 2) NOT NULL CHECK (hours >= 0)
);

CREATE TABLE rt_overtime (
    entry_id         serial      PRIMARY KEY,
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    worked_on        date        NOT NULL,
    hours            numeric(8, 2) NOT NULL CHECK (hours >= 0)
);

CREATE TABLE rt_overtime_payouts (
    payout_id        serial      PRIMARY KEY,
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    paid_on          date        NOT NULL,
    hours            numeric(8, 2) NOT NULL CHECK (hours >= 0)
);

CREATE TABLE rt_leave_balances (
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    as_of            date        NOT NULL,
    result           jsonb       NOT NULL,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    causation_id     uuid,
    PRIMARY KEY (employee_id)
);

-- Time-writing categories (tijdschrijfrubrieken / opdrachtregels) and their links to employees.
CREATE TABLE rt_time_categories (
    category_id      serial      PRIMARY KEY,
    code             text        NOT NULL UNIQUE,
    name             text        NOT NULL
);

CREATE TABLE rt_employee_time_categories (
    employee_id      integer     NOT NULL REFERENCES rt_employees,
    category_id      integer     NOT NULL REFERENCES rt_time_categories,
    PRIMARY KEY (employee_id, category_id)
);

-- Sync state ------------------------------------------------------------------------------------------

-- Nmbrs record -> RegiCRM person/organisation (and the RegiTijd employee/company it became).
CREATE TABLE sync_links (
    entity           text        NOT NULL CHECK (entity IN ('employee', 'company')),
    nmbrs_id         integer     NOT NULL,
    crm_id           integer     NOT NULL,          -- person_id or organisation_id
    regitijd_id      integer,                        -- employee_id or company_id
    bsn_hash         text,
    linked_at        timestamptz NOT NULL DEFAULT now(),
    linked_by        text        NOT NULL,           -- 'auto' or the deciding user
    reason           text        NOT NULL,
    decision_id      uuid,
    PRIMARY KEY (entity, nmbrs_id)
);
CREATE INDEX sync_links_bsn_hash ON sync_links (bsn_hash) WHERE bsn_hash IS NOT NULL;

CREATE TABLE sync_blocks (
    entity           text        NOT NULL CHECK (entity IN ('employee', 'company')),
    nmbrs_id         integer     NOT NULL,
    blocked_at       timestamptz NOT NULL DEFAULT now(),
    blocked_by       text        NOT NULL,
    reason           text,
    decision_id      uuid,
    PRIMARY KEY (entity, nmbrs_id)
);

-- One open question per Nmbrs record; a newer change replaces it with a higher version.
CREATE TABLE pending_decisions (
    entity           text        NOT NULL CHECK (entity IN ('employee', 'company')),
    nmbrs_id         integer     NOT NULL,
    version          integer     NOT NULL,
    situation        text        NOT NULL CHECK (situation IN ('unmatched', 'disputed')),
    company_id       integer,
    record           jsonb       NOT NULL,
    candidates       jsonb       NOT NULL,
    causation_id     uuid        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, nmbrs_id)
);

CREATE TABLE audit_log (
    audit_id         bigserial   PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    causation_id     uuid,
    subject          text        NOT NULL,           -- 'employee:123', 'company:4', 'person:9', ...
    action           text        NOT NULL,
    before           jsonb,
    after            jsonb,
    actor            text        NOT NULL DEFAULT 'sync'
);
CREATE INDEX audit_log_subject ON audit_log (subject, at);

-- Green/red per step (companies, departments, functions, labour_agreements, employees, contracts, leave).
CREATE TABLE step_status (
    step             text        PRIMARY KEY,
    status           text        NOT NULL CHECK (status IN ('green', 'red')),
    counts           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
