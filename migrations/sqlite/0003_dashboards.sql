-- Dashboards: breakdowns by user and by chosen metadata keys.
--
-- Metadata keys whose values are rolled up for this model's dashboard breakdowns (JSON array of
-- key names, edited in Admin → Models). Only chosen keys are rolled up so that a high-cardinality
-- key cannot grow the rollups behind the admin's back.
ALTER TABLE models ADD COLUMN breakdown_keys TEXT NOT NULL DEFAULT '[]';

-- Per model and hour (and day), the numbers behind the "by user" and "by metadata key" breakdowns.
-- `dim` is 'user' or 'meta:<key>'. The writer keeps at most a fixed number of values per
-- (model, dim, hour) and files the rest under '(other)', so the row count stays bounded.
CREATE TABLE rollups_dim_hour (
    model_id      INTEGER NOT NULL,
    dim           TEXT    NOT NULL,
    bucket        INTEGER NOT NULL,
    value         TEXT    NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL    NOT NULL,
    latency       BLOB,
    PRIMARY KEY (model_id, dim, bucket, value)
) WITHOUT ROWID;

CREATE TABLE rollups_dim_day (
    model_id      INTEGER NOT NULL,
    dim           TEXT    NOT NULL,
    bucket        INTEGER NOT NULL,
    value         TEXT    NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL    NOT NULL,
    latency       BLOB,
    PRIMARY KEY (model_id, dim, bucket, value)
) WITHOUT ROWID;

-- Daily rollups with the same dimensions as rollups_minute/_hour: long-range breakdowns and
-- totals read ~30 rows per series for 30 days instead of 720.
CREATE TABLE rollups_day (
    model_id      INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    series_id     INTEGER NOT NULL,
    error_type    TEXT NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    cache_hits    INTEGER NOT NULL,
    stored        INTEGER NOT NULL,
    latency       BLOB,
    ttft          BLOB,
    PRIMARY KEY (model_id, bucket, series_id, error_type)
) WITHOUT ROWID;

-- Per model totals (all series and error types merged) by minute, hour and day: one row per
-- bucket, so KPI panels and the overview merge as few sketches as possible.
CREATE TABLE model_rollups_minute (
    model_id      INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    cache_hits    INTEGER NOT NULL,
    stored        INTEGER NOT NULL,
    latency       BLOB,
    ttft          BLOB,
    PRIMARY KEY (model_id, bucket)
) WITHOUT ROWID;
CREATE TABLE model_rollups_hour (
    model_id      INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    cache_hits    INTEGER NOT NULL,
    stored        INTEGER NOT NULL,
    latency       BLOB,
    ttft          BLOB,
    PRIMARY KEY (model_id, bucket)
) WITHOUT ROWID;
CREATE TABLE model_rollups_day (
    model_id      INTEGER NOT NULL,
    bucket        INTEGER NOT NULL,
    requests      INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    cache_hits    INTEGER NOT NULL,
    stored        INTEGER NOT NULL,
    latency       BLOB,
    ttft          BLOB,
    PRIMARY KEY (model_id, bucket)
) WITHOUT ROWID;
