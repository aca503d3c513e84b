//! Alerting: rules evaluated on recorded time series (threshold with warning and critical,
//! `for`, the minimum-request guard, no-data, anomaly), the outbox and its delivery (signed
//! webhook, retries across a restart), silences and acknowledgement, and the whole loop end
//! to end with a local webhook receiver and a local SMTP server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestApp;
use engine::types::{AlertChannel, AlertKind, AlertRule, AlertState};
use engine::{Principal, Scope};
use serde_json::{Value, json};

const MIN: i64 = 60_000;

/// A minute boundary three hours ago: recorded series start there.
fn t0() -> i64 {
    (engine::now_ms() / MIN) * MIN - 3 * 3600 * 1000
}

/// `per_minute` records a minute over `minutes` minutes from `start`, `errors` of them failed.
fn minutes(model: &str, start: i64, minutes: i64, per_minute: i64, errors: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for m in 0..minutes {
        for i in 0..per_minute {
            let mut r = json!({"model": model, "timestamp": start + m * MIN + i * (MIN / per_minute.max(1)), "latency_ms": 100});
            if i < errors {
                r["status"] = json!("error");
                r["error_type"] = json!("rate_limit");
            }
            out.push(r);
        }
    }
    out
}

async fn ingest(app: &TestApp, key: &str, records: Vec<Value>) {
    for chunk in records.chunks(5000) {
        let (status, body) = app.ingest(key, chunk).await;
        assert_eq!(status, 200, "{body}");
    }
}

fn rule(name: &str, models: &[&str]) -> AlertRule {
    AlertRule { name: name.into(), models: models.iter().map(|m| m.to_string()).collect(), ..AlertRule::default() }
}

async fn state(app: &TestApp, rule_id: i64, model: &str) -> Option<AlertState> {
    app.engine.alert_states(&Principal::operator()).await.unwrap().into_iter().find(|s| s.rule_id == rule_id && s.model == model)
}

async fn events(app: &TestApp, rule_id: i64) -> Vec<(String, String, i64)> {
    let mut e: Vec<(String, String, i64)> = app
        .engine
        .alert_history(&Principal::operator(), Some(rule_id), None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.severity, e.ts))
        .collect();
    e.reverse();
    e
}

async fn channel(app: &TestApp, name: &str, kind: &str, url: &str) -> AlertChannel {
    let c = AlertChannel { id: 0, name: name.into(), kind: kind.into(), url: url.into(), secret: String::new(), to: vec!["oncall@example.com".into()], created_at: 0 };
    app.engine.create_channel(&Principal::operator(), c).await.unwrap()
}

both_backends!(thresholds_for_guard_and_severity_on_recorded_series, |app: TestApp| async move {
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let t0 = t0();
    // 10 minutes at 1 % errors, 5 at 20 %, 10 at 1 % (100 requests a minute).
    let mut recs = minutes("chat", t0, 10, 100, 1);
    recs.extend(minutes("chat", t0 + 10 * MIN, 5, 100, 20));
    recs.extend(minutes("chat", t0 + 15 * MIN, 10, 100, 1));
    ingest(&app, &key, recs).await;
    let hook = channel(&app, "hook", "webhook", "http://127.0.0.1:9/hook").await;

    let base = AlertRule { metric: "error_rate".into(), window_secs: 300, comparison: ">".into(), warning: Some(5.0), critical: Some(15.0), channels: vec![hook.id], ..rule("", &["chat"]) };
    let a = app.engine.save_alert_rule(&op, AlertRule { name: "at once".into(), ..base.clone() }).await.unwrap();
    let b = app.engine.save_alert_rule(&op, AlertRule { name: "for 3m".into(), for_secs: 180, ..base.clone() }).await.unwrap();
    let c = app.engine.save_alert_rule(&op, AlertRule { name: "guarded".into(), min_requests: 1000, ..base.clone() }).await.unwrap();

    let at = |m: i64| t0 + m * MIN;
    // Minute 10: the window (minutes 5–9) is at 1 %.
    app.engine.evaluate_alerts(at(10)).await.unwrap();
    assert_eq!(state(&app, a.id, "chat").await.unwrap().state, "ok");
    // Minute 12: 2 of 5 minutes at 20 % → 8.6 %: warning.
    app.engine.evaluate_alerts(at(12)).await.unwrap();
    let s = state(&app, a.id, "chat").await.unwrap();
    assert_eq!((s.state.as_str(), s.severity.as_str()), ("firing", "warning"));
    assert!((s.value.unwrap() - 8.6).abs() < 1e-9, "{s:?}");
    let s = state(&app, b.id, "chat").await.unwrap();
    assert_eq!((s.state.as_str(), s.severity.as_str()), ("pending", "warning"));
    // Minute 14: 16.2 %: critical; the `for` rule still waits (2 of 3 minutes).
    app.engine.evaluate_alerts(at(14)).await.unwrap();
    assert_eq!(state(&app, a.id, "chat").await.unwrap().severity, "critical");
    let s = state(&app, b.id, "chat").await.unwrap();
    assert_eq!((s.state.as_str(), s.severity.as_str()), ("pending", "critical"));
    // Minute 15: held for 3 minutes: the `for` rule fires.
    app.engine.evaluate_alerts(at(15)).await.unwrap();
    assert_eq!(state(&app, b.id, "chat").await.unwrap().state, "firing");
    // Minute 20: back to 1 %: both resolve.
    app.engine.evaluate_alerts(at(20)).await.unwrap();
    assert_eq!(state(&app, a.id, "chat").await.unwrap().state, "ok");
    assert_eq!(state(&app, b.id, "chat").await.unwrap().state, "ok");
    // The guard (1000 requests in the window; there are 500) never judged the data.
    assert_eq!(state(&app, c.id, "chat").await.unwrap().state, "ok");
    assert!(events(&app, c.id).await.is_empty());

    let ev = |v: Vec<(String, String, i64)>| v.into_iter().map(|(k, s, t)| (k, s, (t - t0) / MIN)).collect::<Vec<_>>();
    let s = |k: &str, sev: &str, m: i64| (k.to_string(), sev.to_string(), m);
    assert_eq!(ev(events(&app, a.id).await), vec![s("firing", "warning", 12), s("severity", "critical", 14), s("resolved", "", 20)]);
    assert_eq!(ev(events(&app, b.id).await), vec![s("pending", "warning", 12), s("firing", "critical", 15), s("resolved", "", 20)]);

    // Notifications queued: A fired, changed severity, resolved; B fired and resolved.
    let n = app.engine.list_notifications(&op, 100).await.unwrap();
    let of = |id: i64| {
        let mut v: Vec<String> = n.iter().filter(|x| x.rule_id == Some(id)).map(|x| x.event.clone()).collect();
        v.reverse();
        v
    };
    assert_eq!(of(a.id), vec!["firing", "firing", "resolved"]);
    assert_eq!(of(b.id), vec!["firing", "resolved"]);
    assert!(of(c.id).is_empty());
    assert!(n.iter().any(|x| x.summary.starts_with("[CRITICAL] at once on chat")), "{n:?}");
});

