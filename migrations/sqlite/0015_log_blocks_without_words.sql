-- The blocks without a filter of their words (written before 0014): what the FTS5 index of
-- `modelwatch-fts.db` is rebuilt from after an unclean stop or a lost file, found without
-- walking every newer block.
CREATE INDEX log_blocks_without_words ON log_blocks (first_id) WHERE text_index IS NULL;
