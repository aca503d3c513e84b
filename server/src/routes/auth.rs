//! Login and logout as plain form posts (they work without JavaScript), and the theme switch.
//! Both answer with `303 See Other` so the browser lands on a page with GET.

use std::net::SocketAddr;

use app::session::{clear_session_cookie, is_https, session_cookie, session_token, THEME_COOKIE};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use crate::startup::AppState;

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match state.engine.login(&form.username, &form.password, &addr.ip().to_string()).await {
        Ok(session) => {
            let max_age = (session.expires_at_ms - engine::now_ms()) / 1000;
            let mut resp = see_other(&next);
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&session.token, max_age, is_https(&headers)));
            resp
        }
        Err(engine::Error::TooManyRequests { retry_after_secs }) => {
            let mut resp = see_other(&format!("/login?error=throttled&next={}", urlencode(&next)));
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            resp
        }
        Err(engine::Error::BadCredentials) => see_other(&format!("/login?error=1&next={}", urlencode(&next))),
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        if let Err(e) = state.engine.logout(&token).await {
            return crate::error::ApiError(e).into_response();
        }
    }
    let mut resp = see_other("/login?loggedout=1");
    resp.headers_mut().insert(header::SET_COOKIE, clear_session_cookie(is_https(&headers)));
    resp
}

#[derive(Deserialize)]
pub struct ThemeQuery {
    next: Option<String>,
}

/// Flips between light and dark and remembers the choice in a cookie the shell reads.
pub async fn toggle_theme(headers: HeaderMap, Query(q): Query<ThemeQuery>) -> Response {
    let current = app::session::cookie_value(&headers, THEME_COOKIE);
    let next_theme = if current.as_deref() == Some("dark") { "light" } else { "dark" };
    let mut resp = see_other(&safe_next(q.next.as_deref()));
    let cookie = format!("{THEME_COOKIE}={next_theme}; Path=/; Max-Age=31536000; SameSite=Lax");
    resp.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii"));
    resp
}

fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Only same-site paths: never an absolute or protocol-relative URL (no open redirect).
/// Browsers drop tabs and newlines anywhere in a URL and read `\` as `/`, so `/\t/evil.example`
/// and `/\evil.example` would both be `//evil.example`: a target must be a plain local path
/// both as sent and once percent-decoded (a page or proxy that decodes it must not find a host
/// either). Anything else goes to `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) && urlencoding::decode(n).is_ok_and(|d| is_local_path(&d)) => n.to_string(),
        _ => "/".to_string(),
    }
}

/// Exactly one leading `/`, no control characters and no backslash anywhere.
fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.chars().any(|c| c == '\\' || c < ' ' || c == '\x7f')
}

fn urlencode(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_always_local() {
        assert_eq!(safe_next(Some("/models/a")), "/models/a");
        assert_eq!(safe_next(Some("/ok/path?x=1")), "/ok/path?x=1");
        assert_eq!(safe_next(Some("/models/a%20b?range=24h&x=%2Fy")), "/models/a%20b?range=24h&x=%2Fy");
        assert_eq!(safe_next(Some("/")), "/");
        assert_eq!(safe_next(None), "/");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "evil.example",
            "",
            "/\\evil.example",
            "\\/evil",
            "\\\\evil.example",
            "/ok\\path",
            "/\t/evil.example",
            "/%09/evil.example",
            "/\n/evil.example",
            "/%0a/evil.example",
            "/%0D%0A/evil.example",
            "/\r\nSet-Cookie: x=1",
            "/\x7f/evil.example",
            "/%7f/evil.example",
            "/%00/evil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%ff%fe",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
    }
}
