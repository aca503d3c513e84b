//! Storage of alerting: rules, per-model states and their history, channels, the notification
//! outbox, silences and the evaluator lease. One macro implements it for SQLite and Postgres
//! (the SQL is the same), like `impl_common_store!`.

use async_trait::async_trait;

use crate::error::Result;
use crate::types::{AlertChannel, AlertEvent, AlertNotification, AlertRule, AlertSilence};

/// The stored state of one rule on one model.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StateRow {
    pub rule_id: i64,
    pub model_id: i64,
    pub state: String,
    pub severity: String,
    pub since_ms: i64,
    pub value: Option<f64>,
    pub last_eval_ms: i64,
    pub last_notified_ms: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_at: Option<i64>,
}

/// A notification due for delivery, with what the dispatcher needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueNotification {
    pub id: i64,
    pub channel_id: i64,
    pub event: String,
    pub message: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub kind: String,
    pub config: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub config: String,
    pub created_by: String,
    pub updated_at: i64,
}

impl RuleRow {
    pub(crate) fn into_rule(self) -> Result<AlertRule> {
        let mut r: AlertRule = serde_json::from_str(&self.config)
            .map_err(|e| crate::error::Error::Storage(format!("alert rule {} has unreadable settings: {e}", self.id)))?;
        r.id = self.id;
        r.name = self.name;
        r.enabled = self.enabled;
        r.created_by = self.created_by;
        r.updated_at = self.updated_at;
        Ok(r)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub config: String,
    pub created_at: i64,
}

impl ChannelRow {
    pub(crate) fn into_channel(self) -> AlertChannel {
        let mut c: AlertChannel = serde_json::from_str(&self.config).unwrap_or(AlertChannel {
            id: 0,
            name: String::new(),
            kind: String::new(),
            url: String::new(),
            secret: String::new(),
            to: Vec::new(),
            created_at: 0,
        });
        c.id = self.id;
        c.name = self.name;
        c.kind = self.kind;
        c.created_at = self.created_at;
        c
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct NotificationRow {
    pub id: i64,
    pub channel_id: i64,
    pub channel: String,
    pub rule_id: Option<i64>,
    pub event: String,
    pub message: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub delivered_ms: Option<i64>,
}

impl NotificationRow {
    pub(crate) fn into_notification(self) -> AlertNotification {
        let summary = serde_json::from_str::<serde_json::Value>(&self.message)
            .ok()
            .and_then(|v| v["summary"].as_str().map(str::to_string))
            .unwrap_or_default();
        AlertNotification {
            id: self.id,
            channel_id: self.channel_id,
            channel: self.channel,
            rule_id: self.rule_id,
            event: self.event,
            summary,
            status: self.status,
            attempts: self.attempts,
            next_attempt_ms: self.next_attempt_ms,
            last_error: self.last_error,
            created_ms: self.created_ms,
            delivered_ms: self.delivered_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SilenceRow {
    pub id: i64,
    pub rule_id: Option<i64>,
    pub rule_name: Option<String>,
    pub model: Option<String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub comment: String,
    pub created_by: String,
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    async fn list_alert_rules(&self) -> Result<Vec<AlertRule>>;
    async fn create_alert_rule(&self, rule: &AlertRule, now_ms: i64) -> Result<i64>;
    async fn update_alert_rule(&self, rule: &AlertRule, now_ms: i64) -> Result<bool>;
    async fn delete_alert_rule(&self, id: i64) -> Result<bool>;

    async fn alert_states(&self) -> Result<Vec<StateRow>>;
    /// Writes the evaluator's state. While firing, an acknowledgement made meanwhile is kept
    /// (`acked_by` None) unless the evaluator clears it (`acked_by` Some("")).
    async fn upsert_alert_state(&self, s: &StateRow) -> Result<()>;
    /// Acknowledges a firing alert; false when it is not firing.
    async fn acknowledge_alert_state(&self, rule_id: i64, model_id: i64, by: &str, at_ms: i64) -> Result<bool>;
    async fn delete_alert_state(&self, rule_id: i64, model_id: i64) -> Result<()>;
    async fn insert_alert_event(&self, rule_id: i64, model_id: i64, ts: i64, kind: &str, severity: &str, value: Option<f64>, detail: &str) -> Result<()>;
    /// Newest first; `rule_id` / `model_id` narrow it.
    async fn alert_events(&self, rule_id: Option<i64>, model_id: Option<i64>, limit: i64) -> Result<Vec<AlertEvent>>;

    async fn list_channels(&self) -> Result<Vec<AlertChannel>>;
    async fn create_channel(&self, c: &AlertChannel, now_ms: i64) -> Result<i64>;
    async fn delete_channel(&self, id: i64) -> Result<bool>;

    async fn enqueue_notification(&self, channel_id: i64, rule_id: Option<i64>, event: &str, message: &str, now_ms: i64) -> Result<i64>;
    /// Claims up to `limit` due notifications, oldest first, for `hold_ms` (another dispatcher
    /// skips them meanwhile; a crashed one's claims expire). A notification waiting for a retry
    /// holds back the later ones of its channel, so a channel gets its notifications in order.
    async fn due_notifications(&self, now_ms: i64, limit: i64, hold_ms: i64) -> Result<Vec<DueNotification>>;
    async fn notification_delivered(&self, id: i64, now_ms: i64) -> Result<()>;
    /// Gives a claimed notification back unsent (an earlier one of its channel failed).
    async fn release_notification(&self, id: i64, now_ms: i64) -> Result<()>;
    /// Records a failed attempt; `next_attempt_ms` None gives up (status `failed`).
    async fn notification_failed(&self, id: i64, error: &str, next_attempt_ms: Option<i64>) -> Result<()>;
    async fn list_notifications(&self, limit: i64) -> Result<Vec<AlertNotification>>;

    async fn list_silences(&self) -> Result<Vec<AlertSilence>>;
    async fn create_silence(&self, rule_id: Option<i64>, model_id: Option<i64>, starts_ms: i64, ends_ms: i64, comment: &str, by: &str) -> Result<i64>;
    async fn delete_silence(&self, id: i64) -> Result<bool>;

    /// Takes or renews the evaluator lease; true when `holder` has it until `now + ttl`.
    async fn acquire_alert_lease(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool>;
}

macro_rules! impl_alert_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::alerts::AlertStore for $store {
            async fn list_alert_rules(&self) -> $crate::error::Result<Vec<$crate::types::AlertRule>> {
                sqlx::query_as::<_, $crate::store::alerts::RuleRow>(
                    "SELECT id, name, enabled, config, created_by, updated_at FROM alert_rules ORDER BY name, id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map($crate::store::alerts::RuleRow::into_rule)
                .collect()
            }

            async fn create_alert_rule(&self, rule: &$crate::types::AlertRule, now_ms: i64) -> $crate::error::Result<i64> {
                let config = serde_json::to_string(rule).map_err(|e| $crate::error::Error::Internal(e.to_string()))?;
                Ok(sqlx::query_scalar(
                    "INSERT INTO alert_rules (name, enabled, config, created_by, updated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(&rule.name)
                .bind(rule.enabled)
                .bind(config)
                .bind(&rule.created_by)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn update_alert_rule(&self, rule: &$crate::types::AlertRule, now_ms: i64) -> $crate::error::Result<bool> {
                let config = serde_json::to_string(rule).map_err(|e| $crate::error::Error::Internal(e.to_string()))?;
                let r = sqlx::query("UPDATE alert_rules SET name = $1, enabled = $2, config = $3, updated_at = $4 WHERE id = $5")
                    .bind(&rule.name)
                    .bind(rule.enabled)
                    .bind(config)
                    .bind(now_ms)
                    .bind(rule.id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_alert_rule(&self, id: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id).execute(&self.pool).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn alert_states(&self) -> $crate::error::Result<Vec<$crate::store::alerts::StateRow>> {
                Ok(sqlx::query_as(
                    "SELECT rule_id, model_id, state, severity, since_ms, value, last_eval_ms, last_notified_ms, acked_by, acked_at \
                     FROM alert_states",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn upsert_alert_state(&self, s: &$crate::store::alerts::StateRow) -> $crate::error::Result<()> {
                sqlx::query(
                    "INSERT INTO alert_states (rule_id, model_id, state, severity, since_ms, value, last_eval_ms, last_notified_ms, acked_by, acked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (rule_id, model_id) DO UPDATE SET state = excluded.state, severity = excluded.severity, \
                     since_ms = excluded.since_ms, value = excluded.value, last_eval_ms = excluded.last_eval_ms, \
                     last_notified_ms = excluded.last_notified_ms, \
                     acked_by = CASE WHEN excluded.state <> 'firing' OR excluded.acked_by = '' THEN NULL \
                                ELSE COALESCE(excluded.acked_by, alert_states.acked_by) END, \
                     acked_at = CASE WHEN excluded.state <> 'firing' OR excluded.acked_by = '' THEN NULL \
                                ELSE COALESCE(excluded.acked_at, alert_states.acked_at) END",
                )
                .bind(s.rule_id)
                .bind(s.model_id)
                .bind(&s.state)
                .bind(&s.severity)
                .bind(s.since_ms)
                .bind(s.value)
                .bind(s.last_eval_ms)
                .bind(s.last_notified_ms)
                .bind(&s.acked_by)
                .bind(s.acked_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn acknowledge_alert_state(&self, rule_id: i64, model_id: i64, by: &str, at_ms: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query(
                    "UPDATE alert_states SET acked_by = $1, acked_at = $2 WHERE rule_id = $3 AND model_id = $4 AND state = 'firing'",
                )
                .bind(by)
                .bind(at_ms)
                .bind(rule_id)
                .bind(model_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_alert_state(&self, rule_id: i64, model_id: i64) -> $crate::error::Result<()> {
                sqlx::query("DELETE FROM alert_states WHERE rule_id = $1 AND model_id = $2")
                    .bind(rule_id)
                    .bind(model_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn insert_alert_event(
                &self,
                rule_id: i64,
                model_id: i64,
                ts: i64,
                kind: &str,
                severity: &str,
                value: Option<f64>,
                detail: &str,
            ) -> $crate::error::Result<()> {
                sqlx::query(
                    "INSERT INTO alert_events (rule_id, model_id, ts, kind, severity, value, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(rule_id)
                .bind(model_id)
                .bind(ts)
                .bind(kind)
                .bind(severity)
                .bind(value)
                .bind(detail)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn alert_events(&self, rule_id: Option<i64>, model_id: Option<i64>, limit: i64) -> $crate::error::Result<Vec<$crate::types::AlertEvent>> {
                Ok(sqlx::query_as(
                    "SELECT e.id, e.rule_id, r.name AS rule_name, m.name AS model, e.ts, e.kind, e.severity, e.value, e.detail \
                     FROM alert_events e JOIN alert_rules r ON r.id = e.rule_id JOIN models m ON m.id = e.model_id \
                     WHERE ($1 IS NULL OR e.rule_id = $1) AND ($2 IS NULL OR e.model_id = $2) ORDER BY e.ts DESC, e.id DESC LIMIT $3",
                )
                .bind(rule_id)
                .bind(model_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_channels(&self) -> $crate::error::Result<Vec<$crate::types::AlertChannel>> {
                let rows: Vec<$crate::store::alerts::ChannelRow> =
                    sqlx::query_as("SELECT id, name, kind, config, created_at FROM alert_channels ORDER BY name").fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map($crate::store::alerts::ChannelRow::into_channel).collect())
            }

            async fn create_channel(&self, c: &$crate::types::AlertChannel, now_ms: i64) -> $crate::error::Result<i64> {
                let config = serde_json::to_string(c).map_err(|e| $crate::error::Error::Internal(e.to_string()))?;
                let r = sqlx::query_scalar("INSERT INTO alert_channels (name, kind, config, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                    .bind(&c.name)
                    .bind(&c.kind)
                    .bind(config)
                    .bind(now_ms)
                    .fetch_one(&self.pool)
                    .await;
                match r {
                    Ok(id) => Ok(id),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        Err($crate::error::Error::invalid("name", "a channel with this name exists"))
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn delete_channel(&self, id: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query("DELETE FROM alert_channels WHERE id = $1").bind(id).execute(&self.pool).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn enqueue_notification(
                &self,
                channel_id: i64,
                rule_id: Option<i64>,
                event: &str,
                message: &str,
                now_ms: i64,
            ) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO alert_notifications (channel_id, rule_id, event, message, status, attempts, next_attempt_ms, created_ms) \
                     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) RETURNING id",
                )
                .bind(channel_id)
                .bind(rule_id)
                .bind(event)
                .bind(message)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn due_notifications(
                &self,
                now_ms: i64,
                limit: i64,
                hold_ms: i64,
            ) -> $crate::error::Result<Vec<$crate::store::alerts::DueNotification>> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT n.id FROM alert_notifications n WHERE n.status IN ('pending', 'sending') AND n.next_attempt_ms <= $1 \
                     AND NOT EXISTS (SELECT 1 FROM alert_notifications o WHERE o.channel_id = n.channel_id \
                                     AND o.status IN ('pending', 'sending') AND o.id < n.id AND o.next_attempt_ms > $1) \
                     ORDER BY n.id LIMIT $2",
                )
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let claimed = sqlx::query(
                        "UPDATE alert_notifications SET status = 'sending', next_attempt_ms = $1 \
                         WHERE id = $2 AND status IN ('pending', 'sending') AND next_attempt_ms <= $3",
                    )
                    .bind(now_ms + hold_ms)
                    .bind(id)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                    if claimed.rows_affected() == 0 {
                        continue;
                    }
                    let row: Option<$crate::store::alerts::DueNotification> = sqlx::query_as(
                        "SELECT n.id, n.channel_id, n.event, n.message, n.attempts, n.created_ms, c.kind, c.config \
                         FROM alert_notifications n JOIN alert_channels c ON c.id = n.channel_id WHERE n.id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    out.extend(row);
                }
                Ok(out)
            }

            async fn notification_delivered(&self, id: i64, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query(
                    "UPDATE alert_notifications SET status = 'delivered', attempts = attempts + 1, delivered_ms = $1, last_error = NULL WHERE id = $2",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn release_notification(&self, id: i64, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE alert_notifications SET status = 'pending', next_attempt_ms = $1 WHERE id = $2 AND status = 'sending'")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn notification_failed(&self, id: i64, error: &str, next_attempt_ms: Option<i64>) -> $crate::error::Result<()> {
                sqlx::query(
                    "UPDATE alert_notifications SET attempts = attempts + 1, last_error = $1, \
                     status = CASE WHEN $2 IS NULL THEN 'failed' ELSE 'pending' END, next_attempt_ms = COALESCE($2, next_attempt_ms) WHERE id = $3",
                )
                .bind(error)
                .bind(next_attempt_ms)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_notifications(&self, limit: i64) -> $crate::error::Result<Vec<$crate::types::AlertNotification>> {
                let rows: Vec<$crate::store::alerts::NotificationRow> = sqlx::query_as(
                    "SELECT n.id, n.channel_id, c.name AS channel, n.rule_id, n.event, n.message, n.status, n.attempts, n.next_attempt_ms, \
                     n.last_error, n.created_ms, n.delivered_ms FROM alert_notifications n JOIN alert_channels c ON c.id = n.channel_id \
                     ORDER BY n.id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map($crate::store::alerts::NotificationRow::into_notification).collect())
            }

            async fn list_silences(&self) -> $crate::error::Result<Vec<$crate::types::AlertSilence>> {
                let rows: Vec<$crate::store::alerts::SilenceRow> = sqlx::query_as(
                    "SELECT s.id, s.rule_id, r.name AS rule_name, m.name AS model, s.starts_ms, s.ends_ms, s.comment, s.created_by \
                     FROM alert_silences s LEFT JOIN alert_rules r ON r.id = s.rule_id LEFT JOIN models m ON m.id = s.model_id \
                     ORDER BY s.ends_ms DESC",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::types::AlertSilence {
                        id: r.id,
                        rule_id: r.rule_id,
                        rule_name: r.rule_name,
                        model: r.model,
                        starts_ms: r.starts_ms,
                        ends_ms: r.ends_ms,
                        comment: r.comment,
                        created_by: r.created_by,
                    })
                    .collect())
            }

            async fn create_silence(
                &self,
                rule_id: Option<i64>,
                model_id: Option<i64>,
                starts_ms: i64,
                ends_ms: i64,
                comment: &str,
                by: &str,
            ) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO alert_silences (rule_id, model_id, starts_ms, ends_ms, comment, created_by, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $3) RETURNING id",
                )
                .bind(rule_id)
                .bind(model_id)
                .bind(starts_ms)
                .bind(ends_ms)
                .bind(comment)
                .bind(by)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn delete_silence(&self, id: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query("DELETE FROM alert_silences WHERE id = $1").bind(id).execute(&self.pool).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn acquire_alert_lease(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO alert_lease (id, holder, expires_ms) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms \
                     WHERE alert_lease.holder = excluded.holder OR alert_lease.expires_ms < $3",
                )
                .bind(holder)
                .bind(now_ms + ttl_ms)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() > 0)
            }
        }
    };
}
pub(crate) use impl_alert_store;
