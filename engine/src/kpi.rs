//! Dashboard numbers as the UI and the REST API see them: KPI totals, time series, breakdowns
//! and the overview, plus how a time range is cut into steps.
//!
//! Plain data and pure functions only, so the browser bundle shares them. The queries that fill
//! these types from the rollup tables live in `dashboards` (server only).

use serde::{Deserialize, Serialize};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Steps a chart may use, finest first. Steps of whole hours read the hourly rollups.
pub const STEPS_MS: [i64; 12] = [
    MINUTE_MS,
    2 * MINUTE_MS,
    5 * MINUTE_MS,
    10 * MINUTE_MS,
    15 * MINUTE_MS,
    30 * MINUTE_MS,
    HOUR_MS,
    2 * HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
];

/// A panel shows at most about this many points.
pub const MAX_POINTS: i64 = 300;
/// An explicit `step` through the API may ask for up to this many points.
pub const MAX_API_POINTS: i64 = 2_000;
/// The longest range a dashboard or the API answers for.
pub const MAX_RANGE_MS: i64 = 400 * DAY_MS;

/// Relative ranges offered by the range picker, as they appear in URLs (`range=24h`).
pub const RELATIVE_RANGES: [(&str, i64); 6] = [
    ("15m", 15 * MINUTE_MS),
    ("1h", HOUR_MS),
    ("6h", 6 * HOUR_MS),
    ("24h", DAY_MS),
    ("7d", 7 * DAY_MS),
    ("30d", 30 * DAY_MS),
];

/// Auto-refresh choices, as they appear in URLs (`refresh=30s`); "off" is the absence.
pub const REFRESH_CHOICES: [(&str, u32); 4] = [("10s", 10), ("30s", 30), ("1m", 60), ("5m", 300)];

/// The finest step that keeps a range within `MAX_POINTS` points.
pub fn choose_step(span_ms: i64) -> i64 {
    let span = span_ms.max(1);
    for s in STEPS_MS {
        if (span + s - 1) / s <= MAX_POINTS {
            return s;
        }
    }
    // Beyond 300 days: whole days.
    let days = (span + MAX_POINTS * DAY_MS - 1) / (MAX_POINTS * DAY_MS);
    days * DAY_MS
}

/// Whether a step reads the hourly rollups (true) or the per-minute ones.
pub fn step_uses_hours(step_ms: i64) -> bool {
    step_ms % HOUR_MS == 0
}

/// Parses a duration like `90s`, `5m`, `1h`, `7d` (or plain milliseconds) into milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

/// Short text for a step or duration: `5m`, `3h`, `1d`.
pub fn duration_text(ms: i64) -> String {
    if ms % DAY_MS == 0 {
        format!("{}d", ms / DAY_MS)
    } else if ms % HOUR_MS == 0 {
        format!("{}h", ms / HOUR_MS)
    } else if ms % MINUTE_MS == 0 {
        format!("{}m", ms / MINUTE_MS)
    } else if ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// A range as URLs and the REST API give it. Every field is optional: the default is the last 24 hours.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct RangeParams {
    /// A relative range ending now: `15m`, `1h`, `6h`, `24h`, `7d`, `30d` (any `<n><s|m|h|d|w>`).
    pub range: Option<String>,
    /// Absolute start: epoch ms, RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` in `tz`.
    pub from: Option<String>,
    /// Absolute end (exclusive), same forms; default now.
    pub to: Option<String>,
    /// Step such as `5m` or `1h` (whole minutes); default: the finest that keeps ≤ 300 points.
    pub step: Option<String>,
    /// IANA time zone for local date-times, e.g. `Europe/Berlin`; default UTC.
    pub tz: Option<String>,
}

/// Headline numbers over a range or one step of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiTotals {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    pub cache_hits: i64,
    /// Milliseconds; None when no record in the range carried a latency.
    pub latency_p50: Option<f64>,
    pub latency_p95: Option<f64>,
    pub latency_p99: Option<f64>,
    pub ttft_p50: Option<f64>,
    pub ttft_p95: Option<f64>,
    pub ttft_p99: Option<f64>,
}

impl KpiTotals {
    /// Errors per request, 0..1; None without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
    /// Cache hits per request, 0..1; None without requests.
    pub fn cache_hit_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.cache_hits as f64 / self.requests as f64)
    }
    pub fn tokens(&self) -> i64 {
        self.input_tokens + self.output_tokens
    }
}

/// The relative change from `previous` to `current`, in percent; None when there is no base.
pub fn change_pct(current: f64, previous: f64) -> Option<f64> {
    (previous.abs() > f64::EPSILON).then(|| (current - previous) / previous * 100.0)
}

/// One step of a KPI time series: `t` is the step's start (UTC ms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KpiPoint {
    pub t: i64,
    #[serde(flatten)]
    pub v: KpiTotals,
}

/// One step of a custom metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricPointAgg {
    pub t: i64,
    pub count: i64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub name: String,
    pub total: MetricPointAgg,
    pub points: Vec<MetricPointAgg>,
}

/// Everything a model dashboard shows over one range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelKpis {
    pub model: String,
    pub display_name: String,
    /// The range asked for (UTC ms, `to` exclusive).
    pub from: i64,
    pub to: i64,
    pub step_ms: i64,
    /// `minute` or `hour`: which rollups answered.
    pub resolution: String,
    pub total: KpiTotals,
    /// The same numbers over the range of equal length just before `from`.
    pub previous: KpiTotals,
    pub points: Vec<KpiPoint>,
    pub metrics: Vec<MetricSeries>,
    /// Metadata keys an admin chose to roll up for breakdowns.
    pub breakdown_keys: Vec<String>,
}

