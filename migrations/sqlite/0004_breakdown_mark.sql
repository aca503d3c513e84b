-- Writer state that must survive a crash. `breakdowns_through_log_id`: the user and metadata
-- breakdowns (rollups_dim_*) include every stored log up to this id; the writer holds their
-- deltas back for a moment and, after an unclean stop, rebuilds the rest from the rows.
CREATE TABLE ingest_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Existing breakdowns already include every stored log.
INSERT INTO ingest_state (key, value) SELECT 'breakdowns_through_log_id', COALESCE(MAX(id), 0) FROM logs;
