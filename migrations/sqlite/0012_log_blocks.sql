-- Logs in blocks: each commit stores the logs of one model as one row here, their columns
-- compressed together (`engine::store::blocks`), instead of one `logs` row each. Logs stored
-- before stay in `logs`; reads merge both. A block keeps the id range it was written with
-- (`first_id..=last_id`, never overlapping another block's) and the time span, row count and
-- model of the logs it holds; deleting logs rewrites the blocks that held them.
CREATE TABLE log_blocks (
    first_id INTEGER PRIMARY KEY,
    last_id  INTEGER NOT NULL,
    model_id INTEGER NOT NULL,
    min_ts   INTEGER NOT NULL,
    max_ts   INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    body     BLOB    NOT NULL
);
-- A model's blocks newest first (searches, histograms, counts).
CREATE INDEX log_blocks_model_ts ON log_blocks (model_id, max_ts);
