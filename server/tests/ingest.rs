//! The native ingest API end to end over real HTTP, on SQLite and Postgres: keys and scopes,
//! batch semantics, bad input, limits, rules (drop / sample / redact), payloads, rollups.

mod common;

use std::io::Write;

use engine::ingest::rollup::Resolution;
use engine::{IngestRule, Principal, RuleAction, Scope};
use serde_json::{Value, json};

fn now_ms() -> i64 {
    engine::now_ms()
}

async fn post_raw(app: &common::TestApp, key: Option<&str>, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(app.url("/api/v1/logs")).body(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

both_backends!(keys_and_scopes, |app: common::TestApp| async move {
    let ingest = app.api_key(&[Scope::Ingest], &[]).await;
    let read_only = app.api_key(&[Scope::Read], &[]).await;
    let limited = app.api_key(&[Scope::Ingest], &["allowed-model"]).await;
    let rec = json!({"model": "allowed-model", "latency_ms": 5});

    // Missing key 401, wrong key 401, wrong scope 403.
    let (s, body) = post_raw(&app, None, &[], rec.to_string().into_bytes()).await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(post_raw(&app, Some("mw_notarealkeyatall000000000000000000000000"), &[], rec.to_string().into_bytes()).await.0, 401);
    let (s, body) = app.ingest(&read_only, &[rec.clone()]).await;
    assert_eq!(s, 403, "{body}");

    // `x-api-key` works as well as Bearer.
    let (s, _) = post_raw(&app, None, &[("x-api-key", &ingest)], rec.to_string().into_bytes()).await;
    assert_eq!(s, 200);

    // A model-limited key: records for other models are refused with 403 for the record.
    let (s, body) = app.ingest(&limited, &[rec.clone(), json!({"model": "other-model"})]).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["code"], "forbidden");
    assert_eq!(body["rejected"][0]["field"], "logs[1].model");
    let (s, _) = app.ingest(&limited, &[json!({"model": "other-model"})]).await;
    assert_eq!(s, 403);

    // Listed with prefix, scopes, models; revoked keys get 401 at once.
    let keys = app.engine.list_api_keys(&Principal::operator()).await.unwrap();
    let k = keys.iter().find(|k| limited.starts_with(&k.prefix)).unwrap();
    assert_eq!(k.models.as_deref(), Some(&["allowed-model".to_string()][..]));
    assert!(!format!("{keys:?}").contains(&limited), "the secret is never listed");
    app.engine.revoke_api_key(&Principal::operator(), k.id).await.unwrap();
    assert_eq!(app.ingest(&limited, &[rec.clone()]).await.0, 401);

    // Auto-registered model: visible to admins, hidden from ungranted viewers.
    let admin = app.admin().await;
    let viewer_id = app.create_user(&admin, "vera", "viewer", "vera-password-1").await;
    let vera = app.login("vera", "vera-password-1").await;
    let models = app.call_ok(&vera, "list_models", &[]).await;
    assert_eq!(models.as_array().unwrap().len(), 0);
    app.grant(&admin, viewer_id, "allowed-model", false).await;
    let models = app.call_ok(&vera, "list_models", &[]).await;
    assert_eq!(models[0]["name"], "allowed-model");
});

both_backends!(batch_semantics_and_bad_input, |app: common::TestApp| async move {
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    // Mixed batch: valid records stored, each bad one reported with index, field and reason.
    let (s, body) = app
        .ingest(
            &key,
            &[
                json!({"model": "m1", "latency_ms": 10}),
                json!({"model": "m1", "latency_ms": "slow"}),
                json!({"latency_ms": 3}),
                json!({"model": "m1", "input_tokens": -5}),
                json!({"model": "m1", "metadata": {"deep": {"x": 1}}}),
                json!({"model": "m1", "status": "error", "error_type": "timeout"}),
            ],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    let fields: Vec<&str> = body["rejected"].as_array().unwrap().iter().map(|r| r["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["logs[1].latency_ms", "logs[2].model", "logs[3].input_tokens", "logs[4].metadata.deep"]);
    let id = app.model_id("m1").await;
    assert_eq!(engine::testing::store(&app.engine).count_logs(id).await.unwrap(), 2);

    // Whole-body problems.
    let bad = |b: &str| b.as_bytes().to_vec();
    let cases: Vec<(Vec<u8>, Vec<(&str, &str)>, u16, &str)> = vec![
        (bad("[{\"model\": \"m1\","), vec![("content-type", "application/json")], 400, "logs"),
        (bad("{\"model\": \"m1\", \"x\": }\n{oops"), vec![("content-type", "application/x-ndjson")], 400, "logs[0]"),
        (bad("[]"), vec![("content-type", "application/json")], 422, "logs"),
        (vec![0xff, 0xfe, b'{', b'}'], vec![], 400, "body"),
        (bad("not gzip at all"), vec![("content-encoding", "gzip")], 400, "body"),
        (bad("{}"), vec![("content-encoding", "br")], 400, "Content-Encoding"),
        (bad("{\"model\": 5}"), vec![], 422, "logs[0].model"),
    ];
    for (body, headers, status, field) in cases {
        let (s, b) = post_raw(&app, Some(&key), &headers, body).await;
        assert_eq!(s, status, "{b}");
        assert_eq!(b["error"]["field"], field, "{b}");
    }
    // Huge strings and deep nesting name the field; the server stays up.
    let huge = json!({"model": "m1", "message": "x".repeat(20_000)});
    let (s, b) = app.ingest(&key, &[huge]).await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("logs[0].message")));
    let deep = format!("{{\"model\":\"m1\",\"x\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let (s, b) = post_raw(&app, Some(&key), &[], deep.into_bytes()).await;
    assert!(s == 400 || s == 422, "{s} {b}");
    assert!(b["error"]["field"].as_str().unwrap().starts_with("logs[0]"));

    // Gzip bodies are accepted.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"model\":\"m1\",\"latency_ms\":1}\n{\"model\":\"m1\"}\n").unwrap();
    let (s, b) = post_raw(&app, Some(&key), &[("content-encoding", "gzip"), ("content-type", "application/x-ndjson")], gz.finish().unwrap()).await;
    assert_eq!((s, b["accepted"].as_i64()), (200, Some(2)), "{b}");

    // Metrics endpoint: points stored and rolled up; bad points named.
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/metrics"))
        .bearer_auth(&key)
        .json(&json!([
            {"model": "m1", "name": "accuracy", "value": 0.9},
            {"model": "m1", "name": "accuracy", "value": 0.8},
            {"model": "m1", "name": "accuracy"}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["accepted"], 2);
    assert_eq!(b["rejected"][0]["field"], "metrics[2].value");
    let m = engine::testing::store(&app.engine)
        .metric_rollup_total(id, "accuracy", Resolution::Minute, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(m.count, 2);
    assert!((m.sum - 1.7).abs() < 1e-9 && m.min == 0.8 && m.max == 0.9);

    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_413() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        c.max_body_bytes = 4096;
        c.max_decompressed_bytes = 8192;
        c.ingest.limits.max_records = 3;
    })
    .await
    .unwrap();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let big = format!("{{\"model\":\"m\",\"message\":\"{}\"}}", "y".repeat(5000));
    let (s, b) = post_raw(&app, Some(&key), &[], big.into_bytes()).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["code"], "too_large");
    // A gzip bomb is cut off at the decompressed limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 1_000_000]).unwrap();
    let (s, _) = post_raw(&app, Some(&key), &[("content-encoding", "gzip")], gz.finish().unwrap()).await;
    assert_eq!(s, 413);
    let (s, b) = app.ingest(&key, &vec![json!({"model": "m"}); 4]).await;
    assert_eq!(s, 413, "{b}");
}

both_backends!(rules_payloads_and_redaction, |app: common::TestApp| async move {
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let rule = |name: &str, model: &str, action: RuleAction| IngestRule {
        id: 0,
        position: 0,
        name: name.into(),
        enabled: true,
        model: model.into(),
        action,
    };
    app.engine
        .save_rule(&op, rule("pii", "", RuleAction::Redact {
            kinds: ["email", "phone", "credit_card", "secret", "ip_address"].iter().map(|s| s.to_string()).collect(),
            custom: vec![engine::CustomRedaction { name: "employee_id".into(), regex: r"EMP-\d{5}".into() }],
        }))
        .await
        .unwrap();
    app.engine
        .save_rule(&op, rule("no debug", "", RuleAction::Drop { levels: vec!["debug".into()], status: None, metadata_key: None, metadata_value: None }))
        .await
        .unwrap();

    let pii = "mail jane.doe@example.com or call +1 415-555-0132, card 4111 1111 1111 1111, \
               token sk-proj-abcdefghijklmnopqrstuvwx, from 192.168.10.20, id EMP-12345";
    let (s, b) = app
        .ingest(&key, &[
            json!({"model": "chat", "trace_id": "t-pii", "request": pii, "response": pii, "message": pii,
                   "metadata": {"note": pii}, "input_tokens": 1000, "output_tokens": 100}),
            json!({"model": "chat", "trace_id": "t-debug", "level": "debug"}),
        ])
        .await;
    assert_eq!((s, b["accepted"].as_i64()), (200, Some(2)), "{b}");

    let logs: Value = reqwest::Client::new()
        .get(app.url("/api/v1/logs?model=chat&trace_id=t-pii&payloads=true"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = &logs["logs"][0];
    let stored = log.to_string();
    for secret in ["jane.doe@example.com", "415-555-0132", "4111 1111 1111 1111", "sk-proj-abcdefghijklmnopqrstuvwx", "192.168.10.20", "EMP-12345"] {
        assert!(!stored.contains(secret), "{secret} was stored: {stored}");
    }
    for placeholder in ["[EMAIL]", "[PHONE]", "[CARD]", "[SECRET]", "[IP]", "[EMPLOYEE_ID]"] {
        assert!(log["request"].as_str().unwrap().contains(placeholder), "{placeholder} missing: {}", log["request"]);
    }
    assert!(log["message"].as_str().unwrap().contains("[EMAIL]"));
    assert!(log["metadata"]["note"].as_str().unwrap().contains("[CARD]"));
    assert_eq!(log["redacted"], true);
    assert_eq!(log["has_payload"], true);
    // Cost computed from the default price table when the record has none (chat has no price) …
    assert!(log["cost_usd"].is_null());

    // The dropped record is not stored but is counted in the rollups.
    let id = app.model_id("chat").await;
    let store = engine::testing::store(&app.engine);
    assert_eq!(store.count_logs(id).await.unwrap(), 1);
    let total = store.rollup_total(id, Resolution::Minute, 0, i64::MAX).await.unwrap();
    assert_eq!((total.requests, total.stored), (2, 1));
    let hour = store.rollup_total(id, Resolution::Hour, 0, i64::MAX).await.unwrap();
    assert_eq!((hour.requests, hour.stored), (2, 1));

    // Payload capture off for the model: rows stored without payload.
    app.engine.set_model_capture(&op, "chat", false).await.unwrap();
    app.ingest(&key, &[json!({"model": "chat", "trace_id": "t-nocap", "request": "hello"})]).await;
    let logs: Value = reqwest::Client::new()
        .get(app.url("/api/v1/logs?model=chat&trace_id=t-nocap&payloads=true"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs["logs"][0]["has_payload"], false);
    assert!(logs["logs"][0]["request"].is_null());

    // Cost from the price table (gpt-4o: 2.50 in / 10.00 out per million).
    app.ingest(&key, &[json!({"model": "gpt-4o", "trace_id": "t-cost", "input_tokens": 1000, "output_tokens": 500})]).await;
    let logs: Value = reqwest::Client::new()
        .get(app.url("/api/v1/logs?model=gpt-4o&trace_id=t-cost"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cost = logs["logs"][0]["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.0075).abs() < 1e-12, "{cost}");
});

both_backends!(sampling_counts_everything, |app: common::TestApp| async move {
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    app.engine
        .save_rule(&op, IngestRule {
            id: 0,
            position: 0,
            name: "keep 10%".into(),
            enabled: true,
            model: "sampled".into(),
            action: RuleAction::Sample { keep_percent: 10.0, slow_ms: Some(1000.0) },
        })
        .await
        .unwrap();
    let mut records = Vec::new();
    for i in 0..2000 {
        let error = i % 50 == 0;
        let slow = i % 100 == 1;
        records.push(json!({
            "model": "sampled", "trace_id": format!("tr-{i}"), "status": if error { "error" } else { "ok" },
            "latency_ms": if slow { 2000.0 } else { 100.0 }, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.001
        }));
    }
    let (s, b) = app.ingest(&key, &records).await;
    assert_eq!((s, b["accepted"].as_i64()), (200, Some(2000)));
    let id = app.model_id("sampled").await;
    let store = engine::testing::store(&app.engine);
    let rows = store.count_logs(id).await.unwrap();
    let total = store.rollup_total(id, Resolution::Minute, 0, i64::MAX).await.unwrap();
    // KPIs see every record; storage keeps ~10% of successes plus all 40 errors and 20 slow calls.
    assert_eq!(total.requests, 2000);
    assert_eq!(total.errors, 40);
    assert_eq!(total.input_tokens, 20_000);
    assert!((total.cost_usd - 2.0).abs() < 1e-9);
    assert_eq!(total.stored, rows);
    assert!((60 + 150..=60 + 250).contains(&rows), "{rows} rows kept");
});

both_backends!(rollup_percentiles_match_raw, |app: common::TestApp| async move {
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let now = now_ms();
    let mut latencies = Vec::new();
    let mut records = Vec::new();
    // A long-tailed, deterministic distribution spread over several minutes and series.
    let mut x: u64 = 42;
    for i in 0..6000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x % 1_000_000) as f64 / 1_000_000.0;
        let latency = 50.0 * (1.0 / (1.0 - u * 0.999)).powf(1.2);
        latencies.push(latency);
        records.push(json!({
            "model": "pct", "timestamp": now - (i % 5) * 60_000, "latency_ms": latency, "ttft_ms": latency / 4.0,
            "provider": if i % 2 == 0 { "openai" } else { "azure" }, "environment": "prod",
            "input_tokens": i % 7, "output_tokens": i % 11, "cached_tokens": i % 3, "cache_hit": i % 9 == 0
        }));
    }
    for chunk in records.chunks(1500) {
        let (s, b) = app.ingest(&key, chunk).await;
        assert_eq!(s, 200, "{b}");
    }
    let id = app.model_id("pct").await;
    let store = engine::testing::store(&app.engine);
    latencies.sort_by(f64::total_cmp);
    for res in [Resolution::Minute, Resolution::Hour] {
        let total = store.rollup_total(id, res, 0, i64::MAX).await.unwrap();
        assert_eq!(total.requests, 6000);
        assert_eq!(total.input_tokens, (0..6000).map(|i| i % 7).sum::<i64>());
        assert_eq!(total.output_tokens, (0..6000).map(|i| i % 11).sum::<i64>());
        assert_eq!(total.cache_hits, (0..6000).filter(|i| i % 9 == 0).count() as i64);
        for q in [0.5, 0.9, 0.95, 0.99] {
            let exact = latencies[((q * 6000.0) as usize).saturating_sub(1)];
            let est = total.latency.quantile(q).unwrap();
            assert!((est - exact).abs() / exact <= 0.011, "{res:?} p{q}: sketch {est} vs exact {exact}");
        }
        assert_eq!(total.ttft.count(), 6000);
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_answers_429_and_loses_nothing_acknowledged() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        c.ingest.writer.queue_records = 60;
        c.ingest.limits.max_records = 50;
    })
    .await
    .unwrap();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let client = client.clone();
        let url = app.url("/api/v1/logs");
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let (mut acked, mut throttled) = (0i64, 0);
            for b in 0..10 {
                let body: String = (0..40)
                    .map(|i| format!("{}\n", json!({"model": "bp", "trace_id": format!("{t}-{b}-{i}"), "request": "x".repeat(2000)})))
                    .collect();
                let resp = client.post(&url).bearer_auth(&key).body(body).send().await.unwrap();
                match resp.status().as_u16() {
                    200 => acked += resp.json::<Value>().await.unwrap()["accepted"].as_i64().unwrap(),
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
    assert!(throttled > 0, "a 60-record queue under 16 concurrent writers must push back");
    let id = app.model_id("bp").await;
    assert_eq!(engine::testing::store(&app.engine).count_logs(id).await.unwrap(), acked);
}

// The writer folds each request into the next group while the previous group commits: many
// concurrent requests share few commits, and every record is stored and counted exactly once.
both_backends!(concurrent_requests_share_commits, |app: common::TestApp| async move {
    use std::sync::atomic::Ordering::Relaxed;
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let stats = app.engine.ingest().writer().stats.clone();
    let (commits, stored) = (stats.commits.load(Relaxed), stats.rows_stored.load(Relaxed));
    let batches: Vec<Vec<Value>> = (0..40)
        .map(|i| (0..250).map(|j| json!({"model": "grouped", "latency_ms": 10 + (i * 250 + j) % 500, "user_id": format!("u{}", j % 7)})).collect())
        .collect();
    let answers = futures_util::future::join_all(batches.iter().map(|b| app.ingest(&key, b))).await;
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
    }
    let commits = stats.commits.load(Relaxed) - commits;
    assert!(commits < 40, "40 concurrent requests took {commits} commits");
    assert_eq!(stats.rows_stored.load(Relaxed) - stored, 10_000);
    let r = reqwest::Client::new().get(app.url("/api/v1/models/grouped/kpis?range=1h")).bearer_auth(&key).send().await.unwrap();
    let k: Value = r.json().await.unwrap();
    assert_eq!(k["total"]["requests"].as_i64(), Some(10_000), "{}", k["total"]);
});

// `.` and `..` are path segments to browsers: `/models/..` is `/`, so a model of that name could
// be stored but its dashboard never opened. Every way a model is named refuses them per record.
both_backends!(dot_model_names_are_refused, |app: common::TestApp| async move {
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let body = json!([{"model": "."}, {"model": "ok"}, {"model": ".."}, {"model": "..."}]).to_string().into_bytes();
    let (s, b) = post_raw(&app, Some(&key), &[("content-type", "application/json")], body).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["accepted"], 1, "{b}");
    let rejected = b["rejected"].as_array().unwrap();
    let named: Vec<(i64, &str, &str)> =
        rejected.iter().map(|r| (r["index"].as_i64().unwrap(), r["field"].as_str().unwrap(), r["code"].as_str().unwrap())).collect();
    assert_eq!(named, vec![(0, "logs[0].model", "invalid_field"), (2, "logs[2].model", "invalid_field"), (3, "logs[3].model", "invalid_field")]);
    assert!(rejected[0]["message"].as_str().unwrap().contains("dots"), "{b}");
    // Only refused: none of them became a model.
    let models: Vec<String> = app.engine.list_models(&Principal::operator()).await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(models, vec!["ok".to_string()]);
    // Alone in a request: the record's refusal is the answer.
    let (s, b) = app.ingest(&key, &[json!({"model": ".."})]).await;
    assert_eq!((s, b["error"]["field"].as_str()), (422, Some("logs[0].model")), "{b}");

    // Custom metrics share the rule.
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/metrics"))
        .bearer_auth(&key)
        .json(&json!([{"model": "ok", "name": "accuracy", "value": 0.9}, {"model": ".", "name": "accuracy", "value": 0.8}]))
        .send()
        .await
        .unwrap();
    let b: Value = resp.json().await.unwrap();
    assert_eq!((b["accepted"].as_i64(), b["rejected"][0]["field"].as_str()), (Some(1), Some("metrics[1].model")), "{b}");

    // So do OTLP spans (here in the OTLP JSON mapping) and the admin's "create model".
    let end = engine::now_ms() as u64 * 1_000_000 - 1_000_000_000;
    let span = |model: &str| {
        json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat",
               "startTimeUnixNano": (end - 5_000_000).to_string(), "endTimeUnixNano": end.to_string(),
               "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": model}}]})
    };
    let otlp = json!({"resourceSpans": [{"scopeSpans": [{"spans": [span(".."), span("ok")]}]}]});
    let resp = reqwest::Client::new().post(app.url("/v1/traces")).bearer_auth(&key).json(&otlp).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["partialSuccess"]["rejectedSpans"].to_string().trim_matches('"'), "1", "{b}");
    assert!(b["partialSuccess"]["errorMessage"].as_str().unwrap().contains("dots"), "{b}");
    let err = app.engine.create_model(&Principal::operator(), engine::ModelInput { name: "..".into(), ..Default::default() }).await;
    assert_eq!(err.unwrap_err().field(), Some("name"));
});

// JSON has no NaN or Infinity, and 1e999 is beyond f64: serde_json refuses all three as syntax,
// yet the answer names the field that holds them, in NDJSON, single objects and JSON arrays alike.
both_backends!(non_finite_numbers_name_the_field, |app: common::TestApp| async move {
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let ndjson = [("content-type", "application/x-ndjson")];
    let json_type = [("content-type", "application/json")];
    for value in ["1e999", "-1e999", "NaN", "Infinity", "-Infinity"] {
        let body = format!("{{\"model\":\"m\",\"latency_ms\":{value}}}");
        for headers in [&ndjson[..], &json_type[..]] {
            let (s, b) = post_raw(&app, Some(&key), headers, body.clone().into_bytes()).await;
            assert_eq!(s, 422, "{body} {headers:?}: {b}");
            assert_eq!(b["error"]["field"], "logs[0].latency_ms", "{body}: {b}");
            assert_eq!(b["error"]["message"], "must be a finite number", "{body}: {b}");
        }
    }
    // Among others: only that record is refused.
    let body = "{\"model\":\"m\"}\n{\"model\":\"m\",\"metadata\":{\"score\":NaN}}\n{\"model\":\"m\",\"ttft_ms\":1e999}\n";
    let (s, b) = post_raw(&app, Some(&key), &ndjson, body.as_bytes().to_vec()).await;
    assert_eq!((s, b["accepted"].as_i64()), (200, Some(1)), "{b}");
    assert_eq!(b["rejected"][0]["field"], "logs[1].metadata.score", "{b}");
    assert_eq!(b["rejected"][1]["field"], "logs[2].ttft_ms", "{b}");
    let body = "[{\"model\":\"m\"}, {\"model\":\"m\",\"cost_usd\":Infinity}]";
    let (s, b) = post_raw(&app, Some(&key), &json_type, body.as_bytes().to_vec()).await;
    assert_eq!((s, b["accepted"].as_i64()), (200, Some(1)), "{b}");
    assert_eq!(b["rejected"][0]["field"], "logs[1].cost_usd", "{b}");
    assert_eq!(b["rejected"][0]["message"], "must be a finite number", "{b}");
    // Custom metrics too.
    let body = "[{\"model\":\"m\",\"name\":\"accuracy\",\"value\":NaN}]";
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/metrics"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["field"], "metrics[0].value", "{b}");
});
