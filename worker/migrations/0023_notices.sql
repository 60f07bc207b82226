-- Notices ("meldingen"): a new or long-waiting question, a held mass change, polls failing in a row. One row per
-- occurrence of a cause: opened when the cause appears, resolved when it goes away, and when it was sent on
-- each channel, so each is sent once, also across restarts.
CREATE TABLE notices (
    notice_id    bigserial   PRIMARY KEY,
    key          text        NOT NULL,           -- the cause: 'new_question:employee:101', 'mass_change_held', ...
    kind         text        NOT NULL CHECK (kind IN ('new_question', 'question_waiting', 'mass_change_held',
                                                      'poll_failing')),
    subject      text        NOT NULL,           -- 'employee:101', 'company:4', 'poll'
    title        text        NOT NULL,
    message      text        NOT NULL,
    link         text,
    opened_at    timestamptz NOT NULL,
    resolved_at  timestamptz CHECK (resolved_at >= opened_at),
    emailed_at   timestamptz,
    webhook_at   timestamptz,
    send_error   text                            -- the last failed send (retried at the next run), for the list
);
-- One open notice per cause (two runs racing insert it once, ON CONFLICT); a cause that comes back after it was
-- resolved is a new occurrence, so a new row.
CREATE UNIQUE INDEX notices_open_key ON notices (key) WHERE resolved_at IS NULL;
CREATE INDEX notices_resolved ON notices (resolved_at DESC) WHERE resolved_at IS NOT NULL;

-- The daily e-mail digests, also those that had nothing to say: the day is done either way.
CREATE TABLE notice_digests (
    sent_at      timestamptz PRIMARY KEY,
    notices      integer     NOT NULL
);
