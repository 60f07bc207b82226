-- Decisions: every human choice and what it did, so it can be shown, deduplicated and undone.

CREATE TABLE decisions (
    decision_id      uuid        PRIMARY KEY,
    entity           text        NOT NULL,
    nmbrs_id         integer,                        -- NULL for a bulk decision
    action           text        NOT NULL,
    decided_by       text        NOT NULL,
    decided_at       timestamptz NOT NULL,
    result           text        NOT NULL CHECK (result IN ('applied', 'rejected', 'previewed')),
    reason           text,
    effect           jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- what to reverse on ongedaan_maken
    undone_by        uuid,
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_record ON decisions (entity, nmbrs_id, decided_at);

-- Overslaan keeps the question but hides it until the next poll has run ("ask again next time").
ALTER TABLE pending_decisions ADD COLUMN skipped boolean NOT NULL DEFAULT false;

-- Blocks remember the record, so that ontblokkeren can ask the question again at once.
ALTER TABLE sync_blocks ADD COLUMN record jsonb;

-- When a worker took a sync request: one that died mid-poll leaves it 'running', to be taken again later.
ALTER TABLE sync_requests ADD COLUMN claimed_at timestamptz;
