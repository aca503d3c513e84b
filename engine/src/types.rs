//! The product's nouns as plain data: users, roles, models, grants. Serializable so the UI
//! and the REST API can carry them; no secrets live here (password hashes stay in `store`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Editor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "editor" => Ok(Role::Editor),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?}; expected admin, editor or viewer")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub id: i64,
    /// The key clients send in `model`; unique and immutable.
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created_at: i64,
    /// Store request/response payloads of this model (API keys can turn capture off too).
    pub capture_payloads: bool,
    /// Metadata keys whose values are rolled up for the dashboard's breakdowns.
    #[serde(default)]
    pub breakdown_keys: Vec<String>,
}

/// A user's access to one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub model_id: i64,
    pub model: String,
    /// May read prompt and response payloads of this model.
    pub view_payloads: bool,
}

/// A log search a user saved for a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct SavedSearch {
    pub id: i64,
    pub name: String,
    /// The explorer's URL query string (range and filters, no page cursor).
    pub query: String,
    pub created_at: i64,
}

/// One user's grant as seen from the model's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGrant {
    pub user_id: i64,
    pub username: String,
    pub view_payloads: bool,
}

/// A user together with the models granted to them, for the admin pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserWithGrants {
    pub user: User,
    pub grants: Vec<Grant>,
}

/// What the UI needs to know about the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

/// A UTC epoch-millisecond time as `2026-11-22 10:00 UTC`, the same in the CLI, on the server
/// and in the browser (so hydration agrees).
pub fn utc_minute_text(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send logs and metrics.
    Ingest,
    /// Read KPIs, logs and `/metrics`.
    Read,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            _ => None,
        }
    }
}

/// An API key as listed to admins; the secret itself is shown once at creation and never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// The key's first characters, enough to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// Model names the key is limited to; None means every model.
    pub models: Option<Vec<String>>,
    pub capture_payloads: bool,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A model's price per million tokens, in USD. `pattern` is a model name, or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub pattern: String,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cached_input_per_mtok: f64,
}

/// A real-time rule applied to log records before they are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestRule {
    pub id: i64,
    pub position: i64,
    pub name: String,
    pub enabled: bool,
    /// Exact model name, a prefix ending in `*`, or empty for every model.
    pub model: String,
    pub action: RuleAction,
}

/// What an ingest rule does. Rollups count every record whatever the rules decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleAction {
    /// Do not store matching records. Every condition given must hold.
    Drop {
        /// Levels to drop, e.g. ["debug", "trace"]; empty means any level.
        #[serde(default)]
        levels: Vec<String>,
        /// "ok" or "error"; None means either.
        #[serde(default)]
        status: Option<String>,
        /// Drop only records whose metadata has this key ...
        #[serde(default)]
        metadata_key: Option<String>,
        /// ... with this value (compared as text); None means any value.
        #[serde(default)]
        metadata_value: Option<String>,
    },
    /// Store only a share of successful records; errors and slow calls are always kept.
    Sample {
        /// Percentage of successful records to keep, 0–100.
        keep_percent: f64,
        /// Records at least this slow (latency_ms) are always kept.
        #[serde(default)]
        slow_ms: Option<f64>,
    },
    /// Replace personal data in payloads, messages and metadata with placeholders like `[EMAIL]`.
    Redact {
        /// Built-in kinds: email, phone, credit_card, secret, ip_address.
        kinds: Vec<String>,
        #[serde(default)]
        custom: Vec<CustomRedaction>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomRedaction {
    /// Placeholder name: `employee_id` becomes `[EMPLOYEE_ID]`.
    pub name: String,
    pub regex: String,
}

impl RuleAction {
    pub fn kind(&self) -> &'static str {
        match self {
            RuleAction::Drop { .. } => "drop",
            RuleAction::Sample { .. } => "sample",
            RuleAction::Redact { .. } => "redact",
        }
    }
}

