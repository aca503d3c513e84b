//! Dashboard numbers end to end over real HTTP, on SQLite and Postgres: records with known
//! values go in through the ingest API, and the KPI, breakdown and overview routes must give
//! back exact counts and sums and percentiles within 1%; plus range edges, CSV export and RBAC.

mod common;

use engine::Scope;
use serde_json::{Value, json};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// Exact q-quantile as DDSketch defines it (the value at rank floor(q·(n−1)), 0-based).
fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

fn assert_close(what: &str, got: &Value, want: f64) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what} missing: {got}"));
    assert!((got - want).abs() <= want.abs() * 0.01 + 1e-9, "{what}: got {got}, want {want} (±1%)");
}

struct Known {
    base: i64,
    requests: i64,
    errors: i64,
    input: i64,
    output: i64,
    cost: f64,
    latencies: Vec<f64>,
    ttfts: Vec<f64>,
    by_provider: std::collections::BTreeMap<String, i64>,
    by_user: std::collections::BTreeMap<String, i64>,
    by_team: std::collections::BTreeMap<String, i64>,
    timeouts: i64,
}

/// 600 records over two hours starting at `base`, and 50 in the two hours before.
fn records(base: i64) -> (Vec<Value>, Known) {
    let mut k = Known {
        base,
        requests: 0,
        errors: 0,
        input: 0,
        output: 0,
        cost: 0.0,
        latencies: vec![],
        ttfts: vec![],
        by_provider: Default::default(),
        by_user: Default::default(),
        by_team: Default::default(),
        timeouts: 0,
    };
    let mut out = Vec::new();
    for i in 0..600i64 {
        let ts = base + i * 12_000; // every 12 s: 5 per minute, 120 minutes
        let latency = 50.0 + (i as f64).powf(1.4);
        let ttft = 10.0 + (i % 97) as f64 * 3.0;
        let provider = if i % 3 == 0 { "azure" } else { "openai" };
        let user = format!("user-{}", i % 7);
        let team = if i % 4 == 0 { "search" } else { "chat" };
        let error = i % 10 == 0;
        let (input, output, cost) = (100 + i, 20 + i % 50, 0.001 * (i % 13) as f64);
        let mut r = json!({
            "timestamp": ts, "model": "dash-a", "provider": provider, "model_version": if i < 300 { "v1" } else { "v2" },
            "environment": "prod", "latency_ms": latency, "ttft_ms": ttft, "input_tokens": input,
            "output_tokens": output, "cost_usd": cost, "user_id": user, "metadata": {"team": team},
            "cache_hit": i % 5 == 0,
        });
        if error {
            r["status"] = json!("error");
            r["error_type"] = json!(if i % 20 == 0 { "timeout" } else { "rate_limited" });
            k.errors += 1;
            if i % 20 == 0 {
                k.timeouts += 1;
            }
        }
        k.requests += 1;
        k.input += input;
        k.output += output;
        k.cost += cost;
        k.latencies.push(latency);
        k.ttfts.push(ttft);
        *k.by_provider.entry(provider.into()).or_default() += 1;
        *k.by_user.entry(user).or_default() += 1;
        *k.by_team.entry(team.into()).or_default() += 1;
        out.push(r);
    }
    for i in 0..50i64 {
        out.push(json!({"timestamp": base - 2 * HOUR + i * 60_000, "model": "dash-a", "latency_ms": 100}));
    }
    k.latencies.sort_by(f64::total_cmp);
    k.ttfts.sort_by(f64::total_cmp);
    (out, k)
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let resp = client.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn setup(app: &common::TestApp) -> (reqwest::Client, Known) {
    let admin = app.admin().await;
    app.create_model(&admin, "dash-a").await;
    app.call_ok(&admin, "set_breakdown_keys", &[("name", "dash-a"), ("keys", "team, region")]).await;
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let base = (engine::now_ms() - 5 * HOUR).div_euclid(HOUR) * HOUR;
    let (recs, known) = records(base);
    let (s, body) = app.ingest(&key, &recs).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["accepted"], 650);
    let metrics: String = (0..120)
        .map(|i| format!("{}\n", json!({"model": "dash-a", "name": "accuracy", "value": 0.5 + (i % 10) as f64 / 20.0, "timestamp": base + i * MIN})))
        .collect();
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/metrics"))
        .bearer_auth(&key)
        .header("content-type", "application/x-ndjson")
        .body(metrics)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    (admin, known)
}

