-- Prometheus endpoints of model servers that Modelwatch scrapes into custom metrics.
CREATE TABLE scrape_targets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id         INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    url              TEXT    NOT NULL,
    interval_secs    INTEGER NOT NULL,
    preset           TEXT    NOT NULL,
    keep             TEXT    NOT NULL DEFAULT '',
    enabled          INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    last_scrape_ms   INTEGER,
    last_duration_ms INTEGER,
    last_error       TEXT,
    last_points      INTEGER,
    last_success_ms  INTEGER
);
