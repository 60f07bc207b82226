-- A poll marks its run before it publishes. A run that began publishing but never stored its snapshot (a
-- crash, a broker failure halfway) may have published changes the snapshot does not know: the next poll
-- runs as a full reconciliation, so every record is published again as it is now.
ALTER TABLE poll_runs ADD COLUMN publishing_at timestamptz;
