-- Poller state: the last published state of every Nmbrs record, and one row per poll.

-- Advances only after Kafka acknowledged the poll's events. Removed records stay as tombstones so that
-- versions (and so event ids) keep increasing when a record comes back.
CREATE TABLE nmbrs_snapshots (
    key          text        PRIMARY KEY,           -- 'employee:123', 'company:4', 'department:7', ...
    entity       text        NOT NULL,
    company_id   integer,
    fingerprint  text        NOT NULL,
    version      integer     NOT NULL CHECK (version >= 1),
    deleted      boolean     NOT NULL DEFAULT false,
    record       jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nmbrs_snapshots_entity ON nmbrs_snapshots (entity) WHERE NOT deleted;

CREATE TABLE poll_runs (
    poll_id      uuid        PRIMARY KEY,
    request_id   uuid        REFERENCES sync_requests (request_id),
    full_sync    boolean     NOT NULL,
    dry_run      boolean     NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    status       text        NOT NULL CHECK (status IN ('running', 'published', 'held', 'planned', 'failed')),
    summary      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX poll_runs_started ON poll_runs (started_at DESC);

ALTER TABLE sync_requests ADD COLUMN release_hold boolean NOT NULL DEFAULT false;
