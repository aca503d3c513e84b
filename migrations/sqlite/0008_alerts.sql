-- Alerting: rules, their per-model state and history, channels, the notification outbox,
-- silences, and the evaluator's lease.
CREATE TABLE alert_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    -- The rule's settings (kind, models, metric, window, thresholds, …) as JSON.
    config      TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE alert_states (
    rule_id        INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    model_id       INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    state          TEXT    NOT NULL,
    severity       TEXT    NOT NULL DEFAULT '',
    since_ms       INTEGER NOT NULL,
    value          REAL,
    last_eval_ms   INTEGER NOT NULL,
    last_notified_ms INTEGER,
    acked_by       TEXT,
    acked_at       INTEGER,
    PRIMARY KEY (rule_id, model_id)
);

CREATE TABLE alert_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id   INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    model_id  INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    ts        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    severity  TEXT    NOT NULL DEFAULT '',
    value     REAL,
    detail    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX alert_events_rule ON alert_events (rule_id, ts);
CREATE INDEX alert_events_model ON alert_events (model_id, ts);

CREATE TABLE alert_channels (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE alert_notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id      INTEGER NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
    rule_id         INTEGER REFERENCES alert_rules(id) ON DELETE SET NULL,
    event           TEXT    NOT NULL,
    -- What to send, prepared when the notification was queued.
    message         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    created_ms      INTEGER NOT NULL,
    delivered_ms    INTEGER
);
CREATE INDEX alert_notifications_due ON alert_notifications (status, next_attempt_ms);
CREATE INDEX alert_notifications_channel ON alert_notifications (channel_id, status, id);

CREATE TABLE alert_silences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id     INTEGER REFERENCES alert_rules(id) ON DELETE CASCADE,
    model_id    INTEGER REFERENCES models(id) ON DELETE CASCADE,
    starts_ms   INTEGER NOT NULL,
    ends_ms     INTEGER NOT NULL,
    comment     TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE alert_lease (
    id          INTEGER PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_ms  INTEGER NOT NULL
);
