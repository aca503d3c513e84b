//! REST read API under `/api/v1` (documented in docs/api.md). Authenticated by the session
//! cookie for now; API keys arrive with the ingestion pipeline. Every route authorises through
//! the engine, exactly like the server functions.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use engine::{Me, Model, Principal};

use crate::error::ApiError;
use crate::startup::AppState;

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    Ok(app::session::authenticate_headers(&state.engine, headers).await?)
}

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let p = principal(&state, &headers).await?;
    Ok(Json(state.engine.me(&p)?))
}

pub async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<Model>>, ApiError> {
    let p = principal(&state, &headers).await?;
    Ok(Json(state.engine.list_models(&p).await?))
}

pub async fn get_model(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Model>, ApiError> {
    let p = principal(&state, &headers).await?;
    Ok(Json(state.engine.get_model(&p, &name).await?))
}
