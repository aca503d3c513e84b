//! Operations: health and readiness, security headers, the page CSP nonce, 404s, bad input.

mod common;

use common::TestApp;

both_backends!(health_and_readiness, |app: TestApp| async move {
    let c = app.client();
    let r = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let expected = if app.database_url.starts_with("sqlite") { "sqlite" } else { "postgres" };
    assert_eq!(body["database"], expected);
});

both_backends!(security_headers_and_csp_nonce, |app: TestApp| async move {
    let r = app.client().get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_string();
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("nonce=\"{nonce}\"")), "hydration script carries the header's nonce");
    // A fresh nonce per response.
    let again = app.client().get(app.url("/login")).send().await.unwrap();
    assert!(!again.headers()["content-security-policy"].to_str().unwrap().contains(&nonce));
    // Non-HTML responses get a restrictive default policy too.
    let r = app.client().get(app.url("/healthz")).send().await.unwrap();
    assert!(r.headers().contains_key("content-security-policy"));
});

both_backends!(not_found_and_bad_input, |app: TestApp| async move {
    let admin = app.admin().await;
    let r = admin.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Page not found"));

    // Invalid names are refused with 422 naming the field.
    let r = app.call(&admin, "create_model", &[("name", "bad name with spaces")]).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_field");
    assert_eq!(body["field"], "name");
    // Duplicates too.
    app.create_model(&admin, "dup").await;
    let r = app.call(&admin, "create_model", &[("name", "dup")]).await;
    assert_eq!(r.status(), 422);
    let r = app.call(&admin, "create_user", &[("username", "x"), ("role", "wizard")]).await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "role");
    let r = app.call(&admin, "create_user", &[("username", "shorty"), ("role", "viewer"), ("password", "short")]).await;
    assert_eq!(r.status(), 422);
    // Arguments that do not decode are a 400, not a 500.
    let r = app.call(&admin, "update_user", &[("id", "not-a-number"), ("role", "viewer")]).await;
    assert_eq!(r.status(), 400);
    // Generated passwords come back once and work.
    let pw = app.call_ok(&admin, "create_user", &[("username", "gen"), ("role", "viewer")]).await;
    let pw = pw.as_str().expect("generated password returned");
    assert!(pw.len() >= 16);
    app.login("gen", pw).await;
});

both_backends!(model_names_with_slashes_work_in_urls, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "meta-llama/Llama-3.1-8B").await;
    let r = admin.get(app.url("/api/v1/models/meta-llama%2FLlama-3.1-8B")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = admin.get(app.url("/models/meta-llama%2FLlama-3.1-8B")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("model-title"));
});

both_backends!(no_js_form_post_redirects_back, |app: TestApp| async move {
    // A plain HTML form post (no JavaScript) to a server function: the change happens and the
    // browser is sent back to the page it came from.
    let admin = app.admin().await;
    let r = admin
        .post(app.url("/fn/create_model"))
        .header("accept", "text/html")
        .header("referer", app.url("/admin/models"))
        .form(&[("name", "from-form")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    // server_fn strips its error parameters from the Referer and may leave an empty query.
    assert!(location.trim_end_matches('?').ends_with("/admin/models"), "{location}");
    let body = admin.get(app.url("/admin/models")).send().await.unwrap().text().await.unwrap();
    assert!(body.contains("from-form"));
});

/// Postgres over TLS (`sslmode=require`), as managed Postgres services demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = engine::testing::fresh_database_url(common::Backend::Postgres, dir.path()).await else {
        return;
    };
    let app = common::spawn_app_at(dir, format!("{url}?sslmode=require")).await;
    let body: serde_json::Value = app.client().get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "postgres");
}
