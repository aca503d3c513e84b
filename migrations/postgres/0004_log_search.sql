-- The log explorer pages newest first by (ts, id). With id in the index a page is a backward
-- index scan with no sort; it replaces the (model_id, ts) index, so ingest keeps one index.
-- (SQLite needs no change: its index entries end with the rowid, which is the id.)
CREATE INDEX logs_model_ts_id ON logs (model_id, ts, id);
DROP INDEX logs_model_ts;