/// A stored log record as the read API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogView {
    pub id: i64,
    /// UTC epoch milliseconds.
    pub timestamp: i64,
    pub model: String,
    pub model_version: String,
    pub provider: String,
    pub environment: String,
    pub operation: String,
    pub status: String,
    pub level: String,
    pub http_status: Option<i64>,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub cache_hit: bool,
    pub feedback: Option<i64>,
    pub error_type: Option<String>,
    pub message: Option<String>,
    pub error_message: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Personal data was replaced by placeholders before storing.
    pub redacted: bool,
    pub has_payload: bool,
    pub payload_truncated: bool,
    /// The log has a payload that the caller may not view, so it was not sent.
    #[serde(default)]
    pub payload_withheld: bool,
    /// Present only when asked for and the caller may view payloads.
    pub request: Option<String>,
    pub response: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_minute_text() {
        assert_eq!(super::utc_minute_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc_minute_text(1_795_341_600_250), "2026-11-22 10:00 UTC");
    }
}

/// A model server's Prometheus endpoint that Modelwatch scrapes into a model's custom metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapeTarget {
    pub id: i64,
    pub model: String,
    pub url: String,
    pub interval_secs: i64,
    /// `vllm`, `tgi`, `triton` or `custom`.
    pub preset: String,
    /// Series names to keep (`*` matches any run of characters); empty: the preset's list.
    pub keep: Vec<String>,
    pub enabled: bool,
    /// The last scrape: when it ran, how long it took, what went wrong, how many points it stored.
    pub last_scrape_ms: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_points: Option<i64>,
    pub last_success_ms: Option<i64>,
}

impl ScrapeTarget {
    /// The series patterns in force: the target's own, else its preset's.
    pub fn patterns(&self) -> Vec<String> {
        if !self.keep.is_empty() {
            return self.keep.clone();
        }
        scrape_preset(&self.preset).map(|p| p.keep.iter().map(|s| s.to_string()).collect()).unwrap_or_default()
    }
}

/// Series kept by default for a kind of model server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScrapePreset {
    pub id: &'static str,
    pub label: &'static str,
    pub keep: &'static [&'static str],
}

/// Presets: latency, time to first token, queue length, KV-cache and GPU use, token counters.
pub const SCRAPE_PRESETS: &[ScrapePreset] = &[
    ScrapePreset {
        id: "vllm",
        label: "vLLM",
        keep: &[
            "vllm:e2e_request_latency_seconds",
            "vllm:time_to_first_token_seconds",
            "vllm:time_per_output_token_seconds",
            "vllm:request_queue_time_seconds",
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:gpu_cache_usage_perc",
            "vllm:kv_cache_usage_perc",
            "vllm:prompt_tokens_total",
            "vllm:generation_tokens_total",
            "vllm:request_success_total",
            "vllm:num_preemptions_total",
        ],
    },
    ScrapePreset {
        id: "tgi",
        label: "Hugging Face TGI",
        keep: &[
            "tgi_request_duration",
            "tgi_request_queue_duration",
            "tgi_request_mean_time_per_token_duration",
            "tgi_queue_size",
            "tgi_batch_current_size",
            "tgi_request_count",
            "tgi_request_success",
            "tgi_request_failure",
            "tgi_request_input_length",
            "tgi_request_generated_tokens",
        ],
    },
    ScrapePreset {
        id: "triton",
        label: "NVIDIA Triton",
        keep: &[
            "nv_inference_request_success",
            "nv_inference_request_failure",
            "nv_inference_count",
            "nv_inference_request_duration_us",
            "nv_inference_queue_duration_us",
            "nv_inference_compute_infer_duration_us",
            "nv_inference_first_response_histogram_ms",
            "nv_inference_pending_request_count",
            "nv_gpu_utilization",
            "nv_gpu_memory_used_bytes",
            "nv_gpu_memory_total_bytes",
            "nv_gpu_power_usage",
        ],
    },
    ScrapePreset { id: "custom", label: "Custom (list the series)", keep: &[] },
];

