//! Cross-cutting HTTP behaviour: security headers on every response, and sending visitors
//! without a session to the login page. The redirect is convenience only; data is protected
//! by the authorisation inside every server function and API route.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::startup::AppState;

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // same-origin keeps the Referer on our own form posts (no-JS forms return to it) and
    // never sends it elsewhere.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        // HTML pages set their own policy with a per-request script nonce (app::shell).
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'"),
        );
    }
    resp
}

/// Paths that are not UI pages: APIs, assets, health and the session routes.
fn is_page(path: &str) -> bool {
    const NOT_PAGES: [&str; 10] =
        ["/pkg/", "/fn/", "/api/", "/auth/", "/v1/", "/healthz", "/readyz", "/metrics", "/theme", "/login"];
    let last = path.rsplit('/').next().unwrap_or("");
    !NOT_PAGES.iter().any(|p| path.starts_with(p)) && !last.contains('.')
}

/// Sends visitors without a session from pages to the login page (and signed-in users away
/// from it). Only pages and `/login` are looked at, so assets and APIs cost no session lookup.
/// The caller found for a page is kept in the request for the page's server functions.
pub async fn require_login_for_pages(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if req.method() != Method::GET || !(path == "/login" || is_page(path)) {
        return next.run(req).await;
    }
    let principal = app::session::authenticate_headers(&state.engine, req.headers()).await.ok();
    match principal {
        Some(_) if req.uri().path() == "/login" => redirect("/"),
        Some(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        None if req.uri().path() == "/login" => next.run(req).await,
        None => {
            let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            redirect(&format!("/login?next={}", urlencoding::encode(target)))
        }
    }
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::is_page;

    #[test]
    fn pages_and_non_pages() {
        for p in ["/", "/models/gpt-4o", "/admin/users", "/account", "/nope"] {
            assert!(is_page(p), "{p}");
        }
        for p in ["/pkg/modelwatch.js", "/fn/list_models", "/api/v1/models", "/healthz", "/login", "/favicon.svg"] {
            assert!(!is_page(p), "{p}");
        }
    }
}
