//! Server functions of alerting: rules, preview, states, acknowledgement, silences, channels
//! and the notification log. Thin: the engine authorises (admins; editors on granted models;
//! viewers read) and validates.

#[cfg(feature = "ssr")]
use engine::types::AlertKind;
use engine::types::{AlertChannel, AlertEvent, AlertNotification, AlertRule, AlertSilence, AlertState};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api_dashboards::Chart;
use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::session::caller;

/// The rule form, field by field as the browser sends it (`rule[name]`, …). Numbers arrive as
/// text so an empty field means "not set"; durations are in minutes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub runbook_url: Option<String>,
    /// `key=value` pairs, one per line or comma-separated.
    #[serde(default)]
    pub labels: Option<String>,
    #[serde(default)]
    pub enabled: Option<String>,
    #[serde(default)]
    pub kind: String,
    /// Model names or patterns, comma-separated.
    #[serde(default)]
    pub models: String,
    /// Environments, comma-separated (empty: any).
    #[serde(default)]
    pub environments: Option<String>,
    /// Providers, comma-separated (empty: any).
    #[serde(default)]
    pub providers: Option<String>,
    #[serde(default)]
    pub metric: String,
    #[serde(default)]
    pub custom_name: Option<String>,
    #[serde(default)]
    pub custom_agg: Option<String>,
    #[serde(default)]
    pub window_minutes: Option<String>,
    #[serde(default)]
    pub comparison: Option<String>,
    #[serde(default)]
    pub warning: Option<String>,
    #[serde(default)]
    pub critical: Option<String>,
    #[serde(default)]
    pub for_minutes: Option<String>,
    #[serde(default)]
    pub min_requests: Option<String>,
    #[serde(default)]
    pub no_data: Option<String>,
    #[serde(default)]
    pub sensitivity: Option<String>,
    #[serde(default)]
    pub seasonality: Option<String>,
    /// Channel ids (one checkbox each, `rule[channels][]`).
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub repeat_minutes: Option<String>,
}

#[cfg(feature = "ssr")]
fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A comma-separated list, trimmed, without empty entries.
#[cfg(feature = "ssr")]
fn list(v: &Option<String>) -> Vec<String> {
    text(v).unwrap_or("").split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

#[cfg(feature = "ssr")]
fn number(field: &str, v: &Option<String>) -> Result<Option<f64>, AppError> {
    match text(v) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| AppError::from(engine::Error::invalid(field, format!("{s:?} is not a number")))),
    }
}

#[cfg(feature = "ssr")]
fn minutes(field: &str, v: &Option<String>, default: i64) -> Result<i64, AppError> {
    Ok(number(field, v)?.map(|m| (m * 60.0).round() as i64).unwrap_or(default))
}

#[cfg(feature = "ssr")]
impl RuleForm {
    /// The rule the form describes (checked again by the engine).
    pub fn to_rule(&self) -> Result<AlertRule, AppError> {
        let kind = match self.kind.as_str() {
            "anomaly" => AlertKind::Anomaly,
            "no_data" => AlertKind::NoData,
            _ => AlertKind::Threshold,
        };
        let metric = if self.metric == "custom" {
            let name = text(&self.custom_name).unwrap_or("");
            format!("custom:{}:{name}", text(&self.custom_agg).unwrap_or("avg"))
        } else {
            self.metric.clone()
        };
        let labels = text(&self.labels)
            .map(|l| {
                l.split([',', '\n'])
                    .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                    .filter(|(k, _)| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let channels = self.channels.iter().filter_map(|x| x.trim().parse::<i64>().ok()).collect();
        let d = AlertRule::default();
        Ok(AlertRule {
            id: self.id.unwrap_or(0),
            name: self.name.clone(),
            description: text(&self.description).unwrap_or("").to_string(),
            runbook_url: text(&self.runbook_url).unwrap_or("").to_string(),
            labels,
            enabled: self.enabled.is_some(),
            kind,
            models: self.models.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect(),
            environments: list(&self.environments),
            providers: list(&self.providers),
            metric,
            window_secs: minutes("window_minutes", &self.window_minutes, d.window_secs)?,
            comparison: text(&self.comparison).unwrap_or(">").to_string(),
            warning: number("warning", &self.warning)?,
            critical: number("critical", &self.critical)?,
            for_secs: minutes("for_minutes", &self.for_minutes, 0)?,
            min_requests: number("min_requests", &self.min_requests)?.map(|x| x as i64).unwrap_or(0),
            no_data: text(&self.no_data).unwrap_or("ok").to_string(),
            sensitivity: number("sensitivity", &self.sensitivity)?.unwrap_or(d.sensitivity),
            seasonality: text(&self.seasonality).unwrap_or("day").to_string(),
            channels,
            repeat_secs: minutes("repeat_minutes", &self.repeat_minutes, d.repeat_secs)?,
            created_by: String::new(),
            updated_at: 0,
        })
    }
}

#[server(prefix = "/fn", endpoint = "list_alert_rules")]
pub async fn list_alert_rules() -> Result<Vec<AlertRule>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_alert_rules(&p).await?)
}

#[server(prefix = "/fn", endpoint = "get_alert_rule")]
pub async fn get_alert_rule(id: i64) -> Result<AlertRule, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.get_alert_rule(&p, id).await?)
}

