//! Alerting: rules, their evaluation, silences, acknowledgement and the notification outbox.
//!
//! - **Rules** (admins on any model; editors on models they hold a grant for) watch a metric of
//!   one or more models over a window: thresholds with warning and critical levels, anomalies
//!   against a seasonal baseline (median ± sensitivity × MAD of the same window on previous
//!   days or weeks), or no data. Each covered model is tracked separately.
//! - **Evaluation** (`evaluate_alerts`, every 10 s by the server's evaluator) reads the rollups,
//!   moves each (rule, model) through ok → pending → firing → ok, keeps the state and its
//!   history in the database (a restart neither loses nor repeats an alert), and queues
//!   notifications in the outbox: one message per rule, channel and cycle listing every model
//!   that fired or resolved (PagerDuty: one event per model, with a dedup key).
//! - **Delivery** is the server's (`server::alerting`): it takes due outbox rows, sends them, and
//!   records attempts, errors and delivery here.
//! - **Channel URLs** must pass the engine's `TargetPolicy` (`crate::outbound`) when saved: no
//!   literal internal address or `localhost` unless the configuration allows it.

use std::collections::HashMap;

use crate::engine::{Engine, now_ms};
use crate::error::{Error, Result};
use crate::kpi::KpiTotals;
use crate::ingest::rollup::Resolution;
use crate::outbound::TargetPolicy;
use crate::rbac::{Action, Principal};
use crate::store::alerts::{DueNotification, StateRow};
use crate::types::{
    ALERT_METRICS, AlertChannel, AlertEvent, AlertKind, AlertNotification, AlertRule, AlertSilence, AlertState, CUSTOM_AGGREGATIONS, Model,
};
use crate::validate;

/// Delivery gives up on a notification this long after it was queued.
pub const DELIVERY_GIVE_UP_MS: i64 = 24 * 3_600_000;

/// The retry delay after `attempts` failed attempts: 5 s doubling, at most 10 minutes.
pub fn retry_delay_ms(attempts: i64) -> i64 {
    (5_000i64 << attempts.clamp(0, 10)).min(600_000)
}

/// The value of a rule's metric over a window, and the requests it rests on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub value: Option<f64>,
    pub requests: i64,
}

/// The metric of `rule` from KPI totals over a window of `window_secs`.
pub fn kpi_value(metric: &str, t: &KpiTotals, window_secs: i64) -> Option<f64> {
    let pct = |v: Option<f64>| v.map(|x| x * 100.0);
    match metric {
        "requests" => Some(t.requests as f64),
        "request_rate" => Some(t.requests as f64 / window_secs.max(1) as f64),
        "errors" => Some(t.errors as f64),
        "error_rate" => pct(t.error_rate()),
        "latency_p50" => t.latency_p50,
        "latency_p95" => t.latency_p95,
        "latency_p99" => t.latency_p99,
        "ttft_p50" => t.ttft_p50,
        "ttft_p95" => t.ttft_p95,
        "ttft_p99" => t.ttft_p99,
        "input_tokens" => Some(t.input_tokens as f64),
        "output_tokens" => Some(t.output_tokens as f64),
        "tokens" => Some((t.input_tokens + t.output_tokens) as f64),
        "cost_usd" => Some(t.cost_usd),
        "cache_hit_rate" => pct(t.cache_hit_rate()),
        _ => None,
    }
}

fn compare(op: &str, value: f64, threshold: f64) -> bool {
    match op {
        ">" => value > threshold,
        ">=" => value >= threshold,
        "<" => value < threshold,
        "<=" => value <= threshold,
        _ => false,
    }
}

/// The severity a threshold rule gives a value: critical before warning.
pub fn threshold_severity(rule: &AlertRule, value: f64) -> Option<&'static str> {
    if rule.critical.is_some_and(|c| compare(&rule.comparison, value, c)) {
        Some("critical")
    } else if rule.warning.is_some_and(|w| compare(&rule.comparison, value, w)) {
        Some("warning")
    } else {
        None
    }
}

/// The band of an anomaly rule: median ± sensitivity × 1.4826 × MAD of the baseline values
/// (with a floor of 1 % of the median, so a flat history does not give a zero-width band).
/// None with fewer than 3 baseline values.
pub fn anomaly_band(baseline: &[f64], sensitivity: f64) -> Option<(f64, f64)> {
    let mut v: Vec<f64> = baseline.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 3 {
        return None;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
    };
    let m = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut dev);
    let width = sensitivity.max(0.1) * (1.4826 * mad).max(0.01 * m.abs()).max(1e-9);
    Some((m - width, m + width))
}

/// Whether an anomaly rule's value lies outside its band, on the side(s) the rule watches.
pub fn outside_band(rule: &AlertRule, value: f64, band: (f64, f64)) -> bool {
    match rule.comparison.as_str() {
        ">" | ">=" => value > band.1,
        "<" | "<=" => value < band.0,
        _ => value > band.1 || value < band.0,
    }
}

/// One step of the state machine. `cond` is the severity the data calls for (None: fine);
/// `judged` is false when there was no data (or too few requests) and the rule keeps state.
/// Returns the next state and the transition to record, if any.
pub fn step(prev: Option<&StateRow>, cond: Option<&str>, for_secs: i64, now: i64) -> (String, String, i64, Option<&'static str>) {
    let (state, severity, since) = match prev {
        Some(p) => (p.state.as_str(), p.severity.as_str(), p.since_ms),
        None => ("ok", "", now),
    };
    match (state, cond) {
        ("ok", None) => ("ok".into(), String::new(), since, None),
        ("ok", Some(sev)) if for_secs <= 0 => ("firing".into(), sev.into(), now, Some("firing")),
        ("ok", Some(sev)) => ("pending".into(), sev.into(), now, Some("pending")),
        ("pending", None) => ("ok".into(), String::new(), now, Some("ok")),
        ("pending", Some(sev)) if now - since >= for_secs * 1000 => ("firing".into(), sev.into(), now, Some("firing")),
        ("pending", Some(sev)) => ("pending".into(), sev.into(), since, None),
        ("firing", None) => ("ok".into(), String::new(), now, Some("resolved")),
        ("firing", Some(sev)) if sev != severity => ("firing".into(), sev.into(), since, Some("severity")),
        ("firing", Some(sev)) => ("firing".into(), sev.into(), since, None),
        (_, c) => (if c.is_some() { "pending" } else { "ok" }.into(), c.unwrap_or("").into(), now, None),
    }
}

