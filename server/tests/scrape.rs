//! Scrape targets: Modelwatch scrapes a local HTTP server serving vLLM metrics pages, keeps the
//! vLLM preset's series (gauges as they are, counters and histograms as increases) and shows
//! the target's health; a failing target shows its error.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::TestApp;
use serde_json::Value;

const PAGE1: &str = include_str!("fixtures/vllm_metrics_1.txt");
const PAGE2: &str = include_str!("fixtures/vllm_metrics_2.txt");

/// A model server stand-in: the first request gets page 1, later ones page 2; 500 when failing.
async fn fake_vllm() -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(AtomicBool::new(false));
    let (h, f) = (hits.clone(), failing.clone());
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (h, f) = (h.clone(), f.clone());
            async move {
                if f.load(Ordering::SeqCst) {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::from("engine dead"));
                }
                let n = h.fetch_add(1, Ordering::SeqCst);
                (axum::http::StatusCode::OK, if n == 0 { PAGE1 } else { PAGE2 }.to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits, failing)
}

async fn targets(app: &TestApp, admin: &reqwest::Client) -> Vec<Value> {
    app.call_ok(admin, "list_scrape_targets", &[]).await.as_array().unwrap().clone()
}

/// Waits (up to 15 s) until `ok` holds for the only target.
async fn wait_for(app: &TestApp, admin: &reqwest::Client, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..150 {
        let list = targets(app, admin).await;
        if let Some(t) = list.first()
            && ok(t)
        {
            return t.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}: {:?}", targets(app, admin).await);
}

fn series<'a>(k: &'a Value, name: &str) -> Option<&'a Value> {
    k["metrics"].as_array()?.iter().find(|m| m["name"] == name).map(|m| &m["total"])
}

