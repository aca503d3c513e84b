//! `modelwatch demo`: the server plus realistic sample data, so a newcomer sees working
//! dashboards within a minute. It fills a week of history for five models (a diurnal pattern,
//! a latency incident, an error burst, a cost spike, a drifting classifier) through the normal
//! ingest path, then keeps live traffic flowing every second until the server stops.
//!
//! History is written once: when the demo models already hold data, only live traffic is added.

use std::time::Duration;

use anyhow::Result;
use engine::ingest::KeyPrincipal;
use engine::ingest::record::BodyFormat;
use engine::{Engine, Principal, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// A sample model and how its traffic behaves.
struct DemoModel {
    name: &'static str,
    provider: &'static str,
    operation: &'static str,
    /// Requests per minute at the daily peak.
    peak_per_min: f64,
    latency_ms: f64,
    ttft_ms: Option<f64>,
    input_tokens: i64,
    output_tokens: i64,
    error_rate: f64,
}

const MODELS: [DemoModel; 5] = [
    DemoModel { name: "gpt-4o", provider: "openai", operation: "chat", peak_per_min: 40.0, latency_ms: 900.0, ttft_ms: Some(280.0), input_tokens: 900, output_tokens: 250, error_rate: 0.01 },
    DemoModel { name: "claude-sonnet-4", provider: "anthropic", operation: "chat", peak_per_min: 25.0, latency_ms: 1400.0, ttft_ms: Some(420.0), input_tokens: 1500, output_tokens: 400, error_rate: 0.008 },
    DemoModel { name: "llama-3-70b", provider: "vllm", operation: "completion", peak_per_min: 15.0, latency_ms: 650.0, ttft_ms: Some(120.0), input_tokens: 600, output_tokens: 180, error_rate: 0.02 },
    DemoModel { name: "text-embedding-3-small", provider: "openai", operation: "embedding", peak_per_min: 60.0, latency_ms: 60.0, ttft_ms: None, input_tokens: 300, output_tokens: 0, error_rate: 0.002 },
    DemoModel { name: "fraud-detector", provider: "in-house", operation: "predict", peak_per_min: 30.0, latency_ms: 18.0, ttft_ms: None, input_tokens: 0, output_tokens: 0, error_rate: 0.004 },
];

const TEAMS: [&str; 4] = ["search", "support", "agents", "internal"];

const CONVERSATIONS: [(&str, &str); 4] = [
    ("How do I reset my password?", "Open Account, choose Change password, and enter the old and the new one."),
    ("Summarise the refund policy in one sentence.", "Refunds are granted within 30 days of purchase for unused items."),
    ("Which plan includes SSO?", "Single sign-on is part of the Business and Enterprise plans."),
    ("Translate 'good morning' into German.", "Guten Morgen."),
];

/// Anomalies are placed relative to now so they are always in the default ranges.
struct Incidents {
    now: i64,
}

impl Incidents {
    /// claude-sonnet-4 is four times slower for two hours, a day and a half ago.
    fn latency_factor(&self, model: &str, ts: i64) -> f64 {
        let start = self.now - 36 * HOUR;
        if model == "claude-sonnet-4" && (start..start + 2 * HOUR).contains(&ts) { 4.0 } else { 1.0 }
    }
    /// gpt-4o hits rate limits for 20 minutes, three hours ago.
    fn error_burst(&self, model: &str, ts: i64) -> bool {
        let start = self.now - 3 * HOUR;
        model == "gpt-4o" && (start..start + 20 * MIN).contains(&ts)
    }
    /// A runaway prompt makes gpt-4o answers five times longer for three hours, two days ago.
    fn output_factor(&self, model: &str, ts: i64) -> i64 {
        let start = self.now - 50 * HOUR;
        if model == "gpt-4o" && (start..start + 3 * HOUR).contains(&ts) { 5 } else { 1 }
    }
}

/// Traffic shape over the day (UTC): low at night, peak in the afternoon, lighter weekends.
fn diurnal(ts: i64) -> f64 {
    let hour = (ts.rem_euclid(24 * HOUR)) as f64 / HOUR as f64;
    let day = (ts.div_euclid(24 * HOUR) + 4).rem_euclid(7); // 0 = Sunday
    let weekend = if day == 0 || day == 6 { 0.55 } else { 1.0 };
    let wave = 0.5 - 0.5 * ((hour - 3.0) / 24.0 * std::f64::consts::TAU).cos();
    (0.12 + 0.88 * wave) * weekend
}

/// Log-normal-ish noise around 1.
fn jitter(rng: &mut StdRng, spread: f64) -> f64 {
    let u: f64 = rng.gen_range(-1.0..1.0);
    let tail = if rng.gen_bool(0.03) { rng.gen_range(1.5..4.0) } else { 1.0 };
    (u * spread).exp() * tail
}

fn record(m: &DemoModel, ts: i64, rng: &mut StdRng, inc: &Incidents) -> Value {
    let latency = m.latency_ms * jitter(rng, 0.35) * inc.latency_factor(m.name, ts);
    let burst = inc.error_burst(m.name, ts);
    let error = rng.gen_bool(if burst { 0.3 } else { m.error_rate });
    let user = format!("user-{}", rng.gen_range(1..=40));
    let team = TEAMS[rng.gen_range(0..TEAMS.len())];
    let environment = if rng.gen_bool(0.9) { "production" } else { "staging" };
    let version = if ts % 7 == 0 { "canary" } else { "stable" };
    let mut r = json!({
        "timestamp": ts,
        "model": m.name,
        "provider": m.provider,
        "operation": m.operation,
        "environment": environment,
        "model_version": version,
        "latency_ms": (latency * 10.0).round() / 10.0,
        "user_id": user,
        "session_id": format!("s-{}", rng.gen_range(1..=400)),
        "metadata": {"team": team, "region": if rng.gen_bool(0.7) { "eu-west" } else { "us-east" }},
    });
    if let Some(ttft) = m.ttft_ms {
        r["ttft_ms"] = json!(((ttft * jitter(rng, 0.3)).min(latency) * 10.0).round() / 10.0);
    }
    if m.input_tokens > 0 {
        r["input_tokens"] = json!((m.input_tokens as f64 * jitter(rng, 0.5)) as i64);
        r["cached_tokens"] = json!(if rng.gen_bool(0.3) { m.input_tokens / 2 } else { 0 });
    }
    if m.output_tokens > 0 {
        r["output_tokens"] = json!((m.output_tokens as f64 * jitter(rng, 0.5)) as i64 * inc.output_factor(m.name, ts));
    }
    if m.operation == "embedding" {
        r["cache_hit"] = json!(rng.gen_bool(0.35));
    }
    if m.name == "llama-3-70b" {
        // Self-hosted: no list price, so the cost is reported by the gateway.
        r["cost_usd"] = json!(0.00002 * (m.input_tokens + m.output_tokens) as f64);
    }
    if m.operation == "chat" {
        // A short conversation, so the log detail has a payload to show.
        let (question, answer) = CONVERSATIONS[rng.gen_range(0..CONVERSATIONS.len())];
        r["request"] = json!(json!({
            "model": m.name,
            "messages": [
                {"role": "system", "content": format!("You are the {team} team's assistant. Answer briefly.")},
                {"role": "user", "content": question},
            ],
        }).to_string());
        if !error {
            r["response"] = json!(json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}).to_string());
        }
    }
    if error {
        let (kind, status) = if burst || rng.gen_bool(0.5) { ("rate_limited", 429) } else if rng.gen_bool(0.6) { ("timeout", 504) } else { ("server_error", 500) };
        r["status"] = json!("error");
        r["error_type"] = json!(kind);
        r["http_status"] = json!(status);
        r["error_message"] = json!(format!("upstream answered {status}"));
        r["level"] = json!("error");
    } else {
        r["http_status"] = json!(200);
    }
    r
}

