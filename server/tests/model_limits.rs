//! Limits on the models ingest registers (a probe made 150,000 with one key): the registry
//! cap and the per-key rate refuse records one by one, the admin sees a warning, and the
//! admin's model list and the overview come in pages. On SQLite and Postgres.

mod common;

use common::TestApp;
use engine::Scope;
use engine::ingest::admission::ModelLimits;
use serde_json::{Value, json};

fn refusals(body: &Value) -> Vec<(i64, String, String)> {
    body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_i64().unwrap(), r["field"].as_str().unwrap().to_string(), r["message"].as_str().unwrap().to_string()))
        .collect()
}

async fn limited(backend: common::Backend) -> Option<TestApp> {
    common::spawn_app_with(backend, |c| c.ingest.model_limits = ModelLimits { max_models: 4, new_per_key_per_minute: 2 }).await
}

async fn new_models_are_limited(app: TestApp) {
    let admin = app.admin().await;
    app.create_model(&admin, "known").await;
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    // Two new models a minute for this key: the third new one is refused, the known one is not.
    let batch: Vec<Value> = ["a", "b", "c", "known"].iter().map(|m| json!({"model": m, "latency_ms": 5})).collect();
    let (status, body) = app.ingest(&key, &batch).await;
    assert_eq!((status, body["accepted"].as_i64()), (200, Some(3)), "{body}");
    let r = refusals(&body);
    assert_eq!((r.len(), r[0].0, r[0].1.as_str()), (1, 2, "logs[2].model"), "{body}");
    assert!(r[0].2.contains("--max-new-models-per-key-per-minute"), "{body}");
    // Another key may add one more: then the registry (4 models) is full for everyone.
    let other = app.api_key(&[Scope::Ingest], &[]).await;
    let (_, body) = app.ingest(&other, &[json!({"model": "d"}), json!({"model": "e"}), json!({"model": "a"})]).await;
    assert_eq!(body["accepted"].as_i64(), Some(2), "{body}");
    let r = refusals(&body);
    assert_eq!((r[0].0, r[0].1.as_str()), (1, "logs[1].model"), "{body}");
    assert!(r[0].2.contains("--max-models"), "{body}");
    let models = app.call_ok(&admin, "list_models", &[]).await;
    let names: Vec<&str> = models.as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "d", "known"]);
    // An admin may still register a model by hand.
    app.create_model(&admin, "by-hand").await;

    // The admin sees how full the registry is and what was refused.
    let page = app.call_ok(&admin, "admin_models", &[]).await;
    assert_eq!(page["limits"]["max_models"], 4);
    assert_eq!(page["limits"]["models"], 5);
    assert_eq!(page["limits"]["refused_records"], 2);
    assert!(page["limits"]["last_reason"].as_str().unwrap().contains("--max-models"));
    let html = admin.get(app.url("/admin/models")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-testid=\"model-limit-warning\"") && html.contains("Ingest refused 2 records for new models"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_models_are_limited_sqlite() {
    new_models_are_limited(limited(common::Backend::Sqlite).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_models_are_limited_postgres() {
    if let Some(app) = limited(common::Backend::Postgres).await {
        new_models_are_limited(app).await;
    }
}

both_backends!(model_lists_come_in_pages, |app: TestApp| async move {
    let admin = app.admin().await;
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    // 120 models, within the default limits of two keys' minute.
    for chunk in (0..120).collect::<Vec<_>>().chunks(60) {
        let key = if chunk[0] == 0 { key.clone() } else { app.api_key(&[Scope::Ingest], &[]).await };
        let batch: Vec<Value> = chunk.iter().map(|i| json!({"model": format!("m{i:03}"), "latency_ms": 3})).collect();
        let (_, body) = app.ingest(&key, &batch).await;
        assert_eq!(body["accepted"].as_i64(), Some(60), "{body}");
    }
    // Admin list: pages of 50 by name, a filter, a page past the end shows the last.
    let page = app.call_ok(&admin, "admin_models", &[("page", "3")]).await;
    assert_eq!((page["total"].as_u64(), page["pages"].as_u64(), page["page"].as_u64()), (Some(120), Some(3), Some(3)));
    let names: Vec<&str> = page["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 20);
    assert_eq!((names[0], names[19]), ("m100", "m119"));
    let page = app.call_ok(&admin, "admin_models", &[("q", "m05"), ("page", "9")]).await;
    assert_eq!((page["total"].as_u64(), page["page"].as_u64()), (Some(10), Some(1)));
    let html = admin.get(app.url("/admin/models?page=2")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("51–100 of 120 models"), "{html}");
    assert!(html.contains("href=\"/admin/models?page=1\"") && html.contains("href=\"/admin/models?page=3\""));
    // The overview renders one page of 50 rows with links to the others.
    let html = admin.get(app.url("/?sort=name&page=3")).send().await.unwrap().text().await.unwrap();
    assert_eq!(html.matches("<tr data-model=").count(), 20, "third page of the overview");
    assert!(html.contains("Models 101–120 of 120"), "overview pager");
    let html = admin.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert_eq!(html.matches("<tr data-model=").count(), 50);
});
