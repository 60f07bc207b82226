-- Links are looked up per entity by human (BSN hash) and by person. Indexes that lead with the entity keep
-- these lookups single index scans, also before the first ANALYZE: right after a first sync the planner
-- combined the BSN index with a scan of the whole primary key for every record of a batch (10x slower).
-- Without the person index every candidate of a match scanned all links.
DROP INDEX sync_links_bsn_hash;
CREATE INDEX sync_links_bsn_hash ON sync_links (entity, bsn_hash) WHERE bsn_hash IS NOT NULL;
CREATE INDEX sync_links_person ON sync_links (entity, crm_id);