both_backends!(kpis_match_known_data, |app: common::TestApp| async move {
    let (admin, k) = setup(&app).await;
    let url = app.url(&format!("/api/v1/models/dash-a/kpis?from={}&to={}", k.base, k.base + 2 * HOUR));
    let (s, body) = get(&admin, url).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["step_ms"], MIN, "two hours → 1m steps");
    assert_eq!(body["resolution"], "minute");
    let t = &body["total"];
    assert_eq!(t["requests"], k.requests);
    assert_eq!(t["errors"], k.errors);
    assert_eq!(t["input_tokens"], k.input);
    assert_eq!(t["output_tokens"], k.output);
    assert_eq!(t["cache_hits"], 120);
    assert!((t["cost_usd"].as_f64().unwrap() - k.cost).abs() < 1e-9, "cost {} vs {}", t["cost_usd"], k.cost);
    for (field, q) in [("latency_p50", 0.5), ("latency_p95", 0.95), ("latency_p99", 0.99)] {
        assert_close(field, &t[field], exact_quantile(&k.latencies, q));
    }
    for (field, q) in [("ttft_p50", 0.5), ("ttft_p95", 0.95), ("ttft_p99", 0.99)] {
        assert_close(field, &t[field], exact_quantile(&k.ttfts, q));
    }
    assert_eq!(body["previous"]["requests"], 50, "the two hours before");
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 120);
    assert_eq!(points[0]["t"], k.base);
    assert!(points.iter().all(|p| p["requests"] == 5), "five records in every minute");
    assert_eq!(points.iter().map(|p| p["errors"].as_i64().unwrap()).sum::<i64>(), k.errors);
    // The first minute holds records 0..5: latencies 50 + i^1.4.
    let first: Vec<f64> = (0..5).map(|i| 50.0 + (i as f64).powf(1.4)).collect();
    assert_close("first point p99", &points[0]["latency_p99"], exact_quantile(&first, 0.99));

    let metric = body["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "accuracy").expect("custom metric").clone();
    assert_eq!(metric["total"]["count"], 120);
    assert_close("accuracy avg", &metric["total"]["avg"], (0..120).map(|i| 0.5 + (i % 10) as f64 / 20.0).sum::<f64>() / 120.0);
    assert_eq!(metric["total"]["min"], 0.5);
    assert_eq!(metric["total"]["max"], 0.95);

    // Longer ranges read the hourly rollups, with the same totals.
    let url = app.url(&format!("/api/v1/models/dash-a/kpis?from={}&to={}&step=1h", k.base, k.base + 2 * HOUR));
    let (s, hourly) = get(&admin, url).await;
    assert_eq!(s, 200, "{hourly}");
    assert_eq!(hourly["resolution"], "hour");
    assert_eq!(hourly["total"]["requests"], k.requests);
    assert_eq!(hourly["points"].as_array().unwrap().len(), 2);
    assert_close("hourly p95", &hourly["total"]["latency_p95"], exact_quantile(&k.latencies, 0.95));
});

