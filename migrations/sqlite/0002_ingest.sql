-- The write path: API keys, log rows, payloads, per-minute and per-hour rollups, custom metrics,
-- ingest rules and the price table. All times are UTC milliseconds since the epoch.

ALTER TABLE models ADD COLUMN capture_payloads INTEGER NOT NULL DEFAULT 1;

CREATE TABLE api_keys (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    -- The first characters of the key, shown in lists and used to find the row.
    prefix           TEXT    NOT NULL UNIQUE,
    -- SHA-256 of the whole key: keys are long random strings, so a fast hash is enough.
    secret_hash      TEXT    NOT NULL,
    scopes           TEXT    NOT NULL,
    -- JSON array of model names the key may write/read, or NULL for every model.
    models           TEXT,
    capture_payloads INTEGER NOT NULL DEFAULT 1,
    created_by       INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER,
    revoked_at       INTEGER
);

-- One row per distinct (model, provider, version, environment, operation): log rows and rollups
-- refer to it by id, which keeps both small. The writer caps how many a model may have.
CREATE TABLE series (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id      INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    provider      TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    operation     TEXT    NOT NULL,
    UNIQUE (model_id, provider, model_version, environment, operation)
);

-- Raw log rows. No foreign keys: the writer resolves ids itself, and checks would cost ingest time.
CREATE TABLE logs (
    id            INTEGER PRIMARY KEY,
    ts            INTEGER NOT NULL,
    model_id      INTEGER NOT NULL,
    series_id     INTEGER NOT NULL,
    -- bit 0 error, 1 cache hit, 2 has payload, 3 payload truncated, 4 redacted
    flags         INTEGER NOT NULL,
    level         INTEGER NOT NULL,
    http_status   INTEGER,
    latency_ms    REAL,
    ttft_ms       REAL,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cached_tokens INTEGER,
    cost_usd      REAL,
    feedback      INTEGER,
    error_type    TEXT,
    message       TEXT,
    error_message TEXT,
    user_id       TEXT,
    session_id    TEXT,
    trace_id      TEXT,
    span_id       TEXT,
    metadata      TEXT
);
CREATE INDEX logs_model_ts ON logs (model_id, ts);

-- Prompt and response text, zstd-compressed, owned by engine::ingest::payload.
CREATE TABLE payloads (
    log_id INTEGER PRIMARY KEY,
    body   BLOB    NOT NULL
);

-- Per-minute and per-hour rollups of log records. Sketches are DDSketch (1% relative error).
CREATE TABLE rollups_minute (
    model_id      INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    series_id     INTEGER NOT NULL,
    error_type    TEXT    NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd      REAL    NOT NULL,
    cache_hits    INTEGER NOT NULL,
    stored        INTEGER NOT NULL,
    latency       BLOB,
    ttft          BLOB,
    PRIMARY KEY (model_id, bucket, series_id, error_type)
) WITHOUT ROWID;
CREATE TABLE rollups_hour (
    model_id      INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    series_id     INTEGER NOT NULL,
    error_type    TEXT    NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd      REAL    NOT NULL,
    cache_hits    INTEGER NOT NULL,
    stored        INTEGER NOT NULL,
    latency       BLOB,
    ttft          BLOB,
    PRIMARY KEY (model_id, bucket, series_id, error_type)
) WITHOUT ROWID;

-- Custom metric points (accuracy, drift, GPU utilisation, ...) and their rollups.
CREATE TABLE metric_points (
    id       INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,
    model_id INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    value    REAL    NOT NULL,
    labels   TEXT
);
CREATE INDEX metric_points_model_name_ts ON metric_points (model_id, name, ts);
CREATE TABLE metric_rollups_minute (
    model_id INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    sum      REAL    NOT NULL,
    min      REAL    NOT NULL,
    max      REAL    NOT NULL,
    sketch   BLOB,
    PRIMARY KEY (model_id, name, bucket)
) WITHOUT ROWID;
CREATE TABLE metric_rollups_hour (
    model_id INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    sum      REAL    NOT NULL,
    min      REAL    NOT NULL,
    max      REAL    NOT NULL,
    sketch   BLOB,
    PRIMARY KEY (model_id, name, bucket)
) WITHOUT ROWID;

-- Drop, sample and redact rules applied before storage, in `position` order.
CREATE TABLE ingest_rules (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    position   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('drop', 'sample', 'redact')),
    enabled    INTEGER NOT NULL DEFAULT 1,
    -- Exact model name, a prefix ending in '*', or '' for every model.
    model      TEXT    NOT NULL DEFAULT '',
    -- Kind-specific settings as JSON (see engine::ingest::rules).
    config     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE prices (
    pattern               TEXT PRIMARY KEY,
    input_per_mtok        REAL NOT NULL,
    output_per_mtok       REAL NOT NULL,
    cached_input_per_mtok REAL NOT NULL,
    updated_at            INTEGER NOT NULL
);
-- Default prices in USD per million tokens (list prices when this release was made; edit them in
-- Admin → Prices). A pattern ending in '*' matches every model name that starts with the rest.
INSERT INTO prices (pattern, input_per_mtok, output_per_mtok, cached_input_per_mtok, updated_at) VALUES
  ('gpt-5',                  1.25, 10.00, 0.125, 0),
  ('gpt-5-mini',             0.25,  2.00, 0.025, 0),
  ('gpt-5-nano',             0.05,  0.40, 0.005, 0),
  ('gpt-4.1',                2.00,  8.00, 0.50,  0),
  ('gpt-4.1-mini',           0.40,  1.60, 0.10,  0),
  ('gpt-4.1-nano',           0.10,  0.40, 0.025, 0),
  ('gpt-4o',                 2.50, 10.00, 1.25,  0),
  ('gpt-4o-2024-*',          2.50, 10.00, 1.25,  0),
  ('gpt-4o-mini*',           0.15,  0.60, 0.075, 0),
  ('o3',                     2.00,  8.00, 0.50,  0),
  ('o4-mini',                1.10,  4.40, 0.275, 0),
  ('text-embedding-3-small', 0.02,  0.00, 0.00,  0),
  ('text-embedding-3-large', 0.13,  0.00, 0.00,  0),
  ('claude-opus-4*',        15.00, 75.00, 1.50,  0),
  ('claude-sonnet-4*',       3.00, 15.00, 0.30,  0),
  ('claude-3-7-sonnet*',     3.00, 15.00, 0.30,  0),
  ('claude-haiku-4*',        1.00,  5.00, 0.10,  0),
  ('claude-3-5-haiku*',      0.80,  4.00, 0.08,  0),
  ('gemini-2.5-pro*',        1.25, 10.00, 0.31,  0),
  ('gemini-2.5-flash*',      0.30,  2.50, 0.075, 0),
  ('mistral-large*',         2.00,  6.00, 2.00,  0),
  ('mistral-small*',         0.10,  0.30, 0.10,  0);
