//! The log explorer's REST side (documented in docs/api.md): search, detail, export and the
//! live tail. Every route authorises through the engine for a session or a `read` API key;
//! export and tail resolve (and so authorise) the search once, before the first byte.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use engine::reads::{ResolvedSearch, TailBatch};
use engine::search::{Cursor, LogSearch, SearchPage};
use engine::{Engine, Error, LogView};
use futures_util::stream::{self, Stream, StreamExt};

use crate::error::ApiError;
use crate::routes::api::Reader;
use crate::routes::spreadsheet::text_cell;
use crate::startup::AppState;

/// Most rows one export holds (`max_rows` may lower it).
pub const EXPORT_MAX_ROWS: i64 = 100_000;
/// How often the live tail looks for new logs, and the most it sends per look.
const TAIL_EVERY: Duration = Duration::from_millis(500);
const TAIL_BATCH: i64 = 200;

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// The model (empty: every model the caller may read) and the search from the query;
/// `extra` are the route's own keys.
fn parse(query: Pairs, extra: &[&str]) -> Result<(String, LogSearch, Vec<(String, String)>), ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError(Error::invalid("query", e.body_text())))?;
    let model = pairs.iter().find(|(k, _)| k == "model").map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let mut ignore = vec!["model"];
    ignore.extend_from_slice(extra);
    let search = LogSearch::from_params(&pairs, &ignore)?;
    Ok((model, search, pairs))
}

/// `GET /logs/open?model=<name>&…`: the explorer's model picker (a plain GET form) lands here
/// and is sent on to `/models/<name>/logs` (or `/logs` for all models) with the other
/// parameters. The page authorises.
pub async fn pick_model(Query(pairs): Query<Vec<(String, String)>>) -> Response {
    let model = pairs.iter().find(|(k, _)| k == "model").map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let rest: Vec<(String, String)> = pairs.into_iter().filter(|(k, v)| k != "model" && k != "before" && !v.is_empty()).collect();
    let mut target = if model.is_empty() { "/logs".to_string() } else { format!("/models/{}/logs", urlencoding::encode(&model)) };
    if !rest.is_empty() {
        target.push('?');
        target.push_str(&engine::search::encode_pairs(&rest));
    }
    let mut resp = axum::http::StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&target) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `GET /api/v1/logs?model=&…filters`: one page of a log search.
pub async fn search(State(state): State<AppState>, headers: HeaderMap, query: Pairs) -> Result<Json<SearchPage>, ApiError> {
    let (model, search, _) = parse(query, &[])?;
    let r = Reader::from_headers(&state, &headers).await?;
    Ok(Json(state.engine.search_logs(r.caller(), &model, &search).await?))
}

/// `GET /api/v1/logs/{id}`: one log, with its payload when the caller may view payloads.
pub async fn detail(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<LogView>, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError(Error::invalid("id", "the log id must be an integer")))?;
    let r = Reader::from_headers(&state, &headers).await?;
    Ok(Json(state.engine.log_detail(r.caller(), id).await?))
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Csv,
    Ndjson,
}

const CSV_COLUMNS: [&str; 26] = [
    "id", "time", "model", "provider", "model_version", "environment", "operation", "status", "level", "http_status",
    "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "cache_hit", "feedback",
    "error_type", "error_message", "message", "user_id", "session_id", "trace_id", "span_id", "metadata",
];

/// One log as a CSV row; every text column through `spreadsheet::text_cell`.
fn csv_row(w: &mut csv::Writer<Vec<u8>>, l: &LogView, payloads: bool) -> Result<(), csv::Error> {
    let o = |v: Option<String>| v.unwrap_or_default();
    let t = |v: &str| text_cell(v).into_owned();
    let ot = |v: &Option<String>| v.as_deref().map(t).unwrap_or_default();
    let time = jiff::Timestamp::from_millisecond(l.timestamp).map(|t| t.to_string()).unwrap_or_default();
    let mut row: Vec<String> = vec![
        l.id.to_string(),
        time,
        t(&l.model),
        t(&l.provider),
        t(&l.model_version),
        t(&l.environment),
        t(&l.operation),
        t(&l.status),
        t(&l.level),
        o(l.http_status.map(|v| v.to_string())),
        o(l.latency_ms.map(|v| v.to_string())),
        o(l.ttft_ms.map(|v| v.to_string())),
        o(l.input_tokens.map(|v| v.to_string())),
        o(l.output_tokens.map(|v| v.to_string())),
        o(l.cached_tokens.map(|v| v.to_string())),
        o(l.cost_usd.map(|v| v.to_string())),
        l.cache_hit.to_string(),
        o(l.feedback.map(|v| v.to_string())),
        ot(&l.error_type),
        ot(&l.error_message),
        ot(&l.message),
        ot(&l.user_id),
        ot(&l.session_id),
        ot(&l.trace_id),
        ot(&l.span_id),
        o(l.metadata.as_ref().map(|m| serde_json::Value::Object(m.clone()).to_string())),
    ];
    if payloads {
        row.push(ot(&l.request));
        row.push(ot(&l.response));
    }
    w.write_record(&row)
}

struct ExportState {
    engine: Engine,
    search: ResolvedSearch,
    format: Format,
    payloads: bool,
    before: Option<Cursor>,
    left: i64,
    header: bool,
    done: bool,
}

