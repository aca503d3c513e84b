-- The log explorer's full-text index over message, error message and payload text.
-- Contentless (the text is not stored twice), keyed by the log id; contentless_delete lets
-- rows be removed when their logs are. unicode61 folds case and diacritics for any script
-- that separates words with spaces.
CREATE VIRTUAL TABLE logs_fts USING fts5(body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
