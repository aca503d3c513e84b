//! Native ingest (`POST /api/v1/logs`, `POST /api/v1/metrics`). This module owns the HTTP side only: credentials, body size, gzip,
//! UTF-8 and status codes. Parsing, rules and storage are the engine's.
//!
//! Batch semantics: valid records are stored even when others in the batch are refused. The
//! answer is 200 with `accepted` and one `rejected` entry per refused record (index, field,
//! code, message). When *no* record is accepted the status is the first refusal's (422, 403 or
//! 400) with the same body plus the usual `error` object.

use std::io::Read;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::ingest::record::BodyFormat;
use engine::ingest::{IngestOutcome, KeyPrincipal};
use engine::Error;
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
}

/// The API key from `Authorization: Bearer …` or `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(token) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(token.trim());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

pub async fn key_principal(state: &AppState, headers: &HeaderMap) -> Result<KeyPrincipal, ApiError> {
    let secret = presented_key(headers).ok_or(Error::Unauthenticated)?;
    let key = state.engine.authenticate_key(secret).await?;
    state.engine.touch_api_key(key.key_id);
    Ok(key)
}

/// Reads the body within the limits, undoes gzip, and checks UTF-8.
async fn read_body(limits: BodyLimits, headers: &HeaderMap, body: Body) -> Result<String, ApiError> {
    let raw = read_bytes(limits, headers, body).await?;
    String::from_utf8(raw).map_err(|e| {
        ApiError(Error::malformed("body", format!("the body is not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to())))
    })
}

/// Reads the body within the limits and undoes gzip.
pub async fn read_bytes(limits: BodyLimits, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let too_large = |what: &str, limit: usize| {
        ApiError(Error::TooLarge { field: "body".into(), message: format!("{what} is larger than the limit of {limit} bytes") })
    };
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
        && len > limits.max_body_bytes
    {
        return Err(too_large("the request body", limits.max_body_bytes));
    }
    let bytes = axum::body::to_bytes(body, limits.max_body_bytes)
        .await
        .map_err(|_| too_large("the request body", limits.max_body_bytes))?;
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity").trim().to_ascii_lowercase();
    let raw: Vec<u8> = match encoding.as_str() {
        "identity" | "" => Vec::from(bytes),
        "gzip" | "x-gzip" => {
            let limit = limits.max_decompressed_bytes;
            // Decompression runs off the async threads: a large body takes milliseconds of CPU.
            let out = tokio::task::spawn_blocking(move || {
                let mut out = Vec::with_capacity(bytes.len() * 4);
                let mut dec = flate2::read::MultiGzDecoder::new(&bytes[..]).take(limit as u64 + 1);
                dec.read_to_end(&mut out).map(|_| out)
            })
            .await
            .map_err(|e| ApiError(Error::Internal(e.to_string())))?
            .map_err(|e| ApiError(Error::malformed("body", format!("invalid gzip data: {e}"))))?;
            if out.len() > limit {
                return Err(too_large("the decompressed body", limit));
            }
            out
        }
        other => {
            return Err(ApiError(Error::malformed(
                "Content-Encoding",
                format!("unsupported Content-Encoding {other:?}; send gzip or no encoding"),
            )));
        }
    };
    Ok(raw)
}

/// NDJSON when declared (or when the body does not start with `[`), else a JSON array.
fn body_format(headers: &HeaderMap, body: &str) -> BodyFormat {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json-seq") {
        BodyFormat::Ndjson
    } else if ct.contains("json") || body.trim_start().starts_with('[') {
        BodyFormat::Json
    } else {
        BodyFormat::Ndjson
    }
}

fn outcome_response(outcome: IngestOutcome) -> Response {
    if outcome.accepted == 0
        && let Some(first) = outcome.rejected.first()
    {
        let status = match first.code {
            "forbidden" => StatusCode::FORBIDDEN,
            "malformed_body" => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let body = json!({
            "error": {"code": first.code, "message": first.message, "field": first.field},
            "accepted": 0,
            "rejected": outcome.rejected,
        });
        return (status, Json(body)).into_response();
    }
    (StatusCode::OK, Json(outcome)).into_response()
}

/// Which ingest endpoint a request is for.
#[derive(Clone, Copy)]
enum Kind {
    Logs,
    Metrics,
}

/// Shared by both ingest endpoints. The scope is checked before the body is read, so a key
/// without `ingest` costs no decompression or parsing (the engine checks it again).
async fn ingest(state: AppState, req: Request, kind: Kind) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let key = key_principal(&state, &parts.headers).await?;
    key.require(engine::Scope::Ingest)?;
    let text = read_body(state.limits, &parts.headers, body).await?;
    let format = body_format(&parts.headers, &text);
    let outcome = match kind {
        Kind::Logs => state.engine.ingest().logs(&key, &text, format).await?,
        Kind::Metrics => state.engine.ingest().metrics(&key, &text, format).await?,
    };
    Ok(outcome_response(outcome))
}

pub async fn post_logs(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    ingest(state, req, Kind::Logs).await
}

pub async fn post_metrics(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    ingest(state, req, Kind::Metrics).await
}