both_backends!(rules_narrowed_by_environment_and_provider, |app: TestApp| async move {
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let t0 = t0();
    let with = |mut recs: Vec<Value>, env: &str, provider: &str| {
        for r in &mut recs {
            r["environment"] = json!(env);
            r["provider"] = json!(provider);
        }
        recs
    };
    // "chat" fails 30 % in staging and 1 % in prod; "summarize" only runs in staging;
    // "embed" runs in prod through another provider and fails 40 %.
    let mut recs = with(minutes("chat", t0, 5, 100, 30), "staging", "openai");
    recs.extend(with(minutes("chat", t0, 5, 100, 1), "prod", "openai"));
    recs.extend(with(minutes("summarize", t0, 5, 100, 50), "staging", "openai"));
    recs.extend(with(minutes("embed", t0, 5, 100, 40), "prod", "cohere"));
    ingest(&app, &key, recs).await;

    let hook = channel(&app, "hook", "webhook", "http://127.0.0.1:9/hook").await;
    let errors = AlertRule { metric: "error_rate".into(), window_secs: 300, critical: Some(10.0), channels: vec![hook.id], ..rule("", &["*"]) };
    let prod = app.engine.save_alert_rule(&op, AlertRule { name: "prod errors".into(), environments: vec![" prod ".into(), "prod".into(), "".into()], ..errors.clone() }).await.unwrap();
    assert_eq!(prod.environments, vec!["prod"], "trimmed, without blanks or repeats");
    let openai_prod = app
        .engine
        .save_alert_rule(&op, AlertRule { name: "openai prod".into(), environments: vec!["prod".into()], providers: vec!["openai".into()], ..errors.clone() })
        .await
        .unwrap();
    let everywhere = app.engine.save_alert_rule(&op, AlertRule { name: "all errors".into(), ..errors.clone() }).await.unwrap();
    app.engine.evaluate_alerts(t0 + 5 * MIN).await.unwrap();

    // Only prod logs count: chat is at 1 % there (its staging failures do not count), embed at
    // 40 %; summarize never logs in prod, so the rule does not track it.
    let s = state(&app, prod.id, "chat").await.unwrap();
    assert_eq!((s.state.as_str(), s.value), ("ok", Some(1.0)));
    let s = state(&app, prod.id, "embed").await.unwrap();
    assert_eq!((s.state.as_str(), s.value), ("firing", Some(40.0)));
    assert!(state(&app, prod.id, "summarize").await.is_none());
    // Environment and provider together: only chat.
    assert_eq!(state(&app, openai_prod.id, "chat").await.unwrap().value, Some(1.0));
    assert!(state(&app, openai_prod.id, "embed").await.is_none());
    // Unnarrowed, chat counts both environments: 31 of 1000 over the window.
    let s = state(&app, everywhere.id, "chat").await.unwrap();
    assert_eq!((s.state.as_str(), s.value), ("firing", Some(15.5)));
    assert_eq!(state(&app, everywhere.id, "summarize").await.unwrap().state, "firing");

    // The notification says where.
    let n = app.engine.list_notifications(&op, 100).await.unwrap();
    let fired = n.iter().find(|x| x.rule_id == Some(prod.id)).expect("prod rule notified");
    assert!(fired.summary.contains("embed") && !fired.summary.contains("chat"), "{fired:?}");

    // The preview picks a model the narrowed rule covers.
    let pv = app.engine.preview_alert_rule(&op, AlertRule { models: vec!["chat".into(), "embed".into()], ..openai_prod.clone() }, 3600 * 4).await.unwrap();
    assert_eq!(pv.model, "chat");
    let none = AlertRule { providers: vec!["mistral".into()], ..openai_prod.clone() };
    assert!(app.engine.preview_alert_rule(&op, none, 3600 * 4).await.is_err(), "no model logs through mistral");
});

