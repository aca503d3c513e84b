//! REST read API under `/api/v1` (documented in docs/api.md): the caller is a `read` API key
//! (`Authorization: Bearer` or `x-api-key`) or a session cookie. Every route authorises through
//! the engine, exactly like the server functions.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::dashboards::{RangeParams, ResolvedRange, format_time, resolve_range, time_zone};
use engine::ingest::KeyPrincipal;
use engine::kpi::{BreakdownBy, KpiPoint, ModelKpis};
use engine::reads::Caller;
use engine::{Error, Me, Model, Principal};
use serde::Deserialize;

use crate::error::ApiError;
use crate::routes::ingest::{key_principal, presented_key};
use crate::startup::AppState;

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    Ok(app::session::authenticate_headers(&state.engine, headers).await?)
}

/// Who is calling a read route: a signed-in user or a `read` API key.
pub enum Reader {
    User(Principal),
    Key(KeyPrincipal),
}

impl Reader {
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Reader, ApiError> {
        if presented_key(headers).is_some() {
            Ok(Reader::Key(key_principal(state, headers).await?))
        } else {
            Ok(Reader::User(principal(state, headers).await?))
        }
    }
    pub fn caller(&self) -> Caller<'_> {
        match self {
            Reader::User(p) => Caller::User(p),
            Reader::Key(k) => Caller::Key(k),
        }
    }
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError(Error::invalid("query", e.body_text())))
}

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let p = principal(&state, &headers).await?;
    Ok(Json(state.engine.me(&p)?))
}

pub async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<Model>>, ApiError> {
    let r = Reader::from_headers(&state, &headers).await?;
    Ok(Json(state.engine.readable_models(r.caller()).await?))
}

pub async fn get_model(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Model>, ApiError> {
    let r = Reader::from_headers(&state, &headers).await?;
    Ok(Json(state.engine.model_for(r.caller(), &name, false).await?))
}

/// Range parameters plus the output format (`json`, the default, or `csv`).
#[derive(Debug, Default, Deserialize)]
pub struct KpiQuery {
    #[serde(flatten)]
    range: RangeParams,
    format: Option<String>,
    /// CSV only: the columns of one dashboard panel (see docs/api.md); default all.
    panel: Option<String>,
    /// Breakdowns: what to group by.
    by: Option<String>,
}

fn wants_csv(format: &Option<String>) -> Result<bool, ApiError> {
    match format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError(Error::invalid("format", format!("format must be json or csv, not {other:?}")))),
    }
}

fn range_of(q: &KpiQuery) -> Result<ResolvedRange, ApiError> {
    Ok(resolve_range(&q.range, engine::now_ms())?)
}

/// `GET /api/v1/overview`: every readable model with totals, previous period and sparkline.
pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<KpiQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<engine::kpi::Overview>, ApiError> {
    let q = query(q)?;
    let r = Reader::from_headers(&state, &headers).await?;
    let range = range_of(&q)?;
    Ok(Json(state.engine.overview(r.caller(), &range).await?))
}

/// `GET /api/v1/models/{name}/kpis`: totals, previous period, one point per step, custom metrics.
pub async fn kpis(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<KpiQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let csv = wants_csv(&q.format)?;
    let r = Reader::from_headers(&state, &headers).await?;
    let range = range_of(&q)?;
    let kpis = state.engine.model_kpis(r.caller(), &name, &range).await?;
    if !csv {
        return Ok(Json(kpis).into_response());
    }
    let tz = time_zone(q.range.tz.as_deref())?;
    let body = kpis_csv(&kpis, q.panel.as_deref().unwrap_or("all"), &tz)?;
    Ok(csv_response(body, &format!("{}-{}.csv", name, q.panel.as_deref().unwrap_or("kpis"))))
}

/// `GET /api/v1/models/{name}/breakdown?by=provider`: one row per value, most requests first.
pub async fn breakdown(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<KpiQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let csv = wants_csv(&q.format)?;
    let by_text = q.by.clone().unwrap_or_default();
    let by = BreakdownBy::from_param(&by_text)?;
    let r = Reader::from_headers(&state, &headers).await?;
    let range = range_of(&q)?;
    let b = state.engine.breakdown(r.caller(), &name, &by, &range).await?;
    if !csv {
        return Ok(Json(b).into_response());
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["value", "requests", "errors", "error_rate", "latency_p95_ms", "input_tokens", "output_tokens", "cost_usd"])
        .map_err(csv_failed)?;
    for row in &b.rows {
        w.write_record([
            super::spreadsheet::text_cell(&row.value).into_owned(),
            row.requests.to_string(),
            row.errors.to_string(),
            opt(row.error_rate()),
            opt(row.latency_p95),
            row.input_tokens.to_string(),
            row.output_tokens.to_string(),
            row.cost_usd.to_string(),
        ])
        .map_err(csv_failed)?;
    }
    let body = w.into_inner().map_err(csv_failed)?;
    Ok(csv_response(body, &format!("{name}-by-{}.csv", by.as_param().replace(':', "-"))))
}

