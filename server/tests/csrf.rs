//! Cross-site request forgery: state-changing requests authenticated by the session cookie
//! are served only when they come from a page of this server (Sec-Fetch-Site, Origin or
//! Referer), on SQLite and Postgres. API keys in the Authorization header are not affected.

mod common;

use common::{session_token_of as token_of, TestApp, ADMIN_PASSWORD};
use engine::Scope;

/// A plain client (no cookie store, no default Origin): each request says exactly what a test gives it.
fn bare() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `POST /fn/create_model` with the admin's session cookie and these extra headers.
async fn create_model(app: &TestApp, token: &str, name: &str, headers: &[(&str, &str)], content_type: &str) -> u16 {
    let mut req = bare()
        .post(app.url("/fn/create_model"))
        .header("cookie", format!("mw_session={token}"))
        .header("content-type", content_type)
        .header("accept", "application/json")
        .body(format!("name={name}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn model_exists(app: &TestApp, admin: &reqwest::Client, name: &str) -> bool {
    admin.get(app.url(&format!("/api/v1/models/{name}"))).send().await.unwrap().status() == 200
}

both_backends!(cookie_requests_from_other_sites_are_refused, |app: TestApp| async move {
    let admin = app.admin().await;
    let token = token_of(&app.post_login(&app.client(), "admin", ADMIN_PASSWORD).await);
    let form = "application/x-www-form-urlencoded";
    let other_port = format!("http://127.0.0.1:{}", app.addr.port().wrapping_add(1));
    let refused: Vec<(&str, Vec<(&str, &str)>, &str)> = vec![
        ("evil-origin", vec![("origin", "http://evil.example")], form),
        ("null-origin", vec![("origin", "null")], form),
        ("text-plain", vec![("origin", "http://evil.example")], "text/plain"),
        ("other-port", vec![("origin", other_port.as_str())], form),
        ("same-site", vec![("sec-fetch-site", "same-site"), ("origin", other_port.as_str())], form),
        ("cross-referer", vec![("referer", "http://evil.example/form.html")], form),
        ("no-origin", vec![], form),
    ];
    for (name, headers, content_type) in &refused {
        let model = format!("csrf-{name}");
        assert_eq!(create_model(&app, &token, &model, headers, content_type).await, 403, "{name}");
        assert!(!model_exists(&app, &admin, &model).await, "{name}: the model was created");
    }
    // From our own pages: Origin of this server, a Referer of one of its pages, or the
    // browser's word for it.
    let own = app.base.clone();
    let referer = format!("{own}/admin/models");
    let accepted: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("origin", vec![("origin", own.as_str())]),
        ("public-url", vec![("origin", "http://modelwatch.test")]),
        ("referer", vec![("referer", referer.as_str())]),
        ("fetch", vec![("sec-fetch-site", "same-origin")]),
    ];
    for (name, headers) in &accepted {
        let model = format!("csrf-ok-{name}");
        assert_eq!(create_model(&app, &token, &model, headers, form).await, 200, "{name}");
        assert!(model_exists(&app, &admin, &model).await, "{name}");
    }

    // Logging out from another site does not end the session.
    let logout = |origin: &'static str| {
        let req = bare().post(app.url("/auth/logout")).header("cookie", format!("mw_session={token}")).header("origin", origin);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(logout("http://evil.example").await, 403);
    let me = bare().get(app.url("/api/v1/me")).header("cookie", format!("mw_session={token}")).send().await.unwrap();
    assert_eq!(me.status(), 200, "the session survived a cross-site logout");

    // Login: refused when a browser says another site sent it, allowed for scripts.
    let login = |origin: Option<&'static str>| {
        let mut req = bare().post(app.url("/auth/login")).form(&[("username", "admin"), ("password", ADMIN_PASSWORD)]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { req.send().await.unwrap() }
    };
    assert_eq!(login(Some("http://evil.example")).await.status(), 403);
    let ok = login(None).await;
    assert_eq!((ok.status().as_u16(), ok.headers()["location"].to_str().unwrap()), (303, "/"));

    // An API key in the Authorization header needs no Origin.
    let key = app.api_key(&[Scope::Ingest], &[]).await;
    let resp = bare().post(app.url("/api/v1/logs")).bearer_auth(&key).body(r#"{"model":"keyed"}"#).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The refusal is JSON and says what to do.
    let resp = bare()
        .post(app.url("/fn/create_model"))
        .header("cookie", format!("mw_session={token}"))
        .header("origin", "http://evil.example")
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cross_origin", "{body}");
});
