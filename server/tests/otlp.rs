//! OTLP/HTTP receiver: the real OpenTelemetry Python SDK exporting GenAI spans, logs and
//! metrics, read back through the REST API; protobuf and JSON encodings, gzip, partial
//! success, size limit, keys and backpressure answered as the OTLP specification says.

mod common;

use std::io::Write;

use common::TestApp;
use engine::Scope;
use engine::ingest::otlp::{
    self, ExportLogsServiceResponse, ExportTraceServiceRequest, ExportTraceServiceResponse, common as c, resource, trace,
};
use prost::Message;
use serde_json::{Value, json};

const PROTOBUF: &str = "application/x-protobuf";

fn kv(k: &str, v: &str) -> c::v1::KeyValue {
    c::v1::KeyValue {
        key: k.into(),
        value: Some(c::v1::AnyValue { value: Some(c::v1::any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    }
}

fn kv_int(k: &str, v: i64) -> c::v1::KeyValue {
    c::v1::KeyValue { key: k.into(), value: Some(c::v1::AnyValue { value: Some(c::v1::any_value::Value::IntValue(v)) }), ..Default::default() }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A GenAI chat span of `model` that took `ms` milliseconds, ending now.
fn genai_span(model: &str, ms: u64, trace_byte: u8) -> trace::v1::Span {
    let end = now_ns() - 1_000_000_000;
    trace::v1::Span {
        name: format!("chat {model}"),
        trace_id: vec![trace_byte; 16],
        span_id: vec![trace_byte; 8],
        start_time_unix_nano: end - ms * 1_000_000,
        end_time_unix_nano: end,
        attributes: vec![
            kv("gen_ai.operation.name", "chat"),
            kv("gen_ai.provider.name", "openai"),
            kv("gen_ai.request.model", model),
            kv_int("gen_ai.usage.input_tokens", 100),
            kv_int("gen_ai.usage.output_tokens", 10),
        ],
        ..Default::default()
    }
}

fn traces(spans: Vec<trace::v1::Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![trace::v1::ResourceSpans {
            resource: Some(resource::v1::Resource { attributes: vec![kv("service.name", "gateway")], ..Default::default() }),
            scope_spans: vec![trace::v1::ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

async fn post(app: &TestApp, path: &str, key: Option<&str>, content_type: &str, gzip: bool, body: Vec<u8>) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(app.url(path)).header("content-type", content_type);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let body = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).unwrap();
        req = req.header("content-encoding", "gzip");
        enc.finish().unwrap()
    } else {
        body
    };
    req.body(body).send().await.unwrap()
}

/// google.rpc.Status as OTLP/HTTP error bodies carry it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

async fn search(app: &TestApp, key: &str, query: &str) -> Value {
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/logs?{query}"))).bearer_auth(key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn kpis(app: &TestApp, key: &str, model: &str) -> Value {
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/models/{model}/kpis?range=1h"))).bearer_auth(key).send().await.unwrap();
    assert_eq!(r.status(), 200, "{model}");
    r.json().await.unwrap()
}

fn metric_total(k: &Value, name: &str) -> Option<f64> {
    k["metrics"].as_array()?.iter().find(|m| m["name"] == name).and_then(|m| m["total"]["sum"].as_f64())
}

/// The Python interpreter with the OpenTelemetry SDK (`./dev.sh test` makes a virtualenv).
fn otel_python() -> Option<String> {
    match std::env::var("MODELWATCH_OTEL_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("MODELWATCH_REQUIRE_OTEL_PYTHON").is_ok() => {
            panic!("MODELWATCH_REQUIRE_OTEL_PYTHON is set but MODELWATCH_OTEL_PYTHON is not")
        }
        _ => {
            eprintln!("skipped: MODELWATCH_OTEL_PYTHON not set (./dev.sh test sets it)");
            None
        }
    }
}

both_backends!(python_sdk_exports_genai_spans_logs_metrics, |app: TestApp| async move {
    let Some(python) = otel_python() else { return };
    let writer = app.api_key(&[Scope::Ingest], &[]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/otel/export_genai.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .env("MODELWATCH_URL", app.url(""))
        .env("MODELWATCH_KEY", &writer)
        .output()
        .await
        .expect("python runs");
    assert!(out.status.success(), "SDK export failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    let reader = app.api_key(&[Scope::Read], &[]).await;
    // Spans: one inference, one failed call, on the model the GenAI attributes name.
    let page = search(&app, &reader, "model=otel-chat&from=0").await;
    let logs = page["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{page}");
    let ok = logs.iter().find(|l| l["status"] == "ok").expect("the successful call");
    assert_eq!(ok["model_version"], "otel-chat-2024-08-06");
    assert_eq!((ok["provider"].as_str(), ok["operation"].as_str(), ok["environment"].as_str()), (Some("openai"), Some("chat"), Some("staging")));
    assert_eq!((ok["input_tokens"].as_i64(), ok["output_tokens"].as_i64()), (Some(120), Some(30)));
    assert_eq!(ok["latency_ms"].as_f64(), Some(750.0));
    assert_eq!(ok["user_id"], "user-42");
    assert_eq!(ok["trace_id"].as_str().map(str::len), Some(32));
    assert_eq!(ok["metadata"]["service.name"], "otel-svc");
    assert_eq!(ok["metadata"]["gen_ai.request.temperature"], 0.2);
    let failed = logs.iter().find(|l| l["status"] == "error").expect("the failed call");
    assert_eq!(failed["error_type"], "RateLimitError");
    assert_eq!(failed["error_message"], "rate limited by the provider");
    assert_eq!(failed["latency_ms"].as_f64(), Some(200.0));
    // Payloads, read back from the detail view.
    let admin = app.admin().await;
    let detail: Value = admin.get(app.url(&format!("/api/v1/logs/{}", ok["id"]))).send().await.unwrap().json().await.unwrap();
    assert!(detail["request"].as_str().unwrap().contains("What is the capital of France?"), "{detail}");
    assert!(detail["response"].as_str().unwrap().contains("Paris."), "{detail}");
    // KPIs count both calls.
    let k = kpis(&app, &reader, "otel-chat").await;
    assert_eq!((k["total"]["requests"].as_i64(), k["total"]["errors"].as_i64()), (Some(2), Some(1)));
    assert_eq!(k["total"]["input_tokens"].as_i64(), Some(120));

    // Log records: events of the service, with severity and attributes.
    let page = search(&app, &reader, "model=otel-svc&from=0").await;
    let logs = page["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{page}");
    let err = logs.iter().find(|l| l["level"] == "error").expect("the error log");
    assert_eq!(err["message"], "vector store timeout after 3 retries");
    assert_eq!(err["status"], "error");
    assert_eq!(err["metadata"]["shard"], 7);
    assert!(logs.iter().any(|l| l["level"] == "info" && l["message"] == "index refreshed"));

    // Metrics: the GenAI duration histogram on the model its points name, in milliseconds;
    // the counter on the service. The SDK started after the server, so its first export counts.
    let k = kpis(&app, &reader, "otel-chat").await;
    assert_eq!(metric_total(&k, "gen_ai.client.operation.duration.count"), Some(2.0), "{}", k["metrics"]);
    assert_eq!(metric_total(&k, "gen_ai.client.operation.duration.sum"), Some(2000.0));
    let k = kpis(&app, &reader, "otel-svc").await;
    assert_eq!(metric_total(&k, "otel.requests"), Some(3.0), "{}", k["metrics"]);
});

both_backends!(protobuf_json_gzip_and_partial_success, |app: TestApp| async move {
    let writer = app.api_key(&[Scope::Ingest], &[]).await;
    let reader = app.api_key(&[Scope::Read], &[]).await;

    // Protobuf, plain and gzip: the answer is protobuf, without partial success.
    for (gzip, byte) in [(false, 1u8), (true, 2u8)] {
        let body = traces(vec![genai_span("pb-model", 300, byte)]).encode_to_vec();
        let r = post(&app, "/v1/traces", Some(&writer), PROTOBUF, gzip, body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], PROTOBUF);
        let resp = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
        assert_eq!(resp.partial_success, None);
    }
    let page = search(&app, &reader, "model=pb-model&from=0").await;
    assert_eq!(page["logs"].as_array().unwrap().len(), 2);
    assert_eq!(page["logs"][0]["latency_ms"].as_f64(), Some(300.0));

    // JSON as the OTLP JSON mapping writes it: hex ids, camelCase, 64-bit integers as strings.
    let end = now_ns() - 1_000_000_000;
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc-json"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "embed",
            "kind": 3,
            "startTimeUnixNano": (end - 40_000_000).to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "embeddings"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "json-embed"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}}
            ],
            "status": {}
        }]}]
    }]});
    let r = post(&app, "/v1/traces", Some(&writer), "application/json", false, body.to_string().into_bytes()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let page = search(&app, &reader, "model=json-embed&from=0").await;
    let log = &page["logs"][0];
    assert_eq!((log["input_tokens"].as_i64(), log["operation"].as_str()), (Some(42), Some("embeddings")));
    assert_eq!(log["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(log["latency_ms"].as_f64(), Some(40.0));

    // Partial success: a span far in the future is refused and named; the other is stored.
    let mut future = genai_span("pb-model", 10, 3);
    future.start_time_unix_nano = now_ns() + 3 * 86_400 * 1_000_000_000;
    future.end_time_unix_nano = future.start_time_unix_nano;
    let body = traces(vec![genai_span("pb-model", 10, 4), future]).encode_to_vec();
    let r = post(&app, "/v1/traces", Some(&writer), PROTOBUF, false, body).await;
    assert_eq!(r.status(), 200);
    let partial = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap().partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(partial.error_message.contains("resourceSpans[0].scopeSpans[0].spans[1]"), "{}", partial.error_message);
    assert_eq!(search(&app, &reader, "model=pb-model&from=0").await["logs"].as_array().unwrap().len(), 3);

    // A key limited to one model: spans of other models are refused, as JSON too.
    let limited = app.api_key(&[Scope::Ingest], &["pb-model"]).await;
    let req = traces(vec![genai_span("pb-model", 10, 5), genai_span("other-model", 10, 6)]);
    let r = post(&app, "/v1/traces", Some(&limited), "application/json", false, serde_json::to_vec(&req).unwrap()).await;
    assert_eq!(r.status(), 200);
    let resp: Value = r.json().await.unwrap();
    assert_eq!(resp["partialSuccess"]["rejectedSpans"].to_string().trim_matches('"'), "1", "{resp}");
    assert!(resp["partialSuccess"]["errorMessage"].as_str().unwrap().contains("other-model"), "{resp}");

    // Logs and metrics endpoints answer in kind.
    let logs = otlp::ExportLogsServiceRequest {
        resource_logs: vec![otlp::logs::v1::ResourceLogs {
            resource: Some(resource::v1::Resource { attributes: vec![kv("service.name", "worker")], ..Default::default() }),
            scope_logs: vec![otlp::logs::v1::ScopeLogs {
                log_records: vec![otlp::logs::v1::LogRecord {
                    time_unix_nano: now_ns(),
                    severity_number: 13,
                    body: Some(c::v1::AnyValue { value: Some(c::v1::any_value::Value::StringValue("queue is long".into())) }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = post(&app, "/v1/logs", Some(&writer), PROTOBUF, true, logs.encode_to_vec()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ExportLogsServiceResponse::decode(r.bytes().await.unwrap()).unwrap().partial_success, None);
    let page = search(&app, &reader, "model=worker&from=0").await;
    assert_eq!((page["logs"][0]["level"].as_str(), page["logs"][0]["message"].as_str()), (Some("warn"), Some("queue is long")));

    let gauge = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "vllm"}}]},
        "scopeMetrics": [{"metrics": [{"name": "gpu.utilization", "gauge": {"dataPoints": [
            {"asDouble": 0.5, "timeUnixNano": now_ns().to_string()},
            {"asDouble": 0.75, "timeUnixNano": now_ns().to_string()}
        ]}}]}]
    }]});
    let r = post(&app, "/v1/metrics", Some(&writer), "application/json", false, gauge.to_string().into_bytes()).await;
    assert_eq!(r.status(), 200);
    let k = kpis(&app, &reader, "vllm").await;
    assert_eq!(metric_total(&k, "gpu.utilization"), Some(1.25), "{}", k["metrics"]);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_follow_the_otlp_specification() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| c.max_body_bytes = 4096).await.unwrap();
    let writer = app.api_key(&[Scope::Ingest], &[]).await;
    let reader = app.api_key(&[Scope::Read], &[]).await;
    let good = traces(vec![genai_span("m", 10, 1)]).encode_to_vec();

    // Undecodable: 400 with a google.rpc.Status in the request's encoding.
    let r = post(&app, "/v1/traces", Some(&writer), PROTOBUF, false, vec![0xff, 0xff, 0xff, 0x0f]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], PROTOBUF);
    let status = RpcStatus::decode(r.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, 3);
    assert!(status.message.contains("protobuf"), "{}", status.message);
    let r = post(&app, "/v1/metrics", Some(&writer), "application/json", false, b"{\"resourceMetrics\": 5}".to_vec()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 3);
    assert!(body["message"].as_str().unwrap().contains("JSON"), "{body}");
    // Bad gzip.
    let r = reqwest::Client::new()
        .post(app.url("/v1/logs"))
        .bearer_auth(&writer)
        .header("content-type", PROTOBUF)
        .header("content-encoding", "gzip")
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Above the size limit: 413.
    let mut big = genai_span("m", 10, 2);
    big.attributes.push(kv("gen_ai.input.messages", &"x".repeat(8000)));
    let r = post(&app, "/v1/traces", Some(&writer), PROTOBUF, false, traces(vec![big]).encode_to_vec()).await;
    assert_eq!(r.status(), 413);
    assert_eq!(RpcStatus::decode(r.bytes().await.unwrap()).unwrap().code, 8);

    // Keys: none or unknown 401 (also via x-api-key), a key without ingest 403.
    let r = post(&app, "/v1/traces", None, PROTOBUF, false, good.clone()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(RpcStatus::decode(r.bytes().await.unwrap()).unwrap().code, 16);
    let r = post(&app, "/v1/traces", Some("mw_not_a_key"), PROTOBUF, false, good.clone()).await;
    assert_eq!(r.status(), 401);
    let r = post(&app, "/v1/traces", Some(&reader), PROTOBUF, false, good.clone()).await;
    assert_eq!(r.status(), 403);
    let r = reqwest::Client::new()
        .post(app.url("/v1/traces"))
        .header("x-api-key", &writer)
        .header("content-type", PROTOBUF)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Another encoding: 415.
    let r = post(&app, "/v1/traces", Some(&writer), "text/plain", false, good).await;
    assert_eq!(r.status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_is_retryable_and_loses_nothing_acknowledged() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        c.ingest.writer.queue_records = 60;
        c.ingest.limits.max_records = 50;
    })
    .await
    .unwrap();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let mut tasks = Vec::new();
    for t in 0..16u8 {
        let key = key.clone();
        let url = app.url("/v1/traces");
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut acked, mut throttled) = (0i64, 0);
            for b in 0..10u8 {
                let spans = (0..40u8)
                    .map(|i| {
                        let mut s = genai_span("bp", 5, t);
                        s.span_id = vec![t, b, i, 1, 1, 1, 1, 1];
                        s.attributes.push(kv("gen_ai.input.messages", &"x".repeat(2000)));
                        s
                    })
                    .collect();
                let resp = client.post(&url).bearer_auth(&key).header("content-type", PROTOBUF).body(traces(spans).encode_to_vec()).send().await.unwrap();
                match resp.status().as_u16() {
                    200 => {
                        let r = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
                        assert_eq!(r.partial_success, None);
                        acked += 40;
                    }
                    429 => {
                        assert!(resp.headers().contains_key("retry-after"));
                        throttled += 1;
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
            (acked, throttled)
        }));
    }
    let (mut acked, mut throttled) = (0, 0);
    for t in tasks {
        let (a, th) = t.await.unwrap();
        acked += a;
        throttled += th;
    }
    assert!(throttled > 0, "a 60-record queue under 16 concurrent exporters must push back");
    let id = app.model_id("bp").await;
    assert_eq!(engine::testing::store(&app.engine).count_logs(id).await.unwrap(), acked);
}
