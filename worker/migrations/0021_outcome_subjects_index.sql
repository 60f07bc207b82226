-- An employee's history (worker/adapters/employee_history.py) finds the outcomes that name its subjects among
-- every handled event: a GIN index over the subjects of each row's outcomes keeps that an index lookup.
CREATE INDEX processed_events_outcome_subjects
    ON processed_events USING gin (jsonb_path_query_array(outcomes, '$[*].subject'));
