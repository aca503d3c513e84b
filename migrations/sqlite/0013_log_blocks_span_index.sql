-- A model's blocks by newest log, with the oldest in the index too: a range read checks
-- whether a block's span meets the range without reading the block's row.
DROP INDEX log_blocks_model_ts;
CREATE INDEX log_blocks_model_span ON log_blocks (model_id, max_ts, min_ts);
