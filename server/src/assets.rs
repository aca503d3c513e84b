//! The browser bundle and public files, embedded into the binary at build time (release) or
//! read from `target/site` (debug). `./dev.sh` builds that folder before the server.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../target/site/"]
struct Site;

pub async fn pkg(Path(path): Path<String>) -> Response {
    serve(&format!("pkg/{path}"))
}

/// Files from `public/` are served at the root (`/favicon.svg`).
pub async fn public_file(path: &str) -> Option<Response> {
    let path = path.trim_start_matches('/');
    if path.is_empty() || path.starts_with("pkg/") || path.contains("..") {
        return None;
    }
    Site::get(path).map(|_| serve(path))
}

fn serve(path: &str) -> Response {
    match Site::get(path) {
        Some(file) => {
            let mime = file.metadata.mimetype();
            let mut resp = Body::from(file.data.into_owned()).into_response();
            if let Ok(v) = HeaderValue::from_str(mime) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            // File names are not content-hashed, so browsers must revalidate after an upgrade.
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
