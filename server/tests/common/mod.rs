//! Shared test harness: every test gets the real application on port 0 with its own fresh
//! database (a temp SQLite file, or a new database in the throwaway Postgres that
//! `./dev.sh test` starts), and real HTTP clients with cookie stores.
#![allow(dead_code)]

use std::net::SocketAddr;

use engine::SecretKey;
use modelwatch::config::Config;
use modelwatch::startup::Application;
use reqwest::redirect::Policy;

pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const SECRET: &[u8] = b"test-secret-key-test-secret-key-0123456789";

pub use engine::testing::Backend;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub engine: engine::Engine,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// Runs the same async test body against SQLite and Postgres.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = common::spawn_app(common::Backend::Sqlite).await.expect("sqlite always runs");
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = common::spawn_app(common::Backend::Postgres).await {
                    ($body)(app).await;
                }
            }
        }
    };
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// The application with adjusted configuration (e.g. a tiny ingest queue).
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = engine::testing::fresh_database_url(backend, dir.path()).await?;
    Some(spawn_app_configured(dir, database_url, tweak).await)
}

/// The application on `database_url` (e.g. a fresh database with extra URL options).
pub async fn spawn_app_at(dir: tempfile::TempDir, database_url: String) -> TestApp {
    spawn_app_configured(dir, database_url, |_| {}).await
}

async fn spawn_app_configured(dir: tempfile::TempDir, database_url: String, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        secret: SecretKey::new(SECRET.to_vec()).unwrap(),
        admin_password: Some(ADMIN_PASSWORD.to_string()),
        ingest: engine::ingest::IngestSettings::default(),
        max_body_bytes: 16 * 1024 * 1024,
        max_decompressed_bytes: 64 * 1024 * 1024,
        metrics_public: false,
        scrape: true,
        alerts: modelwatch::alerting::AlertSettings {
            // Off unless a test turns it on: most tests drive evaluation at chosen times.
            interval: std::time::Duration::ZERO,
            public_url: "http://modelwatch.test".into(),
            smtp_url: None,
            smtp_from: "Modelwatch <alerts@modelwatch.test>".into(),
        },
        // The tests' receivers and model servers listen on 127.0.0.1.
        targets: loopback_allowed(),
    };
    tweak(&mut config);
    let app = Application::build(&config).await.expect("application starts");
    let addr = app.local_addr();
    let engine = app.engine.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp { addr, base: format!("http://{addr}"), engine, database_url, _dir: dir }
}

/// The harness's target policy: loopback allowed (every other internal address refused).
pub fn loopback_allowed() -> engine::outbound::TargetPolicy {
    engine::outbound::TargetPolicy::parse("127.0.0.0/8").unwrap()
}

/// The session cookie a login answer sets (`mw_session=…; HttpOnly; …`).
pub fn session_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("mw_session="))
        .expect("session cookie set")
}

/// The session token a login answer sets.
pub fn session_token_of(resp: &reqwest::Response) -> String {
    session_cookie(resp).split(';').next().unwrap().trim_start_matches("mw_session=").to_string()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser-like client: cookie store, redirects not followed (tests look at them), and
    /// the `Origin` of this server on every request, as a browser sends it from our pages.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ORIGIN, self.base.parse().unwrap());
        reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).default_headers(headers).build().unwrap()
    }

    /// Posts the login form; returns the response (303 on success and failure alike).
    pub async fn post_login(&self, client: &reqwest::Client, user: &str, password: &str) -> reqwest::Response {
        client
            .post(self.url("/auth/login"))
            .form(&[("username", user), ("password", password), ("next", "/")])
            .send()
            .await
            .unwrap()
    }

    /// A client with a session for `user`; panics when the login fails.
    pub async fn login(&self, user: &str, password: &str) -> reqwest::Client {
        let client = self.client();
        let resp = self.post_login(&client, user, password).await;
        assert_eq!(resp.status(), 303);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(location, "/", "login of {user} failed: redirected to {location}");
        client
    }

    pub async fn admin(&self) -> reqwest::Client {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Calls a server function the way an `ActionForm` with JavaScript does (form in, JSON out).
    pub async fn call(&self, client: &reqwest::Client, name: &str, form: &[(&str, &str)]) -> reqwest::Response {
        client
            .post(self.url(&format!("/fn/{name}")))
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Calls a server function and returns its JSON body, asserting success.
    pub async fn call_ok(&self, client: &reqwest::Client, name: &str, form: &[(&str, &str)]) -> serde_json::Value {
        let resp = self.call(client, name, form).await;
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(status.is_success(), "{name} failed with {status}: {body}");
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }

    /// Creates a user through the admin server function and returns its id.
    pub async fn create_user(&self, admin: &reqwest::Client, name: &str, role: &str, password: &str) -> i64 {
        self.call_ok(admin, "create_user", &[("username", name), ("role", role), ("password", password)]).await;
        let users = self.call_ok(admin, "list_users", &[]).await;
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["user"]["username"] == name)
            .map(|u| u["user"]["id"].as_i64().unwrap())
            .expect("created user is listed")
    }

    pub async fn create_model(&self, admin: &reqwest::Client, name: &str) {
        self.call_ok(admin, "create_model", &[("name", name)]).await;
    }

    pub async fn grant(&self, admin: &reqwest::Client, user_id: i64, model: &str, payloads: bool) {
        let id = user_id.to_string();
        let mut form = vec![("user_id", id.as_str()), ("model", model)];
        if payloads {
            form.push(("view_payloads", "on"));
        }
        self.call_ok(admin, "grant_model", &form).await;
    }
}

impl TestApp {
    /// Creates an API key as the operator and returns its secret.
    pub async fn api_key(&self, scopes: &[engine::Scope], models: &[&str]) -> String {
        let input = engine::ApiKeyInput {
            name: "test key".into(),
            scopes: scopes.to_vec(),
            models: models.iter().map(|m| m.to_string()).collect(),
            capture_payloads: true,
        };
        self.engine.create_api_key(&engine::Principal::operator(), input).await.expect("key created").1
    }

    /// Posts NDJSON records with a key; returns status and JSON body.
    pub async fn ingest(&self, key: &str, records: &[serde_json::Value]) -> (u16, serde_json::Value) {
        let body: String = records.iter().map(|r| format!("{r}\n")).collect();
        let resp = reqwest::Client::new()
            .post(self.url("/api/v1/logs"))
            .bearer_auth(key)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn model_id(&self, name: &str) -> i64 {
        self.engine.get_model(&engine::Principal::operator(), name).await.expect("model exists").id
    }
}