fn validate_rule(r: &mut AlertRule) -> Result<()> {
    r.name = r.name.trim().to_string();
    validate::text("name", &r.name, 200)?;
    if r.name.is_empty() {
        return Err(Error::invalid("name", "give the rule a name"));
    }
    validate::text("description", &r.description, 4000)?;
    r.runbook_url = r.runbook_url.trim().to_string();
    if !r.runbook_url.is_empty() && !(r.runbook_url.starts_with("https://") || r.runbook_url.starts_with("http://")) {
        return Err(Error::invalid("runbook_url", "the runbook link must be an http(s) URL"));
    }
    r.models = r.models.iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
    if r.models.is_empty() {
        return Err(Error::invalid("models", "choose at least one model (or * for all)"));
    }
    for m in &r.models {
        if m != "*" {
            validate::model_name("models", m.trim_end_matches('*'))?;
        }
    }
    for (field, list) in [("environments", &mut r.environments), ("providers", &mut r.providers)] {
        let mut clean: Vec<String> = Vec::new();
        for v in list.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            if !clean.iter().any(|c| c == v) {
                clean.push(v.to_string());
            }
        }
        if clean.len() > 20 || clean.iter().any(|v| v.len() > 200) {
            return Err(Error::invalid(field, "at most 20 values of up to 200 characters"));
        }
        *list = clean;
    }
    match r.kind {
        AlertKind::NoData => r.metric = "requests".into(),
        _ => {
            let known = ALERT_METRICS.iter().any(|(id, _, _)| *id == r.metric);
            let custom = r.metric.strip_prefix("custom:").and_then(|rest| rest.split_once(':')).is_some_and(|(agg, name)| {
                CUSTOM_AGGREGATIONS.contains(&agg) && !name.is_empty() && name.len() <= 256
            });
            if !known && !custom {
                return Err(Error::invalid("metric", "unknown metric; custom metrics are custom:<avg|min|max|sum|count|p50|p95>:<name>"));
            }
        }
    }
    if !(60..=7 * 86_400).contains(&r.window_secs) {
        return Err(Error::invalid("window_secs", "the window must be 1 minute to 7 days"));
    }
    if !["<", "<=", ">", ">=", "<>"].contains(&r.comparison.as_str()) {
        return Err(Error::invalid("comparison", "use >, >=, < or <= (anomalies also <> for both sides)"));
    }
    if r.kind == AlertKind::Threshold {
        if r.comparison == "<>" {
            return Err(Error::invalid("comparison", "a threshold needs >, >=, < or <="));
        }
        if r.warning.is_none() && r.critical.is_none() {
            return Err(Error::invalid("critical", "give a warning or a critical threshold (or both)"));
        }
        if let (Some(w), Some(c)) = (r.warning, r.critical) {
            let ordered = if r.comparison.starts_with('>') { w <= c } else { w >= c };
            if !ordered {
                return Err(Error::invalid("warning", "the warning threshold must come before the critical one"));
            }
        }
    }
    for (field, v) in [("warning", r.warning), ("critical", r.critical)] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(Error::invalid(field, "must be a number"));
        }
    }
    if !(0..=86_400).contains(&r.for_secs) {
        return Err(Error::invalid("for_secs", "for must be 0 to 86400 seconds"));
    }
    if r.min_requests < 0 {
        return Err(Error::invalid("min_requests", "must be 0 or more"));
    }
    if !["ok", "keep", "alert"].contains(&r.no_data.as_str()) {
        return Err(Error::invalid("no_data", "no data means ok, keep or alert"));
    }
    if !(0.5..=20.0).contains(&r.sensitivity) {
        return Err(Error::invalid("sensitivity", "sensitivity must be 0.5 to 20"));
    }
    if !["day", "week"].contains(&r.seasonality.as_str()) {
        return Err(Error::invalid("seasonality", "seasonality is day or week"));
    }
    if !(r.repeat_secs == 0 || (60..=7 * 86_400).contains(&r.repeat_secs)) {
        return Err(Error::invalid("repeat_secs", "repeat every 1 minute to 7 days, or 0 for never"));
    }
    if r.labels.len() > 20 || r.labels.iter().any(|(k, v)| k.is_empty() || k.len() > 100 || v.len() > 200) {
        return Err(Error::invalid("labels", "at most 20 labels, key=value, keys up to 100 characters"));
    }
    Ok(())
}

fn validate_channel(c: &mut AlertChannel, targets: &TargetPolicy) -> Result<()> {
    c.name = c.name.trim().to_string();
    if c.name.is_empty() || c.name.len() > 100 {
        return Err(Error::invalid("name", "give the channel a name (up to 100 characters)"));
    }
    c.url = c.url.trim().to_string();
    let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    match c.kind.as_str() {
        "webhook" | "slack" => {
            if !http(&c.url) {
                return Err(Error::invalid("url", "the URL must start with http:// or https://"));
            }
            validate::outbound_url("url", &c.url, targets, "give the full http:// or https:// URL")?;
            if c.kind == "webhook" {
                if c.secret.trim().is_empty() {
                    c.secret = generate_webhook_secret();
                } else {
                    use base64::Engine as _;
                    let ok = c.secret.trim().strip_prefix("whsec_").is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok_and(|k| k.len() >= 16));
                    if !ok {
                        return Err(Error::invalid("secret", "a signing secret looks like whsec_<base64 of 16+ bytes>; leave it empty to generate one"));
                    }
                    c.secret = c.secret.trim().to_string();
                }
            }
        }
        "pagerduty" => {
            if c.secret.trim().is_empty() {
                return Err(Error::invalid("secret", "the PagerDuty integration (routing) key is required"));
            }
            if c.url.is_empty() {
                c.url = "https://events.pagerduty.com/v2/enqueue".into();
            } else if !http(&c.url) {
                return Err(Error::invalid("url", "the Events API URL must start with http:// or https://"));
            }
            validate::outbound_url("url", &c.url, targets, "give the full http:// or https:// URL of the Events API")?;
        }
        "email" => {
            c.to = c.to.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
            if c.to.is_empty() || c.to.iter().any(|t| !t.contains('@') || t.len() > 254 || t.contains(char::is_whitespace)) {
                return Err(Error::invalid("to", "give one or more e-mail addresses"));
            }
        }
        _ => return Err(Error::invalid("kind", "a channel is webhook, slack, pagerduty or email")),
    }
    Ok(())
}

/// A Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
fn generate_webhook_secret() -> String {
    use base64::Engine as _;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An alert of one model inside a notification.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NotifiedAlert {
    pub model: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub severity: String,
    pub value: Option<f64>,
    pub since_ms: i64,
    /// Path of the model's dashboard (the sender makes it absolute).
    pub dashboard: String,
}

/// What a notification says; stored in the outbox as JSON and sent by the server.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// `firing`, `resolved`, `repeat` or `test`.
    pub event: String,
    pub summary: String,
    pub rule_id: Option<i64>,
    pub rule: String,
    pub description: String,
    pub runbook_url: String,
    pub labels: Vec<(String, String)>,
    pub metric: String,
    pub unit: String,
    pub condition: String,
    pub alerts: Vec<NotifiedAlert>,
    /// Path of the alerts page.
    pub alerts_page: String,
    pub created_ms: i64,
}

fn fmt_value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "no data".into(),
        Some(v) => {
            let n = if v.abs() >= 100.0 { format!("{v:.0}") } else if v.abs() >= 1.0 { format!("{v:.2}") } else { format!("{v:.4}") };
            if unit.is_empty() { n } else { format!("{n} {unit}") }
        }
    }
}

fn condition_text(rule: &AlertRule, unit: &str) -> String {
    let mut text = metric_condition(rule, unit);
    if !rule.environments.is_empty() {
        text.push_str(&format!(" (environment {})", rule.environments.join(" or ")));
    }
    if !rule.providers.is_empty() {
        text.push_str(&format!(" (provider {})", rule.providers.join(" or ")));
    }
    text
}

