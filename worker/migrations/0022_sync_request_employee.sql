-- "Sync this employee now": a sync request, and the poll run it causes, may name one Nmbrs employee to re-read
-- (null: the whole domain). A one-employee run is never "the last poll" the status and the overview report.
ALTER TABLE sync_requests ADD COLUMN employee_id integer;
ALTER TABLE poll_runs ADD COLUMN employee_id integer;
