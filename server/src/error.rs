//! HTTP errors of the REST API: `{"error": {"code", "message", "field"}}` with the engine's
//! status codes, and `Retry-After` on 429.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub struct ApiError(pub engine::Error);

impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        let body = json!({"error": {"code": e.code(), "message": e.public_message(), "field": e.field()}});
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = e.retry_after_secs() {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(e, engine::Error::Unauthenticated) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
