-- The full-text index of new logs lives in a file of its own next to this one
-- (`<name>-fts.db`), written by a second thread right after each ingest commit, so that
-- indexing no longer holds up the next commit. Logs up to this id stay in the old index in
-- this file (`logs_fts`); searches read both.
INSERT INTO ingest_state (key, value) SELECT 'full_text_split_at', COALESCE(MAX(id), 0) FROM logs;
-- Log ids are never handed out twice: new ids start above the newest log and above this
-- floor, which deleting logs raises to the highest deleted id. (An index entry of a deleted
-- log can then never match a new one.)
INSERT INTO ingest_state (key, value) SELECT 'log_id_floor', COALESCE(MAX(id), 0) FROM logs;
-- Identifies this database to its full-text index file: a file next to a restored or
-- replaced database is rebuilt instead of trusted.
INSERT INTO ingest_state (key, value) VALUES ('database_id', random() & 9223372036854775807);
