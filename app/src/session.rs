//! Server-side session plumbing shared by server functions and the axum routes: the session
//! cookie's name and shape, and turning a request into an authorised `Principal`.

use engine::{Engine, Principal};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use leptos::prelude::*;

use crate::error::AppError;

pub const SESSION_COOKIE: &str = "mw_session";
pub const THEME_COOKIE: &str = "mw_theme";

/// The value of one cookie from the request headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

pub fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE).filter(|t| !t.is_empty())
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Strict, Secure when served over TLS.
pub fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let c = cookie::Cookie::build((SESSION_COOKIE, token.to_string()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&c.to_string()).expect("cookie is ASCII")
}

pub fn clear_session_cookie(secure: bool) -> HeaderValue {
    session_cookie("", 0, secure)
}

/// True when the client reached us over TLS (directly or through a proxy that says so).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

/// Sets the HTTP status of the current server-function or page response.
pub fn set_status(code: u16) {
    if let (Some(resp), Ok(status)) = (use_context::<leptos_axum::ResponseOptions>(), StatusCode::from_u16(code)) {
        resp.set_status(status);
    }
}

/// The caller named by the request's session cookie, or `Unauthenticated`. The one place where
/// a session cookie becomes a `Principal`, for server functions, API routes and the middleware.
pub async fn authenticate_headers(engine: &Engine, headers: &HeaderMap) -> engine::Result<Principal> {
    let token = session_token(headers).ok_or(engine::Error::Unauthenticated)?;
    engine.authenticate(&token).await
}

/// The engine and the authenticated caller of the current request, or 401. A page request
/// already authenticated by the server's login middleware carries its `Principal` in the
/// request extensions (only server code can put it there), so a page's server functions do
/// not look the session up again.
pub async fn caller() -> Result<(Engine, Principal), AppError> {
    let engine = use_context::<Engine>()
        .ok_or_else(|| AppError::from(engine::Error::Internal("engine missing from context".into())))?;
    let parts = use_context::<http::request::Parts>()
        .ok_or_else(|| AppError::from(engine::Error::Internal("request missing from context".into())))?;
    if let Some(principal) = parts.extensions.get::<Principal>() {
        return Ok((engine, principal.clone()));
    }
    let principal = authenticate_headers(&engine, &parts.headers).await?;
    Ok((engine, principal))
}

/// Ends the session cookie on the current response (after a password change).
pub fn expire_cookie_in_response() {
    if let (Some(resp), Some(parts)) =
        (use_context::<leptos_axum::ResponseOptions>(), use_context::<http::request::Parts>())
    {
        resp.append_header(SET_COOKIE, clear_session_cookie(is_https(&parts.headers)));
    }
}
