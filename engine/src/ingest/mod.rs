//! The write path: from a request body to committed rows and rollups.
//!
//! `Ingest::logs` and `Ingest::metrics` split and parse a batch, check the API key's model
//! limits, register unseen models, compute cost from the price table, apply the ingest rules
//! (drop / sample / redact), encode payloads, and hand the result to the group-commit `Writer`.
//! They return once the records are committed. HTTP concerns (gzip, status codes) stay in the
//! server; storage stays in `store`.

pub mod admission;
pub mod cumulative;
pub mod otlp;
pub mod payload;
pub mod price;
pub mod record;
pub mod redact;
pub mod rollup;
pub mod rules;
pub mod sketch;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use self::payload::Payload;
use self::price::PriceTable;
use self::record::{BodyFormat, Limits, LogRecord, MetricPoint, Rejection};
use self::rollup::RecordFacts;
use self::rules::{RuleSet, Verdict};
use self::writer::{PreparedLog, PreparedMetric, Writer, WriterConfig};
use crate::error::{Error, Result};
use crate::store::{LogRow, MetricRow, NewModel, SeriesKey, Store};
use crate::types::Scope;
use crate::validate;

pub const FLAG_ERROR: i64 = 1;
pub const FLAG_CACHE_HIT: i64 = 2;
pub const FLAG_PAYLOAD: i64 = 4;
pub const FLAG_TRUNCATED: i64 = 8;
pub const FLAG_REDACTED: i64 = 16;

/// Tunables of the write path; the defaults are what a fresh install runs with.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub limits: Limits,
    pub writer: WriterConfig,
    /// Request and response text are each cut to this many bytes before storing.
    pub payload_cap_bytes: usize,
    /// Index message, error message and payload text for the log explorer's full-text search.
    pub full_text: bool,
    /// How OTLP data is attributed to models.
    pub otlp: otlp::OtlpSettings,
    /// How many models ingest may register, in all and per API key and minute.
    pub model_limits: admission::ModelLimits,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings { limits: Limits::default(), writer: WriterConfig::default(), payload_cap_bytes: 32 * 1024, full_text: true, otlp: otlp::OtlpSettings::default(), model_limits: admission::ModelLimits::default() }
    }
}

/// Most bytes of a record's text that the full-text index takes (message, error message,
/// request, response, in that order).
pub const FULL_TEXT_MAX_BYTES: usize = 16 * 1024;

/// The text a record is found by: its message and error message, then its payload (request,
/// response), joined and cut at `FULL_TEXT_MAX_BYTES` (on a character boundary). Where the
/// payload part begins is kept, so that the index can hold it apart: callers who may not view
/// a model's payloads search only the message part (a payload word must not be an oracle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    text: String,
    payload_at: usize,
}

impl SearchText {
    /// `parts`: message, error message, request, response.
    pub fn new(parts: [Option<&str>; 4]) -> Option<SearchText> {
        let mut text = String::new();
        let mut payload_at = None;
        for (i, p) in parts.into_iter().enumerate() {
            if i == 2 {
                payload_at = Some(text.len());
            }
            let Some(p) = p.filter(|p| !p.is_empty()) else { continue };
            if text.len() >= FULL_TEXT_MAX_BYTES {
                break;
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(p);
        }
        let mut payload_at = payload_at.unwrap_or(text.len());
        if text.len() > FULL_TEXT_MAX_BYTES {
            let mut cut = FULL_TEXT_MAX_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            payload_at = payload_at.min(cut);
        }
        (!text.is_empty()).then_some(SearchText { text, payload_at })
    }

    /// Message and error message only: what a record without payload is found by.
    pub fn messages(message: Option<&str>, error_message: Option<&str>) -> Option<SearchText> {
        SearchText::new([message, error_message, None, None])
    }

    /// All of it, as one text (block word filters take every word: they only rule blocks out).
    pub fn all(&self) -> &str {
        &self.text
    }

    /// The message and error message part.
    pub fn message_part(&self) -> &str {
        &self.text[..self.payload_at]
    }

    /// The request and response part.
    pub fn payload_part(&self) -> &str {
        &self.text[self.payload_at..]
    }
}

/// The API key behind a request, as the write and read paths need it.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub key_id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Model names the key is limited to; None means all.
    pub models: Option<HashSet<String>>,
    pub capture_payloads: bool,
}

impl Ingest {
    pub fn full_text(&self) -> bool {
        self.settings.full_text
    }
}

