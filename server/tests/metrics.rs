//! `GET /metrics`: access (read key, or public when configured) and that its counters, parsed
//! with a Prometheus text-format parser, match what was ingested.

mod common;

use common::TestApp;
use engine::Scope;
use prometheus_parse::{Scrape, Value};
use serde_json::json;

fn value(scrape: &Scrape, name: &str, model: Option<&str>) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && model.is_none_or(|m| s.labels.get("model") == Some(m)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name}: unexpected {other:?}"),
        })
        .unwrap_or_else(|| panic!("{name} {model:?} missing"))
}

async fn scrape(app: &TestApp, key: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(app.url("/metrics"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

both_backends!(counters_match_what_was_ingested, |app: TestApp| async move {
    let writer = app.api_key(&[Scope::Ingest], &[]).await;
    let reader = app.api_key(&[Scope::Read], &[]).await;
    let records = vec![
        json!({"model": "chat", "latency_ms": 100, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.25}),
        json!({"model": "chat", "latency_ms": 300, "input_tokens": 20, "output_tokens": 5, "cost_usd": 0.5}),
        json!({"model": "chat", "latency_ms": 2500, "status": "error", "error_type": "timeout"}),
        json!({"model": "embed", "latency_ms": 20, "input_tokens": 7}),
        json!({"latency_ms": 1}),
    ];
    let (status, body) = app.ingest(&writer, &records).await;
    assert_eq!((status, body["accepted"].as_i64()), (200, Some(4)), "{body}");

    // Access: a read key, not an ingest key, not anonymous.
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some(&writer)).await.0, 403);
    let (status, text) = scrape(&app, Some(&reader)).await;
    assert_eq!(status, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let s = Scrape::parse(lines).expect("valid Prometheus text");

    assert_eq!(value(&s, "modelwatch_model_requests_total", Some("chat")), 3.0);
    assert_eq!(value(&s, "modelwatch_model_errors_total", Some("chat")), 1.0);
    assert_eq!(value(&s, "modelwatch_model_input_tokens_total", Some("chat")), 30.0);
    assert_eq!(value(&s, "modelwatch_model_output_tokens_total", Some("chat")), 10.0);
    assert!((value(&s, "modelwatch_model_cost_usd_total", Some("chat")) - 0.75).abs() < 1e-9);
    assert_eq!(value(&s, "modelwatch_model_requests_total", Some("embed")), 1.0);
    assert_eq!(value(&s, "modelwatch_ingest_accepted_records_total", None), 4.0);
    assert_eq!(value(&s, "modelwatch_ingest_rejected_records_total", None), 1.0);
    assert!(value(&s, "modelwatch_ingest_commits_total", None) >= 1.0);
    assert_eq!(value(&s, "modelwatch_ingest_queue_records", None), 0.0);
    // The latency histogram: three chat calls, one above 2 s.
    let hist = s
        .samples
        .iter()
        .find(|x| x.metric == "modelwatch_model_latency_seconds" && x.labels.get("model") == Some("chat"))
        .expect("latency histogram");
    match &hist.value {
        Value::Histogram(buckets) => {
            let at = |le: f64| buckets.iter().find(|b| (b.less_than - le).abs() < 1e-9).map(|b| b.count).unwrap();
            assert_eq!(at(0.16), 1.0, "100 ms");
            assert_eq!(at(0.32), 2.0, "and 300 ms");
            assert_eq!(at(1.28), 2.0);
            assert_eq!(at(2.56), 3.0, "and 2.5 s");
        }
        other => panic!("not a histogram: {other:?}"),
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_made_public() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| c.metrics_public = true).await.unwrap();
    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("modelwatch_ingest_accepted_records_total 0"), "{text}");
}

both_backends!(a_key_limited_to_models_sees_only_their_series, |app: TestApp| async move {
    let writer = app.api_key(&[Scope::Ingest], &[]).await;
    let all = app.api_key(&[Scope::Read], &[]).await;
    let limited = app.api_key(&[Scope::Read], &["model-a"]).await;
    let records = vec![
        json!({"model": "model-a", "latency_ms": 100, "input_tokens": 3, "output_tokens": 2, "cost_usd": 0.5}),
        json!({"model": "model-b", "latency_ms": 200, "status": "error", "input_tokens": 9, "output_tokens": 1, "cost_usd": 0.25}),
    ];
    let (status, body) = app.ingest(&writer, &records).await;
    assert_eq!((status, body["accepted"].as_i64()), (200, Some(2)), "{body}");

    let (status, full) = scrape(&app, Some(&all)).await;
    assert_eq!(status, 200);
    assert!(full.contains("model-b"), "an unlimited key sees every model: {full}");
    let (status, text) = scrape(&app, Some(&limited)).await;
    assert_eq!(status, 200);
    assert!(!text.contains("model-b"), "a key limited to model-a learned of model-b: {text}");
    let s = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid Prometheus text");
    assert_eq!(value(&s, "modelwatch_model_requests_total", Some("model-a")), 1.0);
    assert_eq!(value(&s, "modelwatch_model_input_tokens_total", Some("model-a")), 3.0);
    assert!((value(&s, "modelwatch_model_cost_usd_total", Some("model-a")) - 0.5).abs() < 1e-9);
    assert!(s.samples.iter().any(|x| x.metric == "modelwatch_model_latency_seconds" && x.labels.get("model") == Some("model-a")));
    assert_eq!(value(&s, "modelwatch_ingest_accepted_records_total", None), 2.0);
    // The model's lines are the same as in the full exposition (same names, help and types;
    // the families of a limited key come after the others).
    let of_a = |t: &str| {
        let mut lines = t.lines().filter(|l| l.contains("model-a") || l.starts_with("# ")).map(str::to_string).collect::<Vec<_>>();
        lines.sort();
        lines
    };
    assert_eq!(of_a(&text), of_a(&full));
});
