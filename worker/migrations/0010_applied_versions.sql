-- The Nmbrs snapshot version last written to each RegiTijd employee and company. A change event older than
-- it (a dead letter replayed, two pollers after a lost lock) is ignored instead of writing old data back.
ALTER TABLE rt_employees ADD COLUMN nmbrs_version int;
ALTER TABLE rt_companies ADD COLUMN nmbrs_version int;