impl KeyPrincipal {
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.contains(&scope) { Ok(()) } else { Err(Error::Forbidden) }
    }
    pub fn may_use_model(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.contains(model))
    }
}

/// What an ingest request achieved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
}

#[derive(Clone)]
struct ModelInfo {
    id: i64,
    capture_payloads: bool,
    /// Metadata keys rolled up for breakdowns.
    breakdown_keys: Arc<[String]>,
    fetched: Instant,
}

/// How long model settings (payload capture) are cached; another server process sharing the
/// database sees a change within this time.
const MODEL_CACHE_TTL: Duration = Duration::from_secs(30);

pub struct Ingest {
    store: Arc<dyn Store>,
    writer: Writer,
    rules: RwLock<RuleSet>,
    prices: RwLock<Arc<PriceTable>>,
    models: RwLock<HashMap<String, ModelInfo>>,
    settings: IngestSettings,
    metrics: crate::telemetry::IngestMetrics,
    /// Last totals of cumulative counters and histograms (OTLP metrics, scraped endpoints).
    deltas: cumulative::DeltaTracker,
    /// Limits on the models ingest registers.
    admission: admission::Admission,
}

impl Ingest {
    pub async fn start(store: Arc<dyn Store>, settings: IngestSettings) -> Result<Ingest> {
        let writer = Writer::start(store.clone(), settings.writer.clone());
        let ingest = Ingest {
            store,
            writer,
            rules: RwLock::new(RuleSet::default()),
            prices: RwLock::new(Arc::new(PriceTable::default())),
            models: RwLock::new(HashMap::new()),
            admission: admission::Admission::new(settings.model_limits),
            settings,
            metrics: crate::telemetry::IngestMetrics::default(),
            deltas: cumulative::DeltaTracker::new(crate::now_ms()),
        };
        ingest.reload_rules().await?;
        ingest.reload_prices().await?;
        Ok(ingest)
    }

    pub fn settings(&self) -> &IngestSettings {
        &self.settings
    }

    /// Rebuilds breakdown rollups that an unclean stop left out (see `writer::recover_breakdowns`).
    /// The server calls this once at start, before it takes ingest traffic.
    pub async fn recover_breakdowns(&self) -> Result<u64> {
        writer::recover_breakdowns(self.store.as_ref()).await
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    pub async fn reload_rules(&self) -> Result<()> {
        let set = RuleSet::new(&self.store.list_rules().await?);
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = set;
        Ok(())
    }

    pub async fn reload_prices(&self) -> Result<()> {
        let table = PriceTable::new(self.store.list_prices().await?);
        *self.prices.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        Ok(())
    }

    pub fn forget_model(&self, name: &str) {
        self.models.write().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    /// Stops taking records and waits until everything acknowledged is committed.
    pub async fn shutdown(&self) {
        self.writer.shutdown().await;
    }

    /// The model's id, registering it on first sight. `prefix` names the record in errors.
    async fn model(&self, key: &KeyPrincipal, name: &str, prefix: &str) -> Result<ModelInfo> {
        if let Some(m) = self.models.read().unwrap_or_else(|e| e.into_inner()).get(name)
            && m.fetched.elapsed() < MODEL_CACHE_TTL
        {
            return Ok(m.clone());
        }
        validate::model_name(&format!("{prefix}.model"), name)?;
        let model = match self.store.model_by_name(name).await? {
            Some(m) => m,
            None => {
                let field = format!("{prefix}.model");
                self.admission.admit(key.key_id, &field, crate::now_ms(), || self.store.count_models()).await?;
                let created = self
                    .store
                    .create_model(NewModel { name, display_name: name, description: "", now_ms: crate::now_ms() })
                    .await;
                match created {
                    Ok(m) => {
                        tracing::info!(model = name, "model registered on first sight");
                        m
                    }
                    // Another request (or server) registered it at the same moment.
                    Err(_) => self.store.model_by_name(name).await?.ok_or(Error::NotFound("model"))?,
                }
            }
        };
        let info = ModelInfo {
            id: model.id,
            capture_payloads: model.capture_payloads,
            breakdown_keys: model.breakdown_keys.into(),
            fetched: Instant::now(),
        };
        self.models.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), info.clone());
        Ok(info)
    }