fn metric_condition(rule: &AlertRule, unit: &str) -> String {
    let (label, _) = rule.metric_label();
    let window = if rule.window_secs % 3600 == 0 { format!("{}h", rule.window_secs / 3600) } else { format!("{}m", rule.window_secs / 60) };
    match rule.kind {
        AlertKind::NoData => format!("no logs for {window}"),
        AlertKind::Anomaly => format!("{label} over {window} outside its {} baseline band (±{} MAD)", rule.seasonality, rule.sensitivity),
        AlertKind::Threshold => {
            let mut parts = Vec::new();
            if let Some(w) = rule.warning {
                parts.push(format!("warning {} {}", rule.comparison, fmt_value(Some(w), unit)));
            }
            if let Some(c) = rule.critical {
                parts.push(format!("critical {} {}", rule.comparison, fmt_value(Some(c), unit)));
            }
            format!("{label} over {window}: {}", parts.join(", "))
        }
    }
}

fn message(rule: &AlertRule, event: &str, alerts: Vec<NotifiedAlert>, now: i64) -> Message {
    let (label, unit) = rule.metric_label();
    let summary = match event {
        "resolved" => format!("[RESOLVED] {} on {}", rule.name, models_text(&alerts)),
        _ => {
            let sev = if alerts.iter().any(|a| a.severity == "critical") { "CRITICAL" } else { "WARNING" };
            let first = alerts.first().map(|a| fmt_value(a.value, &unit)).unwrap_or_default();
            let repeat = if event == "repeat" { " (still firing)" } else { "" };
            format!("[{sev}] {} on {}: {label} {first}{repeat}", rule.name, models_text(&alerts))
        }
    };
    Message {
        event: event.into(),
        summary,
        rule_id: Some(rule.id),
        rule: rule.name.clone(),
        description: rule.description.clone(),
        runbook_url: rule.runbook_url.clone(),
        labels: rule.labels.clone(),
        metric: label,
        condition: condition_text(rule, &unit),
        unit,
        alerts,
        alerts_page: format!("/alerts/rules/{}", rule.id),
        created_ms: now,
    }
}

fn models_text(alerts: &[NotifiedAlert]) -> String {
    match alerts.len() {
        0 => String::new(),
        1..=3 => alerts.iter().map(|a| a.model.as_str()).collect::<Vec<_>>().join(", "),
        n => format!("{}, {} and {} more", alerts[0].model, alerts[1].model, n - 2),
    }
}

fn state_view(row: &StateRow, rule: &AlertRule, model: &str, silenced: bool) -> AlertState {
    AlertState {
        rule_id: row.rule_id,
        rule_name: rule.name.clone(),
        model: model.to_string(),
        state: row.state.clone(),
        severity: row.severity.clone(),
        since_ms: row.since_ms,
        value: row.value,
        last_eval_ms: row.last_eval_ms,
        acked_by: row.acked_by.clone(),
        acked_at: row.acked_at,
        silenced,
    }
}

fn is_silenced(silences: &[AlertSilence], rule_id: i64, model: &str, now: i64) -> bool {
    silences.iter().any(|s| {
        s.starts_ms <= now
            && now < s.ends_ms
            && s.rule_id.is_none_or(|r| r == rule_id)
            && s.model.as_deref().is_none_or(|m| m == model)
            && (s.rule_id.is_some() || s.model.is_some())
    })
}

impl Engine {
    /// A `read` API key as a viewer of the models it may use (the REST read routes of alerting).
    pub async fn key_viewer(&self, key: &crate::ingest::KeyPrincipal) -> Result<Principal> {
        key.require(crate::types::Scope::Read)?;
        let grants: Vec<crate::types::Grant> = self
            .store()
            .list_models()
            .await?
            .into_iter()
            .filter(|m| key.may_use_model(&m.name))
            .map(|m| crate::types::Grant { model_id: m.id, model: m.name, view_payloads: false })
            .collect();
        Ok(Principal::user(0, format!("key:{}", key.name), crate::types::Role::Viewer, &grants))
    }

    // ----- rules -------------------------------------------------------------------------------

    /// May `p` edit a rule covering these model patterns? Admins always; editors only when
    /// every pattern is an exact model name they hold a grant on.
    async fn authorize_rule_models(&self, p: &Principal, models: &[String]) -> Result<()> {
        if p.is_admin() {
            return Ok(());
        }
        let all = self.store().list_models().await?;
        for m in models {
            let Some(model) = all.iter().find(|x| &x.name == m) else {
                return Err(if m.ends_with('*') { Error::Forbidden } else { Error::NotFound("model") });
            };
            p.authorize(Action::EditAlerts(model.id))?;
        }
        Ok(())
    }

