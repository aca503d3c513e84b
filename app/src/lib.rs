//! Modelwatch's web UI: the HTML shell, the routes, and the pages. Pages get data only through
//! the server functions in `api`, which authorise every call on the server.

pub mod api;
pub mod api_alerts;
pub mod api_dashboards;
pub mod api_ingest;
pub mod api_logs;
#[cfg(feature = "ssr")]
mod charts;
mod components;
mod dash;
pub mod format;
mod payload_view;
pub mod error;
mod pages;
#[cfg(feature = "ssr")]
pub mod session;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::SsrMode;
use leptos_router::path;

use crate::components::Nav;
use crate::pages::*;

/// Name of the browser bundle files under `/pkg/`: `modelwatch.js`, `modelwatch_bg.wasm`, `modelwatch.css`.
pub const BUNDLE_NAME: &str = "modelwatch";

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let theme = {
        set_security_policy();
        use_context::<http::request::Parts>()
            .and_then(|p| session::cookie_value(&p.headers, session::THEME_COOKIE))
            .filter(|t| t == "dark" || t == "light")
    };
    #[cfg(not(feature = "ssr"))]
    let theme: Option<String> = None;
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme=theme>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// A per-request Content-Security-Policy whose nonce admits only our own hydration script.
#[cfg(feature = "ssr")]
fn set_security_policy() {
    if let (Some(nonce), Some(resp)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>()) {
        let policy = format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; \
             form-action 'self'; object-src 'none'"
        );
        if let Ok(v) = http::HeaderValue::from_str(&policy) {
            resp.insert_header(http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    dash::provide_viewer_tz();
    // Who is signed in; read by the navigation and by pages that adapt to the role.
    let me = Resource::new(|| (), |_| api::get_me());
    provide_context(me);
    view! {
        <Stylesheet id="modelwatch" href=format!("/pkg/{BUNDLE_NAME}.css")/>
        <Router>
            <Nav/>
            <main class="page">
                // Every page renders in SsrMode::Async: the server waits for the data and sends
                // complete HTML. Out-of-order streaming would need JavaScript to slot the data
                // in (pages must work without it), and could not set a 404 status after the
                // head was sent.
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=Overview ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/models/:name") view=ModelPage ssr=SsrMode::Async/>
                    <Route path=path!("/models/:name/logs") view=ModelLogsPage ssr=SsrMode::Async/>
                    <Route path=path!("/logs") view=ModelLogsPage ssr=SsrMode::Async/>
                    <Route path=path!("/logs/:id") view=LogDetailPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users") view=AdminUsers ssr=SsrMode::Async/>
                    <Route path=path!("/admin/models") view=AdminModels ssr=SsrMode::Async/>
                    <Route path=path!("/admin/keys") view=AdminKeys ssr=SsrMode::Async/>
                    <Route path=path!("/admin/ingest") view=AdminIngest ssr=SsrMode::Async/>
                    <Route path=path!("/admin/scrape") view=AdminScrape ssr=SsrMode::Async/>
                    <Route path=path!("/alerts") view=AlertsPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts/channels") view=ChannelsPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts/rules/new") view=RuleEditPage ssr=SsrMode::Async/>
                    <Route path=path!("/alerts/rules/:id") view=RuleEditPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
