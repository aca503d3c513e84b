//! Scrape targets: model servers' Prometheus endpoints (vLLM, TGI, Triton, …) whose chosen
//! series Modelwatch stores as the model's custom metrics.
//!
//! Admins manage the targets (`Action::Administer`). The server's scraper fetches each enabled
//! target on its interval and hands the page to `Engine::ingest_scrape`, which keeps the listed
//! series and stores them through the normal write path:
//!
//! - gauges (and untyped samples) as they are;
//! - counters as the increase since the previous scrape (the first scrape sets the baseline);
//! - histograms as `<name>.count`, `.sum`, `.avg`, `.p50`, `.p95`, `.p99` of the observations
//!   made since the previous scrape; summaries as `<name>.p<q>`.
//!
//! Labels of the series (other than `le` / `quantile`) are kept as the points' labels.
//!
//! Target URLs must pass the engine's `TargetPolicy` (`crate::outbound`) when saved, and a
//! failed scrape's recorded error describes the answer (status, content type), never its text.

use openmetrics_parser::PrometheusValue;
use openmetrics_parser::prometheus::parse_prometheus;

use crate::engine::{Engine, now_ms};
use crate::error::{Error, Result};
use crate::ingest::KeyPrincipal;
use crate::ingest::cumulative::{DeltaTracker, HistogramDelta};
use crate::ingest::record::MetricPoint;
use crate::outbound::TargetPolicy;
use crate::rbac::{Action, Principal};
use crate::types::{Scope, ScrapeTarget, scrape_preset, series_matches};
use crate::validate;

/// Most bytes of a metrics page read from a target.
pub const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;
const MAX_PATTERNS: usize = 200;

/// What a scrape fetched: the answer's status and content type, and the page.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    /// The `content-type` header, empty without one.
    pub content_type: String,
    pub text: String,
}

impl Page {
    /// Status and content type, for errors about the page: never its text, which may be
    /// anything the URL serves (so errors cannot be used to read internal pages).
    pub fn describe(&self) -> String {
        let ct: String = self.content_type.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(100).collect();
        let ct = if ct.is_empty() { "no content type".to_string() } else { format!("content type {ct}") };
        format!("HTTP {}, {ct}", self.status)
    }
}

/// The points a scraped page gives for a target. `now` stamps them (the page's own timestamps
/// are ignored: model servers rarely send them, and the scrape time is what a chart needs).
pub fn points_from_page(page: &str, target: &ScrapeTarget, tracker: &DeltaTracker, now: i64) -> Result<Vec<MetricPoint>> {
    // The parser's error quotes the page, and the page may be anything the URL serves (an
    // internal service's HTML): the error shown to admins says what the page is, never what it says.
    let exposition = parse_prometheus(page).map_err(|_| Error::malformed("page", "the page is not Prometheus text exposition"))?;
    let patterns = target.patterns();
    let keep = |name: &str| patterns.iter().any(|p| series_matches(p, name));
    let mut families: Vec<_> = exposition.families.iter().filter(|(name, _)| keep(name)).collect();
    families.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (name, family) in families {
        for sample in family.iter_samples() {
            let mut labels: Vec<(String, String)> = match sample.get_labelset() {
                Ok(set) => set.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                Err(_) => Vec::new(),
            };
            labels.sort();
            let label_text: String = labels.iter().map(|(k, v)| format!("{k}={v:?},")).collect();
            let key = format!("scrape:{}\u{1f}{name}\u{1f}{label_text}", target.id);
            let mut push = |name: String, value: f64| {
                if value.is_finite() {
                    out.push(MetricPoint { timestamp: now, model: target.model.clone(), name, value, labels: labels.clone() });
                }
            };
            match &sample.value {
                PrometheusValue::Gauge(v) => push(name.clone(), v.as_f64()),
                // Untyped series named like counters are counters (a page without TYPE lines).
                PrometheusValue::Unknown(v) if !name.ends_with("_total") => push(name.clone(), v.as_f64()),
                PrometheusValue::Unknown(v) => {
                    if let Some(d) = tracker.counter(&key, 0, v.as_f64()) {
                        push(name.clone(), d);
                    }
                }
                PrometheusValue::Counter(c) => {
                    if let Some(d) = tracker.counter(&key, 0, c.value.as_f64()) {
                        push(name.clone(), d);
                    }
                }
                PrometheusValue::Histogram(h) => {
                    let mut buckets: Vec<(f64, f64)> = h.buckets.iter().map(|b| (b.upper_bound, b.count.as_f64())).collect();
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
                    // Prometheus buckets are cumulative (`le`); the tracker wants per-bucket counts.
                    let mut counts = Vec::with_capacity(buckets.len());
                    let mut below = 0.0;
                    for (_, c) in &buckets {
                        counts.push((c - below).max(0.0));
                        below = *c;
                    }
                    let count = h.count.map(|c| c as f64).unwrap_or(below);
                    let sum = h.sum.as_ref().map(|s| s.as_f64()).unwrap_or(0.0);
                    let delta: Option<HistogramDelta> = tracker.histogram(&key, 0, count, sum, &bounds, &counts);
                    if let Some(d) = delta {
                        push(format!("{name}.count"), d.count);
                        push(format!("{name}.sum"), d.sum);
                        if let Some(m) = d.mean() {
                            push(format!("{name}.avg"), m);
                        }
                        for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
                            if let Some(x) = d.quantile(q) {
                                push(format!("{name}.{label}"), x);
                            }
                        }
                    }
                }
                PrometheusValue::Summary(s) => {
                    for q in &s.quantiles {
                        let pct = q.quantile * 100.0;
                        let label = if pct.fract() == 0.0 { format!("{}", pct as i64) } else { format!("{pct}").replace('.', "_") };
                        push(format!("{name}.p{label}"), q.value.as_f64());
                    }
                }
            }
        }
    }
    Ok(out)
}

