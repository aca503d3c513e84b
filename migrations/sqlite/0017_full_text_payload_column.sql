-- Payload text (request and response) gets a column of its own in the full-text index, so
-- that a search by someone who may not view a model's payloads looks at message and error
-- text only (`body : …`); before, a hidden payload's words could be probed through search.
-- The old index in this file mixed the two: it is dropped, and the index file (`-fts.db`),
-- which rebuilds itself from the stored logs when its columns are the old ones, takes every
-- log from the first on.
DROP TABLE IF EXISTS logs_fts;
CREATE VIRTUAL TABLE logs_fts USING fts5(body, payload, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
UPDATE ingest_state SET value = 0 WHERE key = 'full_text_split_at';
