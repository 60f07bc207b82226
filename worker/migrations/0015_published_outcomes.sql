-- When the broker acknowledged the outcomes of a handled event (set by the consumer shell after publishing).
-- A redelivery re-publishes the stored outcomes only while this is empty: they are there to repair a publish
-- lost to a crash between commit and publish, and re-publishing them every time made each redelivered bulk
-- decision send all its outcomes (three per record) again. Rows from before this column stay empty: their
-- publish is not known, so a redelivery still repairs it.
ALTER TABLE processed_events ADD COLUMN published_at timestamptz;