fn validate_target(t: &mut ScrapeTarget, targets: &TargetPolicy) -> Result<()> {
    t.url = t.url.trim().to_string();
    let lower = t.url.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
    let bad = "give the endpoint's full http:// or https:// URL, e.g. http://vllm:8000/metrics";
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) || t.url.len() > 2048 || t.url.chars().any(char::is_whitespace) {
        return Err(Error::invalid("url", bad));
    }
    validate::outbound_url("url", &t.url, targets, bad)?;
    if !(1..=3600).contains(&t.interval_secs) {
        return Err(Error::invalid("interval_secs", "the interval must be 1 to 3600 seconds"));
    }
    if scrape_preset(&t.preset).is_none() {
        return Err(Error::invalid("preset", "choose vllm, tgi, triton or custom"));
    }
    t.keep = t.keep.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
    if t.keep.len() > MAX_PATTERNS {
        return Err(Error::invalid("keep", format!("at most {MAX_PATTERNS} series patterns")));
    }
    if let Some(bad) = t.keep.iter().find(|k| k.len() > 200 || !k.chars().all(|c| c.is_ascii_alphanumeric() || "_:*.".contains(c))) {
        return Err(Error::invalid("keep", format!("{bad:?} is not a series name or pattern (letters, digits, _ : . and *)")));
    }
    if t.preset == "custom" && t.keep.is_empty() {
        return Err(Error::invalid("keep", "a custom target needs the series to keep"));
    }
    validate::model_name("model", &t.model)?;
    t.model = t.model.trim().to_string();
    Ok(())
}

/// The write path's identity for scraped points: may write to every model.
fn scraper_key() -> KeyPrincipal {
    KeyPrincipal { key_id: 0, name: "scraper".into(), scopes: vec![Scope::Ingest], models: None, capture_payloads: false }
}

impl Engine {
    pub async fn list_scrape_targets(&self, p: &Principal) -> Result<Vec<ScrapeTarget>> {
        p.authorize(Action::Administer)?;
        self.store().list_scrape_targets().await
    }

    /// Creates (id 0) or changes a target. The model is registered if it is new.
    pub async fn save_scrape_target(&self, p: &Principal, mut t: ScrapeTarget) -> Result<ScrapeTarget> {
        p.authorize(Action::Administer)?;
        validate_target(&mut t, self.target_policy())?;
        let model_id = match self.store().model_by_name(&t.model).await? {
            Some(m) => m.id,
            None => {
                let created = self
                    .store()
                    .create_model(crate::store::NewModel { name: &t.model, display_name: &t.model, description: "", now_ms: now_ms() })
                    .await;
                match created {
                    Ok(m) => m.id,
                    Err(_) => self.store().model_by_name(&t.model).await?.ok_or(Error::NotFound("model"))?.id,
                }
            }
        };
        if t.id == 0 {
            t.id = self.store().create_scrape_target(&t, model_id, now_ms()).await?;
        } else if !self.store().update_scrape_target(&t, model_id).await? {
            return Err(Error::NotFound("scrape target"));
        }
        tracing::info!(target: "audit", actor = %p.username, id = t.id, url = %t.url, model = %t.model, "scrape target saved");
        Ok(t)
    }