    /// Ingests a batch of log records. Valid records are stored even when others are refused;
    /// the outcome lists every refused record with its index, field and reason.
    pub async fn logs(&self, key: &KeyPrincipal, body: &str, format: BodyFormat) -> Result<IngestOutcome> {
        key.require(Scope::Ingest)?;
        let limits = &self.settings.limits;
        let raws = record::split_records(body, format, "logs", limits)?;
        let now = crate::now_ms();
        let items = raws
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let prefix = format!("logs[{i}]");
                let parsed = record::parse_log(raw, &prefix, now, limits);
                (i, prefix, parsed)
            })
            .collect();
        self.log_records(key, items).await
    }

    /// Ingests records that were already parsed (or refused): the native API after parsing,
    /// and OTLP after mapping. Each item is (index in the request, name in errors, record).
    pub async fn log_records(&self, key: &KeyPrincipal, items: Vec<otlp::Item<LogRecord>>) -> Result<IngestOutcome> {
        key.require(Scope::Ingest)?;
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner()).clone();
        let prices = self.prices.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut rejected = Vec::new();
        let mut prepared = Vec::with_capacity(items.len());
        for (i, prefix, parsed) in items {
            let result = match parsed {
                Ok(r) => self.prepare_log(key, r, &prefix, &rules, &prices).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(p) => prepared.push(p),
                Err(e) => rejected.push(Rejection::new(i, e)),
            }
        }
        let accepted = prepared.len();
        self.metrics.rejected.inc_by(rejected.len() as u64);
        if accepted > 0 {
            let mut seen: HashMap<i64, Vec<RecordFacts>> = HashMap::new();
            for p in &prepared {
                seen.entry(p.model_id).or_default().push(p.facts);
            }
            self.writer.submit(prepared, Vec::new()).await?;
            self.metrics.accepted.inc_by(accepted as u64);
            let names: HashMap<i64, String> = {
                let models = self.models.read().unwrap_or_else(|e| e.into_inner());
                models.iter().map(|(name, m)| (m.id, name.clone())).collect()
            };
            for (id, facts) in &seen {
                if let Some(name) = names.get(id) {
                    self.metrics.observe(name, facts);
                }
            }
        }
        Ok(IngestOutcome { accepted, rejected })
    }

    /// OTLP spans: mapped (`otlp::map_traces`) and stored like native records.
    pub async fn otlp_traces(&self, key: &KeyPrincipal, req: &otlp::ExportTraceServiceRequest) -> Result<(IngestOutcome, otlp::Notes)> {
        key.require(Scope::Ingest)?;
        let mut notes = otlp::Notes::default();
        let items = otlp::map_traces(req, &self.settings.otlp, &self.settings.limits, crate::now_ms(), &mut notes);
        self.check_count(items.len(), "spans")?;
        Ok((self.log_records(key, items).await?, notes))
    }

    /// OTLP log records: mapped (`otlp::map_logs`) and stored as event records.
    pub async fn otlp_logs(&self, key: &KeyPrincipal, req: &otlp::ExportLogsServiceRequest) -> Result<(IngestOutcome, otlp::Notes)> {
        key.require(Scope::Ingest)?;
        let mut notes = otlp::Notes::default();
        let items = otlp::map_logs(req, &self.settings.otlp, &self.settings.limits, crate::now_ms(), &mut notes);
        self.check_count(items.len(), "logRecords")?;
        Ok((self.log_records(key, items).await?, notes))
    }

    /// OTLP metrics: data points become custom metric points. Returns the outcome (indices are
    /// data points; one data point may give several points) and the number of data points.
    pub async fn otlp_metrics(&self, key: &KeyPrincipal, req: &otlp::ExportMetricsServiceRequest) -> Result<(IngestOutcome, usize)> {
        key.require(Scope::Ingest)?;
        let (items, points) = otlp::map_metrics(req, &self.settings.otlp, &self.settings.limits, crate::now_ms(), &self.deltas);
        self.check_count(points, "dataPoints")?;
        Ok((self.metric_points(key, items).await?, points))
    }

    /// Modelwatch's own series (`GET /metrics`).
    pub fn telemetry(&self) -> &crate::telemetry::IngestMetrics {
        &self.metrics
    }

    /// The tracker that turns cumulative totals into increases (shared by OTLP and scraping).
    pub fn deltas(&self) -> &cumulative::DeltaTracker {
        &self.deltas
    }

    fn check_count(&self, n: usize, what: &str) -> Result<()> {
        let max = self.settings.limits.max_records;
        if n > max {
            return Err(Error::TooLarge { field: what.into(), message: format!("{n} {what} in one request; the limit is {max}") });
        }
        Ok(())
    }

    /// The model limits and what ingest refused under them (for the admin's warning).
    pub async fn model_limit_status(&self) -> Result<crate::types::ModelLimitStatus> {
        Ok(self.admission.status(self.store.count_models().await?))
    }

    /// Ingest health and per-model series in the Prometheus text format.
    pub fn metrics_text(&self, models: Option<&HashSet<String>>) -> String {
        let s = &self.writer.stats;
        let figures = crate::telemetry::WriterFigures {
            queue: self.writer.queue_depth(),
            commits: crate::telemetry::load(&s.commits),
            commit_seconds: crate::telemetry::load(&s.commit_micros_total) as f64 / 1e6,
            rows_stored: crate::telemetry::load(&s.rows_stored),
            overloaded: crate::telemetry::load(&s.rejected_overloaded),
        };
        self.metrics.encode(&figures, models)
    }

    async fn prepare_log(&self, key: &KeyPrincipal, mut r: LogRecord, prefix: &str, rules: &RuleSet, prices: &PriceTable) -> Result<PreparedLog> {
        if !key.may_use_model(&r.model) {
            return Err(Error::ForbiddenField {
                field: format!("{prefix}.model"),
                message: format!("this API key may not write to model {:?}", r.model),
            });
        }
        let model = self.model(key, &r.model, prefix).await?;
        if r.cost_usd.is_none() {
            r.cost_usd = prices.cost(&r.model, &r.model_version, r.input_tokens, r.output_tokens, r.cached_tokens);
        }
        let facts = RecordFacts {
            error: r.error,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_tokens: r.cached_tokens,
            cost_usd: r.cost_usd,
            cache_hit: r.cache_hit,
            stored: false,
        };
        let series = SeriesKey {
            provider: std::mem::take(&mut r.provider),
            model_version: std::mem::take(&mut r.model_version),
            environment: std::mem::take(&mut r.environment),
            operation: std::mem::take(&mut r.operation),
        };
        let error_type = r.error_type.clone();
        // The rollup bucket follows the record's own time, stored or not.
        let ts = r.timestamp;
        let (verdict, redactions) = if rules.is_empty() { (Verdict::Store, 0) } else { rules.apply(&mut r) };
        // Breakdown values are rolled up for every record, so they must be redacted like stored
        // rows are, also for records the rules drop or sample out.
        let wants_dims = r.user_id.is_some() || !model.breakdown_keys.is_empty();
        if wants_dims && verdict != Verdict::Store && !rules.is_empty() {
            rules.redact(&mut r);
        }
        let dims = breakdown_dims(&r, &model.breakdown_keys);
        let row = match verdict {
            Verdict::Store => Some(self.row(r, model.id, redactions, model.capture_payloads && key.capture_payloads)?),
            Verdict::Dropped | Verdict::SampledOut => None,
        };
        Ok(PreparedLog {
            model_id: model.id,
            ts,
            series,
            error_type,
            facts: RecordFacts { stored: row.is_some(), ..facts },
            row,
            dims,
        })
    }

    fn row(&self, r: LogRecord, model_id: i64, redactions: u32, capture: bool) -> Result<LogRow> {
        let metadata = r.metadata_json();
        let mut flags = 0;
        if r.error {
            flags |= FLAG_ERROR;
        }
        if r.cache_hit {
            flags |= FLAG_CACHE_HIT;
        }
        if redactions > 0 {
            flags |= FLAG_REDACTED;
        }
        let payload = if capture { Payload::new(r.request, r.response, self.settings.payload_cap_bytes) } else { None };
        let search_text = if self.settings.full_text {
            let (req, resp) = payload.as_ref().map(|p| (Some(p.request.as_str()), Some(p.response.as_str()))).unwrap_or((None, None));
            SearchText::new([r.message.as_deref(), r.error_message.as_deref(), req, resp])
        } else {
            None
        };
        let payload = match payload {
            Some(p) => {
                flags |= FLAG_PAYLOAD;
                if p.truncated {
                    flags |= FLAG_TRUNCATED;
                }
                Some(p.encode()?)
            }
            None => None,
        };
        Ok(LogRow {
            ts: r.timestamp,
            model_id,
            series_id: 0,
            flags,
            level: r.level as i64,
            http_status: r.http_status,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_tokens: r.cached_tokens,
            cost_usd: r.cost_usd,
            feedback: r.feedback,
            error_type: r.error_type,
            message: r.message,
            error_message: r.error_message,
            user_id: r.user_id,
            session_id: r.session_id,
            trace_id: r.trace_id,
            span_id: r.span_id,
            metadata,
            payload,
            // SQLite's blocks carry a filter of their words (`store::textindex`), built from
            // these; Postgres indexes `search_text` itself.
            text_hashes: match &search_text {
                Some(t) if self.store.backend() == "sqlite" => crate::store::textindex::hashes(t.all()),
                _ => Vec::new(),
            },
            search_text,
        })
    }

    /// Ingests custom metric points (same batch semantics as logs).
    pub async fn metrics(&self, key: &KeyPrincipal, body: &str, format: BodyFormat) -> Result<IngestOutcome> {
        key.require(Scope::Ingest)?;
        let limits = &self.settings.limits;
        let raws = record::split_records(body, format, "metrics", limits)?;
        let now = crate::now_ms();
        let items = raws
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let prefix = format!("metrics[{i}]");
                let parsed = record::parse_metric(raw, &prefix, now, limits);
                (i, prefix, parsed)
            })
            .collect();
        self.metric_points(key, items).await
    }

    /// Stores metric points that were already parsed or mapped (native API, OTLP, scraping).
    pub async fn metric_points(&self, key: &KeyPrincipal, items: Vec<otlp::Item<MetricPoint>>) -> Result<IngestOutcome> {
        key.require(Scope::Ingest)?;
        let mut rejected = Vec::new();
        let mut prepared = Vec::with_capacity(items.len());
        for (i, prefix, parsed) in items {
            let result = async {
                let p = parsed?;
                if !key.may_use_model(&p.model) {
                    return Err(Error::ForbiddenField {
                        field: format!("{prefix}.model"),
                        message: format!("this API key may not write to model {:?}", p.model),
                    });
                }
                let model = self.model(key, &p.model, &prefix).await?;
                let labels = p.labels_json();
                Ok(PreparedMetric { row: MetricRow { ts: p.timestamp, model_id: model.id, name: p.name, value: p.value, labels } })
            }
            .await;
            match result {
                Ok(p) => prepared.push(p),
                Err(e) => rejected.push(Rejection::new(i, e)),
            }
        }
        let accepted = prepared.len();
        if accepted > 0 {
            self.writer.submit(Vec::new(), prepared).await?;
        }
        Ok(IngestOutcome { accepted, rejected })
    }
}