#[server(prefix = "/fn", endpoint = "save_alert_rule")]
pub async fn save_alert_rule(rule: RuleForm) -> Result<AlertRule, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.save_alert_rule(&p, rule.to_rule()?).await?)
}

/// What the rule form's buttons give: `intent=preview` draws the preview without saving,
/// `intent=save` saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    pub saved: Option<AlertRule>,
    pub preview: Option<Preview>,
}

#[server(prefix = "/fn", endpoint = "submit_alert_rule")]
pub async fn submit_alert_rule(rule: RuleForm, intent: Option<String>, days: Option<i64>) -> Result<RuleOutcome, AppError> {
    if intent.as_deref() == Some("preview") {
        let preview = preview_alert_rule(rule, days).await?;
        return Ok(RuleOutcome { saved: None, preview: Some(preview) });
    }
    let saved = save_alert_rule(rule).await?;
    Ok(RuleOutcome { saved: Some(saved), preview: None })
}

#[server(prefix = "/fn", endpoint = "delete_alert_rule")]
pub async fn delete_alert_rule(id: i64) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.delete_alert_rule(&p, id).await?)
}

/// The preview: a chart of the metric with thresholds or band, and when it would have fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub model: String,
    pub chart: Chart,
    /// (from, to) of each stretch the rule would have been firing.
    pub firing: Vec<(i64, i64)>,
}

#[server(prefix = "/fn", endpoint = "preview_alert_rule")]
pub async fn preview_alert_rule(rule: RuleForm, days: Option<i64>) -> Result<Preview, AppError> {
    use crate::charts::{self, Series};
    let (engine, p) = caller().await?;
    let r = rule.to_rule()?;
    let range_secs = days.unwrap_or(1).clamp(1, 7) * 86_400;
    let pv = engine.preview_alert_rule(&p, r.clone(), range_secs).await?;
    let t: Vec<i64> = pv.points.iter().map(|x| x.t).collect();
    let values: Vec<Option<f64>> = pv.points.iter().map(|x| x.value).collect();
    let mut series = vec![Series { name: r.metric_label().0, color: charts::BLUE, values: values.clone() }];
    if let Some(w) = pv.warning.filter(|_| r.kind == AlertKind::Threshold) {
        series.push(Series { name: "warning".into(), color: charts::AMBER, values: vec![Some(w); t.len()] });
    }
    if let Some(c) = pv.critical.filter(|_| r.kind == AlertKind::Threshold) {
        series.push(Series { name: "critical".into(), color: charts::RED, values: vec![Some(c); t.len()] });
    }
    if r.kind == AlertKind::Anomaly {
        series.push(Series { name: "band low".into(), color: charts::VIOLET, values: pv.points.iter().map(|x| x.band.map(|b| b.0)).collect() });
        series.push(Series { name: "band high".into(), color: charts::VIOLET, values: pv.points.iter().map(|x| x.band.map(|b| b.1)).collect() });
    }
    series.push(Series {
        name: "would fire".into(),
        color: charts::RED,
        values: pv.points.iter().map(|x| if x.firing { Some(x.value.unwrap_or(0.0)) } else { None }).collect(),
    });
    let mut firing = Vec::new();
    let mut start: Option<i64> = None;
    for x in &pv.points {
        match (x.firing, start) {
            (true, None) => start = Some(x.t),
            (false, Some(s)) => {
                firing.push((s, x.t));
                start = None;
            }
            _ => {}
        }
    }
    if let (Some(s), Some(last)) = (start, pv.points.last()) {
        firing.push((s, last.t));
    }
    let tz = engine::dashboards::time_zone(None)?;
    let step = t.get(1).zip(t.first()).map(|(b, a)| b - a).unwrap_or(60_000);
    let chart = charts::render(
        charts::Frame {
            key: "preview".into(),
            title: format!("{} on {}", r.metric_label().0, pv.model),
            unit: crate::format::Unit::Plain,
            kind: charts::Kind::Lines,
            t: &t,
            from: t.first().copied().unwrap_or(0),
            to: t.last().copied().unwrap_or(0),
            step_ms: step,
            tz: &tz,
            csv: String::new(),
        },
        series,
    );
    Ok(Preview { model: pv.model, chart, firing })
}