    pub async fn delete_scrape_target(&self, p: &Principal, id: i64) -> Result<()> {
        p.authorize(Action::Administer)?;
        if !self.store().delete_scrape_target(id).await? {
            return Err(Error::NotFound("scrape target"));
        }
        tracing::info!(target: "audit", actor = %p.username, id, "scrape target deleted");
        Ok(())
    }

    /// Every target, for the server's scraper (a system task, not a caller's request).
    pub async fn scrape_schedule(&self) -> Result<Vec<ScrapeTarget>> {
        self.store().list_scrape_targets().await
    }

    /// Stores what a scrape of `target` fetched (or why it failed) and records its health.
    /// Returns the number of points stored.
    pub async fn ingest_scrape(&self, target: &ScrapeTarget, fetched: std::result::Result<Page, String>, started_ms: i64) -> Result<i64> {
        let now = now_ms();
        let result = match fetched {
            Ok(page) => match points_from_page(&page.text, target, self.ingest().deltas(), now) {
                Ok(points) if points.is_empty() => Ok(0),
                Ok(points) => {
                    let items = points.into_iter().enumerate().map(|(i, p)| (i, format!("points[{i}]"), Ok(p))).collect();
                    match self.ingest().metric_points(&scraper_key(), items).await {
                        Ok(o) if o.rejected.is_empty() => Ok(o.accepted as i64),
                        Ok(o) => Err(format!("{} points refused: {}", o.rejected.len(), o.rejected[0].message)),
                        Err(e) => Err(e.public_message()),
                    }
                }
                Err(e) => Err(format!("{} ({})", e.public_message(), page.describe())),
            },
            Err(e) => Err(e),
        };
        let (error, points) = match &result {
            Ok(n) => (None, *n),
            Err(e) => (Some(e.as_str()), 0),
        };
        self.store().record_scrape(target.id, started_ms, (now - started_ms).max(0), error, points).await?;
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn target(preset: &str, keep: &[&str]) -> ScrapeTarget {
        ScrapeTarget {
            id: 1,
            model: "llama".into(),
            url: "http://vllm:8000/metrics".into(),
            interval_secs: 15,
            preset: preset.into(),
            keep: keep.iter().map(|s| s.to_string()).collect(),
            enabled: true,
            last_scrape_ms: None,
            last_duration_ms: None,
            last_error: None,
            last_points: None,
            last_success_ms: None,
        }
    }

    const PAGE1: &str = r#"# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="llama"} 3.0
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="llama"} 1000.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="llama"} 2.0
vllm:time_to_first_token_seconds_bucket{le="0.5",model_name="llama"} 4.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="llama"} 4.0
vllm:time_to_first_token_seconds_count{model_name="llama"} 4.0
vllm:time_to_first_token_seconds_sum{model_name="llama"} 0.8
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
"#;

    #[test]
    fn keeps_preset_series_as_gauges_increases_and_histograms() {
        let tracker = DeltaTracker::new(0);
        let t = target("vllm", &[]);
        let first = points_from_page(PAGE1, &t, &tracker, 1000).unwrap();
        // First scrape: gauges only; counters and histograms set their baselines.
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].name.as_str(), first[0].value), ("vllm:num_requests_waiting", 3.0));
        assert_eq!(first[0].labels, vec![("model_name".to_string(), "llama".to_string())]);
        let page2 = PAGE1
            .replace("prompt_tokens_total{model_name=\"llama\"} 1000.0", "prompt_tokens_total{model_name=\"llama\"} 1600.0")
            .replace("le=\"0.5\",model_name=\"llama\"} 4.0", "le=\"0.5\",model_name=\"llama\"} 8.0")
            .replace("le=\"+Inf\",model_name=\"llama\"} 4.0", "le=\"+Inf\",model_name=\"llama\"} 8.0")
            .replace("seconds_count{model_name=\"llama\"} 4.0", "seconds_count{model_name=\"llama\"} 8.0")
            .replace("seconds_sum{model_name=\"llama\"} 0.8", "seconds_sum{model_name=\"llama\"} 2.0");
        let got: HashMap<String, f64> =
            points_from_page(&page2, &t, &tracker, 2000).unwrap().into_iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(got["vllm:prompt_tokens_total"], 600.0);
        assert_eq!(got["vllm:time_to_first_token_seconds.count"], 4.0);
        assert!((got["vllm:time_to_first_token_seconds.sum"] - 1.2).abs() < 1e-9);
        assert!((got["vllm:time_to_first_token_seconds.avg"] - 0.3).abs() < 1e-9);
        // The 4 new observations all lie in (0.1, 0.5]: the median is half-way.
        assert!((got["vllm:time_to_first_token_seconds.p50"] - 0.3).abs() < 1e-9);
        assert!(!got.contains_key("process_cpu_seconds_total"), "not in the preset");
        assert!(!got.contains_key("vllm:time_to_first_token_seconds_count"), "folded into the histogram");
    }

    #[test]
    fn custom_patterns() {
        let tracker = DeltaTracker::new(0);
        let t = target("custom", &["process_*", "vllm:num_*"]);
        let names: Vec<String> = points_from_page(PAGE1, &t, &tracker, 1000).unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["vllm:num_requests_waiting".to_string()], "counters start with a baseline");
        assert!(series_matches("vllm:*_seconds", "vllm:time_to_first_token_seconds"));
        assert!(!series_matches("vllm:*_seconds", "vllm:num_requests_waiting"));
        assert!(series_matches("a*b*c", "axxbyyc") && !series_matches("a*b*c", "axxc"));
    }

    #[test]
    fn validation_names_the_field() {
        let field = |mut t: ScrapeTarget| validate_target(&mut t, &TargetPolicy::default()).unwrap_err().field().unwrap().to_string();
        assert_eq!(field(ScrapeTarget { url: "ftp://x".into(), ..target("vllm", &[]) }), "url");
        assert_eq!(field(ScrapeTarget { url: "http:///metrics".into(), ..target("vllm", &[]) }), "url");
        assert_eq!(field(ScrapeTarget { interval_secs: 0, ..target("vllm", &[]) }), "interval_secs");
        assert_eq!(field(target("nope", &[])), "preset");
        assert_eq!(field(target("custom", &[])), "keep");
        assert_eq!(field(target("custom", &["bad name"])), "keep");
        assert_eq!(field(ScrapeTarget { model: "has space".into(), ..target("vllm", &[]) }), "model");
        assert!(validate_target(&mut target("tgi", &[]), &TargetPolicy::default()).is_ok());
    }

    #[test]
    fn internal_targets_are_refused_unless_allowed() {
        let check = |url: &str, policy: &TargetPolicy| validate_target(&mut ScrapeTarget { url: url.into(), ..target("vllm", &[]) }, policy);
        let strict = TargetPolicy::default();
        for url in ["http://127.0.0.1:8000/metrics", "http://2130706433/metrics", "http://[::1]/metrics", "http://localhost/metrics", "http://10.0.0.1/metrics"] {
            let e = check(url, &strict).unwrap_err();
            assert_eq!(e.field(), Some("url"), "{url}");
            assert!(e.to_string().contains("--allow-private-targets"), "{url}: {e}");
        }
        let all = TargetPolicy::allow_all();
        assert!(check("http://127.0.0.1:8000/metrics", &all).is_ok());
        assert!(check("http://localhost:8000/metrics", &all).is_ok());
        let e = check("http://169.254.169.254/latest/meta-data/", &all).unwrap_err();
        assert_eq!(e.field(), Some("url"));
        assert!(e.to_string().contains("never"), "{e}");
    }

    #[test]
    fn a_page_that_is_not_prometheus_text_is_described_not_quoted() {
        let tracker = DeltaTracker::new(0);
        let html = "<html><title>Internal admin</title><body>SECRET-TOKEN=abc123</body></html>\n";
        let e = points_from_page(html, &target("vllm", &[]), &tracker, 1000).unwrap_err().to_string();
        assert!(!e.contains("SECRET") && !e.contains("html") && !e.contains("Internal"), "{e}");
        let page = Page { status: 200, content_type: "text/html; charset=utf-8".into(), text: html.into() };
        assert_eq!(page.describe(), "HTTP 200, content type text/html; charset=utf-8");
        assert_eq!(Page { content_type: String::new(), ..page }.describe(), "HTTP 200, no content type");
    }
}