both_backends!(no_data_and_anomaly_rules_on_recorded_series, |app: TestApp| async move {
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let t0 = t0();
    // No data: 10 minutes of logs, then silence, then logs again at minute 16.
    ingest(&app, &key, minutes("batch", t0, 10, 10, 0)).await;
    let nd = app.engine.save_alert_rule(&op, AlertRule { kind: AlertKind::NoData, window_secs: 300, ..rule("batch stopped", &["batch"]) }).await.unwrap();
    app.engine.evaluate_alerts(t0 + 14 * MIN).await.unwrap();
    assert_eq!(state(&app, nd.id, "batch").await.unwrap().state, "ok", "minute 9 is still in the window");
    app.engine.evaluate_alerts(t0 + 15 * MIN).await.unwrap();
    let s = state(&app, nd.id, "batch").await.unwrap();
    assert_eq!((s.state.as_str(), s.severity.as_str()), ("firing", "critical"));
    ingest(&app, &key, minutes("batch", t0 + 16 * MIN, 1, 10, 0)).await;
    app.engine.evaluate_alerts(t0 + 17 * MIN).await.unwrap();
    assert_eq!(state(&app, nd.id, "batch").await.unwrap().state, "ok");

    // Anomaly: request rate against the same 5 minutes on the previous 7 days (~100/min).
    let day = 86_400_000;
    let mut recs = Vec::new();
    for k in 1..=7 {
        for start in [t0 + 25 * MIN, t0 + 35 * MIN] {
            recs.extend(minutes("seasonal", start - k * day, 5, 95 + k, 0));
        }
    }
    // Today: normal at minutes 25–30, four times the traffic at 35–40.
    recs.extend(minutes("seasonal", t0 + 25 * MIN, 5, 100, 0));
    recs.extend(minutes("seasonal", t0 + 35 * MIN, 5, 400, 0));
    ingest(&app, &key, recs).await;
    let an = app
        .engine
        .save_alert_rule(&op, AlertRule { kind: AlertKind::Anomaly, metric: "request_rate".into(), comparison: "<>".into(), sensitivity: 3.0, window_secs: 300, ..rule("traffic anomaly", &["seasonal"]) })
        .await
        .unwrap();
    app.engine.evaluate_alerts(t0 + 30 * MIN).await.unwrap();
    assert_eq!(state(&app, an.id, "seasonal").await.unwrap().state, "ok", "normal traffic stays quiet");
    app.engine.evaluate_alerts(t0 + 40 * MIN).await.unwrap();
    let s = state(&app, an.id, "seasonal").await.unwrap();
    assert_eq!((s.state.as_str(), s.severity.as_str()), ("firing", "warning"));
    let e = app.engine.alert_history(&op, Some(an.id), None, 10).await.unwrap();
    assert!(e[0].detail.starts_with("band "), "{e:?}");

    // The preview draws the band and finds the moment it would have fired.
    let pv = app.engine.preview_alert_rule(&op, an.clone(), 86_400).await.unwrap();
    assert_eq!(pv.model, "seasonal");
    assert!(pv.points.iter().any(|p| p.band.is_some()));
    assert!(pv.points.iter().any(|p| p.firing), "the spike is in the last 24 hours");
});

/// A webhook receiver that records what it gets, answering `status` (503 to play "down").
async fn receiver(status: Arc<Mutex<u16>>) -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>) {
    let got: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, status) = (g.clone(), status.clone());
            async move {
                let code = *status.lock().unwrap();
                if code == 200 {
                    g.lock().unwrap().push((headers, body));
                }
                axum::http::StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn verify(secret: &str, headers: &axum::http::HeaderMap, body: &str) {
    standardwebhooks::Webhook::new(secret).unwrap().verify(body.as_bytes(), headers).expect("valid Standard Webhooks signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_survives_a_down_receiver_and_a_restart_silence_and_ack() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let status = Arc::new(Mutex::new(503));
    let (url, got) = receiver(status.clone()).await;
    let hook = channel(&app, "hook", "webhook", &url).await;
    assert!(hook.secret.starts_with("whsec_"), "a signing secret is generated");
    let t0 = t0();
    ingest(&app, &key, minutes("chat", t0, 5, 10, 10)).await;
    let r = app
        .engine
        .save_alert_rule(&op, AlertRule { critical: Some(50.0), channels: vec![hook.id], runbook_url: "https://wiki.example/errors".into(), ..rule("errors", &["chat"]) })
        .await
        .unwrap();
    assert_eq!(app.engine.evaluate_alerts(t0 + 5 * MIN).await.unwrap(), 1);

    // The receiver is down: the attempt is recorded and retried later.
    let settings = modelwatch::alerting::AlertSettings {
        interval: Duration::ZERO,
        public_url: "https://mw.example".into(),
        smtp_url: None,
        smtp_from: "Modelwatch <a@b.c>".into(),
    };
    let client = reqwest::Client::new();
    modelwatch::alerting::dispatch(&app.engine, &client, &settings).await;
    let n = &app.engine.list_notifications(&op, 10).await.unwrap()[0];
    assert_eq!((n.status.as_str(), n.attempts), ("pending", 1));
    assert!(n.last_error.as_deref().unwrap().starts_with("HTTP 503"), "{n:?}");
    assert!(got.lock().unwrap().is_empty());

    // "Restart": a new engine on the same database finds the outbox; the receiver is back.
    let restarted = engine::Engine::open_with(
        &app.database_url,
        &engine::SecretKey::new(common::SECRET.to_vec()).unwrap(),
        engine::AuthSettings::default(),
        engine::ingest::IngestSettings::default(),
    )
    .await
    .unwrap()
    .with_target_policy(common::loopback_allowed());
    *status.lock().unwrap() = 200;
    // Not due yet: nothing is sent before the backoff.
    modelwatch::alerting::dispatch(&restarted, &client, &settings).await;
    assert!(got.lock().unwrap().is_empty());
    let later = engine::now_ms() + 60_000;
    modelwatch::alerting::dispatch_at(&restarted, &client, &settings, later).await;
    modelwatch::alerting::dispatch_at(&restarted, &client, &settings, later + 60_000).await;
    let delivered = got.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "delivered once");
    let (headers, body) = &delivered[0];
    verify(&hook.secret, headers, body);
    let msg: Value = serde_json::from_str(body).unwrap();
    assert_eq!(msg["type"], "alert.firing");
    assert_eq!(msg["rule"]["name"], "errors");
    assert_eq!(msg["rule"]["runbook_url"], "https://wiki.example/errors");
    assert_eq!(msg["alerts"][0]["model"], "chat");
    assert_eq!(msg["alerts"][0]["severity"], "critical");
    assert_eq!(msg["alerts"][0]["value"], 100.0);
    assert_eq!(msg["alerts"][0]["dashboard_url"], "https://mw.example/models/chat");
    assert!(msg["summary"].as_str().unwrap().starts_with("[CRITICAL] errors on chat"));
    let n = &app.engine.list_notifications(&op, 10).await.unwrap()[0];
    assert_eq!((n.status.as_str(), n.attempts), ("delivered", 2));
    assert!(n.delivered_ms.is_some());
    // The first engine's own series: one evaluation, one alert firing, one failed attempt (the
    // delivery itself was the restarted engine's).
    let reader = app.api_key(&[Scope::Read], &[]).await;
    let text = reqwest::Client::new().get(app.url("/metrics")).bearer_auth(&reader).send().await.unwrap().text().await.unwrap();
    for line in ["modelwatch_alert_evaluations_total 1", "modelwatch_alerts_firing 1", "modelwatch_notification_failures_total 1", "modelwatch_notifications_delivered_total 0"] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }

    // Acknowledged: recorded, and no repeat notifications.
    app.engine.acknowledge_alert(&op, r.id, "chat").await.unwrap();
    let s = state(&app, r.id, "chat").await.unwrap();
    assert_eq!(s.acked_by.as_deref(), Some("operator"));
    assert!(events(&app, r.id).await.iter().any(|e| e.0 == "acknowledged"));
    let repeat_at = t0 + 5 * MIN + r.repeat_secs * 1000 + MIN;
    ingest(&app, &key, minutes("chat", repeat_at - 5 * MIN, 5, 10, 10)).await;
    assert_eq!(app.engine.evaluate_alerts(repeat_at).await.unwrap(), 0, "acknowledged: no repeat");

    // Silenced (silences run on the wall clock, so this part is now): a new breach on another
    // model records the firing, sends nothing.
    let now = (engine::now_ms() / MIN) * MIN;
    ingest(&app, &key, minutes("embed", now - 5 * MIN, 5, 10, 10)).await;
    let r2 = app.engine.save_alert_rule(&op, AlertRule { critical: Some(50.0), channels: vec![hook.id], ..rule("embed errors", &["embed"]) }).await.unwrap();
    app.engine.create_silence(&op, Some(r2.id), None, 60, "maintenance").await.unwrap();
    assert!(app.engine.create_silence(&op, None, None, 60, "x").await.is_err(), "a silence names a rule or a model");
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    let sent = app.engine.list_notifications(&op, 100).await.unwrap();
    assert!(sent.iter().all(|n| n.rule_id != Some(r2.id)), "silenced: nothing queued for it");
    let s = state(&app, r2.id, "embed").await.unwrap();
    assert_eq!(s.state, "firing");
    assert!(s.silenced);
    let e = events(&app, r2.id).await;
    assert_eq!(e[0].0, "firing");
    assert!(app.engine.alert_history(&op, Some(r2.id), None, 1).await.unwrap()[0].detail.contains("silenced"));
}

