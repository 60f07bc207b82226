-- Foundation: the inbox that makes every consumer idempotent, and the sync requests it records.

-- One row per (consumer, event id) handled. Written in the same transaction as the effect, so a
-- redelivered event is recognised and has no second effect. The outcomes are kept so that a redelivery
-- after a crash between commit and publish re-publishes the same outcomes (same ids) instead of losing them.
CREATE TABLE processed_events (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    outcomes      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (consumer, event_id)
);

-- Requests to poll Nmbrs now ('Synchroniseren'), from the CLI or any frontend.
CREATE TABLE sync_requests (
    request_id    uuid        PRIMARY KEY,
    full_sync     boolean     NOT NULL,
    dry_run       boolean     NOT NULL,
    requested_by  text        NOT NULL,
    requested_at  timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    received_at   timestamptz NOT NULL DEFAULT now()
);