/// One chunk of the export: the next page of up to 1000 rows, encoded.
async fn export_chunk(mut s: ExportState) -> Option<(Result<Bytes, std::io::Error>, ExportState)> {
    if s.done {
        return None;
    }
    let (logs, next) = match s.engine.search_page(&s.search, s.before, s.left.min(1000)).await {
        Ok(page) => page,
        Err(e) => {
            // Headers are gone already: end the body with an error so the client sees a
            // broken transfer rather than a silently short file.
            tracing::warn!(error = %e, "log export failed");
            s.done = true;
            return Some((Err(std::io::Error::other(e.to_string())), s));
        }
    };
    s.left -= logs.len() as i64;
    s.before = next;
    s.done = next.is_none() || s.left <= 0;
    let bytes = match s.format {
        Format::Ndjson => {
            let mut out = Vec::new();
            for l in &logs {
                let _ = serde_json::to_writer(&mut out, l);
                out.push(b'\n');
            }
            out
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
            if s.header {
                let mut cols: Vec<&str> = CSV_COLUMNS.to_vec();
                if s.payloads {
                    cols.extend(["request", "response"]);
                }
                let _ = w.write_record(&cols);
                s.header = false;
            }
            for l in &logs {
                let _ = csv_row(&mut w, l, s.payloads);
            }
            w.into_inner().unwrap_or_default()
        }
    };
    Some((Ok(Bytes::from(bytes)), s))
}

/// `GET /api/v1/logs/export?model=&format=csv|ndjson&max_rows=&…filters`: the whole search,
/// newest first, streamed; at most `EXPORT_MAX_ROWS` rows.
pub async fn export(State(state): State<AppState>, headers: HeaderMap, query: Pairs) -> Result<Response, ApiError> {
    let (model, search, pairs) = parse(query, &["format", "max_rows"])?;
    let get = |k: &str| pairs.iter().find(|(key, v)| key == k && !v.is_empty()).map(|(_, v)| v.as_str());
    let format = match get("format").unwrap_or("csv") {
        "csv" => Format::Csv,
        "ndjson" => Format::Ndjson,
        other => return Err(ApiError(Error::invalid("format", format!("format must be csv or ndjson, not {other:?}")))),
    };
    let max_rows = match get("max_rows") {
        None => EXPORT_MAX_ROWS,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=EXPORT_MAX_ROWS).contains(&n) => n,
            _ => return Err(ApiError(Error::invalid("max_rows", format!("max_rows must be between 1 and {EXPORT_MAX_ROWS}")))),
        },
    };
    let r = Reader::from_headers(&state, &headers).await?;
    let resolved = state.engine.resolve_search(r.caller(), &model, &search).await?;
    let who = match &r {
        Reader::User(p) => format!("user {}", p.username),
        Reader::Key(k) => format!("key {}", k.name),
    };
    tracing::info!(target: "audit", model = %model, by = %who, format = get("format").unwrap_or("csv"), max_rows, "log export");
    let st = ExportState {
        engine: state.engine.clone(),
        search: resolved,
        format,
        payloads: search.payloads,
        before: search.before,
        left: max_rows,
        header: true,
        done: false,
    };
    let body = Body::from_stream(stream::unfold(st, export_chunk));
    let (ctype, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    let name = if model.is_empty() { "all-models" } else { model.as_str() };
    let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}-logs.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-modelwatch-row-limit", HeaderValue::from(max_rows));
    Ok(resp)
}

struct TailState {
    engine: Engine,
    search: ResolvedSearch,
    after: i64,
    stopping: tokio::sync::watch::Receiver<bool>,
    first: bool,
    failed: bool,
}

fn tail_events(batch: &TailBatch) -> Vec<Result<Event, Infallible>> {
    let mut out = Vec::with_capacity(batch.logs.len() + 1);
    if batch.sampled {
        out.push(Ok(Event::default().event("sampled").data(format!(r#"{{"shown":{}}}"#, batch.logs.len()))));
    }
    for l in &batch.logs {
        match Event::default().event("log").id(l.id.to_string()).json_data(l) {
            Ok(e) => out.push(Ok(e)),
            Err(e) => tracing::warn!(error = %e, "cannot encode a tail event"),
        }
    }
    out
}

async fn tail_step(mut s: TailState) -> Option<(Vec<Result<Event, Infallible>>, TailState)> {
    if s.failed {
        return None;
    }
    if s.first {
        s.first = false;
        return Some((vec![Ok(Event::default().event("ready").data(s.after.to_string()))], s));
    }
    tokio::select! {
        _ = tokio::time::sleep(TAIL_EVERY) => {}
        _ = s.stopping.wait_for(|v| *v) => return None,
    }
    match s.engine.tail_logs(&s.search, s.after, TAIL_BATCH).await {
        Ok(batch) => {
            s.after = batch.last_id;
            Some((tail_events(&batch), s))
        }
        Err(e) => {
            // Tell the browser, then end the stream (EventSource reconnects with Last-Event-ID).
            tracing::warn!(error = %e, "live tail failed");
            s.failed = true;
            Some((vec![Ok(Event::default().event("error").data(e.to_string()))], s))
        }
    }
}

/// `GET /api/v1/logs/tail?model=&…filters`: Server-Sent Events. `ready` first (data: the id
/// the tail starts after; `Last-Event-ID` resumes after a given id), then one `log` event per
/// new matching log, oldest first. When more than 200 arrive between two looks (every 0.5 s),
/// only the newest 200 are sent, after a `sampled` event.
pub async fn tail(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Pairs,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (model, search, _) = parse(query, &[])?;
    let r = Reader::from_headers(&state, &headers).await?;
    let resolved = state.engine.resolve_search(r.caller(), &model, &search).await?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    let after = match resume {
        Some(id) => id,
        None => state.engine.newest_log_id().await?,
    };
    let st = TailState { engine: state.engine.clone(), search: resolved, after, stopping: state.stopping.clone(), first: true, failed: false };
    let events = stream::unfold(st, tail_step).flat_map(stream::iter);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