/// Records of all demo models for the minute starting at `minute`.
fn minute_records(minute: i64, rng: &mut StdRng, inc: &Incidents, scale: f64) -> Vec<Value> {
    let mut out = Vec::new();
    for m in &MODELS {
        let mean = m.peak_per_min * diurnal(minute) * scale;
        let n = (mean + rng.gen_range(-0.5..0.5) * mean.sqrt()).round().max(0.0) as i64;
        for _ in 0..n {
            out.push(record(m, minute + rng.gen_range(0..MIN), rng, inc));
        }
    }
    out
}

/// Custom metrics of the classifier: accuracy and a drift score that creeps up over the week.
fn metric_points(minute: i64, rng: &mut StdRng, now: i64) -> Vec<Value> {
    if minute.rem_euclid(5 * MIN) != 0 {
        return Vec::new();
    }
    let days_ago = (now - minute) as f64 / (24 * HOUR) as f64;
    let drift = (0.05 + 0.02 * (7.0 - days_ago).max(0.0)) * rng.gen_range(0.9..1.1);
    let accuracy = (0.95 - drift * 0.3) * rng.gen_range(0.995..1.005);
    vec![
        json!({"model": "fraud-detector", "name": "accuracy", "value": accuracy, "timestamp": minute}),
        json!({"model": "fraud-detector", "name": "drift_score", "value": drift, "timestamp": minute}),
        json!({"model": "llama-3-70b", "name": "gpu_utilization", "value": 40.0 + 50.0 * diurnal(minute) * rng.gen_range(0.9..1.1), "timestamp": minute}),
    ]
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

fn demo_key() -> KeyPrincipal {
    KeyPrincipal { key_id: 0, name: "demo".into(), scopes: vec![Scope::Ingest], models: None, capture_payloads: true }
}

async fn send(engine: &Engine, logs: &[Value], metrics: &[Value]) -> Result<()> {
    let key = demo_key();
    for chunk in logs.chunks(5_000) {
        let body = ndjson(chunk);
        loop {
            match engine.ingest().logs(&key, &body, BodyFormat::Ndjson).await {
                Err(engine::Error::Overloaded { .. }) => tokio::time::sleep(Duration::from_millis(200)).await,
                other => {
                    other?;
                    break;
                }
            }
        }
    }
    if !metrics.is_empty() {
        engine.ingest().metrics(&key, &ndjson(metrics), BodyFormat::Ndjson).await?;
    }
    Ok(())
}

/// Writes `days` of history unless the demo models already have data. Returns records written.
pub async fn backfill(engine: &Engine, days: i64) -> Result<usize> {
    let op = Principal::operator();
    let now = engine::now_ms();
    let span = engine::kpi::MAX_RANGE_MS;
    let all_time = engine::dashboards::ResolvedRange { from: now - span, to: now + HOUR, step_ms: engine::kpi::choose_step(span) };
    if let Ok(k) = engine.model_kpis(engine::reads::Caller::User(&op), MODELS[0].name, &all_time).await
        && k.total.requests > 0
    {
        return Ok(0);
    }
    let inc = Incidents { now };
    let mut rng = StdRng::seed_from_u64(7);
    let start = (now - days * 24 * HOUR).div_euclid(MIN) * MIN;
    let end = now.div_euclid(MIN) * MIN;
    let mut total = 0;
    let mut logs = Vec::new();
    let mut metrics = Vec::new();
    let mut minute = start;
    while minute < end {
        logs.extend(minute_records(minute, &mut rng, &inc, 1.0));
        metrics.extend(metric_points(minute, &mut rng, now));
        if logs.len() >= 20_000 || minute + MIN >= end {
            total += logs.len();
            send(engine, &logs, &metrics).await?;
            logs.clear();
            metrics.clear();
        }
        minute += MIN;
    }
    for m in &MODELS {
        let _ = engine.set_model_breakdown_keys(&op, m.name, &["team".to_string(), "region".to_string()]).await;
    }
    Ok(total)
}

/// Sends a second's worth of traffic every second, until the task is dropped.
pub async fn live(engine: Engine) {
    let mut rng = StdRng::from_entropy();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = engine::now_ms();
        let inc = Incidents { now: now + 100 * 24 * HOUR };
        let mut logs = minute_records(now - MIN, &mut rng, &inc, 1.0 / 60.0);
        for r in &mut logs {
            r["timestamp"] = json!(now - rng.gen_range(0..1_000));
        }
        let metrics = if rng.gen_range(0..60) == 0 { metric_points(now.div_euclid(5 * MIN) * 5 * MIN, &mut rng, now) } else { Vec::new() };
        if let Err(e) = send(&engine, &logs, &metrics).await {
            tracing::warn!(error = %e, "demo traffic not accepted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_has_the_advertised_shape() {
        let now = 1_800_000_000_000;
        let inc = Incidents { now };
        let mut rng = StdRng::seed_from_u64(1);
        // Night is quieter than the afternoon.
        let day = now.div_euclid(24 * HOUR) * 24 * HOUR;
        assert!(diurnal(day + 3 * HOUR) < diurnal(day + 15 * HOUR) / 3.0);
        // The incidents are where the docs say.
        assert_eq!(inc.latency_factor("claude-sonnet-4", now - 35 * HOUR), 4.0);
        assert_eq!(inc.latency_factor("gpt-4o", now - 35 * HOUR), 1.0);
        assert!(inc.error_burst("gpt-4o", now - 3 * HOUR + MIN));
        let burst: Vec<Value> = (0..200).map(|_| record(&MODELS[0], now - 3 * HOUR + MIN, &mut rng, &inc)).collect();
        let errors = burst.iter().filter(|r| r["status"] == "error").count();
        assert!((30..=100).contains(&errors), "{errors} errors in the burst");
        let r = record(&MODELS[0], now - 49 * HOUR, &mut rng, &inc);
        assert!(r["output_tokens"].as_i64().unwrap() >= 5 * (250.0 * (-0.5f64).exp()) as i64 - 5);
        assert_eq!(metric_points(now.div_euclid(5 * MIN) * 5 * MIN, &mut rng, now).len(), 3);
    }
}
