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
    model_id      BIGINT NOT NULL,
    dim           TEXT   NOT NULL,
    bucket        BIGINT NOT NULL,
    value         TEXT   NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    latency       BYTEA,
    PRIMARY KEY (model_id, dim, bucket, value)
);

CREATE TABLE rollups_dim_day (
    model_id      BIGINT NOT NULL,
    dim           TEXT   NOT NULL,
    bucket        BIGINT NOT NULL,
    value         TEXT   NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    latency       BYTEA,
    PRIMARY KEY (model_id, dim, bucket, value)
);

-- Daily rollups with the same dimensions as rollups_minute/_hour: long-range breakdowns and
-- totals read ~30 rows per series for 30 days instead of 720.
CREATE TABLE rollups_day (
    model_id      BIGINT NOT NULL,
    bucket        BIGINT NOT NULL,
    series_id     BIGINT NOT NULL,
    error_type    TEXT NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    cache_hits    BIGINT NOT NULL,
    stored        BIGINT NOT NULL,
    latency       BYTEA,
    ttft          BYTEA,
    PRIMARY KEY (model_id, bucket, series_id, error_type)
);

-- Per model totals (all series and error types merged) by minute, hour and day: one row per
-- bucket, so KPI panels and the overview merge as few sketches as possible.
CREATE TABLE model_rollups_minute (
    model_id      BIGINT NOT NULL,
    bucket        BIGINT NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    cache_hits    BIGINT NOT NULL,
    stored        BIGINT NOT NULL,
    latency       BYTEA,
    ttft          BYTEA,
    PRIMARY KEY (model_id, bucket)
);
CREATE TABLE model_rollups_hour (
    model_id      BIGINT NOT NULL,
    bucket        BIGINT NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    cache_hits    BIGINT NOT NULL,
    stored        BIGINT NOT NULL,
    latency       BYTEA,
    ttft          BYTEA,
    PRIMARY KEY (model_id, bucket)
);
CREATE TABLE model_rollups_day (
    model_id      BIGINT NOT NULL,
    bucket        BIGINT NOT NULL,
    requests      BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    input_tokens  BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost_usd      DOUBLE PRECISION NOT NULL,
    cache_hits    BIGINT NOT NULL,
    stored        BIGINT NOT NULL,
    latency       BYTEA,
    ttft          BYTEA,
    PRIMARY KEY (model_id, bucket)
);
