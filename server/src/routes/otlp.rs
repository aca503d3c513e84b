//! OTLP/HTTP receiver: `POST /v1/traces`, `/v1/logs` and `/v1/metrics` (OTLP 1.x).
//!
//! Bodies are `application/x-protobuf` or `application/json` (the OTLP JSON mapping), plain or
//! gzip; the answer uses the request's encoding. The API key comes as `Authorization: Bearer`
//! or `x-api-key` and needs the `ingest` scope. As the specification asks:
//!
//! - 200 with the export response; `partial_success` counts the refused items and says why
//!   (also when nothing was refused but values were cut to the limits: a warning);
//! - 400 for a body that does not decode, 413 above the size limit, 415 for another encoding;
//! - 429 with `Retry-After` when the writer queue is full, 503 with `Retry-After` when the
//!   database fails (both retryable), 401/403 for a missing or unfit key;
//! - error bodies are a `google.rpc.Status` in the request's encoding.
//!
//! The mapping to records lives in `engine::ingest::otlp`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::Error;
use engine::ingest::IngestOutcome;
use engine::ingest::otlp::{self, Notes};
use prost::Message;

use super::ingest::{key_principal, read_bytes};
use crate::error::ApiError;
use crate::startup::AppState;

/// `google.rpc.Status`, the body of OTLP/HTTP error answers (code, message; no details).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

fn encoding(headers: &HeaderMap) -> Option<Encoding> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

fn encode<T: Message + serde::Serialize>(enc: Encoding, msg: &T) -> Vec<u8> {
    match enc {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg).unwrap_or_default(),
    }
}

fn respond<T: Message + serde::Serialize>(enc: Encoding, status: StatusCode, msg: &T) -> Response {
    let mut resp = (status, encode(enc, msg)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(enc.content_type()));
    resp
}

/// An error as OTLP/HTTP wants it: the status code, `Retry-After` where a retry may succeed,
/// and a `google.rpc.Status` body.
fn error(enc: Encoding, e: Error) -> Response {
    // gRPC codes of google.rpc.Status.
    let (status, code, retry) = match &e {
        Error::Malformed { .. } | Error::Invalid { .. } => (StatusCode::BAD_REQUEST, 3, None),
        Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 8, None),
        Error::Overloaded { retry_after_secs } | Error::TooManyRequests { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, 8, Some(*retry_after_secs))
        }
        Error::Unauthenticated | Error::BadCredentials => (StatusCode::UNAUTHORIZED, 16, None),
        Error::Forbidden | Error::ForbiddenField { .. } => (StatusCode::FORBIDDEN, 7, None),
        // The database failing is worth a retry: the data was not acknowledged.
        Error::Unavailable | Error::Storage(_) | Error::Internal(_) => (StatusCode::SERVICE_UNAVAILABLE, 14, Some(5)),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, 5, None),
    };
    if status.is_server_error() {
        tracing::error!(error = %e, "OTLP export failed");
    }
    let message = match e.field() {
        Some(f) if !f.is_empty() => format!("{f}: {}", e.public_message()),
        _ => e.public_message(),
    };
    let mut resp = respond(enc, status, &RpcStatus { code, message });
    if let Some(secs) = retry {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// Why items were refused, for `partial_success.error_message`: the first few refusals and
/// any warning about cut values.
fn partial_message(outcome: &IngestOutcome, notes: Option<&Notes>) -> String {
    let mut parts: Vec<String> = outcome.rejected.iter().take(3).map(|r| format!("{}: {}", r.field, r.message)).collect();
    if outcome.rejected.len() > 3 {
        parts.push(format!("and {} more refusals", outcome.rejected.len() - 3));
    }
    if let Some(w) = notes.and_then(Notes::warning) {
        parts.push(w);
    }
    parts.join("; ")
}

/// Refused items counted once each (a metric data point may give several refused points).
fn refused(outcome: &IngestOutcome) -> i64 {
    let mut idx: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
    idx.sort_unstable();
    idx.dedup();
    idx.len() as i64
}

#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Logs,
    Metrics,
}

async fn export(state: AppState, req: Request, signal: Signal) -> Response {
    let (parts, body) = req.into_parts();
    let Some(enc) = encoding(&parts.headers) else {
        let msg = RpcStatus { code: 3, message: "Content-Type must be application/x-protobuf or application/json".into() };
        return respond(Encoding::Json, StatusCode::UNSUPPORTED_MEDIA_TYPE, &msg);
    };
    match handle(&state, &parts.headers, body, enc, signal).await {
        Ok(resp) => resp,
        Err(ApiError(e)) => error(enc, e),
    }
}

fn decode<T: Message + Default + serde::de::DeserializeOwned>(enc: Encoding, bytes: &[u8]) -> Result<T, Error> {
    match enc {
        Encoding::Protobuf => T::decode(bytes).map_err(|e| Error::malformed("body", format!("not a valid OTLP protobuf message: {e}"))),
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| Error::malformed("body", format!("not a valid OTLP JSON message: {e}"))),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: axum::body::Body, enc: Encoding, signal: Signal) -> Result<Response, ApiError> {
    let key = key_principal(state, headers).await?;
    key.require(engine::Scope::Ingest)?;
    let bytes = read_bytes(state.limits, headers, body).await?;
    let ingest = state.engine.ingest();
    let resp = match signal {
        Signal::Traces => {
            let req: otlp::ExportTraceServiceRequest = decode(enc, &bytes)?;
            let (outcome, notes) = ingest.otlp_traces(&key, &req).await?;
            let message = partial_message(&outcome, Some(&notes));
            let partial = (!message.is_empty())
                .then(|| otlp::ExportTracePartialSuccess { rejected_spans: refused(&outcome), error_message: message });
            respond(enc, StatusCode::OK, &otlp::ExportTraceServiceResponse { partial_success: partial })
        }
        Signal::Logs => {
            let req: otlp::ExportLogsServiceRequest = decode(enc, &bytes)?;
            let (outcome, notes) = ingest.otlp_logs(&key, &req).await?;
            let message = partial_message(&outcome, Some(&notes));
            let partial = (!message.is_empty())
                .then(|| otlp::ExportLogsPartialSuccess { rejected_log_records: refused(&outcome), error_message: message });
            respond(enc, StatusCode::OK, &otlp::ExportLogsServiceResponse { partial_success: partial })
        }
        Signal::Metrics => {
            let req: otlp::ExportMetricsServiceRequest = decode(enc, &bytes)?;
            let (outcome, _points) = ingest.otlp_metrics(&key, &req).await?;
            let message = partial_message(&outcome, None);
            let partial = (!message.is_empty())
                .then(|| otlp::ExportMetricsPartialSuccess { rejected_data_points: refused(&outcome), error_message: message });
            respond(enc, StatusCode::OK, &otlp::ExportMetricsServiceResponse { partial_success: partial })
        }
    };
    Ok(resp)
}

pub async fn traces(State(state): State<AppState>, req: Request) -> Response {
    export(state, req, Signal::Traces).await
}

pub async fn logs(State(state): State<AppState>, req: Request) -> Response {
    export(state, req, Signal::Logs).await
}

pub async fn metrics(State(state): State<AppState>, req: Request) -> Response {
    export(state, req, Signal::Metrics).await
}
