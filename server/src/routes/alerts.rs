//! REST API of alerting (`/api/v1/alerts…`). Reads take a session or a `read` API key (as a
//! viewer of the key's models); changes need a signed-in editor or admin (API keys carry no
//! role). The engine authorises every call.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use engine::types::{AlertEvent, AlertRule, AlertState};
use engine::{Error, Principal};
use serde::Deserialize;

use crate::error::ApiError;
use crate::routes::api::Reader;
use crate::startup::AppState;

async fn reader(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    Ok(match Reader::from_headers(state, headers).await? {
        Reader::User(p) => p,
        Reader::Key(k) => state.engine.key_viewer(&k).await?,
    })
}

async fn user(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    match Reader::from_headers(state, headers).await? {
        Reader::User(p) => Ok(p),
        Reader::Key(_) => Err(ApiError(Error::Forbidden)),
    }
}

pub async fn states(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<AlertState>>, ApiError> {
    let p = reader(&state, &headers).await?;
    Ok(Json(state.engine.alert_states(&p).await?))
}

pub async fn list_rules(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<AlertRule>>, ApiError> {
    let p = reader(&state, &headers).await?;
    Ok(Json(state.engine.list_alert_rules(&p).await?))
}

pub async fn get_rule(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Result<Json<AlertRule>, ApiError> {
    let p = reader(&state, &headers).await?;
    Ok(Json(state.engine.get_alert_rule(&p, id).await?))
}

fn body(b: Result<Json<AlertRule>, axum::extract::rejection::JsonRejection>) -> Result<AlertRule, ApiError> {
    b.map(|Json(r)| r).map_err(|e| ApiError(Error::malformed("body", e.body_text())))
}

pub async fn create_rule(
    State(state): State<AppState>,
    headers: HeaderMap,
    rule: Result<Json<AlertRule>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let p = user(&state, &headers).await?;
    let mut rule = body(rule)?;
    rule.id = 0;
    Ok((StatusCode::CREATED, Json(state.engine.save_alert_rule(&p, rule).await?)))
}

pub async fn update_rule(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    rule: Result<Json<AlertRule>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AlertRule>, ApiError> {
    let p = user(&state, &headers).await?;
    let mut rule = body(rule)?;
    rule.id = id;
    Ok(Json(state.engine.save_alert_rule(&p, rule).await?))
}

pub async fn delete_rule(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let p = user(&state, &headers).await?;
    state.engine.delete_alert_rule(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    rule: Option<i64>,
    model: Option<String>,
    limit: Option<i64>,
}

pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AlertEvent>>, ApiError> {
    let p = reader(&state, &headers).await?;
    let Query(q) = q.map_err(|e| ApiError(Error::invalid("query", e.body_text())))?;
    Ok(Json(state.engine.alert_history(&p, q.rule, q.model.as_deref(), q.limit.unwrap_or(100)).await?))
}