#[server(prefix = "/fn", endpoint = "alert_states")]
pub async fn alert_states() -> Result<Vec<AlertState>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.alert_states(&p).await?)
}

/// Firing alerts per model: (model, count, any critical), for badges.
#[server(prefix = "/fn", endpoint = "firing_counts")]
pub async fn firing_counts() -> Result<Vec<(String, i64, bool)>, AppError> {
    let (engine, p) = caller().await?;
    let mut v: Vec<(String, i64, bool)> = engine.firing_counts(&p).await?.into_iter().map(|(m, (n, c))| (m, n, c)).collect();
    v.sort();
    Ok(v)
}

#[server(prefix = "/fn", endpoint = "alert_history")]
pub async fn alert_history(rule_id: Option<i64>, model: Option<String>) -> Result<Vec<AlertEvent>, AppError> {
    let (engine, p) = caller().await?;
    let model = model.filter(|m| !m.is_empty());
    Ok(engine.alert_history(&p, rule_id, model.as_deref(), 100).await?)
}

#[server(prefix = "/fn", endpoint = "acknowledge_alert")]
pub async fn acknowledge_alert(rule_id: i64, model: String) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.acknowledge_alert(&p, rule_id, &model).await?)
}

#[server(prefix = "/fn", endpoint = "list_silences")]
pub async fn list_silences() -> Result<Vec<AlertSilence>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_silences(&p).await?)
}

#[server(prefix = "/fn", endpoint = "create_silence")]
pub async fn create_silence(rule_id: Option<String>, model: Option<String>, minutes: i64, comment: String) -> Result<i64, AppError> {
    let (engine, p) = caller().await?;
    let rule_id = match rule_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(s.parse::<i64>().map_err(|_| AppError::from(engine::Error::invalid("rule_id", "not a rule id")))?),
        None => None,
    };
    let model = model.filter(|m| !m.trim().is_empty());
    Ok(engine.create_silence(&p, rule_id, model.as_deref().map(str::trim), minutes, &comment).await?)
}

#[server(prefix = "/fn", endpoint = "delete_silence")]
pub async fn delete_silence(id: i64) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.delete_silence(&p, id).await?)
}

#[server(prefix = "/fn", endpoint = "list_channels")]
pub async fn list_channels() -> Result<Vec<AlertChannel>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_channels(&p).await?)
}

/// Creates a channel; the answer holds its secret once (a generated webhook signing secret).
#[server(prefix = "/fn", endpoint = "create_channel")]
pub async fn create_channel(name: String, kind: String, url: Option<String>, secret: Option<String>, to: Option<String>) -> Result<AlertChannel, AppError> {
    let (engine, p) = caller().await?;
    let c = AlertChannel {
        id: 0,
        name,
        kind,
        url: url.unwrap_or_default(),
        secret: secret.unwrap_or_default().trim().to_string(),
        to: to.unwrap_or_default().split([',', ' ', '\n']).map(str::to_string).collect(),
        created_at: 0,
    };
    Ok(engine.create_channel(&p, c).await?)
}

#[server(prefix = "/fn", endpoint = "delete_channel")]
pub async fn delete_channel(id: i64) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.delete_channel(&p, id).await?)
}

#[server(prefix = "/fn", endpoint = "test_channel")]
pub async fn test_channel(id: i64) -> Result<i64, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.test_channel(&p, id).await?)
}

#[server(prefix = "/fn", endpoint = "list_notifications")]
pub async fn list_notifications() -> Result<Vec<AlertNotification>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_notifications(&p, 100).await?)
}