    /// Models the principal may see that the rule covers.
    fn visible_covered<'a>(p: &Principal, rule: &AlertRule, models: &'a [Model]) -> Vec<&'a Model> {
        models.iter().filter(|m| rule.covers(&m.name) && p.allows(Action::ViewModel(m.id))).collect()
    }

    /// Rules the caller may see: admins all; others those covering a model they may see.
    pub async fn list_alert_rules(&self, p: &Principal) -> Result<Vec<AlertRule>> {
        let rules = self.store().alerts().list_alert_rules().await?;
        if p.is_admin() {
            return Ok(rules);
        }
        let models = self.store().list_models().await?;
        let visible = |name: &str| name.ends_with('*') || models.iter().any(|m| m.name == name && p.allows(Action::ViewModel(m.id)));
        Ok(rules
            .into_iter()
            .filter(|r| !Self::visible_covered(p, r, &models).is_empty())
            .map(|mut r| {
                r.models.retain(|m| visible(m));
                r
            })
            .collect())
    }

    pub async fn get_alert_rule(&self, p: &Principal, id: i64) -> Result<AlertRule> {
        self.list_alert_rules(p).await?.into_iter().find(|r| r.id == id).ok_or(Error::NotFound("alert rule"))
    }

    /// Creates (id 0) or changes a rule.
    pub async fn save_alert_rule(&self, p: &Principal, mut rule: AlertRule) -> Result<AlertRule> {
        if p.role == crate::types::Role::Viewer {
            return Err(Error::Forbidden);
        }
        validate_rule(&mut rule)?;
        self.authorize_rule_models(p, &rule.models).await?;
        let channels = self.store().alerts().list_channels().await?;
        if let Some(bad) = rule.channels.iter().find(|c| !channels.iter().any(|x| x.id == **c)) {
            return Err(Error::invalid("channels", format!("no channel with id {bad}")));
        }
        let now = now_ms();
        if rule.id == 0 {
            rule.created_by = p.username.clone();
            rule.id = self.store().alerts().create_alert_rule(&rule, now).await?;
        } else {
            let old = self.get_alert_rule(p, rule.id).await?;
            self.authorize_rule_models(p, &old.models).await?;
            rule.created_by = old.created_by;
            if !self.store().alerts().update_alert_rule(&rule, now).await? {
                return Err(Error::NotFound("alert rule"));
            }
        }
        rule.updated_at = now;
        tracing::info!(target: "audit", actor = %p.username, rule = rule.id, name = %rule.name, "alert rule saved");
        Ok(rule)
    }

    pub async fn delete_alert_rule(&self, p: &Principal, id: i64) -> Result<()> {
        if p.role == crate::types::Role::Viewer {
            return Err(Error::Forbidden);
        }
        let old = self.get_alert_rule(p, id).await?;
        self.authorize_rule_models(p, &old.models).await?;
        // Evaluated once as disabled first: alerts that were announced are resolved.
        let disabled = AlertRule { enabled: false, ..old };
        let a = self.store().alerts();
        let states: HashMap<(i64, i64), StateRow> = a.alert_states().await?.into_iter().map(|s| ((s.rule_id, s.model_id), s)).collect();
        let models = self.store().list_models().await?;
        self.evaluate_rule(&disabled, &models, &[], &states, &a.list_channels().await?, now_ms()).await?;
        a.delete_alert_rule(id).await?;
        tracing::info!(target: "audit", actor = %p.username, rule = id, "alert rule deleted");
        Ok(())
    }

    // ----- states, history, acknowledgement ------------------------------------------------------

    /// The state of every (rule, model) the caller may see, firing first.
    pub async fn alert_states(&self, p: &Principal) -> Result<Vec<AlertState>> {
        let rules = self.store().alerts().list_alert_rules().await?;
        let models = self.store().list_models().await?;
        let silences = self.store().alerts().list_silences().await?;
        let now = now_ms();
        let mut out = Vec::new();
        for row in self.store().alerts().alert_states().await? {
            let (Some(rule), Some(model)) = (rules.iter().find(|r| r.id == row.rule_id && r.enabled), models.iter().find(|m| m.id == row.model_id)) else {
                continue;
            };
            if !p.allows(Action::ViewModel(model.id)) {
                continue;
            }
            out.push(state_view(&row, rule, &model.name, is_silenced(&silences, rule.id, &model.name, now)));
        }
        let rank = |s: &str| match s {
            "firing" => 0,
            "pending" => 1,
            _ => 2,
        };
        out.sort_by(|a, b| rank(&a.state).cmp(&rank(&b.state)).then(b.since_ms.cmp(&a.since_ms)));
        Ok(out)
    }

    /// Firing alerts per model name the caller may see (badges on the overview and dashboards).
    pub async fn firing_counts(&self, p: &Principal) -> Result<HashMap<String, (i64, bool)>> {
        let mut out: HashMap<String, (i64, bool)> = HashMap::new();
        for s in self.alert_states(p).await? {
            if s.state == "firing" {
                let e = out.entry(s.model).or_default();
                e.0 += 1;
                e.1 |= s.severity == "critical";
            }
        }
        Ok(out)
    }

    /// History, newest first: of a rule, of a model, or everything the caller may see.
    pub async fn alert_history(&self, p: &Principal, rule_id: Option<i64>, model: Option<&str>, limit: i64) -> Result<Vec<AlertEvent>> {
        let models = self.store().list_models().await?;
        let model_id = match model {
            Some(name) => {
                // A model the caller may not see is not found, as everywhere: no hint that it exists.
                let m = models.iter().find(|m| m.name == name && p.allows(Action::ViewModel(m.id))).ok_or(Error::NotFound("model"))?;
                Some(m.id)
            }
            None => None,
        };
        let events = self.store().alerts().alert_events(rule_id, model_id, limit.clamp(1, 1000) * 2).await?;
        Ok(events
            .into_iter()
            .filter(|e| models.iter().find(|m| m.name == e.model).is_some_and(|m| p.allows(Action::ViewModel(m.id))))
            .take(limit.clamp(1, 1000) as usize)
            .collect())
    }

    /// Acknowledges a firing alert: no repeat notifications until it resolves. Editors and
    /// admins who may edit alerts on the model.
    pub async fn acknowledge_alert(&self, p: &Principal, rule_id: i64, model: &str) -> Result<()> {
        let m = self.store().model_by_name(model).await?.ok_or(Error::NotFound("model"))?;
        p.authorize(Action::EditAlerts(m.id))?;
        let row = self
            .store()
            .alerts()
            .alert_states()
            .await?
            .into_iter()
            .find(|s| s.rule_id == rule_id && s.model_id == m.id && s.state == "firing")
            .ok_or(Error::NotFound("firing alert"))?;
        let now = now_ms();
        if !self.store().alerts().acknowledge_alert_state(rule_id, m.id, &p.username, now).await? {
            return Err(Error::NotFound("firing alert"));
        }
        self.store().alerts().insert_alert_event(rule_id, m.id, now, "acknowledged", &row.severity, row.value, &format!("by {}", p.username)).await?;
        tracing::info!(target: "audit", actor = %p.username, rule = rule_id, model, "alert acknowledged");
        Ok(())
    }

    // ----- silences -----------------------------------------------------------------------------

    pub async fn list_silences(&self, p: &Principal) -> Result<Vec<AlertSilence>> {
        let models = self.store().list_models().await?;
        let rules: Vec<i64> = if p.is_admin() { Vec::new() } else { self.list_alert_rules(p).await?.into_iter().map(|r| r.id).collect() };
        Ok(self
            .store()
            .alerts()
            .list_silences()
            .await?
            .into_iter()
            .filter(|s| {
                p.is_admin()
                    || match &s.model {
                        Some(n) => models.iter().any(|m| &m.name == n && p.allows(Action::ViewModel(m.id))),
                        None => s.rule_id.is_some_and(|r| rules.contains(&r)),
                    }
            })
            .collect())
    }

    /// Silences a rule and/or a model for `minutes`. A silence of a whole rule (no model) needs
    /// the right to edit the rule; of a model, the right to edit alerts on it.
    pub async fn create_silence(&self, p: &Principal, rule_id: Option<i64>, model: Option<&str>, minutes: i64, comment: &str) -> Result<i64> {
        if rule_id.is_none() && model.is_none() {
            return Err(Error::invalid("rule_id", "silence a rule, a model, or a rule on a model"));
        }
        if !(1..=30 * 1440).contains(&minutes) {
            return Err(Error::invalid("minutes", "a silence lasts 1 minute to 30 days"));
        }
        let comment = comment.trim();
        if comment.is_empty() {
            return Err(Error::invalid("comment", "say why (it is shown and audited)"));
        }
        validate::text("comment", comment, 1000)?;
        let model_id = match model {
            Some(name) => {
                let m = self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))?;
                p.authorize(Action::EditAlerts(m.id)).or_else(|e| if p.is_admin() { Ok(()) } else { Err(e) })?;
                Some(m.id)
            }
            None => None,
        };
        if let Some(id) = rule_id {
            let rule = self.get_alert_rule(p, id).await?;
            if model_id.is_none() {
                self.authorize_rule_models(p, &rule.models).await?;
            }
        }
        let now = now_ms();
        let id = self.store().alerts().create_silence(rule_id, model_id, now, now + minutes * 60_000, comment, &p.username).await?;
        tracing::info!(target: "audit", actor = %p.username, silence = id, ?rule_id, ?model, minutes, comment, "silence created");
        Ok(id)
    }

    pub async fn delete_silence(&self, p: &Principal, id: i64) -> Result<()> {
        let s = self.list_silences(p).await?.into_iter().find(|s| s.id == id).ok_or(Error::NotFound("silence"))?;
        if !p.is_admin() {
            match s.model.as_deref() {
                Some(name) => {
                    let m = self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))?;
                    p.authorize(Action::EditAlerts(m.id))?;
                }
                None => {
                    let rule = self.get_alert_rule(p, s.rule_id.ok_or(Error::Forbidden)?).await?;
                    self.authorize_rule_models(p, &rule.models).await?;
                }
            }
        }
        self.store().alerts().delete_silence(id).await?;
        tracing::info!(target: "audit", actor = %p.username, silence = id, "silence deleted");
        Ok(())
    }

    // ----- channels and the outbox -----------------------------------------------------------

    /// Channels without their secrets (admins only; editors see names to route rules).
    pub async fn list_channels(&self, p: &Principal) -> Result<Vec<AlertChannel>> {
        if p.role == crate::types::Role::Viewer {
            return Err(Error::Forbidden);
        }
        let mut list = self.store().alerts().list_channels().await?;
        for c in &mut list {
            c.secret = if c.secret.is_empty() { String::new() } else { "••••••".into() };
            if !p.is_admin() {
                c.url.clear();
                c.to.clear();
            }
        }
        Ok(list)
    }

    /// Creates a channel; returns it with its secret (shown once, e.g. a generated webhook secret).
    pub async fn create_channel(&self, p: &Principal, mut c: AlertChannel) -> Result<AlertChannel> {
        p.authorize(Action::Administer)?;
        validate_channel(&mut c, self.target_policy())?;
        c.id = self.store().alerts().create_channel(&c, now_ms()).await?;
        tracing::info!(target: "audit", actor = %p.username, channel = c.id, kind = %c.kind, "alert channel created");
        Ok(c)
    }

    pub async fn delete_channel(&self, p: &Principal, id: i64) -> Result<()> {
        p.authorize(Action::Administer)?;
        if !self.store().alerts().delete_channel(id).await? {
            return Err(Error::NotFound("channel"));
        }
        Ok(())
    }

    /// Queues a test notification on a channel ("send test" button).
    pub async fn test_channel(&self, p: &Principal, id: i64) -> Result<i64> {
        p.authorize(Action::Administer)?;
        let c = self.store().alerts().list_channels().await?.into_iter().find(|c| c.id == id).ok_or(Error::NotFound("channel"))?;
        let now = now_ms();
        let msg = Message {
            event: "test".into(),
            summary: format!("[TEST] Modelwatch test notification for channel {}", c.name),
            rule_id: None,
            rule: "Test notification".into(),
            description: format!("Sent by {} from the alert channels page.", p.username),
            runbook_url: String::new(),
            labels: Vec::new(),
            metric: String::new(),
            unit: String::new(),
            condition: String::new(),
            alerts: Vec::new(),
            alerts_page: "/alerts".into(),
            created_ms: now,
        };
        let json = serde_json::to_string(&msg).map_err(|e| Error::Internal(e.to_string()))?;
        self.store().alerts().enqueue_notification(c.id, None, "test", &json, now).await
    }

    pub async fn list_notifications(&self, p: &Principal, limit: i64) -> Result<Vec<AlertNotification>> {
        if p.role == crate::types::Role::Viewer {
            return Err(Error::Forbidden);
        }
        // Non-admins see the notifications of rules on models they may all see (a message lists
        // every model of the rule that fired, and a pattern may reach models they may not see).
        let models = self.store().list_models().await?;
        let all_visible =
            |r: &AlertRule| r.models.iter().all(|n| models.iter().any(|m| &m.name == n && p.allows(Action::ViewModel(m.id))));
        let visible: Vec<i64> =
            self.store().alerts().list_alert_rules().await?.into_iter().filter(|r| all_visible(r)).map(|r| r.id).collect();
        Ok(self
            .store()
            .alerts()
            .list_notifications(limit.clamp(1, 500))
            .await?
            .into_iter()
            .filter(|n| p.is_admin() || n.rule_id.is_some_and(|r| visible.contains(&r)))
            .collect())
    }

    /// For the server's dispatcher: due notifications with their channel settings.
    pub async fn due_notifications(&self, now: i64, limit: i64) -> Result<Vec<(DueNotification, AlertChannel, Message)>> {
        let mut out = Vec::new();
        // Claimed for 10 minutes: longer than a batch of sends can take.
        for n in self.store().alerts().due_notifications(now, limit, 600_000).await? {
            let mut channel: AlertChannel = match serde_json::from_str(&n.config) {
                Ok(c) => c,
                Err(e) => {
                    self.store().alerts().notification_failed(n.id, &format!("unreadable channel settings: {e}"), None).await?;
                    continue;
                }
            };
            channel.id = n.channel_id;
            channel.kind = n.kind.clone();
            let msg: Message = match serde_json::from_str(&n.message) {
                Ok(m) => m,
                Err(e) => {
                    self.store().alerts().notification_failed(n.id, &format!("unreadable message: {e}"), None).await?;
                    continue;
                }
            };
            out.push((n, channel, msg));
        }
        Ok(out)
    }

    /// Records a delivery attempt's outcome; failures are retried with backoff for a day.
    pub async fn record_delivery(&self, n: &DueNotification, outcome: std::result::Result<(), String>, now: i64) -> Result<()> {
        let t = self.ingest().telemetry();
        match outcome {
            Ok(()) => {
                t.notifications_delivered.inc();
                self.store().alerts().notification_delivered(n.id, now).await
            }
            Err(e) => {
                t.notification_failures.inc();
                let next = now + retry_delay_ms(n.attempts);
                let next = (next - n.created_ms <= DELIVERY_GIVE_UP_MS).then_some(next);
                self.store().alerts().notification_failed(n.id, &e, next).await
            }
        }
    }

    /// Gives a claimed notification back unsent, to keep a channel's order after a failure.
    pub async fn release_notification(&self, n: &DueNotification, now: i64) -> Result<()> {
        self.store().alerts().release_notification(n.id, now).await
    }

    /// Takes or renews the evaluator lease (one evaluating process per database).
    pub async fn acquire_alert_lease(&self, holder: &str, now: i64, ttl_ms: i64) -> Result<bool> {
        self.store().alerts().acquire_alert_lease(holder, now, ttl_ms).await
    }

    // ----- evaluation -------------------------------------------------------------------------

    /// A rule's metric on a model over the window ending at `now`.
    pub(crate) async fn observe(&self, rule: &AlertRule, model_id: i64, series: Option<&[i64]>, now: i64) -> Result<Observation> {
        let from = now - rule.window_secs * 1000;
        let totals = match series {
            None => self.window_totals(model_id, from, now).await?,
            Some(ids) => self.series_window_totals(model_id, ids, from, now).await?,
        };
        let value = match rule.metric.strip_prefix("custom:").and_then(|r| r.split_once(':')) {
            Some((agg, name)) => {
                let from = from.div_euclid(60_000) * 60_000;
                let acc = self.store().metric_rollup_total(model_id, name, Resolution::Minute, from, now + 60_000).await?;
                if acc.count == 0 {
                    None
                } else {
                    match agg {
                        "avg" => Some(acc.sum / acc.count as f64),
                        "min" => Some(acc.min),
                        "max" => Some(acc.max),
                        "sum" => Some(acc.sum),
                        "count" => Some(acc.count as f64),
                        "p50" => acc.sketch.quantile(0.5),
                        "p95" => acc.sketch.quantile(0.95),
                        _ => None,
                    }
                }
            }
            None => kpi_value(&rule.metric, &totals, rule.window_secs),
        };
        Ok(Observation { value, requests: totals.requests })
    }

    /// Whether a rule covers a model by environment and provider, and which of its series then
    /// count: `None` when no series matches (not covered); `Some(None)` when the rule is not
    /// narrowed (every log counts); `Some(Some(ids))` otherwise.
    async fn rule_series(&self, rule: &AlertRule, model_id: i64) -> Result<Option<Option<Vec<i64>>>> {
        if !rule.scoped() {
            return Ok(Some(None));
        }
        let series = self.store().series_of_model(model_id).await?;
        let ids: Vec<i64> = series.into_iter().filter(|(_, k)| rule.matches_dims(&k.environment, &k.provider)).map(|(id, _)| id).collect();
        Ok((!ids.is_empty()).then_some(Some(ids)))
    }

    /// The baseline of an anomaly rule: the metric over the same window on previous days (7)
    /// or weeks (4).
    pub(crate) async fn baseline(&self, rule: &AlertRule, model_id: i64, series: Option<&[i64]>, now: i64) -> Result<Vec<f64>> {
        let (period, n) = if rule.seasonality == "week" { (7 * 86_400_000, 4) } else { (86_400_000, 7) };
        let mut out = Vec::new();
        for k in 1..=n {
            if let Some(v) = self.observe(rule, model_id, series, now - k * period).await?.value {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The severity the data calls for, the observed value, and whether it was judged at all.
    async fn condition(
        &self,
        rule: &AlertRule,
        model_id: i64,
        series: Option<&[i64]>,
        now: i64,
    ) -> Result<(Option<&'static str>, Option<f64>, bool, String)> {
        let obs = self.observe(rule, model_id, series, now).await?;
        if rule.kind == AlertKind::NoData {
            let fired = obs.requests == 0;
            return Ok((fired.then_some("critical"), Some(obs.requests as f64), true, String::new()));
        }
        let judged = obs.value.is_some() && obs.requests >= rule.min_requests;
        if !judged {
            return Ok(match rule.no_data.as_str() {
                "alert" => (Some("critical"), obs.value, true, "no data".into()),
                "keep" => (None, obs.value, false, String::new()),
                _ => (None, obs.value, true, String::new()),
            });
        }
        let value = obs.value.unwrap_or(0.0);
        match rule.kind {
            AlertKind::Threshold => Ok((threshold_severity(rule, value), obs.value, true, String::new())),
            AlertKind::Anomaly => {
                let base = self.baseline(rule, model_id, series, now).await?;
                match anomaly_band(&base, rule.sensitivity) {
                    Some(band) => {
                        let out = outside_band(rule, value, band);
                        Ok((out.then_some("warning"), obs.value, true, format!("band {:.4} … {:.4}", band.0, band.1)))
                    }
                    // Too little history: nothing to compare with yet.
                    None => Ok((None, obs.value, true, "baseline needs 3 earlier periods".into())),
                }
            }
            AlertKind::NoData => unreachable!(),
        }
    }

    /// One evaluation of every enabled rule at `now`: states, history and queued notifications.
    /// Returns the number of notifications queued. A rule whose evaluation fails is logged and
    /// skipped; the others still run.
    pub async fn evaluate_alerts(&self, now: i64) -> Result<usize> {
        let a = self.store().alerts();
        let rules = a.list_alert_rules().await?;
        let models = self.store().list_models().await?;
        let silences = a.list_silences().await?;
        let states: HashMap<(i64, i64), StateRow> = a.alert_states().await?.into_iter().map(|s| ((s.rule_id, s.model_id), s)).collect();
        let channels = a.list_channels().await?;
        let mut queued = 0;
        let mut firing_now = 0i64;
        for rule in &rules {
            match self.evaluate_rule(rule, &models, &silences, &states, &channels, now).await {
                Ok((q, f)) => {
                    queued += q;
                    firing_now += f;
                }
                Err(e) => tracing::warn!(rule = rule.id, error = %e, "alert rule evaluation failed"),
            }
        }
        let t = self.ingest().telemetry();
        t.alert_evaluations.inc();
        t.alerts_firing.set(firing_now);
        Ok(queued)
    }

    /// One rule: every covered model's new state. Notifications are queued before the states
    /// are saved, so a crash in between repeats a notification rather than losing it.
    async fn evaluate_rule(
        &self,
        rule: &AlertRule,
        models: &[Model],
        silences: &[AlertSilence],
        states: &HashMap<(i64, i64), StateRow>,
        channels: &[AlertChannel],
        now: i64,
    ) -> Result<(usize, i64)> {
        let a = self.store().alerts();
        let mut firing: Vec<NotifiedAlert> = Vec::new();
        let mut resolved: Vec<NotifiedAlert> = Vec::new();
        let mut repeat: Vec<NotifiedAlert> = Vec::new();
        let mut rows: Vec<StateRow> = Vec::new();
        let mut gone: Vec<(i64, i64)> = Vec::new();
        let mut events: Vec<(i64, &'static str, String, Option<f64>, String)> = Vec::new();
        // The covered models, each with the series that count (all when the rule is not
        // narrowed by environment or provider).
        let mut scope: HashMap<i64, Option<Vec<i64>>> = HashMap::new();
        if rule.enabled {
            for m in models.iter().filter(|m| rule.covers(&m.name)) {
                if let Some(series) = self.rule_series(rule, m.id).await? {
                    scope.insert(m.id, series);
                }
            }
        }
        let covered = |m: &Model| scope.contains_key(&m.id);
        let dashboard = |name: &str| format!("/models/{name}");
        // A disabled rule, or a model it no longer covers: resolve what was announced, then
        // forget the state.
        for ((rid, mid), prev) in states.iter().filter(|((rid, _), _)| *rid == rule.id) {
            let model = models.iter().find(|m| m.id == *mid);
            if model.is_some_and(covered) {
                continue;
            }
            if prev.state != "ok" {
                let why = if rule.enabled { "no longer covered" } else { "rule disabled" };
                events.push((*mid, "resolved", String::new(), prev.value, why.into()));
                if let (Some(m), Some(_)) = (model, prev.last_notified_ms) {
                    resolved.push(NotifiedAlert {
                        model: m.name.clone(),
                        status: "resolved".into(),
                        severity: prev.severity.clone(),
                        value: prev.value,
                        since_ms: prev.since_ms,
                        dashboard: dashboard(&m.name),
                    });
                }
            }
            gone.push((*rid, *mid));
        }
        let mut firing_now = 0;
        for model in models.iter().filter(|m| covered(m)) {
            let prev = states.get(&(rule.id, model.id));
            let series = scope.get(&model.id).and_then(|s| s.as_deref());
            let (cond, value, judged, detail) = self.condition(rule, model.id, series, now).await?;
            let silenced = is_silenced(silences, rule.id, &model.name, now);
            let mut row = prev.cloned().unwrap_or(StateRow {
                rule_id: rule.id,
                model_id: model.id,
                state: "ok".into(),
                severity: String::new(),
                since_ms: now,
                value: None,
                last_eval_ms: now,
                last_notified_ms: None,
                acked_by: None,
                acked_at: None,
            });
            let transition = if judged {
                let (state, severity, since, t) = step(prev, cond, rule.for_secs, now);
                row.state = state;
                row.severity = severity;
                row.since_ms = since;
                t
            } else {
                None
            };
            row.value = value;
            row.last_eval_ms = now;
            let alert = |status: &str, row: &StateRow, severity: &str| NotifiedAlert {
                model: model.name.clone(),
                status: status.into(),
                severity: severity.into(),
                value: row.value,
                since_ms: row.since_ms,
                dashboard: dashboard(&model.name),
            };
            let escalated = transition == Some("severity") && row.severity == "critical";
            if let Some(t) = transition {
                let detail = if silenced { format!("{detail} (silenced)").trim().to_string() } else { detail.clone() };
                events.push((model.id, t, row.severity.clone(), row.value, detail));
                if t == "resolved" || t == "ok" {
                    row.acked_by = None;
                    row.acked_at = None;
                }
                if escalated {
                    // Cleared in the database too (an empty name means "clear", see the store).
                    row.acked_by = Some(String::new());
                    row.acked_at = None;
                }
                if escalated && silenced {
                    // Announce the escalation once the silence ends.
                    row.last_notified_ms = row.last_notified_ms.map(|_| 0);
                }
            }
            // Resolved (also after a silence, or once it ends): tell whoever heard of it.
            if row.state == "ok" && row.last_notified_ms.is_some() && !silenced {
                let severity = prev.map(|p| p.severity.clone()).unwrap_or_default();
                resolved.push(alert("resolved", &row, &severity));
                row.last_notified_ms = None;
            }
            if row.state == "firing" && !silenced {
                let notified_since_firing = row.last_notified_ms.is_some_and(|t| t >= row.since_ms);
                // De-escalation (critical → warning) is recorded, not announced.
                if transition == Some("firing") || escalated || !notified_since_firing {
                    firing.push(alert("firing", &row, &row.severity));
                    row.last_notified_ms = Some(now);
                } else if rule.repeat_secs > 0
                    && row.acked_by.as_deref().is_none_or(str::is_empty)
                    && row.last_notified_ms.is_some_and(|t| now - t >= rule.repeat_secs * 1000)
                {
                    repeat.push(alert("firing", &row, &row.severity));
                    row.last_notified_ms = Some(now);
                }
            }
            firing_now += i64::from(row.state == "firing");
            rows.push(row);
        }
        let mut queued = 0;
        for (event, alerts) in [("firing", firing), ("resolved", resolved), ("repeat", repeat)] {
            if alerts.is_empty() {
                continue;
            }
            for channel in channels.iter().filter(|c| rule.channels.contains(&c.id)) {
                // PagerDuty deduplicates per alert: one event per model.
                let groups: Vec<Vec<NotifiedAlert>> =
                    if channel.kind == "pagerduty" { alerts.iter().map(|x| vec![x.clone()]).collect() } else { vec![alerts.clone()] };
                for group in groups {
                    let msg = message(rule, event, group, now);
                    let json = serde_json::to_string(&msg).map_err(|e| Error::Internal(e.to_string()))?;
                    a.enqueue_notification(channel.id, Some(rule.id), event, &json, now).await?;
                    queued += 1;
                }
            }
        }
        for (model_id, kind, severity, value, detail) in events {
            a.insert_alert_event(rule.id, model_id, now, kind, &severity, value, &detail).await?;
        }
        for row in &rows {
            a.upsert_alert_state(row).await?;
        }
        for (rid, mid) in gone {
            a.delete_alert_state(rid, mid).await?;
        }
        Ok((queued, firing_now))
    }

    /// The preview of a rule being edited: the metric at up to 288 moments over the last
    /// `range_secs` (each over the rule's window), the band for anomaly rules, and the moments
    /// the rule would have fired (`for` and the minimum-request guard included).
    pub async fn preview_alert_rule(&self, p: &Principal, mut rule: AlertRule, range_secs: i64) -> Result<AlertPreview> {
        // Hundreds of rollup reads: for those who may write rules.
        if p.role == crate::types::Role::Viewer {
            return Err(Error::Forbidden);
        }
        validate_rule(&mut rule)?;
        let models = self.store().list_models().await?;
        let mut chosen = None;
        for m in Self::visible_covered(p, &rule, &models) {
            if let Some(series) = self.rule_series(&rule, m.id).await? {
                chosen = Some((m.clone(), series));
                break;
            }
        }
        let (model, series) = chosen.ok_or(Error::NotFound("model"))?;
        let now = now_ms();
        let range = range_secs.clamp(3600, 7 * 86_400) * 1000;
        // Windows side by side where possible (a short spike is not stepped over), at most 288.
        let n = (range / (rule.window_secs * 1000).max(60_000)).clamp(24, 288);
        let stride = range / n;
        let mut points = Vec::with_capacity(n as usize);
        let mut prev: Option<StateRow> = None;
        for i in 0..=n {
            let t = now - range + i * stride;
            let (cond, value, judged, _) = self.condition(&rule, model.id, series.as_deref(), t).await?;
            let band = if rule.kind == AlertKind::Anomaly {
                anomaly_band(&self.baseline(&rule, model.id, series.as_deref(), t).await?, rule.sensitivity)
            } else {
                None
            };
            let mut fired = prev.as_ref().is_some_and(|p| p.state == "firing");
            if judged {
                let (state, severity, since, _) = step(prev.as_ref(), cond, rule.for_secs, t);
                fired = state == "firing";
                prev = Some(StateRow {
                    rule_id: 0,
                    model_id: model.id,
                    state,
                    severity,
                    since_ms: since,
                    value,
                    last_eval_ms: t,
                    last_notified_ms: None,
                    acked_by: None,
                    acked_at: None,
                });
            }
            points.push(PreviewPoint { t, value, band, firing: fired });
        }
        Ok(AlertPreview { model: model.name, points, warning: rule.warning, critical: rule.critical })
    }
}

/// The preview of a rule over recent data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertPreview {
    pub model: String,
    pub points: Vec<PreviewPoint>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreviewPoint {
    pub t: i64,
    pub value: Option<f64>,
    pub band: Option<(f64, f64)>,
    pub firing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, severity: &str, since: i64) -> StateRow {
        StateRow {
            rule_id: 1,
            model_id: 1,
            state: state.into(),
            severity: severity.into(),
            since_ms: since,
            value: None,
            last_eval_ms: since,
            last_notified_ms: None,
            acked_by: None,
            acked_at: None,
        }
    }

    #[test]
    fn channel_urls_to_internal_addresses_are_refused_unless_allowed() {
        let channel = |kind: &str, url: &str| AlertChannel {
            id: 0,
            name: "c".into(),
            kind: kind.into(),
            url: url.into(),
            secret: if kind == "pagerduty" { "KEY".into() } else { String::new() },
            to: vec![],
            created_at: 0,
        };
        let strict = TargetPolicy::default();
        let all = TargetPolicy::allow_all();
        for kind in ["webhook", "slack", "pagerduty"] {
            for url in ["http://127.0.0.1/", "http://[::1]/", "http://localhost/", "http://0.0.0.0/", "http://2130706433/", "http://10.0.0.1/", "http://169.254.169.254/"] {
                let e = validate_channel(&mut channel(kind, url), &strict).unwrap_err();
                assert_eq!(e.field(), Some("url"), "{kind} {url}");
            }
            assert!(validate_channel(&mut channel(kind, "http://127.0.0.1:9/hook"), &all).is_ok(), "{kind}");
            let e = validate_channel(&mut channel(kind, "http://169.254.169.254/"), &all).unwrap_err();
            assert_eq!(e.field(), Some("url"), "{kind}: metadata stays refused");
            assert!(validate_channel(&mut channel(kind, "https://hooks.example.com/x"), &strict).is_ok(), "{kind}");
        }
        // PagerDuty's default URL is public.
        assert!(validate_channel(&mut channel("pagerduty", ""), &strict).is_ok());
    }

    #[test]
    fn state_machine() {
        // No `for`: straight to firing.
        assert_eq!(step(None, Some("warning"), 0, 10).3, Some("firing"));
        // With `for`: pending, then firing once it held long enough.
        let (s, _, since, t) = step(None, Some("critical"), 60, 1_000);
        assert_eq!((s.as_str(), since, t), ("pending", 1_000, Some("pending")));
        let p = row("pending", "critical", 1_000);
        assert_eq!(step(Some(&p), Some("critical"), 60, 50_000).3, None);
        assert_eq!(step(Some(&p), Some("critical"), 60, 50_000).0, "pending");
        assert_eq!(step(Some(&p), Some("critical"), 60, 61_000).3, Some("firing"));
        // Pending that clears goes back to ok without firing.
        assert_eq!(step(Some(&p), None, 60, 30_000).3, Some("ok"));
        // Firing: severity changes are transitions; clearing resolves.
        let f = row("firing", "warning", 0);
        assert_eq!(step(Some(&f), Some("critical"), 0, 5).3, Some("severity"));
        assert_eq!(step(Some(&f), Some("warning"), 0, 5).3, None);
        assert_eq!(step(Some(&f), None, 0, 5).3, Some("resolved"));
    }

    #[test]
    fn thresholds_and_bands() {
        let rule = AlertRule { comparison: ">".into(), warning: Some(5.0), critical: Some(10.0), ..AlertRule::default() };
        assert_eq!(threshold_severity(&rule, 4.0), None);
        assert_eq!(threshold_severity(&rule, 7.0), Some("warning"));
        assert_eq!(threshold_severity(&rule, 11.0), Some("critical"));
        let below = AlertRule { comparison: "<".into(), warning: Some(0.9), critical: None, ..AlertRule::default() };
        assert_eq!(threshold_severity(&below, 0.8), Some("warning"));
        // Median 100, MAD 2 → σ ≈ 2.97; ±3σ ≈ 91.1 … 108.9.
        let (lo, hi) = anomaly_band(&[98.0, 100.0, 102.0, 100.0, 97.0, 103.0, 100.0], 3.0).unwrap();
        assert!((hi - 108.8956).abs() < 1e-3 && (lo - 91.1044).abs() < 1e-3, "{lo} {hi}");
        // A flat history still has a band (1 % of the median per unit of sensitivity).
        let (lo, hi) = anomaly_band(&[50.0, 50.0, 50.0], 2.0).unwrap();
        assert_eq!((lo, hi), (49.0, 51.0));
        assert_eq!(anomaly_band(&[1.0, 2.0], 3.0), None);
        let both = AlertRule { comparison: "<>".into(), ..AlertRule::default() };
        assert!(outside_band(&both, 120.0, (90.0, 110.0)) && outside_band(&both, 80.0, (90.0, 110.0)));
        let up = AlertRule { comparison: ">".into(), ..AlertRule::default() };
        assert!(!outside_band(&up, 80.0, (90.0, 110.0)));
    }

    #[test]
    fn rule_validation_names_fields() {
        let ok = AlertRule { name: "errors".into(), models: vec!["m".into()], critical: Some(5.0), ..AlertRule::default() };
        assert!(validate_rule(&mut ok.clone()).is_ok());
        let field = |r: AlertRule| validate_rule(&mut r.clone()).unwrap_err().field().unwrap().to_string();
        assert_eq!(field(AlertRule { name: " ".into(), ..ok.clone() }), "name");
        assert_eq!(field(AlertRule { models: vec![], ..ok.clone() }), "models");
        assert_eq!(field(AlertRule { metric: "nope".into(), ..ok.clone() }), "metric");
        assert_eq!(field(AlertRule { window_secs: 10, ..ok.clone() }), "window_secs");
        assert_eq!(field(AlertRule { critical: None, ..ok.clone() }), "critical");
        assert_eq!(field(AlertRule { warning: Some(9.0), critical: Some(5.0), ..ok.clone() }), "warning");
        assert_eq!(field(AlertRule { no_data: "maybe".into(), ..ok.clone() }), "no_data");
        assert_eq!(field(AlertRule { runbook_url: "ftp://x".into(), ..ok.clone() }), "runbook_url");
        assert!(validate_rule(&mut AlertRule { metric: "custom:p95:gpu.util".into(), ..ok.clone() }).is_ok());
        assert_eq!(field(AlertRule { environments: vec!["x".repeat(201)], ..ok.clone() }), "environments");
        assert_eq!(field(AlertRule { providers: (0..21).map(|i| i.to_string()).collect(), ..ok.clone() }), "providers");
        assert_eq!(field(AlertRule { metric: "custom:median:gpu".into(), ..ok }), "metric");
    }

    #[test]
    fn narrowed_rules_match_dimensions_and_say_so() {
        let r = AlertRule {
            name: "prod errors".into(),
            critical: Some(5.0),
            environments: vec!["prod".into(), "eu-prod".into()],
            providers: vec!["openai".into()],
            ..AlertRule::default()
        };
        assert!(r.scoped());
        assert!(r.matches_dims("eu-prod", "openai"));
        assert!(!r.matches_dims("staging", "openai"));
        assert!(!r.matches_dims("prod", "azure"));
        let any = AlertRule { environments: vec![], ..r.clone() };
        assert!(any.matches_dims("staging", "openai") && !any.matches_dims("staging", ""));
        assert!(!AlertRule::default().scoped() && AlertRule::default().matches_dims("", ""));
        let text = message(&r, "firing", Vec::new(), 0).condition;
        assert!(text.ends_with("(environment prod or eu-prod) (provider openai)"), "{text}");
    }

    #[test]
    fn webhook_secrets_are_standard() {
        let s = generate_webhook_secret();
        assert!(s.starts_with("whsec_") && s.len() == 6 + 44, "{s}");
        assert!(s.ends_with('='));
        assert_ne!(s, generate_webhook_secret());
        assert_eq!(retry_delay_ms(0), 5_000);
        assert_eq!(retry_delay_ms(3), 40_000);
        assert_eq!(retry_delay_ms(30), 600_000);
    }
}
