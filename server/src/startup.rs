//! Building the application: open the engine, create the first admin, assemble the router and
//! bind the listener. Tests call `Application::build` with port 0 and a fresh database.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use engine::{AuthSettings, Engine};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::routes;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub leptos_options: LeptosOptions,
    pub limits: routes::ingest::BodyLimits,
    /// Turns true when the server starts shutting down: long-lived streams (the live tail)
    /// end then, so the graceful shutdown does not wait for them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// `GET /metrics` without an API key.
    pub metrics_public: bool,
    /// The origin of `--public-url`: besides the request's own host, the one origin whose
    /// pages may send state-changing requests with a session cookie (`routes::csrf`).
    pub public_origin: String,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    stop: tokio::sync::watch::Sender<bool>,
    pub engine: Engine,
    scrape: bool,
    alerts: crate::alerting::AlertSettings,
}

impl Application {
    pub async fn build(config: &Config) -> Result<Application> {
        let engine = Engine::open_with(&config.database_url, &config.secret, AuthSettings::default(), config.ingest.clone())
            .await
            .with_context(|| format!("cannot open the database ({})", redact_url(&config.database_url)))?
            .with_target_policy(config.targets.clone());
        engine.ingest().recover_breakdowns().await.context("cannot rebuild breakdown rollups after an unclean stop")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (set --listen or MODELWATCH_LISTEN)", config.listen))?;
        let addr = listener.local_addr()?;
        match engine.bootstrap_admin(config.admin_password.as_deref()).await? {
            Some(generated) => {
                // Printed once, on the first start only; never logged again.
                eprintln!(
                    "\n  First start: created user 'admin' with password {generated}\n  \
                     Log in at http://{} (change it under Account).\n",
                    display_addr(addr)
                );
            }
            None => eprintln!(
                "\n  Log in at http://{} (the first user is 'admin'; its first password was \
                 MODELWATCH_ADMIN_PASSWORD or printed at the first start).\n  \
                 Lost it? Run: modelwatch user passwd admin\n",
                display_addr(addr)
            ),
        }
        let limits = routes::ingest::BodyLimits {
            max_body_bytes: config.max_body_bytes,
            max_decompressed_bytes: config.max_decompressed_bytes,
        };
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let public_origin = routes::csrf::origin_of(&config.alerts.public_url);
        let router = router(engine.clone(), addr, limits, stopping, config.metrics_public, public_origin);
        Ok(Application { listener, router, stop, engine, scrape: config.scrape, alerts: config.alerts.clone() })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, database = self.engine.backend(), "Modelwatch listening on http://{}", display_addr(addr));
        let scraper = self.scrape.then(|| crate::scraper::spawn(self.engine.clone(), self.stop.subscribe()));
        let alerting = crate::alerting::spawn(self.engine.clone(), self.alerts.clone(), self.stop.subscribe());
        let stop = self.stop;
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await?;
        if let Some(s) = scraper {
            let _ = s.await;
        }
        let _ = alerting.await;
        // Requests still waiting for a commit were answered above; now flush anything queued.
        self.engine.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn router(
    engine: Engine,
    addr: SocketAddr,
    limits: routes::ingest::BodyLimits,
    stopping: tokio::sync::watch::Receiver<bool>,
    metrics_public: bool,
    public_origin: String,
) -> Router {
    let leptos_options = LeptosOptions::builder()
        .output_name(app::BUNDLE_NAME)
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .env(leptos_config_env())
        .build();
    let state = AppState { engine: engine.clone(), leptos_options: leptos_options.clone(), limits, stopping, metrics_public, public_origin };
    let routes = route_list();
    let context = {
        let engine = engine.clone();
        move || provide_context(engine.clone())
    };

    Router::new()
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::health::metrics))
        .route("/auth/login", post(routes::auth::login))
        .route("/auth/logout", post(routes::auth::logout))
        .route("/theme", get(routes::auth::toggle_theme))
        .route("/api/v1/me", get(routes::api::me))
        .route("/api/v1/models", get(routes::api::list_models))
        .route("/api/v1/models/{name}", get(routes::api::get_model))
        .route("/api/v1/models/{name}/kpis", get(routes::api::kpis))
        .route("/api/v1/models/{name}/breakdown", get(routes::api::breakdown))
        .route("/api/v1/overview", get(routes::api::overview))
        .route(
            "/api/v1/logs",
            post(routes::ingest::post_logs).get(routes::logs::search).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/logs/open", get(routes::logs::pick_model))
        .route("/api/v1/logs/export", get(routes::logs::export))
        .route("/api/v1/logs/tail", get(routes::logs::tail))
        .route("/api/v1/logs/{id}", get(routes::logs::detail))
        .route("/api/v1/metrics", post(routes::ingest::post_metrics).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/api/v1/alerts", get(routes::alerts::states))
        .route("/api/v1/alerts/rules", get(routes::alerts::list_rules).post(routes::alerts::create_rule))
        .route(
            "/api/v1/alerts/rules/{id}",
            get(routes::alerts::get_rule).put(routes::alerts::update_rule).delete(routes::alerts::delete_rule),
        )
        .route("/api/v1/alerts/history", get(routes::alerts::history))
        .route("/v1/traces", post(routes::otlp::traces).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/v1/logs", post(routes::otlp::logs).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/v1/metrics", post(routes::otlp::metrics).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/pkg/{*path}", get(crate::assets::pkg))
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), routes::require_login_for_pages))
        .layer(axum::middleware::from_fn_with_state(state.clone(), routes::csrf::refuse_cross_site))
        .layer(axum::middleware::from_fn(routes::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The app's routes, worked out once per process. `generate_route_list` renders the app with
/// resource loading suppressed through a process-wide flag (leptos issue #4773): a page being
/// rendered meanwhile, by another `Application` in the same process (the test suite starts
/// many), would wait forever on its resources. Computing the list once, before any router
/// exists, leaves no render to collide with.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// Public files, else the app's 404 page.
async fn fallback(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(resp) = crate::assets::public_file(req.uri().path()).await {
        return resp;
    }
    let engine = state.engine.clone();
    let options = state.leptos_options.clone();
    let handler = leptos_axum::render_app_async_with_context(
        move || provide_context(engine.clone()),
        move || app::shell(options.clone()),
    );
    handler(req).await.into_response()
}

fn leptos_config_env() -> leptos::config::Env {
    if cfg!(debug_assertions) { leptos::config::Env::DEV } else { leptos::config::Env::PROD }
}

fn display_addr(addr: SocketAddr) -> String {
    addr.to_string().replace("0.0.0.0", "127.0.0.1")
}

/// A database URL without its password, for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
