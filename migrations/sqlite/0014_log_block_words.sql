-- A filter of the words of each block's logs (`engine::store::textindex`): full-text search
-- tests it to skip blocks that cannot match, then checks the logs' own words. Written with the
-- block in the ingest commit, instead of FTS5 entries for each of its logs. NULL in blocks
-- written before: their logs stay in the FTS5 index and are found there.
ALTER TABLE log_blocks ADD COLUMN text_index BLOB;