/// The breakdown dimensions of a record: its user and the model's chosen metadata keys.
fn breakdown_dims(r: &LogRecord, keys: &[String]) -> Vec<(String, String)> {
    let mut dims = Vec::new();
    if let Some(u) = r.user_id.as_deref().filter(|u| !u.is_empty()) {
        dims.push((DIM_USER.to_string(), u.to_string()));
    }
    for k in keys {
        if let Some(v) = r.metadata_get(k) {
            dims.push((format!("{DIM_META_PREFIX}{k}"), v.as_text()));
        }
    }
    dims
}

/// The breakdown dimensions of a stored row, as `breakdown_dims` gave them for its record (the
/// row holds the redacted user id and metadata); used to rebuild breakdowns after a crash.
pub(crate) fn stored_breakdown_dims(row: &crate::store::LogRow, keys: &[String]) -> Vec<(String, String)> {
    let mut dims = Vec::new();
    if let Some(u) = row.user_id.as_deref().filter(|u| !u.is_empty()) {
        dims.push((DIM_USER.to_string(), u.to_string()));
    }
    if keys.is_empty() {
        return dims;
    }
    let meta: serde_json::Map<String, serde_json::Value> =
        row.metadata.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
    for k in keys {
        let text = match meta.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => match n.as_f64() {
                Some(f) => record::MetaValue::Num(f).as_text(),
                None => continue,
            },
            Some(serde_json::Value::Bool(b)) => b.to_string(),
            _ => continue,
        };
        dims.push((format!("{DIM_META_PREFIX}{k}"), text));
    }
    dims
}

/// The breakdown dimension of user ids in `rollups_dim_hour`.
pub const DIM_USER: &str = "user";
/// Prefix of metadata-key dimensions in `rollups_dim_hour`.
pub const DIM_META_PREFIX: &str = "meta:";
