-- Payloads in blocks: each write transaction stores the payloads of its logs together, zstd
-- compressed as one frame (engine::ingest::payload::encode_block), in runs of about 256 KB.
-- Rows of `payloads` written before stay there and are still read.
CREATE TABLE payload_blocks (
    first_id INTEGER PRIMARY KEY, -- the lowest log id in the block
    last_id  INTEGER NOT NULL,    -- the highest
    body     BLOB    NOT NULL
);