pub fn scrape_preset(id: &str) -> Option<&'static ScrapePreset> {
    SCRAPE_PRESETS.iter().find(|p| p.id == id)
}

/// Whether a series name matches a keep pattern (`*` matches any run of characters).
pub fn series_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    true
}

// ----- alerting -----------------------------------------------------------------------------------

/// What an alert rule watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The metric crosses a warning and/or critical threshold.
    #[default]
    Threshold,
    /// The metric leaves a band around its seasonal baseline (same time of day or week).
    Anomaly,
    /// The model sends no logs for the window.
    NoData,
}

/// The metrics a rule can watch. Custom metrics are `custom:<aggregation>:<name>`.
pub const ALERT_METRICS: &[(&str, &str, &str)] = &[
    ("error_rate", "Error rate", "%"),
    ("request_rate", "Request rate", "req/s"),
    ("requests", "Requests", ""),
    ("errors", "Errors", ""),
    ("latency_p50", "Latency p50", "ms"),
    ("latency_p95", "Latency p95", "ms"),
    ("latency_p99", "Latency p99", "ms"),
    ("ttft_p50", "Time to first token p50", "ms"),
    ("ttft_p95", "Time to first token p95", "ms"),
    ("ttft_p99", "Time to first token p99", "ms"),
    ("input_tokens", "Input tokens", ""),
    ("output_tokens", "Output tokens", ""),
    ("tokens", "Tokens (in + out)", ""),
    ("cost_usd", "Cost", "USD"),
    ("cache_hit_rate", "Cache-hit rate", "%"),
];

/// Aggregations of a custom metric over the window.
pub const CUSTOM_AGGREGATIONS: &[&str] = &["avg", "min", "max", "sum", "count", "p50", "p95"];

/// An alert rule, as the UI and the REST API show and edit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub runbook_url: String,
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    pub enabled: bool,
    pub kind: AlertKind,
    /// Model names; one ending in `*` matches by prefix (`*` alone: every model). Each model
    /// is tracked separately.
    pub models: Vec<String>,
    /// Only models that send logs in one of these environments (empty: any), and then only
    /// those logs count towards the metric.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Only models that send logs through one of these providers (empty: any), and then only
    /// those logs count towards the metric.
    #[serde(default)]
    pub providers: Vec<String>,
    /// One of `ALERT_METRICS`, or `custom:<aggregation>:<name>`.
    pub metric: String,
    /// The metric is computed over the last `window_secs` (no-data: how long without logs).
    pub window_secs: i64,
    /// `>`, `>=`, `<` or `<=` (threshold rules).
    pub comparison: String,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// How long the condition must hold before the alert fires.
    pub for_secs: i64,
    /// Below this many requests in the window the metric is not judged (treated as no data).
    pub min_requests: i64,
    /// What no data (or too few requests) means: `ok`, `keep` (the current state) or `alert`.
    pub no_data: String,
    /// Anomaly rules: the band is the baseline median ± sensitivity × MAD (scaled to σ).
    pub sensitivity: f64,
    /// Anomaly rules: `day` (same time on the previous 7 days) or `week` (previous 4 weeks).
    pub seasonality: String,
    /// Channel ids notified on firing and resolving.
    pub channels: Vec<i64>,
    /// Re-notify a still-firing, unacknowledged alert this often; 0: never.
    pub repeat_secs: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub updated_at: i64,
}

impl Default for AlertRule {
    fn default() -> Self {
        AlertRule {
            id: 0,
            name: String::new(),
            description: String::new(),
            runbook_url: String::new(),
            labels: Vec::new(),
            enabled: true,
            kind: AlertKind::Threshold,
            models: Vec::new(),
            environments: Vec::new(),
            providers: Vec::new(),
            metric: "error_rate".into(),
            window_secs: 300,
            comparison: ">".into(),
            warning: None,
            critical: None,
            for_secs: 0,
            min_requests: 0,
            no_data: "ok".into(),
            sensitivity: 3.0,
            seasonality: "day".into(),
            channels: Vec::new(),
            repeat_secs: 4 * 3600,
            created_by: String::new(),
            updated_at: 0,
        }
    }
}