both_backends!(scraping_a_vllm_page_stores_the_preset_series, |app: TestApp| async move {
    let (url, hits, failing) = fake_vllm().await;
    let admin = app.admin().await;
    let saved = app
        .call_ok(
            &admin,
            "save_scrape_target",
            &[("model", "llama-8b"), ("url", &url), ("interval_secs", "1"), ("preset", "vllm"), ("enabled", "on")],
        )
        .await;
    assert_eq!(saved["model"], "llama-8b");

    // Two scrapes: the first sets the counters' baselines, the second gives their increase.
    let t = wait_for(&app, &admin, "two scrapes", |t| {
        hits.load(Ordering::SeqCst) >= 2 && t["last_points"].as_i64().unwrap_or(0) > 2
    })
    .await;
    assert!(t["last_error"].is_null(), "{t}");
    assert!(t["last_success_ms"].as_i64().is_some());

    let reader = app.api_key(&[engine::Scope::Read], &[]).await;
    // The second page's fetch counts as a hit before its points are stored: wait for them.
    let mut k = Value::Null;
    for _ in 0..150 {
        let r = reqwest::Client::new().get(app.url("/api/v1/models/llama-8b/kpis?range=1h")).bearer_auth(&reader).send().await.unwrap();
        k = r.json().await.unwrap();
        if series(&k, "vllm:prompt_tokens_total").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sum = |name: &str| series(&k, name).and_then(|t| t["sum"].as_f64()).unwrap_or_else(|| panic!("{name} missing: {}", k["metrics"]));
    // Counters: the increase between the pages (later scrapes of page 2 add nothing).
    assert_eq!(sum("vllm:prompt_tokens_total"), 13940.0 - 9120.0);
    assert_eq!(sum("vllm:generation_tokens_total"), 800.0);
    assert_eq!(sum("vllm:request_success_total"), 4.0, "both finished_reason series together");
    // Histogram: the 4 new requests, all with a TTFT in (0.1, 0.25] s.
    assert_eq!(sum("vllm:time_to_first_token_seconds.count"), 4.0);
    assert!((sum("vllm:time_to_first_token_seconds.sum") - 0.69).abs() < 1e-9);
    let p50 = series(&k, "vllm:time_to_first_token_seconds.p50").unwrap()["avg"].as_f64().unwrap();
    assert!((p50 - 0.175).abs() < 1e-6, "p50 {p50}");
    // Gauges as sampled.
    assert_eq!(series(&k, "vllm:num_requests_waiting").unwrap()["max"].as_f64(), Some(3.0));
    assert_eq!(series(&k, "vllm:gpu_cache_usage_perc").unwrap()["min"].as_f64(), Some(0.0421));
    // Series outside the preset are not kept.
    for absent in ["process_cpu_seconds_total", "python_gc_objects_collected_total", "vllm:cache_config_info", "vllm:num_requests_swapped"] {
        assert!(series(&k, absent).is_none(), "{absent} should not be stored");
    }

    // The target's health shows on the admin page…
    let html = admin.get(app.url("/admin/scrape")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-testid=\"scrape-ok\"") && html.contains(&url), "admin page lists the healthy target");
    // …and a failing server shows its error.
    failing.store(true, Ordering::SeqCst);
    let t = wait_for(&app, &admin, "the error", |t| t["last_error"].as_str() == Some("HTTP 500")).await;
    assert_eq!(t["last_points"].as_i64(), Some(0));
    let html = admin.get(app.url("/admin/scrape")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("failing: HTTP 500"));

    // Deleting stops it.
    let id = t["id"].as_i64().unwrap().to_string();
    app.call_ok(&admin, "delete_scrape_target", &[("id", &id)]).await;
    assert!(targets(&app, &admin).await.is_empty());
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_are_refused_with_the_field() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let admin = app.admin().await;
    for (form, field) in [
        (vec![("model", "m"), ("url", "ftp://x/metrics"), ("interval_secs", "15"), ("preset", "vllm")], "url"),
        (vec![("model", "m"), ("url", "http://x/metrics"), ("interval_secs", "0"), ("preset", "vllm")], "interval_secs"),
        (vec![("model", "m"), ("url", "http://x/metrics"), ("interval_secs", "15"), ("preset", "custom")], "keep"),
        (vec![("model", "bad name"), ("url", "http://x/metrics"), ("interval_secs", "15"), ("preset", "tgi")], "model"),
    ] {
        let r = app.call(&admin, "save_scrape_target", &form).await;
        assert_eq!(r.status(), 422, "{form:?}");
        let body = r.text().await.unwrap();
        assert!(body.contains(field), "{field}: {body}");
    }
    // An unreachable server is recorded as the target's error, not a crash.
    app.call_ok(&admin, "save_scrape_target", &[("model", "m"), ("url", "http://127.0.0.1:9/metrics"), ("interval_secs", "1"), ("preset", "triton"), ("enabled", "on")]).await;
    let t = wait_for(&app, &admin, "the connection error", |t| t["last_error"].as_str().is_some_and(|e| e.starts_with("cannot connect"))).await;
    assert!(t["last_success_ms"].is_null());
}

// ----- outbound target policy (SSRF) ---------------------------------------------------------

/// A path a test server answers: status, content type, `location` header (if any) and body.
type Route = (&'static str, u16, &'static str, Option<String>, &'static str);

/// A server on `ip` answering each path as given; counts its hits.
async fn serve_on(ip: &str, routes: Vec<Route>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let mut app = axum::Router::new();
    for (path, status, content_type, location, body) in routes {
        let h = hits.clone();
        app = app.route(
            path,
            axum::routing::get(move || {
                let (h, location) = (h.clone(), location.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let mut resp = axum::response::Response::new(axum::body::Body::from(body));
                    *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                    resp.headers_mut().insert("content-type", content_type.parse().unwrap());
                    if let Some(to) = location {
                        resp.headers_mut().insert("location", to.parse().unwrap());
                    }
                    resp
                }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_errors_show_status_and_content_type_never_the_page() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let admin = app.admin().await;
    let html = "<html><head><title>Internal admin</title></head><body>api_key=SECRET-1234</body></html>\n";
    let (base, hits) = serve_on("127.0.0.1", vec![("/metrics", 200, "text/html; charset=utf-8", None, html)]).await;
    app.call_ok(&admin, "save_scrape_target", &[("model", "m"), ("url", &format!("{base}/metrics")), ("interval_secs", "1"), ("preset", "vllm"), ("enabled", "on")]).await;
    let t = wait_for(&app, &admin, "the error", |t| t["last_error"].is_string()).await;
    assert!(hits.load(Ordering::SeqCst) >= 1);
    let error = t["last_error"].as_str().unwrap();
    assert_eq!(error, "the page is not Prometheus text exposition (HTTP 200, content type text/html; charset=utf-8)");
    for leaked in ["SECRET", "api_key", "Internal", "<html", "title"] {
        assert!(!error.contains(leaked), "{leaked} in {error}");
    }
    let page = admin.get(app.url("/admin/scrape")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("SECRET-1234"), "the admin page shows no page text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_scrape_targets_are_refused_unless_allowed() {
    let (base, hits) = serve_on("127.0.0.1", vec![("/metrics", 200, "text/plain", None, PAGE1)]).await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let form = |url: String| vec![("model", "m".to_string()), ("url", url), ("interval_secs", "1".into()), ("preset", "vllm".into()), ("enabled", "on".into())];
    let save = |app: &TestApp, admin: &reqwest::Client, f: Vec<(&'static str, String)>| {
        let (url, admin) = (app.url("/fn/save_scrape_target"), admin.clone());
        async move {
            let r = admin.post(url).header("accept", "application/json").form(&f).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, body)
        }
    };

    // Default configuration: refused when saved, in every spelling of the address.
    let strict = common::spawn_app_with(common::Backend::Sqlite, |c| c.targets = engine::outbound::TargetPolicy::default()).await.unwrap();
    let admin = strict.admin().await;
    for url in [
        format!("{base}/metrics"),
        format!("http://localhost:{port}/metrics"),
        format!("http://[::1]:{port}/metrics"),
        format!("http://2130706433:{port}/metrics"),
        format!("http://0x7f.1:{port}/metrics"),
        format!("http://0.0.0.0:{port}/metrics"),
        "http://10.0.0.1:8000/metrics".to_string(),
        "http://100.64.0.1:8000/metrics".to_string(),
    ] {
        let (status, body) = save(&strict, &admin, form(url.clone())).await;
        assert_eq!((status, body["field"].as_str()), (422, Some("url")), "{url}: {body}");
        assert!(body["message"].as_str().unwrap().contains("--allow-private-targets"), "{url}: {body}");
    }
    let (status, body) = save(&strict, &admin, form("http://169.254.169.254/latest/meta-data/".into())).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("url")), "{body}");
    assert!(strict.call_ok(&admin, "list_scrape_targets", &[]).await.as_array().unwrap().is_empty());
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was fetched");

    // Allowed by configuration: scraped.
    let allowed = common::spawn_app_with(common::Backend::Sqlite, |c| c.targets = engine::outbound::TargetPolicy::parse("127.0.0.1/32").unwrap()).await.unwrap();
    let admin = allowed.admin().await;
    let (status, body) = save(&allowed, &admin, form(format!("{base}/metrics"))).await;
    assert_eq!(status, 200, "{body}");
    wait_for(&allowed, &admin, "a scrape", |t| t["last_success_ms"].is_i64()).await;
    assert!(hits.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_and_names_are_checked_when_connecting() {
    // Only 127.0.0.1 is allowed; a second "internal" server listens on 127.0.0.2.
    let (inner, inner_hits) = serve_on("127.0.0.2", vec![("/metrics", 200, "text/plain", None, PAGE1)]).await;
    let (base, hits) = serve_on(
        "127.0.0.1",
        vec![
            ("/metrics", 200, "text/plain", None, PAGE1),
            ("/moved", 302, "text/plain", Some("/metrics".to_string()), ""),
            ("/elsewhere", 302, "text/plain", Some(format!("{inner}/metrics")), ""),
            ("/metadata", 307, "text/plain", Some("http://169.254.169.254/latest/meta-data/".to_string()), ""),
        ],
    )
    .await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| c.targets = engine::outbound::TargetPolicy::parse("127.0.0.1/32").unwrap()).await.unwrap();
    let admin = app.admin().await;

    // A redirect from the allowed server to a refused address is not followed.
    app.call_ok(&admin, "save_scrape_target", &[("model", "m"), ("url", &format!("{base}/elsewhere")), ("interval_secs", "1"), ("preset", "vllm"), ("enabled", "on")]).await;
    let t = wait_for(&app, &admin, "the refusal", |t| t["last_error"].is_string()).await;
    let error = t["last_error"].as_str().unwrap();
    assert!(error.starts_with("refused: 127.0.0.2 is a loopback address"), "{error}");
    assert_eq!(inner_hits.load(Ordering::SeqCst), 0, "the redirect was not followed");
    assert!(hits.load(Ordering::SeqCst) >= 1);

    // The scraper's client, used directly: redirects within allowed addresses are followed,
    // those to metadata are not, and a name resolving to a refused address is not contacted.
    let policy = app.engine.target_policy().clone();
    let client = modelwatch::scraper::client(policy.clone()).unwrap();
    let fetch = |url: String| {
        let (client, policy) = (client.clone(), policy.clone());
        async move { modelwatch::scraper::fetch(&client, &policy, &url, Duration::from_secs(5)).await }
    };
    assert_eq!(fetch(format!("{base}/moved")).await.unwrap().status, 200);
    let error = fetch(format!("{base}/metadata")).await.unwrap_err();
    assert!(error.starts_with("refused: 169.254.169.254 is a cloud metadata address"), "{error}");
    let before = hits.load(Ordering::SeqCst);
    let strict = std::sync::Arc::new(engine::outbound::TargetPolicy::default());
    let strict_client = modelwatch::scraper::client(strict.clone()).unwrap();
    let resolved = strict_client.get(format!("http://localhost:{port}/metrics")).send().await.unwrap_err();
    let error = modelwatch::outbound::error_text(resolved);
    assert!(error.starts_with("refused: localhost (127.0.0.1) is a loopback address"), "{error}");
    assert_eq!(hits.load(Ordering::SeqCst), before, "nothing reached the server");
    // The same name under the app's policy connects (to 127.0.0.1; ::1 is dropped).
    assert_eq!(fetch(format!("http://localhost:{port}/metrics")).await.unwrap().status, 200);
}
