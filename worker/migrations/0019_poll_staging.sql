-- A poll plans company by company and keeps no more than a few companies' records in memory (issue #22): each
-- company's planned changes are staged here as they are planned, with the event as it will be sent. Once the breaker
-- let the whole poll through they are published from here in order, copied into nmbrs_published_ahead before the
-- first is sent and into nmbrs_snapshots after the broker acknowledged the last, all on the database side. Only the
-- poll holding the poll lock writes here, and it starts by emptying the table: rows left by a failed poll go then.
CREATE TABLE nmbrs_poll_staged (
    poll_id      uuid     NOT NULL,
    key          text     NOT NULL,
    seq          bigint   GENERATED ALWAYS AS IDENTITY,
    rank         smallint NOT NULL,  -- publication order: companies, reference data, then employees
    entity       text     NOT NULL,
    company_id   integer,
    op           text     NOT NULL CHECK (op IN ('c', 'u', 'd', 'r')),
    fingerprint  text     NOT NULL,
    version      integer  NOT NULL CHECK (version >= 1),
    deleted      boolean  NOT NULL,
    record       jsonb    NOT NULL,
    event        bytea    NOT NULL,  -- the message body as published
    PRIMARY KEY (poll_id, key)
);
CREATE INDEX nmbrs_poll_staged_order ON nmbrs_poll_staged (poll_id, rank, seq);

-- One company's rows are read as one unit.
CREATE INDEX nmbrs_snapshots_company ON nmbrs_snapshots (company_id) WHERE entity = 'employee';
CREATE INDEX nmbrs_published_ahead_company ON nmbrs_published_ahead (company_id) WHERE entity = 'employee';