/// Writing CSV into memory fails only on a bug; it is a 500 like any storage failure.
fn csv_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError(Error::Storage(format!("csv: {e}")))
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_response(body: Vec<u8>, filename: &str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let safe: String = filename.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Columns of each dashboard panel's CSV export.
type Column = (&'static str, fn(&KpiPoint, i64) -> String);

fn panel_columns(panel: &str) -> Option<Vec<Column>> {
    let cols: Vec<Column> = match panel {
        "requests" => vec![("requests", |p, _| p.v.requests.to_string()), ("errors", |p, _| p.v.errors.to_string())],
        "error_rate" => vec![("error_rate", |p, _| opt(p.v.error_rate()))],
        "latency" => vec![
            ("latency_p50_ms", |p, _| opt(p.v.latency_p50)),
            ("latency_p95_ms", |p, _| opt(p.v.latency_p95)),
            ("latency_p99_ms", |p, _| opt(p.v.latency_p99)),
        ],
        "ttft" => vec![
            ("ttft_p50_ms", |p, _| opt(p.v.ttft_p50)),
            ("ttft_p95_ms", |p, _| opt(p.v.ttft_p95)),
            ("ttft_p99_ms", |p, _| opt(p.v.ttft_p99)),
        ],
        "tokens" => vec![
            ("input_tokens", |p, _| p.v.input_tokens.to_string()),
            ("output_tokens", |p, _| p.v.output_tokens.to_string()),
            ("cached_tokens", |p, _| p.v.cached_tokens.to_string()),
        ],
        "tokens_per_sec" => vec![("tokens_per_sec", |p, step| (p.v.tokens() as f64 / (step as f64 / 1000.0)).to_string())],
        "cost" => vec![("cost_usd", |p, _| p.v.cost_usd.to_string())],
        "cache" => vec![("cache_hits", |p, _| p.v.cache_hits.to_string()), ("cache_hit_rate", |p, _| opt(p.v.cache_hit_rate()))],
        "all" => {
            let mut all = Vec::new();
            for name in ["requests", "error_rate", "latency", "ttft", "tokens", "tokens_per_sec", "cost", "cache"] {
                all.extend(panel_columns(name)?);
            }
            all
        }
        _ => return None,
    };
    Some(cols)
}

fn kpis_csv(k: &ModelKpis, panel: &str, tz: &jiff::tz::TimeZone) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if let Some(metric) = panel.strip_prefix("metric:") {
        let series = k.metrics.iter().find(|m| m.name == metric).ok_or(Error::NotFound("metric"))?;
        w.write_record(["time", "t_ms", "count", "avg", "min", "max", "p50", "p95"]).map_err(csv_failed)?;
        for p in &series.points {
            w.write_record([
                format_time(p.t, tz, "%Y-%m-%dT%H:%M:%S%:z"),
                p.t.to_string(),
                p.count.to_string(),
                opt(p.avg),
                opt(p.min),
                opt(p.max),
                opt(p.p50),
                opt(p.p95),
            ])
            .map_err(csv_failed)?;
        }
    } else {
        let cols = panel_columns(panel).ok_or_else(|| {
            Error::invalid(
                "panel",
                "panel must be requests, error_rate, latency, ttft, tokens, tokens_per_sec, cost, cache, metric:<name> or all",
            )
        })?;
        let mut head = vec!["time", "t_ms"];
        head.extend(cols.iter().map(|c| c.0));
        w.write_record(&head).map_err(csv_failed)?;
        for p in &k.points {
            let mut rec = vec![format_time(p.t, tz, "%Y-%m-%dT%H:%M:%S%:z"), p.t.to_string()];
            rec.extend(cols.iter().map(|c| (c.1)(p, k.step_ms)));
            w.write_record(&rec).map_err(csv_failed)?;
        }
    }
    w.into_inner().map_err(csv_failed)
}
