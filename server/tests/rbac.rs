//! The RBAC matrix: every protected route and server function, for each kind of caller.
//! Runs on SQLite and Postgres.

mod common;

use common::TestApp;
use reqwest::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Editor,        // editor with a grant on m1
    Viewer,        // viewer with a grant on m1
    ViewerNoGrant, // viewer without grants
    Anonymous,
}
use Who::*;
const EVERYONE: [Who; 5] = [Admin, Editor, Viewer, ViewerNoGrant, Anonymous];

enum Call {
    Get(&'static str),
    Fn(&'static str, Vec<(&'static str, String)>),
}

struct Case {
    call: Call,
    /// Expected status for Admin, Editor, Viewer, ViewerNoGrant, Anonymous.
    expect: [u16; 5],
}

async fn status(app: &TestApp, client: &Client, call: &Call) -> u16 {
    match call {
        Call::Get(path) => client.get(app.url(path)).send().await.unwrap().status().as_u16(),
        Call::Fn(name, form) => {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(client, name, &form).await.status().as_u16()
        }
    }
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

both_backends!(matrix, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "m1").await;
    app.create_model(&admin, "m2").await;
    let editor_id = app.create_user(&admin, "ed", "editor", "editor-password").await;
    let viewer_id = app.create_user(&admin, "vi", "viewer", "viewer-password").await;
    let bare_id = app.create_user(&admin, "bare", "viewer", "bare-password").await;
    let target_id = app.create_user(&admin, "target", "viewer", "target-password").await;
    app.grant(&admin, editor_id, "m1", false).await;
    app.grant(&admin, viewer_id, "m1", true).await;

    let clients = [
        admin.clone(),
        app.login("ed", "editor-password").await,
        app.login("vi", "viewer-password").await,
        app.login("bare", "bare-password").await,
        app.client(),
    ];

    // What each caller sees in lists: only granted models, never others.
    let expected_lists: [&[&str]; 4] = [&["m1", "m2"], &["m1"], &["m1"], &[]];
    for (i, expected) in expected_lists.iter().enumerate() {
        let api: serde_json::Value = clients[i].get(app.url("/api/v1/models")).send().await.unwrap().json().await.unwrap();
        assert_eq!(names(&api), *expected, "REST list for {:?}", EVERYONE[i]);
        let via_fn = app.call_ok(&clients[i], "list_models", &[]).await;
        assert_eq!(names(&via_fn), *expected, "server fn list for {:?}", EVERYONE[i]);
    }

    let t = target_id.to_string();
    let b = bare_id.to_string();
    let cases = vec![
        Case { call: Call::Get("/api/v1/me"), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Get("/api/v1/models"), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Get("/api/v1/models/m1"), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Get("/api/v1/models/m2"), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/models/absent"), expect: [404, 404, 404, 404, 401] },
        Case { call: Call::Fn("me", vec![]), expect: [200, 200, 200, 200, 200] },
        Case { call: Call::Fn("list_models", vec![]), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Fn("get_model", vec![("name", "m1".into())]), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Fn("get_model", vec![("name", "m2".into())]), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Fn("model_grants", vec![("name", "m1".into())]), expect: [200, 403, 403, 403, 401] },
        Case { call: Call::Fn("admin_models", vec![]), expect: [200, 403, 403, 403, 401] },
        Case {
            call: Call::Fn("update_model", vec![("name", "m1".into()), ("display_name", "M one".into()), ("description", "".into())]),
            expect: [200, 403, 403, 403, 401],
        },
        Case { call: Call::Fn("list_users", vec![]), expect: [200, 403, 403, 403, 401] },
        Case {
            call: Call::Fn("update_user", vec![("id", t.clone()), ("role", "viewer".into())]),
            expect: [200, 403, 403, 403, 401],
        },
        Case {
            call: Call::Fn("reset_password", vec![("id", t.clone()), ("password", "target-password-2".into())]),
            expect: [200, 403, 403, 403, 401],
        },
        Case {
            call: Call::Fn("grant_model", vec![("user_id", b.clone()), ("model", "m2".into())]),
            expect: [200, 403, 403, 403, 401],
        },
        Case {
            call: Call::Fn("revoke_model", vec![("user_id", b.clone()), ("model", "m2".into())]),
            expect: [200, 403, 403, 403, 401],
        },
        // The write path's admin side: keys, rules, prices, capture.
        Case { call: Call::Fn("list_api_keys", vec![]), expect: [200, 403, 403, 403, 401] },
        Case { call: Call::Fn("revoke_api_key", vec![("id", "999999".into())]), expect: [404, 403, 403, 403, 401] },
        Case { call: Call::Fn("list_rules", vec![]), expect: [200, 403, 403, 403, 401] },
        Case { call: Call::Fn("delete_rule", vec![("id", "999999".into())]), expect: [404, 403, 403, 403, 401] },
        Case { call: Call::Fn("list_prices", vec![]), expect: [200, 200, 200, 200, 401] },
        Case {
            call: Call::Fn("save_price", vec![("pattern", "mine*".into()), ("input_per_mtok", "1".into()), ("output_per_mtok", "2".into())]),
            expect: [200, 403, 403, 403, 401],
        },
        Case { call: Call::Fn("delete_price", vec![("pattern", "absent".into())]), expect: [404, 403, 403, 403, 401] },
        Case { call: Call::Fn("list_scrape_targets", vec![]), expect: [200, 403, 403, 403, 401] },
        Case { call: Call::Fn("delete_scrape_target", vec![("id", "999999".into())]), expect: [404, 403, 403, 403, 401] },
        Case {
            call: Call::Fn(
                "save_scrape_target",
                vec![("id", "999999".into()), ("model", "m1".into()), ("url", "http://127.0.0.1:9/metrics".into()), ("interval_secs", "60".into()), ("preset", "vllm".into())],
            ),
            expect: [404, 403, 403, 403, 401],
        },
        // Alerting: everyone reads what concerns their models; changes need editors or admins.
        Case { call: Call::Get("/api/v1/alerts"), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Get("/api/v1/alerts/rules"), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Get("/api/v1/alerts/rules/999999"), expect: [404, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/alerts/history?model=m2"), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Fn("alert_states", vec![]), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Fn("list_alert_rules", vec![]), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Fn("delete_alert_rule", vec![("id", "999999".into())]), expect: [404, 404, 403, 403, 401] },
        Case { call: Call::Fn("acknowledge_alert", vec![("rule_id", "999999".into()), ("model", "m1".into())]), expect: [404, 404, 403, 404, 401] },
        Case { call: Call::Fn("list_channels", vec![]), expect: [200, 200, 403, 403, 401] },
        Case { call: Call::Fn("list_notifications", vec![]), expect: [200, 200, 403, 403, 401] },
        Case { call: Call::Fn("test_channel", vec![("id", "999999".into())]), expect: [404, 403, 403, 403, 401] },
        Case { call: Call::Fn("delete_channel", vec![("id", "999999".into())]), expect: [404, 403, 403, 403, 401] },
        Case { call: Call::Fn("delete_silence", vec![("id", "999999".into())]), expect: [404, 404, 404, 404, 401] },
        Case { call: Call::Fn("set_model_capture", vec![("name", "m1".into()), ("capture", "on".into())]), expect: [200, 403, 403, 403, 401] },
        Case { call: Call::Get("/api/v1/logs?model=m1"), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Get("/api/v1/logs?model=m2"), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/logs?model=m1&payloads=true"), expect: [200, 403, 200, 404, 401] },
        // Dashboards: per-model KPIs, breakdowns and CSV follow the grants; the overview lists.
        Case { call: Call::Get("/api/v1/overview"), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Get("/api/v1/models/m1/kpis?range=1h"), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Get("/api/v1/models/m2/kpis?range=1h"), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/models/m2/kpis?range=1h&format=csv"), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/models/m1/breakdown?by=user"), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Get("/api/v1/models/m2/breakdown?by=provider"), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Fn("model_dashboard", vec![("name", "m1".into())]), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Fn("model_dashboard", vec![("name", "m2".into()), ("range[range]", "7d".into())]), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Fn("load_overview", vec![]), expect: [200, 200, 200, 200, 401] },
        // The log explorer: search and detail follow the grants too.
        Case { call: Call::Fn("search_logs", vec![("model", "m1".into()), ("query", "status=error".into())]), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Fn("search_logs", vec![("model", "m2".into()), ("query", "range=7d".into())]), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Fn("log_detail", vec![("id", "999999".into())]), expect: [404, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/logs/999999"), expect: [404, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/logs?status=error"), expect: [200, 200, 200, 200, 401] },
        Case { call: Call::Get("/api/v1/logs/export?model=m2"), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Get("/api/v1/logs/export?model=m1&payloads=true"), expect: [200, 403, 200, 404, 401] },
        Case { call: Call::Fn("saved_searches", vec![("model", "m2".into())]), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Fn("save_search", vec![("model", "m1".into()), ("name", "s".into()), ("query", "status=error".into())]), expect: [200, 200, 200, 404, 401] },
        Case { call: Call::Fn("save_search", vec![("model", "m2".into()), ("name", "s".into()), ("query", "".into())]), expect: [200, 404, 404, 404, 401] },
        Case { call: Call::Fn("delete_saved_search", vec![("id", "999999".into())]), expect: [404, 404, 404, 404, 401] },
        Case { call: Call::Fn("count_logs_to_delete", vec![("model", "m2".into()), ("query", "".into())]), expect: [200, 403, 403, 403, 401] },
        Case { call: Call::Fn("delete_logs", vec![("model", "m1".into()), ("query", "".into()), ("confirm", "5".into())]), expect: [422, 403, 403, 403, 401] },
        Case { call: Call::Fn("set_breakdown_keys", vec![("name", "m1".into()), ("keys", "team".into())]), expect: [200, 403, 403, 403, 401] },
    ];
    for case in &cases {
        for (i, who) in EVERYONE.iter().enumerate() {
            let got = status(&app, &clients[i], &case.call).await;
            let what = match &case.call {
                Call::Get(p) => format!("GET {p}"),
                Call::Fn(n, f) => format!("fn {n} {f:?}"),
            };
            assert_eq!(got, case.expect[i], "{what} as {who:?}");
        }
    }

    // Creating things: each caller tries with its own name so the admin's success does not
    // turn the others' answers into conflicts.
    for (i, who) in EVERYONE.iter().enumerate() {
        let expect = if *who == Admin { 200 } else if *who == Anonymous { 401 } else { 403 };
        let name = format!("new-{i}");
        let got = status(&app, &clients[i], &Call::Fn("create_model", vec![("name", name.clone())])).await;
        assert_eq!(got, expect, "create_model as {who:?}");
        let got = status(&app, &clients[i], &Call::Fn("create_api_key", vec![("name", name.clone()), ("scope_ingest", "on".into())])).await;
        assert_eq!(got, expect, "create_api_key as {who:?}");
        let got = status(
            &app,
            &clients[i],
            &Call::Fn("save_rule", vec![("name", name.clone()), ("kind", "sample".into()), ("keep_percent", "50".into()), ("enabled", "on".into())]),
        )
        .await;
        assert_eq!(got, expect, "save_rule as {who:?}");
        let got = status(
            &app,
            &clients[i],
            &Call::Fn("create_user", vec![("username", name), ("role", "admin".into()), ("password", "whatever-123".into())]),
        )
        .await;
        assert_eq!(got, expect, "create_user as {who:?}");
    }
    // Nothing a refused caller tried took effect.
    let models = names(&app.call_ok(&admin, "list_models", &[]).await);
    assert!(models.contains(&"new-0".to_string()));
    assert!(!models.iter().any(|m| m.starts_with("new-") && m != "new-0"), "{models:?}");
    let grants = app.call_ok(&admin, "model_grants", &[("name", "m2")]).await;
    assert!(grants.as_array().unwrap().is_empty(), "grant by admin then revoke by admin: none left");

    // Pages: anonymous visitors are sent to the login page; hidden models are 404 pages.
    for path in ["/", "/models/m1", "/models/m1/logs", "/logs", "/logs/1", "/admin/users", "/account"] {
        let resp = clients[4].get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert!(resp.headers()["location"].to_str().unwrap().starts_with("/login?next="));
    }
    let page = |i: usize, path: &'static str| {
        let c = clients[i].clone();
        let url = app.url(path);
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(page(2, "/models/m1").await.0, 200);
    let (code, body) = page(2, "/models/m2").await;
    assert_eq!(code, 404);
    assert!(!body.contains("data-testid=\"model-title\""));
    // The admin page renders for a viewer, but without any user data in it.
    let (_, body) = page(2, "/admin/users").await;
    assert!(!body.contains("user-admin") && !body.contains("target"), "viewer saw user data");
    let (_, body) = page(0, "/admin/users").await;
    assert!(body.contains("user-target"), "admin sees users");
    // A viewer's overview lists only the granted model.
    let (_, body) = page(2, "/").await;
    assert!(body.contains("/models/m1") && !body.contains("/models/m2"));
    // The alerts page answers the same status every time: 200 where the page is shown, 404
    // for the history of a model the caller may not see (the page's parts used to race a 403
    // of the notification log against a 404 of the history).
    for _ in 0..8 {
        for (i, path, want) in [
            (2, "/alerts", 200),
            (3, "/alerts", 200),
            (1, "/alerts", 200),
            (2, "/alerts?model=m1", 200),
            (2, "/alerts?model=m2", 404),
            (2, "/alerts?model=absent", 404),
            (0, "/alerts?model=m2", 200),
        ] {
            let (code, body) = page(i, path).await;
            assert_eq!(code, want, "{path} as {:?}", EVERYONE[i]);
            assert!(body.contains("<h1>Alerts</h1>"), "{path}");
        }
    }
});
