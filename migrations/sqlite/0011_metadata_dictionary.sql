-- Metadata objects that many logs share (the same tenant, region, feature…) are stored once
-- here and referred to from `logs.metadata_ref`; a log whose object was not repeated within
-- its commit keeps it inline in `logs.metadata`. `refs` counts the logs referring to an
-- entry: deleting logs lowers it, and an entry nobody refers to any more is deleted.
CREATE TABLE log_metadata (
    id   INTEGER PRIMARY KEY,
    body TEXT    NOT NULL UNIQUE,
    refs INTEGER NOT NULL
);
ALTER TABLE logs ADD COLUMN metadata_ref INTEGER;
