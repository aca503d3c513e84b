//! Cross-site request forgery: a browser sends the session cookie with any request to this
//! server, including a form that another site (or another port of the same host: SameSite
//! treats ports as one site) submits. So every state-changing request that a session cookie
//! authenticates must come from a page of this server: `Sec-Fetch-Site`, else `Origin`, else
//! `Referer` must say so, and a request that says nothing is refused. Requests with an
//! `Authorization` header (API keys) are not looked at: no other site can make a browser send
//! one. The login form, which has no session yet, is refused only when the browser says it
//! comes from elsewhere (login CSRF); scripts without those headers may still log in.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::startup::AppState;

pub async fn refuse_cross_site(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let login = req.uri().path() == "/auth/login";
    let by_cookie = app::session::session_token(headers).is_some() && !headers.contains_key(header::AUTHORIZATION);
    if !(login || by_cookie) {
        return next.run(req).await;
    }
    match verdict(headers, &state.public_origin) {
        Verdict::SameOrigin => next.run(req).await,
        Verdict::Unknown if !by_cookie => next.run(req).await,
        v => {
            tracing::warn!(path = %req.uri().path(), verdict = ?v, "refused a cross-site request");
            let message = match v {
                Verdict::Unknown => {
                    "a request made with a session cookie must carry an Origin or Referer header of this server \
                     (API clients: use an API key in the Authorization header)"
                }
                _ => "this request came from another site; it is refused to protect your session (set --public-url if \
                     Modelwatch is reached at another address)",
            };
            let body = json!({"error": {"code": "cross_origin", "message": message, "field": "origin"}});
            (StatusCode::FORBIDDEN, Json(body)).into_response()
        }
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    SameOrigin,
    CrossOrigin,
    /// No header says where the request comes from.
    Unknown,
}

/// Where the request comes from, by the first of `Sec-Fetch-Site`, `Origin` and `Referer`
/// that is present. Ours: the origin of the public URL, or this request's own host.
fn verdict(headers: &HeaderMap, public_origin: &str) -> Verdict {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        // `none`: the user's own action (typed address, bookmark), not a page.
        return if site == "same-origin" || site == "none" { Verdict::SameOrigin } else { Verdict::CrossOrigin };
    }
    let origin = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(o), _) => o.to_string(),
        (None, Some(r)) => match reqwest::Url::parse(r) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => return Verdict::CrossOrigin,
        },
        (None, None) => return Verdict::Unknown,
    };
    let host = text(header::HOST).unwrap_or("");
    let ours = origin.eq_ignore_ascii_case(public_origin)
        || (!host.is_empty()
            && (origin.eq_ignore_ascii_case(&format!("http://{host}")) || origin.eq_ignore_ascii_case(&format!("https://{host}"))));
    if ours { Verdict::SameOrigin } else { Verdict::CrossOrigin }
}

/// The origin (`scheme://host[:port]`) of the public URL, as browsers write `Origin`.
pub fn origin_of(public_url: &str) -> String {
    reqwest::Url::parse(public_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_pages_of_this_server_may_change_state() {
        let public = origin_of("https://watch.example.com/");
        assert_eq!(public, "https://watch.example.com");
        let v = |pairs: &[(&'static str, &str)]| verdict(&headers(pairs), &public);
        assert_eq!(v(&[("sec-fetch-site", "same-origin")]), Verdict::SameOrigin);
        assert_eq!(v(&[("sec-fetch-site", "same-site"), ("origin", "http://127.0.0.1:8080")]), Verdict::CrossOrigin, "another port");
        assert_eq!(v(&[("sec-fetch-site", "cross-site")]), Verdict::CrossOrigin);
        assert_eq!(v(&[("origin", "http://127.0.0.1:8080")]), Verdict::SameOrigin);
        assert_eq!(v(&[("origin", "https://watch.example.com")]), Verdict::SameOrigin);
        assert_eq!(v(&[("origin", "http://127.0.0.1:18995")]), Verdict::CrossOrigin);
        assert_eq!(v(&[("origin", "http://evil.example")]), Verdict::CrossOrigin);
        assert_eq!(v(&[("origin", "null")]), Verdict::CrossOrigin);
        assert_eq!(v(&[("referer", "http://127.0.0.1:8080/admin/models")]), Verdict::SameOrigin);
        assert_eq!(v(&[("referer", "http://evil.example/page")]), Verdict::CrossOrigin);
        assert_eq!(v(&[("referer", "not a url")]), Verdict::CrossOrigin);
        assert_eq!(v(&[]), Verdict::Unknown);
    }
}
