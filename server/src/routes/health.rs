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
