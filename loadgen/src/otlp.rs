//! `--protocol otlp`: GenAI spans over OTLP/HTTP (protobuf), for Modelwatch and for peers
//! that take OTLP (Arize Phoenix).
//!
//! Sends `--spans` spans in protobuf batches of `--batch` over `--connections` connections as
//! fast as they are acknowledged, then polls the receiver's query API until every acknowledged
//! span is visible. The figure that matters is end to end: spans / (time from the first send to
//! the moment the last span is visible in queries). Receivers that acknowledge before storing
//! (a queue) only look fast until the visibility wait is counted.
//!
//! Span contents come from the same generator as the native mode (models, tokens, latencies,
//! errors, users, prompt/response text); every span gets fresh trace and span ids, so
//! receivers that key spans by id store each one. Model names carry a run suffix so that the
//! counts of one run are not mixed with earlier data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status::StatusCode};
use prost::Message;
use serde::Serialize;

use crate::records::{Generator, LogRecord};

/// Which query API tells how many spans are visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Modelwatch: requests per model from `GET /api/v1/models/{model}/kpis`.
    Modelwatch,
    /// Arize Phoenix: the project's span count from its GraphQL API.
    Phoenix,
}

pub struct OtlpConfig {
    pub url: String,
    pub key: Option<String>,
    pub target: Target,
    pub spans: u64,
    pub batch: usize,
    pub connections: usize,
    /// Appended to model names (Modelwatch) or used as the project name (Phoenix).
    pub run_id: String,
    /// Give up waiting for visibility after this long.
    pub visible_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct OtlpReport {
    pub mode: &'static str,
    pub target: Target,
    pub url: String,
    pub run_id: String,
    pub spans_sent: u64,
    pub spans_acked: u64,
    pub spans_rejected: u64,
    pub requests: u64,
    pub throttled: u64,
    pub errors: u64,
    pub batch: usize,
    pub connections: usize,
    pub avg_body_bytes: f64,
    pub send_secs: f64,
    pub acked_spans_per_sec: f64,
    pub spans_visible: u64,
    pub visible_after_secs: Option<f64>,
    pub end_to_end_spans_per_sec: Option<f64>,
}

impl OtlpReport {
    pub fn text(&self) -> String {
        let mut s = format!(
            "OTLP to {} ({:?}), run {}\n  sent {} spans in {} requests (batch {}, {} connections, {:.0} bytes per body)\n  acknowledged {} ({} refused), {} throttled, {} errors, in {:.2} s: {:.0} spans/s\n",
            self.url,
            self.target,
            self.run_id,
            self.spans_sent,
            self.requests,
            self.batch,
            self.connections,
            self.avg_body_bytes,
            self.spans_acked,
            self.spans_rejected,
            self.throttled,
            self.errors,
            self.send_secs,
            self.acked_spans_per_sec
        );
        match (self.visible_after_secs, self.end_to_end_spans_per_sec) {
            (Some(t), Some(r)) => s.push_str(&format!(
                "  all {} visible in queries {:.2} s after the first send: {:.0} spans/s end to end\n",
                self.spans_visible, t, r
            )),
            _ => s.push_str(&format!("  only {} of {} visible before the timeout\n", self.spans_visible, self.spans_acked)),
        }
        s
    }
}

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// The span a log record describes, with GenAI attributes; ids and times are set per send.
fn span_of(r: &LogRecord, run_id: &str) -> Span {
    let model = format!("{}-{run_id}", r.model);
    let mut attrs = vec![
        kv("gen_ai.operation.name", s(&r.operation)),
        kv("gen_ai.provider.name", s(&r.provider)),
        kv("gen_ai.request.model", s(&model)),
        kv("llm.model_name", s(&model)),
        kv("user.id", s(&r.user_id)),
        kv("session.id", s(&r.session_id)),
        kv("http.response.status_code", Value::IntValue(r.http_status as i64)),
    ];
    if let Some(t) = r.input_tokens {
        attrs.push(kv("gen_ai.usage.input_tokens", Value::IntValue(t as i64)));
        attrs.push(kv("llm.token_count.prompt", Value::IntValue(t as i64)));
    }
    if let Some(t) = r.output_tokens {
        attrs.push(kv("gen_ai.usage.output_tokens", Value::IntValue(t as i64)));
        attrs.push(kv("llm.token_count.completion", Value::IntValue(t as i64)));
    }
    if let Some(req) = &r.request {
        attrs.push(kv("gen_ai.input.messages", s(req)));
        attrs.push(kv("input.value", s(req)));
    }
    if let Some(resp) = &r.response {
        attrs.push(kv("gen_ai.output.messages", s(resp)));
        attrs.push(kv("output.value", s(resp)));
    }
    attrs.push(kv("openinference.span.kind", s("LLM")));
    if let Some(e) = &r.error_type {
        attrs.push(kv("error.type", s(e)));
    }
    let status = r.error_type.as_ref().map(|_| Status {
        code: StatusCode::Error as i32,
        message: r.error_message.clone().unwrap_or_default(),
    });
    Span {
        name: format!("{} {model}", r.operation),
        kind: 3,
        // Latency survives as end - start; the start is set at send time.
        end_time_unix_nano: (r.latency_ms * 1e6) as u64,
        attributes: attrs,
        status,
        ..Default::default()
    }
}

/// Prepared batches: spans without ids or absolute times.
pub fn build_pool(generator: &mut Generator, cfg: &OtlpConfig) -> Vec<Vec<Span>> {
    let batches = (200_000 / cfg.batch.max(1)).clamp(4, 64);
    (0..batches).map(|_| (0..cfg.batch).map(|_| span_of(&generator.record(), &cfg.run_id)).collect()).collect()
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
}

/// One request body: the template's spans with fresh ids (from `seq`) and times ending now.
fn encode(template: &[Span], seq: &AtomicU64, cfg: &OtlpConfig) -> Vec<u8> {
    let now = now_ns();
    let first = seq.fetch_add(template.len() as u64, Ordering::Relaxed);
    let spans = template
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = first + i as u64;
            let mut sp = t.clone();
            let mut trace = [0u8; 16];
            trace[..8].copy_from_slice(&(0x4d57_0000_0000_0000 | (n >> 8)).to_be_bytes());
            trace[8..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            sp.trace_id = trace.to_vec();
            sp.span_id = (n | 1 << 63).to_be_bytes().to_vec();
            let latency = t.end_time_unix_nano;
            sp.start_time_unix_nano = now - latency - (i as u64 % 1000) * 1_000_000;
            sp.end_time_unix_nano = sp.start_time_unix_nano + latency;
            sp
        })
        .collect();
    let mut resource = vec![kv("service.name", s("loadgen-gateway"))];
    if cfg.target == Target::Phoenix {
        resource.push(kv("openinference.project.name", s(&cfg.run_id)));
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    rejected: AtomicU64,
    requests: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    body_bytes: AtomicU64,
}

pub async fn run(cfg: OtlpConfig, pool: Vec<Vec<Span>>, models: Vec<String>) -> OtlpReport {
    let cfg = Arc::new(cfg);
    let pool = Arc::new(pool);
    let client = crate::run::http_client(cfg.connections);
    let counters = Arc::new(Counters::default());
    let seq = Arc::new(AtomicU64::new(1));
    let next_batch = Arc::new(AtomicU64::new(0));
    let batches_total = cfg.spans.div_ceil(cfg.batch as u64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cfg.connections {
        let (cfg, pool, client, counters, seq, next_batch) =
            (cfg.clone(), pool.clone(), client.clone(), counters.clone(), seq.clone(), next_batch.clone());
        tasks.push(tokio::spawn(async move {
            let url = format!("{}/v1/traces", cfg.url);
            loop {
                let b = next_batch.fetch_add(1, Ordering::Relaxed);
                if b >= batches_total {
                    return;
                }
                let template = &pool[b as usize % pool.len()];
                let body = encode(template, &seq, &cfg);
                let n = template.len() as u64;
                counters.sent.fetch_add(n, Ordering::Relaxed);
                counters.body_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                // Retry a throttled batch after its Retry-After, as an OTLP exporter does.
                loop {
                    let mut req = client.post(&url).header("content-type", "application/x-protobuf").body(body.clone());
                    if let Some(k) = &cfg.key {
                        req = req.bearer_auth(k);
                    }
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => {
                            let bytes = resp.bytes().await.unwrap_or_default();
                            let rejected = ExportTraceServiceResponse::decode(bytes)
                                .ok()
                                .and_then(|r| r.partial_success)
                                .map(|p| p.rejected_spans.max(0) as u64)
                                .unwrap_or(0);
                            counters.acked.fetch_add(n - rejected.min(n), Ordering::Relaxed);
                            counters.rejected.fetch_add(rejected.min(n), Ordering::Relaxed);
                            break;
                        }
                        Ok(resp) if matches!(resp.status().as_u16(), 429 | 503) => {
                            counters.throttled.fetch_add(1, Ordering::Relaxed);
                            let wait = crate::run::retry_delay(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()));
                            tokio::time::sleep(wait).await;
                        }
                        Ok(resp) => {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("POST {url}: {}", resp.status());
                            break;
                        }
                        Err(e) => {
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("POST {url}: {e}");
                            break;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let send_secs = started.elapsed().as_secs_f64();
    let acked = counters.acked.load(Ordering::Relaxed);

    // Visibility: poll the query API until every acknowledged span shows.
    let deadline = Instant::now() + cfg.visible_timeout;
    let mut visible = 0;
    let mut visible_after = None;
    loop {
        match count_visible(&client, &cfg, &models).await {
            Ok(n) => visible = n,
            Err(e) => eprintln!("counting visible spans: {e}"),
        }
        if visible >= acked {
            visible_after = Some(started.elapsed().as_secs_f64());
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let requests = load(&counters.requests);
    OtlpReport {
        mode: "otlp",
        target: cfg.target,
        url: cfg.url.clone(),
        run_id: cfg.run_id.clone(),
        spans_sent: load(&counters.sent),
        spans_acked: acked,
        spans_rejected: load(&counters.rejected),
        requests,
        throttled: load(&counters.throttled),
        errors: load(&counters.errors),
        batch: cfg.batch,
        connections: cfg.connections,
        avg_body_bytes: load(&counters.body_bytes) as f64 / batches_total.max(1) as f64,
        send_secs,
        acked_spans_per_sec: acked as f64 / send_secs.max(1e-9),
        spans_visible: visible,
        visible_after_secs: visible_after,
        end_to_end_spans_per_sec: visible_after.map(|t| acked as f64 / t.max(1e-9)),
    }
}

/// How many of this run's spans the receiver's query API shows.
async fn count_visible(client: &reqwest::Client, cfg: &OtlpConfig, models: &[String]) -> Result<u64, String> {
    match cfg.target {
        Target::Modelwatch => {
            let mut total = 0;
            for m in models {
                let url = format!("{}/api/v1/models/{m}-{}/kpis?range=1h", cfg.url, cfg.run_id);
                let mut req = client.get(&url);
                if let Some(k) = &cfg.key {
                    req = req.bearer_auth(k);
                }
                let resp = req.send().await.map_err(|e| e.to_string())?;
                match resp.status().as_u16() {
                    200 => {
                        let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
                        total += v["total"]["requests"].as_u64().unwrap_or(0);
                    }
                    // A model not seen yet.
                    404 => {}
                    s => return Err(format!("GET {url}: {s} (the key needs the read scope)")),
                }
            }
            Ok(total)
        }
        Target::Phoenix => {
            let query = serde_json::json!({
                "query": "query { projects { edges { node { name recordCount } } } }"
            });
            let resp = client.post(format!("{}/graphql", cfg.url)).json(&query).send().await.map_err(|e| e.to_string())?;
            let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
            let edges = v["data"]["projects"]["edges"].as_array().ok_or_else(|| format!("unexpected answer: {v}"))?;
            Ok(edges
                .iter()
                .filter(|e| e["node"]["name"] == cfg.run_id.as_str())
                .filter_map(|e| e["node"]["recordCount"].as_u64())
                .sum())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::GenConfig;

    #[test]
    fn spans_carry_genai_attributes_and_unique_ids() {
        let cfg = OtlpConfig {
            url: String::new(),
            key: None,
            target: Target::Modelwatch,
            spans: 10,
            batch: 5,
            connections: 1,
            run_id: "r1".into(),
            visible_timeout: Duration::from_secs(1),
        };
        let mut g = Generator::new(GenConfig { models: 3, error_rate: 0.5, payload_bytes: 100 }, 7);
        let pool = build_pool(&mut g, &cfg);
        let seq = AtomicU64::new(1);
        let a = ExportTraceServiceRequest::decode(&encode(&pool[0], &seq, &cfg)[..]).unwrap();
        let b = ExportTraceServiceRequest::decode(&encode(&pool[0], &seq, &cfg)[..]).unwrap();
        let spans: Vec<&Span> = a.resource_spans[0].scope_spans[0].spans.iter().chain(&b.resource_spans[0].scope_spans[0].spans).collect();
        assert_eq!(spans.len(), 10);
        let ids: std::collections::HashSet<_> = spans.iter().map(|s| (s.trace_id.clone(), s.span_id.clone())).collect();
        assert_eq!(ids.len(), 10, "every span has its own ids");
        for sp in &spans {
            let model = sp.attributes.iter().find(|kv| kv.key == "gen_ai.request.model").unwrap();
            assert!(matches!(&model.value.as_ref().unwrap().value, Some(Value::StringValue(m)) if m.ends_with("-r1")));
            assert!(sp.end_time_unix_nano > sp.start_time_unix_nano);
            assert_eq!(sp.trace_id.len(), 16);
            assert_eq!(sp.span_id.len(), 8);
        }
    }
}
