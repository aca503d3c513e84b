-- The log explorer's full-text index over message, error message and payload text: one
-- tsvector per log (the 'simple' configuration: no stemming, so any language matches as
-- written), with a GIN index.
CREATE TABLE logs_text (
    log_id BIGINT PRIMARY KEY,
    tsv    TSVECTOR NOT NULL
);
CREATE INDEX logs_text_tsv ON logs_text USING GIN (tsv);
