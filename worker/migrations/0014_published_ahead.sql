-- The last event of each record that a poll handed to the broker before storing its snapshot, written before it
-- is sent. A poll cut off while publishing leaves its rows here: the next poll numbers its changes above them, so
-- a value that went A -> B -> A over cut-off polls gets a new version and id the third time instead of the id of
-- the first A (which a consumer would drop as a repeat). Emptied when a poll stores its snapshot.
CREATE TABLE nmbrs_published_ahead (
    key          text        PRIMARY KEY,
    entity       text        NOT NULL,
    company_id   integer,
    op           text        NOT NULL CHECK (op IN ('c', 'u', 'd', 'r')),
    fingerprint  text        NOT NULL,
    version      integer     NOT NULL CHECK (version >= 1),
    deleted      boolean     NOT NULL,
    record       jsonb       NOT NULL,
    poll_id      uuid        NOT NULL
);