/// What a breakdown table groups by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BreakdownBy {
    Provider,
    ModelVersion,
    Environment,
    Operation,
    ErrorType,
    User,
    Metadata(String),
}

impl BreakdownBy {
    /// Parses the URL form: `provider`, `model_version`, `environment`, `operation`,
    /// `error_type`, `user`, or `meta:<key>`.
    pub fn parse(s: &str) -> Option<BreakdownBy> {
        Some(match s {
            "provider" => BreakdownBy::Provider,
            "model_version" => BreakdownBy::ModelVersion,
            "environment" => BreakdownBy::Environment,
            "operation" => BreakdownBy::Operation,
            "error_type" => BreakdownBy::ErrorType,
            "user" => BreakdownBy::User,
            _ => BreakdownBy::Metadata(s.strip_prefix("meta:").filter(|k| !k.is_empty())?.to_string()),
        })
    }
    /// `parse`, with the 422 that names `by` for anything else.
    pub fn from_param(s: &str) -> crate::Result<BreakdownBy> {
        BreakdownBy::parse(s.trim()).ok_or_else(|| {
            crate::Error::invalid("by", "by must be provider, model_version, environment, operation, error_type, user or meta:<key>")
        })
    }
    pub fn as_param(&self) -> String {
        match self {
            BreakdownBy::Provider => "provider".into(),
            BreakdownBy::ModelVersion => "model_version".into(),
            BreakdownBy::Environment => "environment".into(),
            BreakdownBy::Operation => "operation".into(),
            BreakdownBy::ErrorType => "error_type".into(),
            BreakdownBy::User => "user".into(),
            BreakdownBy::Metadata(k) => format!("meta:{k}"),
        }
    }
    pub fn label(&self) -> String {
        match self {
            BreakdownBy::Provider => "Provider".into(),
            BreakdownBy::ModelVersion => "Model version".into(),
            BreakdownBy::Environment => "Environment".into(),
            BreakdownBy::Operation => "Operation".into(),
            BreakdownBy::ErrorType => "Error type".into(),
            BreakdownBy::User => "User".into(),
            BreakdownBy::Metadata(k) => format!("Metadata: {k}"),
        }
    }
    /// User and metadata breakdowns come from hourly rollups only.
    pub fn hourly_only(&self) -> bool {
        matches!(self, BreakdownBy::User | BreakdownBy::Metadata(_))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakdownRow {
    /// The dimension's value; empty when records did not carry it.
    pub value: String,
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency_p95: Option<f64>,
}

impl BreakdownRow {
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub by: String,
    /// The range the rows cover; hourly-only breakdowns widen it to whole hours.
    pub from: i64,
    pub to: i64,
    /// Rows by request count, most first.
    pub rows: Vec<BreakdownRow>,
}

/// One model on the overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewRow {
    pub model: crate::types::Model,
    pub total: KpiTotals,
    pub previous: KpiTotals,
    /// Requests per step over the range, for the sparkline.
    pub sparkline: Vec<i64>,
    pub environments: Vec<String>,
    pub providers: Vec<String>,
}

impl OverviewRow {
    /// Requests per minute over the range.
    pub fn requests_per_min(&self, span_ms: i64) -> f64 {
        self.total.requests as f64 / (span_ms.max(MINUTE_MS) as f64 / MINUTE_MS as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub from: i64,
    pub to: i64,
    pub step_ms: i64,
    pub rows: Vec<OverviewRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_keep_panels_under_300_points() {
        assert_eq!(choose_step(15 * MINUTE_MS), MINUTE_MS);
        assert_eq!(choose_step(HOUR_MS), MINUTE_MS);
        assert_eq!(choose_step(5 * HOUR_MS), MINUTE_MS, "300 points exactly");
        assert_eq!(choose_step(5 * HOUR_MS + 1), 2 * MINUTE_MS);
        assert_eq!(choose_step(6 * HOUR_MS), 2 * MINUTE_MS);
        assert_eq!(choose_step(DAY_MS), 5 * MINUTE_MS);
        assert_eq!(choose_step(7 * DAY_MS), HOUR_MS);
        assert_eq!(choose_step(30 * DAY_MS), 3 * HOUR_MS);
        assert_eq!(choose_step(365 * DAY_MS), 2 * DAY_MS);
        assert_eq!(choose_step(0), MINUTE_MS);
        for span in [1, 59_999, 7 * HOUR_MS, 3 * DAY_MS, 90 * DAY_MS, MAX_RANGE_MS] {
            let s = choose_step(span);
            assert!((span + s - 1) / s <= MAX_POINTS, "span {span} step {s}");
        }
        assert!(!step_uses_hours(30 * MINUTE_MS));
        assert!(step_uses_hours(3 * HOUR_MS));
        assert!(step_uses_hours(DAY_MS));
    }

    #[test]
    fn durations_and_breakdown_params() {
        assert_eq!(parse_duration("5m"), Some(5 * MINUTE_MS));
        assert_eq!(parse_duration("7d"), Some(7 * DAY_MS));
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("250"), Some(250));
        assert_eq!(parse_duration("0m"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("99999999999999999d"), None);
        assert_eq!(duration_text(3 * HOUR_MS), "3h");
        assert_eq!(duration_text(90_000), "90s");
        for b in ["provider", "model_version", "environment", "operation", "error_type", "user", "meta:team"] {
            assert_eq!(BreakdownBy::parse(b).unwrap().as_param(), b);
        }
        assert_eq!(BreakdownBy::parse("meta:"), None);
        assert_eq!(BreakdownBy::parse("region"), None);
        assert_eq!(change_pct(150.0, 100.0), Some(50.0));
        assert_eq!(change_pct(1.0, 0.0), None);
    }
}