both_backends!(rbac_on_rules_silences_and_channels, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "m1").await;
    app.create_model(&admin, "m2").await;
    let editor_id = app.create_user(&admin, "ed", "editor", "editor-pass-1").await;
    let viewer_id = app.create_user(&admin, "vi", "viewer", "viewer-pass-1").await;
    app.grant(&admin, editor_id, "m1", false).await;
    app.grant(&admin, viewer_id, "m1", false).await;
    let editor = app.login("ed", "editor-pass-1").await;
    let viewer = app.login("vi", "viewer-pass-1").await;
    let form = |models: &str| {
        vec![
            ("rule[name]", "r".to_string()),
            ("rule[models]", models.to_string()),
            ("rule[kind]", "threshold".into()),
            ("rule[metric]", "error_rate".into()),
            ("rule[critical]", "5".into()),
            ("rule[enabled]", "on".into()),
        ]
    };
    let call = |c: reqwest::Client, name: &'static str, f: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(&c, name, &f).await.status().as_u16()
        }
    };
    // Viewers may not create rules; editors only on granted models; admins anywhere.
    assert_eq!(call(viewer.clone(), "save_alert_rule", form("m1")).await, 403);
    assert_eq!(call(editor.clone(), "save_alert_rule", form("m2")).await, 404);
    assert_eq!(call(editor.clone(), "save_alert_rule", form("*")).await, 403);
    assert_eq!(call(editor.clone(), "save_alert_rule", form("m1")).await, 200);
    assert_eq!(call(admin.clone(), "save_alert_rule", form("m2")).await, 200);
    // Viewers see rules and states of their models, not the others.
    let rules = app.call_ok(&viewer, "list_alert_rules", &[]).await;
    assert_eq!(rules.as_array().unwrap().len(), 1);
    let rules = app.call_ok(&admin, "list_alert_rules", &[]).await;
    let m2_rule = rules.as_array().unwrap().iter().find(|r| r["models"][0] == "m2").unwrap()["id"].as_i64().unwrap().to_string();
    assert_eq!(call(editor.clone(), "delete_alert_rule", vec![("id", m2_rule.clone())]).await, 404);
    // Channels: admins only; silences: editors on granted models.
    let ch = vec![("name", "c".to_string()), ("kind", "slack".into()), ("url", "http://127.0.0.1:9/x".into())];
    assert_eq!(call(editor.clone(), "create_channel", ch.clone()).await, 403);
    assert_eq!(call(admin.clone(), "create_channel", ch).await, 200);
    assert_eq!(call(viewer.clone(), "list_channels", vec![]).await, 403);
    assert_eq!(call(viewer.clone(), "list_notifications", vec![]).await, 403);
    assert_eq!(call(viewer.clone(), "create_silence", vec![("model", "m1".into()), ("minutes", "10".into()), ("comment", "c".into())]).await, 403);
    assert_eq!(call(editor.clone(), "create_silence", vec![("model", "m2".into()), ("minutes", "10".into()), ("comment", "c".into())]).await, 404);
    assert_eq!(call(editor.clone(), "create_silence", vec![("model", "m1".into()), ("minutes", "10".into()), ("comment", "deploy".into())]).await, 200);
    assert_eq!(call(editor.clone(), "create_silence", vec![("model", "m1".into()), ("minutes", "10".into()), ("comment", " ".into())]).await, 422);
    // Bad rules are refused with the field.
    let mut bad = form("m1");
    bad.push(("rule[window_minutes]", "0".into()));
    let f: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = app.call(&editor, "save_alert_rule", &f).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("window_secs"));
    // Anonymous: 401.
    assert_eq!(call(reqwest::Client::new(), "alert_states", vec![]).await, 401);

    // The notification log: editors see their models' rules, not a rule on every model.
    let op = Principal::operator();
    let wkey = app.api_key(&[Scope::Ingest], &[]).await;
    let t0 = t0();
    ingest(&app, &wkey, minutes("m1", t0, 5, 10, 10)).await;
    ingest(&app, &wkey, minutes("m2", t0, 5, 10, 10)).await;
    let hook = channel(&app, "log-hook", "webhook", "http://127.0.0.1:9/x").await;
    let mine = app.engine.save_alert_rule(&op, AlertRule { critical: Some(50.0), channels: vec![hook.id], ..rule("m1 only", &["m1"]) }).await.unwrap();
    app.engine.save_alert_rule(&op, AlertRule { critical: Some(50.0), channels: vec![hook.id], ..rule("everything", &["*"]) }).await.unwrap();
    app.engine.evaluate_alerts(t0 + 5 * MIN).await.unwrap();
    let log = app.call_ok(&editor, "list_notifications", &[]).await;
    let ids: Vec<i64> = log.as_array().unwrap().iter().map(|n| n["rule_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![mine.id], "{log}");
    assert_eq!(app.call_ok(&admin, "list_notifications", &[]).await.as_array().unwrap().len(), 2);

    // REST: a read key lists the rules of its models; changes need a signed-in user.
    let key = app.api_key(&[Scope::Read], &["m2"]).await;
    let r = reqwest::Client::new().get(app.url("/api/v1/alerts/rules")).bearer_auth(&key).send().await.unwrap();
    let list: Vec<Value> = r.json().await.unwrap();
    let names: Vec<&str> = list.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["everything", "r"], "rules covering m2");
    let body = json!({"id": 0, "name": "rest rule", "enabled": true, "kind": "threshold", "models": ["m1"], "metric": "latency_p95",
        "window_secs": 600, "comparison": ">", "warning": 800.0, "critical": 2000.0, "for_secs": 120, "min_requests": 20, "no_data": "keep",
        "sensitivity": 3.0, "seasonality": "day", "channels": [], "repeat_secs": 3600});
    let r = reqwest::Client::new().post(app.url("/api/v1/alerts/rules")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = editor.post(app.url("/api/v1/alerts/rules")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!((created["name"].as_str(), created["created_by"].as_str()), (Some("rest rule"), Some("ed")));
    let id = created["id"].as_i64().unwrap();
    let mut changed = body.clone();
    changed["critical"] = json!(2500.0);
    let r = editor.put(app.url(&format!("/api/v1/alerts/rules/{id}"))).json(&changed).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got: Value = admin.get(app.url(&format!("/api/v1/alerts/rules/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["critical"], 2500.0);
    let r = editor.post(app.url("/api/v1/alerts/rules")).header("content-type", "application/json").body("{\"name\": 5}").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(viewer.delete(app.url(&format!("/api/v1/alerts/rules/{id}"))).send().await.unwrap().status(), 403);
    assert_eq!(editor.delete(app.url(&format!("/api/v1/alerts/rules/{id}"))).send().await.unwrap().status(), 204);
});

/// The Python interpreter of the test virtualenv (aiosmtpd is installed there).
fn python() -> Option<String> {
    match std::env::var("MODELWATCH_OTEL_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("MODELWATCH_REQUIRE_OTEL_PYTHON").is_ok() => panic!("MODELWATCH_OTEL_PYTHON is not set"),
        _ => {
            eprintln!("skipped: MODELWATCH_OTEL_PYTHON not set (./dev.sh test sets it)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_webhook_and_email_fire_once_and_resolve_once() {
    let Some(python) = python() else { return };
    // A local SMTP server writing a maildir.
    let mail = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut smtp = tokio::process::Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(mail.path().join("md"))
        .kill_on_drop(true)
        .spawn()
        .expect("aiosmtpd starts");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| {
        c.alerts.interval = Duration::from_secs(1);
        c.alerts.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await
    .unwrap();
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let (url, got) = receiver(Arc::new(Mutex::new(200))).await;
    let hook = channel(&app, "hook", "webhook", &url).await;
    let email = channel(&app, "mail", "email", "").await;
    let r = app
        .engine
        .save_alert_rule(&op, AlertRule { window_secs: 60, critical: Some(50.0), channels: vec![hook.id, email.id], ..rule("chat errors", &["chat"]) })
        .await
        .unwrap();
    let now = engine::now_ms();
    let recs: Vec<Value> = (0..10).map(|i| json!({"model": "chat", "timestamp": now - i, "status": "error", "error_type": "timeout"})).collect();
    let breach_at = std::time::Instant::now();
    ingest(&app, &key, recs).await;
    let wait = |n: usize| {
        let got = got.clone();
        async move {
            for _ in 0..200 {
                if got.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no webhook within 20 s");
        }
    };
    wait(1).await;
    assert!(breach_at.elapsed() < Duration::from_secs(15), "breach to webhook took {:?}", breach_at.elapsed());
    // Data recovers: 100 ok requests bring the rate under 50 %.
    let now = engine::now_ms();
    let recs: Vec<Value> = (0..100).map(|i| json!({"model": "chat", "timestamp": now - i, "latency_ms": 80})).collect();
    ingest(&app, &key, recs).await;
    wait(2).await;
    // A few more cycles: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let delivered = got.lock().unwrap().clone();
    assert_eq!(delivered.len(), 2, "one firing, one resolved");
    for (h, b) in &delivered {
        verify(&hook.secret, h, b);
    }
    let kinds: Vec<String> = delivered.iter().map(|(_, b)| serde_json::from_str::<Value>(b).unwrap()["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["alert.firing", "alert.resolved"]);
    // The e-mails: one firing, one resolved, to the channel's address.
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = std::fs::read_dir(mail.path().join("md/new")).map(|d| d.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap()).collect()).unwrap_or_default();
        if mails.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("Subject: [CRITICAL] chat errors on chat")), "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("Subject: [RESOLVED] chat errors on chat")));
    assert!(mails.iter().all(|m| m.contains("To: oncall@example.com")));
    assert!(mails.iter().any(|m| m.contains("http://modelwatch.test/models/chat")));
    let n = app.engine.list_notifications(&op, 10).await.unwrap();
    assert_eq!(n.len(), 4);
    assert!(n.iter().all(|x| x.status == "delivered" && x.attempts == 1), "{n:?}");
    let s = state(&app, r.id, "chat").await.unwrap();
    assert_eq!(s.state, "ok");
    let _ = smtp.kill().await;
}

/// A receiver for Slack and PagerDuty posts (path → bodies).
async fn multi_receiver() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/{kind}",
        axum::routing::post(move |axum::extract::Path(kind): axum::extract::Path<String>, body: String| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push((kind, serde_json::from_str(&body).unwrap()));
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, got)
}

both_backends!(slack_pagerduty_grouping_repeat_and_lease, |app: TestApp| async move {
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let (base, got) = multi_receiver().await;
    let slack = channel(&app, "slack", "slack", &format!("{base}/slack")).await;
    let pd = app
        .engine
        .create_channel(&op, AlertChannel { id: 0, name: "pd".into(), kind: "pagerduty".into(), url: format!("{base}/pd"), secret: "R0UTINGKEY".into(), to: vec![], created_at: 0 })
        .await
        .unwrap();
    let t0 = t0();
    // Two models breach together under one rule on every model.
    ingest(&app, &key, minutes("alpha", t0, 5, 10, 8)).await;
    ingest(&app, &key, minutes("beta", t0, 5, 10, 9)).await;
    let r = app
        .engine
        .save_alert_rule(&op, AlertRule { critical: Some(50.0), channels: vec![slack.id, pd.id], repeat_secs: 600, ..rule("all models", &["*"]) })
        .await
        .unwrap();
    // One Slack message for both models; PagerDuty one event per model.
    assert_eq!(app.engine.evaluate_alerts(t0 + 5 * MIN).await.unwrap(), 3);
    let settings = modelwatch::alerting::AlertSettings { interval: Duration::ZERO, public_url: "https://mw.example".into(), smtp_url: None, smtp_from: "m <a@b.c>".into() };
    let client = reqwest::Client::new();
    modelwatch::alerting::dispatch(&app.engine, &client, &settings).await;
    let sent = got.lock().unwrap().clone();
    let slack_msgs: Vec<&Value> = sent.iter().filter(|(k, _)| k == "slack").map(|(_, v)| v).collect();
    assert_eq!(slack_msgs.len(), 1);
    let text = slack_msgs[0]["text"].as_str().unwrap();
    assert!(text.starts_with("*[CRITICAL] all models on alpha, beta"), "{text}");
    assert!(text.contains("https://mw.example/models/alpha") && text.contains("https://mw.example/models/beta"), "{text}");
    let mut pd_events: Vec<&Value> = sent.iter().filter(|(k, _)| k == "pd").map(|(_, v)| v).collect();
    pd_events.sort_by_key(|v| v["payload"]["source"].as_str().unwrap().to_string());
    assert_eq!(pd_events.len(), 2);
    assert_eq!(pd_events[0]["routing_key"], "R0UTINGKEY");
    assert_eq!(pd_events[0]["event_action"], "trigger");
    assert_eq!(pd_events[0]["payload"]["severity"], "critical");
    assert_eq!(pd_events[0]["dedup_key"], format!("modelwatch-rule-{}-alpha", r.id));
    assert_eq!(pd_events[1]["dedup_key"], format!("modelwatch-rule-{}-beta", r.id));

    // Still firing, not acknowledged: repeated after the repeat interval, not before.
    ingest(&app, &key, minutes("alpha", t0 + 5 * MIN, 10, 10, 8)).await;
    ingest(&app, &key, minutes("beta", t0 + 5 * MIN, 10, 10, 9)).await;
    assert_eq!(app.engine.evaluate_alerts(t0 + 9 * MIN).await.unwrap(), 0);
    assert_eq!(app.engine.evaluate_alerts(t0 + 15 * MIN).await.unwrap(), 3);
    let n = app.engine.list_notifications(&op, 3).await.unwrap();
    assert!(n.iter().all(|x| x.event == "repeat"), "{n:?}");

    // Resolved: PagerDuty resolves each with the same dedup key.
    got.lock().unwrap().clear();
    ingest(&app, &key, minutes("alpha", t0 + 15 * MIN, 5, 10, 0)).await;
    ingest(&app, &key, minutes("beta", t0 + 15 * MIN, 5, 10, 0)).await;
    modelwatch::alerting::dispatch(&app.engine, &client, &settings).await;
    got.lock().unwrap().clear();
    assert_eq!(app.engine.evaluate_alerts(t0 + 20 * MIN).await.unwrap(), 3);
    modelwatch::alerting::dispatch(&app.engine, &client, &settings).await;
    let sent = got.lock().unwrap().clone();
    let resolves: Vec<&Value> = sent.iter().filter(|(k, _)| k == "pd").map(|(_, v)| v).collect();
    assert_eq!(resolves.len(), 2);
    assert!(resolves.iter().all(|v| v["event_action"] == "resolve"));
    assert!(sent.iter().any(|(k, v)| k == "slack" && v["text"].as_str().unwrap().starts_with("*[RESOLVED] all models on alpha, beta")));

    // Send test on PagerDuty: a trigger and its resolve; on Slack: one message.
    got.lock().unwrap().clear();
    app.engine.test_channel(&op, pd.id).await.unwrap();
    app.engine.test_channel(&op, slack.id).await.unwrap();
    modelwatch::alerting::dispatch(&app.engine, &client, &settings).await;
    let sent = got.lock().unwrap().clone();
    let pd_test: Vec<&str> = sent.iter().filter(|(k, _)| k == "pd").map(|(_, v)| v["event_action"].as_str().unwrap()).collect();
    assert_eq!(pd_test, vec!["trigger", "resolve"]);
    assert!(sent.iter().any(|(k, v)| k == "slack" && v["text"].as_str().unwrap().starts_with("*[TEST]")));

    // Per-model history.
    let h = app.engine.alert_history(&op, None, Some("beta"), 100).await.unwrap();
    assert!(!h.is_empty() && h.iter().all(|e| e.model == "beta"));

    // The evaluator lease: one holder at a time; another takes over once it expires.
    let now = engine::now_ms();
    assert!(app.engine.acquire_alert_lease("a", now, 30_000).await.unwrap());
    assert!(!app.engine.acquire_alert_lease("b", now + 1_000, 30_000).await.unwrap());
    assert!(app.engine.acquire_alert_lease("a", now + 2_000, 30_000).await.unwrap(), "the holder renews");
    assert!(app.engine.acquire_alert_lease("b", now + 40_000, 30_000).await.unwrap(), "expired: taken over");
    assert!(!app.engine.acquire_alert_lease("a", now + 41_000, 30_000).await.unwrap());
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_after_silences_and_disabling_acks_survive_escalation_clears() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let op = Principal::operator();
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let hook = channel(&app, "hook", "webhook", "http://127.0.0.1:9/hook").await;
    let bad = AlertChannel { secret: "whsec_notbase64!".into(), ..hook.clone() };
    assert_eq!(app.engine.create_channel(&op, AlertChannel { id: 0, name: "bad".into(), ..bad }).await.unwrap_err().field(), Some("secret"));
    let events_of = |rule: i64| {
        let app = &app;
        async move {
            let mut v: Vec<String> = app.engine.list_notifications(&Principal::operator(), 100).await.unwrap().into_iter().filter(|n| n.rule_id == Some(rule)).map(|n| n.event).collect();
            v.reverse();
            v
        }
    };
    // Wall-clock data (silences run on the wall clock): 4 minutes of 60 % errors.
    let now = (engine::now_ms() / MIN) * MIN;
    ingest(&app, &key, minutes("m", now - 4 * MIN, 4, 10, 6)).await;
    let r = app
        .engine
        .save_alert_rule(&op, AlertRule { warning: Some(50.0), critical: Some(70.0), channels: vec![hook.id], ..rule("errors", &["m"]) })
        .await
        .unwrap();
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    assert_eq!(events_of(r.id).await, vec!["firing"]);
    // Acknowledged, then evaluated again: the acknowledgement stays.
    app.engine.acknowledge_alert(&op, r.id, "m").await.unwrap();
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    assert_eq!(state(&app, r.id, "m").await.unwrap().acked_by.as_deref(), Some("operator"));
    // Escalation to critical: announced, and the acknowledgement is cleared.
    ingest(&app, &key, minutes("m", now - 4 * MIN, 4, 10, 10)).await;
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    let s = state(&app, r.id, "m").await.unwrap();
    assert_eq!((s.severity.as_str(), s.acked_by.as_deref()), ("critical", None));
    assert_eq!(events_of(r.id).await, vec!["firing", "firing"]);
    // Resolved while silenced: nothing then; the resolve goes out once the silence is gone.
    let silence = app.engine.create_silence(&op, Some(r.id), None, 30, "deploy").await.unwrap();
    ingest(&app, &key, minutes("m", now - 4 * MIN, 4, 500, 0)).await;
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    assert_eq!(state(&app, r.id, "m").await.unwrap().state, "ok");
    assert_eq!(events_of(r.id).await, vec!["firing", "firing"]);
    app.engine.delete_silence(&op, silence).await.unwrap();
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    assert_eq!(events_of(r.id).await, vec!["firing", "firing", "resolved"]);
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    assert_eq!(events_of(r.id).await.len(), 3, "resolved once");

    // Disabling a firing rule resolves what was announced and hides its state.
    ingest(&app, &key, minutes("n", now - 4 * MIN, 4, 10, 9)).await;
    let r2 = app.engine.save_alert_rule(&op, AlertRule { critical: Some(50.0), channels: vec![hook.id], ..rule("n errors", &["n"]) }).await.unwrap();
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    assert_eq!(events_of(r2.id).await, vec!["firing"]);
    app.engine.save_alert_rule(&op, AlertRule { enabled: false, ..r2.clone() }).await.unwrap();
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    assert_eq!(events_of(r2.id).await, vec!["firing", "resolved"]);
    assert!(state(&app, r2.id, "n").await.is_none());
    // Deleting a firing rule resolves too.
    let r3 = app.engine.save_alert_rule(&op, AlertRule { critical: Some(50.0), channels: vec![hook.id], ..rule("n again", &["n"]) }).await.unwrap();
    app.engine.evaluate_alerts(engine::now_ms()).await.unwrap();
    app.engine.delete_alert_rule(&op, r3.id).await.unwrap();
    let n = app.engine.list_notifications(&op, 100).await.unwrap();
    let last_two: Vec<&str> = n.iter().take(2).map(|x| x.event.as_str()).collect();
    assert_eq!(last_two, vec!["resolved", "firing"], "{n:?}");
}

// ----- outbound target policy (SSRF) ---------------------------------------------------------

/// The JSON error of a refused server function call: (status, field, message).
async fn refusal(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["field"].as_str().unwrap_or("").to_string(), body["message"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_urls_to_internal_addresses_are_refused_with_the_field() {
    let (url, _) = receiver(Arc::new(Mutex::new(200))).await;
    let port = url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_string();
    let form = |kind: &'static str, url: String| {
        let secret = if kind == "pagerduty" { "KEY" } else { "" };
        vec![("name", format!("{kind} {url}")), ("kind", kind.to_string()), ("url", url), ("secret", secret.to_string())]
    };
    let call = |app: &TestApp, admin: &reqwest::Client, f: Vec<(&'static str, String)>| {
        let (url, admin) = (app.url("/fn/create_channel"), admin.clone());
        async move { admin.post(url).header("accept", "application/json").form(&f).send().await.unwrap() }
    };

    // The default configuration: public addresses only.
    let strict = common::spawn_app_with(common::Backend::Sqlite, |c| c.targets = engine::outbound::TargetPolicy::default()).await.unwrap();
    let admin = strict.admin().await;
    for (kind, url) in [
        ("webhook", url.clone()),
        ("webhook", format!("http://localhost:{port}/hook")),
        ("slack", format!("http://[::1]:{port}/hook")),
        ("webhook", format!("http://0.0.0.0:{port}/hook")),
        ("webhook", format!("http://2130706433:{port}/hook")),
        ("slack", format!("http://127.1:{port}/hook")),
        ("webhook", format!("http://[::ffff:127.0.0.1]:{port}/hook")),
        ("pagerduty", format!("http://0x7f.1:{port}/hook")),
        ("webhook", "http://10.0.0.1/hook".to_string()),
        ("slack", "https://192.168.1.1/hook".to_string()),
    ] {
        let (status, field, message) = refusal(call(&strict, &admin, form(kind, url.clone())).await).await;
        assert_eq!((status, field.as_str()), (422, "url"), "{kind} {url}: {message}");
        assert!(message.contains("--allow-private-targets"), "{url}: the message says how to allow it: {message}");
    }
    for url in ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/"] {
        let (status, field, message) = refusal(call(&strict, &admin, form("webhook", url.into())).await).await;
        assert_eq!((status, field.as_str()), (422, "url"), "{url}: {message}");
        assert!(message.contains("never"), "{url}: {message}");
    }
    assert!(strict.call_ok(&admin, "list_channels", &[]).await.as_array().unwrap().is_empty());

    // Loopback allowed by configuration (the harness): accepted; other internal and metadata
    // addresses are still refused.
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let admin = app.admin().await;
    for (kind, url) in [("webhook", url.clone()), ("slack", format!("http://localhost:{port}/hook"))] {
        let r = call(&app, &admin, form(kind, url.clone())).await;
        assert_eq!(r.status(), 200, "{url}: {}", r.text().await.unwrap());
    }
    for url in ["http://169.254.169.254/", "http://10.0.0.1/hook", "http://[fe80::1]/hook"] {
        let (status, field, message) = refusal(call(&app, &admin, form("webhook", url.into())).await).await;
        assert_eq!((status, field.as_str()), (422, "url"), "{url}: {message}");
    }

    // Everything allowed: metadata still refused.
    let open = common::spawn_app_with(common::Backend::Sqlite, |c| c.targets = engine::outbound::TargetPolicy::allow_all()).await.unwrap();
    let admin = open.admin().await;
    assert_eq!(call(&open, &admin, form("webhook", "http://10.0.0.1/hook".into())).await.status(), 200);
    let (status, field, _) = refusal(call(&open, &admin, form("webhook", "http://169.254.169.254/".into())).await).await;
    assert_eq!((status, field.as_str()), (422, "url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_follow_no_redirects_and_check_addresses_when_sending() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let op = Principal::operator();
    let (hook_url, got) = receiver(Arc::new(Mutex::new(200))).await;
    // A receiver that redirects to the real one (an allowed address, even).
    let target = hook_url.clone();
    let redirector = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let target = target.clone();
            async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });

    let settings = modelwatch::alerting::AlertSettings { interval: Duration::ZERO, public_url: "https://mw.example".into(), smtp_url: None, smtp_from: "m <a@b.c>".into() };
    let hook = channel(&app, "redirecting", "webhook", &redirect_url).await;
    app.engine.test_channel(&op, hook.id).await.unwrap();
    let client = modelwatch::alerting::client(app.engine.target_policy().clone()).unwrap();
    modelwatch::alerting::dispatch(&app.engine, &client, &settings).await;
    let n = &app.engine.list_notifications(&op, 10).await.unwrap()[0];
    assert_eq!(n.last_error.as_deref(), Some("HTTP 307 (redirects are not followed: give the channel the final URL)"), "{n:?}");
    assert!(got.lock().unwrap().is_empty(), "the redirect was not followed");

    // A channel saved while loopback was allowed, delivered by a server that no longer allows
    // it (e.g. the flag was removed): refused when sending, nothing reaches the receiver.
    let direct = channel(&app, "direct", "webhook", &hook_url).await;
    let strict = engine::Engine::open_with(
        &app.database_url,
        &engine::SecretKey::new(common::SECRET.to_vec()).unwrap(),
        engine::AuthSettings::default(),
        engine::ingest::IngestSettings::default(),
    )
    .await
    .unwrap();
    let id = strict.test_channel(&op, direct.id).await.unwrap();
    let client = modelwatch::alerting::client(strict.target_policy().clone()).unwrap();
    modelwatch::alerting::dispatch(&strict, &client, &settings).await;
    let n = app.engine.list_notifications(&op, 10).await.unwrap().into_iter().find(|n| n.id == id).unwrap();
    let error = n.last_error.clone().unwrap_or_default();
    assert!(error.starts_with("refused: 127.0.0.1 is a loopback address") && error.contains("--allow-private-targets"), "{n:?}");
    assert!(got.lock().unwrap().is_empty());

    // The same delivery under the harness's policy arrives.
    modelwatch::alerting::dispatch_at(&app.engine, &modelwatch::alerting::client(app.engine.target_policy().clone()).unwrap(), &settings, engine::now_ms() + 60_000).await;
    assert_eq!(got.lock().unwrap().len(), 1);
}