both_backends!(breakdowns_match_known_data, |app: common::TestApp| async move {
    let (admin, k) = setup(&app).await;
    let range = format!("from={}&to={}", k.base, k.base + 2 * HOUR);
    let rows = |body: &Value| -> Vec<(String, i64)> {
        body["rows"].as_array().unwrap().iter().map(|r| (r["value"].as_str().unwrap().to_string(), r["requests"].as_i64().unwrap())).collect()
    };
    let (s, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=provider&{range}"))).await;
    assert_eq!(s, 200, "{b}");
    let want: Vec<(String, i64)> = {
        let mut v: Vec<_> = k.by_provider.clone().into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1));
        v
    };
    assert_eq!(rows(&b), want);
    let (_, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=model_version&{range}"))).await;
    assert_eq!(rows(&b), vec![("v1".to_string(), 300), ("v2".to_string(), 300)]);
    let (_, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=error_type&{range}"))).await;
    assert_eq!(rows(&b), vec![("rate_limited".to_string(), k.errors - k.timeouts), ("timeout".to_string(), k.timeouts)]);
    let (_, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=user&{range}"))).await;
    let mut got = rows(&b);
    got.sort();
    assert_eq!(got, k.by_user.clone().into_iter().collect::<Vec<_>>());
    let (_, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=meta:team&{range}"))).await;
    let mut got = rows(&b);
    got.sort();
    assert_eq!(got, k.by_team.clone().into_iter().collect::<Vec<_>>());
    let row = &b["rows"][0];
    assert!(row["latency_p95"].as_f64().unwrap() > 0.0);
    // A key that is not rolled up, and an unknown dimension, are 422s naming `by`.
    let (s, e) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=meta:nope&{range}"))).await;
    assert_eq!((s, e["error"]["field"].as_str()), (422, Some("by")), "{e}");
    let (s, e) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=colour&{range}"))).await;
    assert_eq!((s, e["error"]["field"].as_str()), (422, Some("by")), "{e}");

    // CSV export of a breakdown and of one panel.
    let resp = admin.get(app.url(&format!("/api/v1/models/dash-a/breakdown?by=provider&format=csv&{range}"))).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("value,requests,errors,error_rate,latency_p95_ms"), "{text}");
    assert_eq!(text.lines().count(), 3);
    let resp = admin.get(app.url(&format!("/api/v1/models/dash-a/kpis?panel=latency&format=csv&{range}"))).send().await.unwrap();
    let text = resp.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("time,t_ms,latency_p50_ms,latency_p95_ms,latency_p99_ms"));
    assert_eq!(lines.count(), 120);
    let resp = admin.get(app.url(&format!("/api/v1/models/dash-a/kpis?panel=metric:accuracy&format=csv&{range}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().starts_with("time,t_ms,count,avg"));
    let (s, e) = get(&admin, app.url(&format!("/api/v1/models/dash-a/kpis?panel=bogus&format=csv&{range}"))).await;
    assert_eq!((s, e["error"]["field"].as_str()), (422, Some("panel")));
});

both_backends!(range_edges, |app: common::TestApp| async move {
    let (admin, k) = setup(&app).await;
    // A range with no data: zero totals, one zero point per step, no percentiles.
    let empty_from = k.base - 30 * 24 * HOUR;
    let (s, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/kpis?from={empty_from}&to={}", empty_from + HOUR))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["total"]["requests"], 0);
    assert!(b["total"]["latency_p95"].is_null());
    assert_eq!(b["points"].as_array().unwrap().len(), 60);
    // A range in the future has no points yet (not a row of zeros).
    let future = engine::now_ms() + 2 * HOUR;
    let (s, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/kpis?from={future}&to={}", future + HOUR))).await;
    assert_eq!(s, 200);
    assert_eq!(b["points"].as_array().unwrap().len(), 0);
    // Relative ranges choose the step; 30 days read hourly rollups in 3 h steps.
    let (_, b) = get(&admin, app.url("/api/v1/models/dash-a/kpis?range=30d")).await;
    assert_eq!((b["step_ms"].as_i64(), b["resolution"].as_str()), (Some(3 * HOUR), Some("hour")));
    assert_eq!(b["total"]["requests"], 650, "everything ingested lies in the last 30 days");
    assert!(b["points"].as_array().unwrap().len() <= 241);
    // Local date-times in the viewer's zone.
    let (s, b) = get(&admin, app.url("/api/v1/models/dash-a/kpis?from=2026-03-29T00:00&to=2026-03-30T00:00&tz=Europe/Berlin")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["to"].as_i64().unwrap() - b["from"].as_i64().unwrap(), 23 * HOUR, "the spring-forward day is 23 h long");
    // Bad ranges are 422s naming the field, like every invalid field in the API.
    for (q, field) in [
        ("range=soon", "range"),
        ("from=2000&to=1000", "to"),
        ("to=1000", "from"),
        ("from=yesterday", "from"),
        ("range=1h&step=5s", "step"),
        ("range=1h&tz=Nowhere/Land", "tz"),
        ("range=1h&format=xml", "format"),
    ] {
        let (s, e) = get(&admin, app.url(&format!("/api/v1/models/dash-a/kpis?{q}"))).await;
        assert_eq!((s, e["error"]["field"].as_str()), (422, Some(field)), "{q}: {e}");
    }
});

both_backends!(overview_lists_readable_models, |app: common::TestApp| async move {
    let (admin, k) = setup(&app).await;
    app.create_model(&admin, "dash-b").await;
    let (s, o) = get(&admin, app.url(&format!("/api/v1/overview?from={}&to={}", k.base, k.base + 2 * HOUR))).await;
    assert_eq!(s, 200, "{o}");
    let rows = o["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let a = rows.iter().find(|r| r["model"]["name"] == "dash-a").unwrap();
    assert_eq!(a["total"]["requests"], k.requests);
    assert_eq!(a["previous"]["requests"], 50);
    assert_eq!(a["sparkline"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).sum::<i64>(), k.requests);
    assert_eq!(a["providers"], json!(["azure", "openai"]));
    assert_eq!(a["environments"], json!(["prod"]));
    assert_close("overview p95", &a["total"]["latency_p95"], exact_quantile(&k.latencies, 0.95));
    // Long ranges add up whole days, hours and minutes at the edges: nothing lost or doubled.
    for range in ["range=30d", "range=7d", "range=3d"] {
        let (s, o) = get(&admin, app.url(&format!("/api/v1/overview?{range}"))).await;
        assert_eq!(s, 200, "{o}");
        let a = o["rows"].as_array().unwrap().iter().find(|r| r["model"]["name"] == "dash-a").unwrap().clone();
        assert_eq!(a["total"]["requests"], 650, "{range}");
        assert_eq!(a["sparkline"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).sum::<i64>(), 650, "{range}");
        assert!(a["sparkline"].as_array().unwrap().len() <= 48);
        let (_, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=provider&{range}"))).await;
        assert_eq!(b["rows"].as_array().unwrap().iter().map(|r| r["requests"].as_i64().unwrap()).sum::<i64>(), 650, "{range}");
        let (_, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/breakdown?by=user&{range}"))).await;
        assert_eq!(b["rows"].as_array().unwrap().iter().map(|r| r["requests"].as_i64().unwrap()).sum::<i64>(), 600, "{range}: records with a user");
    }
    // The previous period of a range that starts mid-day is summed from hours and days.
    let (_, b) = get(&admin, app.url(&format!("/api/v1/models/dash-a/kpis?from={}&to={}", k.base + 2 * HOUR, k.base + 4 * HOUR))).await;
    assert_eq!(b["previous"]["requests"], 600);
});

both_backends!(kpis_are_authorised_per_model, |app: common::TestApp| async move {
    let (admin, k) = setup(&app).await;
    app.create_model(&admin, "dash-b").await;
    let viewer_id = app.create_user(&admin, "vic", "viewer", "viewer-password-1").await;
    app.grant(&admin, viewer_id, "dash-b", false).await;
    let viewer = app.login("vic", "viewer-password-1").await;
    let range = format!("from={}&to={}", k.base, k.base + 2 * HOUR);
    // The viewer sees dash-b, and dash-a does not exist for them: by URL, API, breakdown or CSV.
    assert_eq!(get(&viewer, app.url(&format!("/api/v1/models/dash-b/kpis?{range}"))).await.0, 200);
    for path in [
        format!("/api/v1/models/dash-a/kpis?{range}"),
        format!("/api/v1/models/dash-a/kpis?{range}&format=csv"),
        format!("/api/v1/models/dash-a/breakdown?by=provider&{range}"),
        format!("/api/v1/models/dash-a/breakdown?by=user&{range}"),
        "/api/v1/models/dash-a".to_string(),
    ] {
        let (s, _) = get(&viewer, app.url(&path)).await;
        assert_eq!(s, 404, "{path}");
    }
    let (_, o) = get(&viewer, app.url(&format!("/api/v1/overview?{range}"))).await;
    let names: Vec<&str> = o["rows"].as_array().unwrap().iter().map(|r| r["model"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["dash-b"]);
    // Read keys: limited to their models; an ingest-only key is refused; no credentials 401.
    let read_b = app.api_key(&[Scope::Read], &["dash-b"]).await;
    let keyed = |k: String, path: String| {
        let url = app.url(&path);
        async move {
            let resp = reqwest::Client::new().get(url).bearer_auth(k).send().await.unwrap();
            resp.status().as_u16()
        }
    };
    assert_eq!(keyed(read_b.clone(), format!("/api/v1/models/dash-b/kpis?{range}")).await, 200);
    assert_eq!(keyed(read_b.clone(), format!("/api/v1/models/dash-a/kpis?{range}")).await, 404);
    let ingest_only = app.api_key(&[Scope::Ingest], &[]).await;
    assert_eq!(keyed(ingest_only, format!("/api/v1/models/dash-a/kpis?{range}")).await, 403);
    assert_eq!(get(&reqwest::Client::new(), app.url(&format!("/api/v1/models/dash-a/kpis?{range}"))).await.0, 401);
    assert_eq!(get(&reqwest::Client::new(), app.url("/api/v1/overview")).await.0, 401);
    // Only admins choose breakdown keys.
    let resp = app.call(&viewer, "set_breakdown_keys", &[("name", "dash-b"), ("keys", "team")]).await;
    assert_eq!(resp.status(), 403);
});

both_backends!(breakdown_values_are_redacted_and_capped, |app: common::TestApp| async move {
    use engine::{IngestRule, Principal, RuleAction};
    let op = Principal::operator();
    let rule = |name: &str, action: RuleAction| IngestRule { id: 0, position: 0, name: name.into(), enabled: true, model: "capped".into(), action };
    app.engine.save_rule(&op, rule("pii", RuleAction::Redact { kinds: vec!["email".into()], custom: vec![] })).await.unwrap();
    // Debug records are dropped before storage, but still counted in the rollups.
    app.engine
        .save_rule(&op, rule("no debug", RuleAction::Drop { levels: vec!["debug".into()], status: None, metadata_key: None, metadata_value: None }))
        .await
        .unwrap();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let hour = (engine::now_ms() - 3 * HOUR).div_euclid(HOUR) * HOUR;
    let mut recs = vec![
        json!({"timestamp": hour + 1000, "model": "capped", "user_id": "bob@example.com"}),
        json!({"timestamp": hour + 2000, "model": "capped", "user_id": "eve@example.com", "level": "debug"}),
    ];
    // 210 more distinct users in the same hour: 200 values per model-hour, then "(other)".
    for i in 0..210 {
        recs.push(json!({"timestamp": hour + 10_000 + i, "model": "capped", "user_id": format!("u{i:03}")}));
    }
    let (s, body) = app.ingest(&key, &recs).await;
    assert_eq!(s, 200, "{body}");
    // A second commit merges into the rows the first one wrote.
    let (s, body) = app.ingest(&key, &[json!({"timestamp": hour + 3000, "model": "capped", "user_id": "bob@example.com", "latency_ms": 5})]).await;
    assert_eq!(s, 200, "{body}");
    let admin = app.admin().await;
    let (s, b) = get(&admin, app.url(&format!("/api/v1/models/capped/breakdown?by=user&from={hour}&to={}", hour + HOUR))).await;
    assert_eq!(s, 200, "{b}");
    let rows = b["rows"].as_array().unwrap();
    let text = b.to_string();
    assert!(!text.contains("@example.com"), "no e-mail address reaches the rollups: {text}");
    let redacted = rows.iter().find(|r| r["value"] == "[EMAIL]").expect("redacted value");
    assert_eq!(redacted["requests"], 3, "the dropped debug record is counted too, redacted");
    assert_close("merged latency", &redacted["latency_p95"], 5.0);
    assert_eq!(rows.len(), 200 + 1, "200 values (one of them [EMAIL]) and (other)");
    let other = rows.iter().find(|r| r["value"] == "(other)").expect("overflow row");
    assert_eq!(other["requests"], 11);
    assert_eq!(rows.iter().map(|r| r["requests"].as_i64().unwrap()).sum::<i64>(), 213);
});
