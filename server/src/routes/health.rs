//! `/healthz`: the process answers. `/readyz`: the database answers and is fully migrated.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::startup::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.engine.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready", "database": state.engine.backend()}))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "database": state.engine.backend()})))
        }
    }
}

/// `GET /metrics`: ingest health and per-model KPI series for Prometheus (text format). Needs
/// an API key with the `read` scope unless the server runs with `--metrics-public`; a key
/// limited to some models gets the per-model series of those models only.
pub async fn metrics(
    axum::extract::State(state): axum::extract::State<crate::startup::AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, crate::error::ApiError> {
    use axum::response::IntoResponse;
    let models = if state.metrics_public {
        None
    } else {
        let key = crate::routes::ingest::key_principal(&state, &headers).await?;
        key.require(engine::Scope::Read)?;
        key.models
    };
    let body = state.engine.ingest().metrics_text(models.as_ref());
    Ok(([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response())
}