impl AlertRule {
    /// Whether the rule covers a model name.
    pub fn covers(&self, model: &str) -> bool {
        self.models.iter().any(|m| match m.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => m == model,
        })
    }

    /// Whether the rule narrows its models by environment or provider.
    pub fn scoped(&self) -> bool {
        !self.environments.is_empty() || !self.providers.is_empty()
    }

    /// Whether logs filed under this environment and provider count for the rule.
    pub fn matches_dims(&self, environment: &str, provider: &str) -> bool {
        (self.environments.is_empty() || self.environments.iter().any(|e| e == environment))
            && (self.providers.is_empty() || self.providers.iter().any(|p| p == provider))
    }

    /// The metric's label and unit.
    pub fn metric_label(&self) -> (String, String) {
        if let Some(rest) = self.metric.strip_prefix("custom:") {
            let (agg, name) = rest.split_once(':').unwrap_or(("avg", rest));
            return (format!("{name} ({agg})"), String::new());
        }
        ALERT_METRICS
            .iter()
            .find(|(id, _, _)| *id == self.metric)
            .map(|(_, l, u)| (l.to_string(), u.to_string()))
            .unwrap_or_else(|| (self.metric.clone(), String::new()))
    }
}

/// The state of one rule on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub rule_id: i64,
    pub rule_name: String,
    pub model: String,
    /// `ok`, `pending` or `firing`.
    pub state: String,
    /// `warning` or `critical` (empty when ok).
    pub severity: String,
    /// Since when the state holds.
    pub since_ms: i64,
    pub value: Option<f64>,
    pub last_eval_ms: i64,
    pub acked_by: Option<String>,
    pub acked_at: Option<i64>,
    /// A silence covers it now.
    pub silenced: bool,
}

/// One entry of an alert's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct AlertEvent {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    pub model: String,
    pub ts: i64,
    /// `pending`, `firing`, `resolved`, `severity`, `acknowledged`, `silenced`.
    pub kind: String,
    pub severity: String,
    pub value: Option<f64>,
    pub detail: String,
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertChannel {
    pub id: i64,
    pub name: String,
    /// `webhook`, `slack`, `pagerduty` or `email`.
    pub kind: String,
    /// Webhook, Slack or PagerDuty (Events API) URL.
    #[serde(default)]
    pub url: String,
    /// Webhook signing secret (`whsec_…`) or PagerDuty routing key. Never sent to browsers.
    #[serde(default)]
    pub secret: String,
    /// E-mail recipients.
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub created_at: i64,
}

/// A queued or sent notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotification {
    pub id: i64,
    pub channel_id: i64,
    pub channel: String,
    pub rule_id: Option<i64>,
    /// `firing`, `resolved`, `repeat` or `test`.
    pub event: String,
    pub summary: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub delivered_ms: Option<i64>,
}

/// A silence: no notifications for a rule and/or model until `ends_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSilence {
    pub id: i64,
    pub rule_id: Option<i64>,
    pub rule_name: Option<String>,
    pub model: Option<String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub comment: String,
    pub created_by: String,
}

/// One page of the model registry, for the admin page (see `Engine::models_page`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelsPage {
    pub models: Vec<Model>,
    /// Models that match the filter, on every page.
    pub total: usize,
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub per_page: usize,
    pub limits: ModelLimitStatus,
}

/// What the admin sees: the limits, and what ingest refused since this process started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelLimitStatus {
    pub models: i64,
    pub max_models: i64,
    pub new_per_key_per_minute: u32,
    /// Records refused because their model would have been over a limit.
    pub refused_records: u64,
    /// When the last one was refused (ms), and why.
    pub last_refused_ms: Option<i64>,
    pub last_reason: Option<String>,
}

