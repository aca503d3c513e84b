//! Storage: one `Store` trait, implemented for SQLite (embedded default) and Postgres.
//!
//! This module owns SQL and nothing else: it never decides who may do what (that is
//! `rbac`) and never hashes passwords (that is `auth`). Both backends run the same SQL
//! wherever the dialects agree; the shared statements are written once in
//! `impl_common_store!` so the two implementations cannot drift apart.

pub mod alerts;
pub mod filter;
pub mod blocks;
mod fulltext;
mod postgres;
mod sqlite;
pub(crate) mod textindex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ingest::rollup::{MetricAcc, Resolution, RollupAcc, RollupDelta};
use crate::types::{ApiKey, Grant, IngestRule, Model, Price, Role, Scope, User, UserGrant};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A user row including the secret columns that never leave the engine.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
    /// When `modelwatch user unlock` last ran for the user: failed logins before it do not count.
    pub unlocked_at: Option<i64>,
}

/// What a valid session resolves to.
#[derive(Debug, Clone)]
pub struct SessionOwner {
    pub user: User,
}

#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
    pub now_ms: i64,
}

/// The storage interface. Every method is a single statement or a single transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Alerting's tables (`alerts::AlertStore`).
    fn alerts(&self) -> &dyn alerts::AlertStore;
    /// Database reachable and every embedded migration applied.
    async fn ready(&self) -> Result<()>;

    async fn count_users(&self) -> Result<i64>;
    async fn create_user(&self, new: NewUser<'_>) -> Result<User>;
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn set_user_role(&self, id: i64, role: Role) -> Result<()>;
    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<()>;
    async fn set_password_hash(&self, id: i64, hash: &str, now_ms: i64) -> Result<()>;
    async fn set_user_unlocked(&self, id: i64, now_ms: i64) -> Result<()>;

    async fn create_session(&self, id: &str, user_id: i64, now_ms: i64, expires_ms: i64) -> Result<()>;
    /// The owner of a session that is neither revoked nor expired, and whose user is enabled.
    async fn session_owner(&self, id: &str, now_ms: i64) -> Result<Option<SessionOwner>>;
    async fn revoke_session(&self, id: &str, now_ms: i64) -> Result<()>;
    async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> Result<()>;

    async fn create_model(&self, new: NewModel<'_>) -> Result<Model>;
    async fn model_by_name(&self, name: &str) -> Result<Option<Model>>;
    async fn list_models(&self) -> Result<Vec<Model>>;
    async fn count_models(&self) -> Result<i64>;
    async fn update_model(&self, id: i64, display_name: &str, description: &str) -> Result<()>;

    async fn grants_of_user(&self, user_id: i64) -> Result<Vec<Grant>>;
    async fn grants_on_model(&self, model_id: i64) -> Result<Vec<UserGrant>>;
    /// Grants a model to a user, or updates the payload permission of an existing grant.
    async fn upsert_grant(&self, user_id: i64, model_id: i64, view_payloads: bool) -> Result<()>;
    async fn delete_grant(&self, user_id: i64, model_id: i64) -> Result<()>;

    async fn set_model_capture(&self, id: i64, capture_payloads: bool) -> Result<()>;
    async fn saved_searches(&self, user_id: i64, model_id: i64) -> Result<Vec<crate::types::SavedSearch>>;
    /// Saves under `name`, replacing a search of the same name; returns its id.
    async fn save_search(&self, user_id: i64, model_id: i64, name: &str, query: &str, now_ms: i64) -> Result<i64>;
    /// True when the user's search was deleted.
    async fn delete_saved_search(&self, user_id: i64, id: i64) -> Result<bool>;
    async fn set_model_breakdown_keys(&self, id: i64, keys: &[String]) -> Result<()>;

    // ----- write path ---------------------------------------------------------------------------
    async fn count_series(&self, model_id: i64) -> Result<i64>;
    async fn series_id(&self, model_id: i64, key: &SeriesKey) -> Result<Option<i64>>;
    async fn ensure_series(&self, model_id: i64, key: &SeriesKey) -> Result<i64>;
    async fn series_of_model(&self, model_id: i64) -> Result<Vec<(i64, SeriesKey)>>;
    /// One transaction: raw rows, payloads, metric points, and the rollup deltas merged in.
    async fn write_batch(&self, batch: &WriteBatch) -> Result<()>;
    /// CPU work of `write_batch` that can be done ahead of it, off the async runtime and while
    /// the previous batch writes (SQLite: encoding blocks). Optional: `write_batch` does what
    /// was not done.
    fn prepare_batch(&self, batch: &mut WriteBatch);
    /// For stores that index text after the commit (SQLite, see `fulltext`): resolves once the
    /// logs of every `write_batch` so far are searchable (bounded wait). `None`: searchable at
    /// commit.
    fn search_barrier(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>>;
    /// Whether the writer may hold user/metadata breakdown deltas back between commits. True
    /// only for the embedded SQLite store, where one process writes; on Postgres several
    /// servers may write and every commit merges its own deltas.
    fn defers_breakdowns(&self) -> bool;
    /// The log id through which breakdown rollups are complete (stores that defer them).
    async fn breakdown_mark(&self) -> Result<Option<i64>>;
    /// Up to `limit` stored logs with an id above `after`, in id order (breakdown recovery).
    async fn logs_after(&self, after: i64, limit: i64) -> Result<Vec<StoredLog>>;

    async fn create_api_key(&self, new: NewApiKey<'_>) -> Result<i64>;
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// True when a key was revoked by this call.
    async fn revoke_api_key(&self, id: i64, now_ms: i64) -> Result<bool>;
    async fn touch_api_key(&self, id: i64, now_ms: i64) -> Result<()>;

    async fn list_rules(&self) -> Result<Vec<IngestRule>>;
    async fn create_rule(&self, rule: &IngestRule, now_ms: i64) -> Result<i64>;
    async fn update_rule(&self, rule: &IngestRule, now_ms: i64) -> Result<bool>;
    async fn delete_rule(&self, id: i64) -> Result<bool>;

    async fn list_scrape_targets(&self) -> Result<Vec<crate::types::ScrapeTarget>>;
    async fn create_scrape_target(&self, t: &crate::types::ScrapeTarget, model_id: i64, now_ms: i64) -> Result<i64>;
    /// Changes the settings (not the last-scrape figures); false when there is no such target.
    async fn update_scrape_target(&self, t: &crate::types::ScrapeTarget, model_id: i64) -> Result<bool>;
    async fn delete_scrape_target(&self, id: i64) -> Result<bool>;
    /// Records how a scrape went; `error` None is a success.
    async fn record_scrape(&self, id: i64, at_ms: i64, duration_ms: i64, error: Option<&str>, points: i64) -> Result<()>;

    async fn list_prices(&self) -> Result<Vec<Price>>;
    async fn upsert_price(&self, price: &Price, now_ms: i64) -> Result<()>;
    async fn delete_price(&self, pattern: &str) -> Result<bool>;

    // ----- reads used by ingest checks; the dashboards and explorer build on these -------------
    /// Up to `limit` logs matching the filter, newest first (ts, then id, descending).
    async fn search_logs(&self, f: &filter::LogFilter, limit: i64) -> Result<Vec<StoredLog>>;
    /// Matching logs per bar of `step` ms from `f.from`, in bar order. Reads at most the
    /// newest `cap` logs of the range (matching or not), so the cost is bounded whatever the
    /// filters; when it stops there, the bars cover only the newest part (see `HistogramRow`).
    async fn log_histogram(&self, f: &filter::LogFilter, step: i64, cap: i64) -> Result<Vec<HistogramRow>>;
    async fn log_by_id(&self, id: i64) -> Result<Option<StoredLog>>;
    /// The newest `limit` logs with an id above `after` that match (newest first).
    async fn tail_logs(&self, f: &filter::LogFilter, after: i64, limit: i64) -> Result<Vec<StoredLog>>;
    async fn max_log_id(&self) -> Result<i64>;
    /// Exact number of logs matching the filter (no cap).
    async fn count_matching(&self, f: &filter::LogFilter) -> Result<i64>;
    /// Deletes the matching logs with their payloads and full-text entries, in one
    /// transaction; returns how many logs were deleted.
    async fn delete_logs(&self, f: &filter::LogFilter) -> Result<u64>;
    /// Removes one value of a breakdown dimension (e.g. a user id) from a model's rollups.
    async fn delete_dim_value(&self, model_id: i64, dim: &str, value: &str) -> Result<()>;
    async fn count_logs(&self, model_id: i64) -> Result<i64>;
    async fn payload(&self, log_id: i64) -> Result<Option<Vec<u8>>>;
    /// Rollup rows of a model in `[from, to)`, all series and error types merged.
    async fn rollup_total(&self, model_id: i64, res: Resolution, from: i64, to: i64) -> Result<RollupAcc>;
    /// Rollup rows of one model with `from <= bucket < to`, in bucket order.
    async fn rollup_rows(&self, model_id: i64, res: Resolution, from: i64, to: i64) -> Result<Vec<RollupRangeRow>>;
    /// Custom-metric rollup rows of one model with `from <= bucket < to`, by name and bucket.
    async fn metric_rollup_rows(&self, model_id: i64, res: Resolution, from: i64, to: i64) -> Result<Vec<MetricRangeRow>>;
    /// Breakdown rows (hourly or daily) of one model and dimension with `from <= bucket < to`.
    async fn dim_rollup_rows(&self, model_id: i64, dim: &str, res: Resolution, from: i64, to: i64) -> Result<Vec<DimRangeRow>>;
    /// (bucket, requests) of the per model totals with `from <= bucket < to` (no sketches).
    async fn model_request_counts(&self, model_id: i64, res: Resolution, from: i64, to: i64) -> Result<Vec<(i64, i64)>>;
    /// Per model totals with `from <= bucket < to`, in bucket order.
    async fn model_rollup_rows(&self, model_id: i64, res: Resolution, from: i64, to: i64) -> Result<Vec<ModelRangeRow>>;
    async fn metric_rollup_total(&self, model_id: i64, name: &str, res: Resolution, from: i64, to: i64) -> Result<MetricAcc>;
}

/// The dimensions a log row and its rollups are filed under. Empty strings when not given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeriesKey {
    pub provider: String,
    pub model_version: String,
    pub environment: String,
    pub operation: String,
}

impl SeriesKey {
    /// Where records go once a model has too many distinct series.
    pub fn overflow() -> SeriesKey {
        let o = crate::ingest::writer::OTHER.to_string();
        SeriesKey { provider: o.clone(), model_version: o.clone(), environment: o.clone(), operation: o }
    }
}

/// A raw log row as stored. Bit flags: see `ingest::FLAG_*`.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct LogRow {
    pub ts: i64,
    pub model_id: i64,
    pub series_id: i64,
    pub flags: i64,
    pub level: i64,
    pub http_status: Option<i64>,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub feedback: Option<i64>,
    pub error_type: Option<String>,
    pub message: Option<String>,
    pub error_message: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub metadata: Option<String>,
    /// Encoded by `ingest::payload`; stored in its own table, so never read with the row.
    #[sqlx(skip)]
    pub payload: Option<Vec<u8>>,
    /// What the full-text index takes for this row (None: not indexed); write-only.
    #[sqlx(skip)]
    pub search_text: Option<crate::ingest::SearchText>,
    /// The hashes of the words of `search_text` (`textindex::hashes`), taken by the HTTP
    /// worker that built the row, for the filter of the block the row goes into; empty when
    /// not taken (the writer then takes them from `search_text`); write-only.
    #[sqlx(skip)]
    pub text_hashes: Vec<u64>,
}

/// One histogram bar as the store counts it.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct HistogramRow {
    pub bar: i64,
    /// Matching logs.
    pub n: i64,
    /// Matching logs that are errors.
    pub errors: i64,
    /// Logs of the range read for this bar (matching or not).
    pub scanned: i64,
    /// The oldest log read for this bar.
    pub oldest: i64,
}

/// A stored log row read back, with its id.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredLog {
    pub id: i64,
    #[sqlx(flatten)]
    pub row: LogRow,
}

#[derive(Debug, Clone)]
pub struct MetricRow {
    pub ts: i64,
    pub model_id: i64,
    pub name: String,
    pub value: f64,
    pub labels: Option<String>,
}

#[derive(Debug, Default)]
pub struct WriteBatch {
    pub logs: Vec<LogRow>,
    pub metrics: Vec<MetricRow>,
    pub rollups: RollupDelta,
    /// Which stored logs the breakdown rollups cover after this commit (stores that defer
    /// breakdowns only).
    pub breakdown_mark: BreakdownMark,
    /// `logs` encoded for storage by `Store::prepare_batch` (SQLite); empty by default.
    pub encoded: Prepared,
}

/// What `Store::prepare_batch` made of a batch's logs, opaque outside the store (a batch built
/// elsewhere leaves it empty: `..Default::default()`).
#[derive(Debug, Default)]
pub struct Prepared(pub(crate) Option<sqlite::EncodedLogs>);

/// The log id through which `rollups_dim_*` are complete, recorded with a breakdown flush.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BreakdownMark {
    /// Unchanged: this commit holds its breakdown deltas back.
    #[default]
    Unchanged,
    /// Every log stored so far, this commit's included.
    AllLogs,
    /// Logs up to this id (recovery works through the rows in chunks).
    Through(i64),
}

#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub scopes: &'a [Scope],
    pub models: Option<&'a [String]>,
    pub capture_payloads: bool,
    pub created_by: Option<i64>,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key: ApiKey,
    pub secret_hash: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: String,
    pub models: Option<String>,
    pub capture_payloads: bool,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKeyRow {
    pub(crate) fn into_record(self) -> ApiKeyRecord {
        ApiKeyRecord {
            key: ApiKey {
                id: self.id,
                name: self.name,
                prefix: self.prefix,
                scopes: self.scopes.split(',').filter_map(Scope::parse).collect(),
                models: self.models.and_then(|m| serde_json::from_str(&m).ok()),
                capture_payloads: self.capture_payloads,
                created_by: self.created_by,
                created_at: self.created_at,
                last_used_at: self.last_used_at,
                revoked_at: self.revoked_at,
            },
            secret_hash: self.secret_hash,
        }
    }
}

pub(crate) const API_KEY_SELECT: &str = "SELECT k.id, k.name, k.prefix, k.secret_hash, k.scopes, k.models, k.capture_payloads, \
     u.username AS created_by, k.created_at, k.last_used_at, k.revoked_at FROM api_keys k LEFT JOIN users u ON u.id = k.created_by";

#[derive(sqlx::FromRow)]
pub(crate) struct ScrapeRow {
    pub id: i64,
    pub model: String,
    pub url: String,
    pub interval_secs: i64,
    pub preset: String,
    pub keep: String,
    pub enabled: bool,
    pub last_scrape_ms: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_points: Option<i64>,
    pub last_success_ms: Option<i64>,
}

impl ScrapeRow {
    pub(crate) fn into_target(self) -> crate::types::ScrapeTarget {
        crate::types::ScrapeTarget {
            id: self.id,
            model: self.model,
            url: self.url,
            interval_secs: self.interval_secs,
            preset: self.preset,
            keep: self.keep.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
            enabled: self.enabled,
            last_scrape_ms: self.last_scrape_ms,
            last_duration_ms: self.last_duration_ms,
            last_error: self.last_error,
            last_points: self.last_points,
            last_success_ms: self.last_success_ms,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    pub id: i64,
    pub position: i64,
    pub name: String,
    pub enabled: bool,
    pub model: String,
    pub config: String,
}

impl RuleRow {
    pub(crate) fn into_rule(self) -> Result<IngestRule> {
        let action = serde_json::from_str(&self.config)
            .map_err(|e| Error::Storage(format!("ingest rule {} has unreadable settings: {e}", self.id)))?;
        Ok(IngestRule { id: self.id, position: self.position, name: self.name, enabled: self.enabled, model: self.model, action })
    }
}

/// The columns every backend selects the same way, before the trace and span ids.
macro_rules! log_columns_head {
    () => {
        "id, ts, model_id, series_id, flags, level, http_status, latency_ms, ttft_ms, \
    input_tokens, output_tokens, cached_tokens, cost_usd, feedback, error_type, message, error_message, user_id, \
    session_id, "
    };
}
const LOG_COLUMNS: &str = concat!(log_columns_head!(), "trace_id, span_id, metadata");
/// A log's metadata on SQLite: inline, or the shared object it refers to (`sqlite::share_metadata`).
macro_rules! sqlite_metadata {
    () => {
        "(CASE WHEN metadata_ref IS NULL THEN metadata ELSE (SELECT body FROM log_metadata WHERE log_metadata.id = metadata_ref) END)"
    };
}
pub(crate) const SQLITE_METADATA: &str = sqlite_metadata!();
/// SQLite keeps hex trace and span ids as bytes (see `sqlite::id_value`) and reads them back
/// as the same lowercase hex.
const SQLITE_LOG_COLUMNS: &str = concat!(
    log_columns_head!(),
    "CASE WHEN typeof(trace_id) = 'blob' THEN lower(hex(trace_id)) ELSE trace_id END AS trace_id, \
    CASE WHEN typeof(span_id) = 'blob' THEN lower(hex(span_id)) ELSE span_id END AS span_id, ",
    sqlite_metadata!(),
    " AS metadata"
);

/// The columns of a `StoredLog`, as the backend (`"sqlite"` or `"postgres"`) selects them.
pub(crate) fn log_columns(backend: &str) -> &'static str {
    if backend == "sqlite" { SQLITE_LOG_COLUMNS } else { LOG_COLUMNS }
}

/// A rollup row as stored, used to merge a delta into it.
#[derive(sqlx::FromRow)]
pub(crate) struct RollupRow {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    pub cache_hits: i64,
    pub stored: i64,
    pub latency: Option<Vec<u8>>,
    pub ttft: Option<Vec<u8>>,
}

impl RollupRow {
    pub(crate) fn into_acc(self) -> Result<RollupAcc> {
        use crate::ingest::sketch::Sketch;
        Ok(RollupAcc {
            requests: self.requests,
            errors: self.errors,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cached_tokens: self.cached_tokens,
            cost_usd: self.cost_usd,
            cache_hits: self.cache_hits,
            stored: self.stored,
            latency: Sketch::decode_opt(self.latency.as_deref())?,
            ttft: Sketch::decode_opt(self.ttft.as_deref())?,
        })
    }
}

/// A rollup row with its key, as the SQLite writer reads a chunk of them back to merge into.
#[derive(sqlx::FromRow)]
pub(crate) struct RollupKeyedRow {
    pub model_id: i64,
    pub bucket: i64,
    pub series_id: i64,
    pub error_type: String,
    #[sqlx(flatten)]
    pub row: RollupRow,
}

/// A per-model totals row with its key, as the writers read a chunk of them back to merge into.
#[derive(sqlx::FromRow)]
pub(crate) struct ModelKeyedRow {
    pub model_id: i64,
    pub bucket: i64,
    #[sqlx(flatten)]
    pub row: RollupRow,
}

/// The counters and encoded sketches of a rollup row, shared by the range rows below.
/// Sketches stay encoded until a query needs them.
#[derive(sqlx::FromRow)]
pub struct RollupCounts {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    pub cache_hits: i64,
    pub latency: Option<Vec<u8>>,
    pub ttft: Option<Vec<u8>>,
}

/// A rollup row with its key, as range queries return it.
#[derive(sqlx::FromRow)]
pub struct RollupRangeRow {
    pub bucket: i64,
    pub series_id: i64,
    pub error_type: String,
    #[sqlx(flatten)]
    pub counts: RollupCounts,
}

/// A per model total row of `model_rollups_*`.
#[derive(sqlx::FromRow)]
pub struct ModelRangeRow {
    pub bucket: i64,
    #[sqlx(flatten)]
    pub counts: RollupCounts,
}

#[derive(sqlx::FromRow)]
pub struct MetricRangeRow {
    pub name: String,
    pub bucket: i64,
    #[sqlx(flatten)]
    pub(crate) row: MetricRollupRow,
}

#[derive(sqlx::FromRow)]
pub struct DimRangeRow {
    pub bucket: i64,
    pub value: String,
    #[sqlx(flatten)]
    pub(crate) row: DimRollupRow,
}

/// A breakdown rollup row with its key, as the writer reads it back to merge into.
#[derive(sqlx::FromRow)]
pub(crate) struct DimKeyedRow {
    pub model_id: i64,
    pub dim: String,
    pub bucket: i64,
    pub value: String,
    #[sqlx(flatten)]
    pub row: DimRollupRow,
}

#[derive(sqlx::FromRow)]
pub(crate) struct DimRollupRow {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency: Option<Vec<u8>>,
}

impl DimRollupRow {
    pub(crate) fn into_acc(self) -> Result<crate::ingest::rollup::DimAcc> {
        Ok(crate::ingest::rollup::DimAcc {
            requests: self.requests,
            errors: self.errors,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: self.cost_usd,
            latency: crate::ingest::sketch::Sketch::decode_opt(self.latency.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MetricRollupRow {
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sketch: Option<Vec<u8>>,
}

impl MetricRollupRow {
    pub(crate) fn into_acc(self) -> Result<MetricAcc> {
        Ok(MetricAcc {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            sketch: crate::ingest::sketch::Sketch::decode_opt(self.sketch.as_deref())?,
        })
    }
}

pub(crate) fn rollup_table(res: Resolution) -> &'static str {
    match res {
        Resolution::Minute => "rollups_minute",
        Resolution::Hour => "rollups_hour",
        Resolution::Day => "rollups_day",
    }
}

/// Per model totals (`model_rollups_*`).
pub(crate) fn model_rollup_table(res: Resolution) -> &'static str {
    match res {
        Resolution::Minute => "model_rollups_minute",
        Resolution::Hour => "model_rollups_hour",
        Resolution::Day => "model_rollups_day",
    }
}

/// Breakdown dimensions: hourly and daily only (a minute asks for the hour table).
pub(crate) fn dim_rollup_table(res: Resolution) -> &'static str {
    match res {
        Resolution::Day => "rollups_dim_day",
        Resolution::Minute | Resolution::Hour => "rollups_dim_hour",
    }
}

pub(crate) fn metric_rollup_table(res: Resolution) -> &'static str {
    match res {
        Resolution::Minute => "metric_rollups_minute",
        // Custom metrics have no daily level; the writer never asks for one and long ranges
        // read the hourly rows.
        Resolution::Hour | Resolution::Day => "metric_rollups_hour",
    }
}

/// Sketch bytes for storage; empty sketches are stored as NULL.
pub(crate) fn sketch_bytes(s: &crate::ingest::sketch::Sketch) -> Option<Vec<u8>> {
    (s.count() > 0).then(|| s.encode())
}

/// Opens the store named by a database URL and applies its migrations.
pub async fn open(url: &str) -> Result<Box<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::open(url).await?))
    } else {
        Err(Error::invalid(
            "database",
            "database URL must start with sqlite:// or postgres://",
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: i64,
    /// Selected by the login lookup only.
    #[sqlx(default)]
    pub unlocked_at: Option<i64>,
}

impl UserRow {
    pub(crate) fn into_record(self) -> Result<UserRecord> {
        let role = self
            .role
            .parse::<Role>()
            .map_err(|_| Error::Storage(format!("user {} has unknown role {:?}", self.id, self.role)))?;
        Ok(UserRecord {
            user: User {
                id: self.id,
                username: self.username,
                role,
                disabled: self.disabled,
                created_at: self.created_at,
            },
            password_hash: self.password_hash,
            unlocked_at: self.unlocked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ModelRow {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created_at: i64,
    pub capture_payloads: bool,
    pub breakdown_keys: String,
}

impl From<ModelRow> for Model {
    fn from(r: ModelRow) -> Self {
        Model {
            id: r.id,
            name: r.name,
            display_name: r.display_name,
            description: r.description,
            created_at: r.created_at,
            capture_payloads: r.capture_payloads,
            // Written only by set_model_breakdown_keys from a Vec<String>; a damaged value reads as none.
            breakdown_keys: serde_json::from_str(&r.breakdown_keys).unwrap_or_default(),
        }
    }
}

/// Maps a unique-constraint violation to a 422 that names the field; anything else is a storage error.
pub(crate) fn map_unique(field: &'static str, what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::invalid(field, format!("{what} already exists"))
        }
        _ => Error::from(e),
    }
}

/// Merges the custom-metric rollup deltas of one resolution into their rows, inside the write
/// transaction `$tx`: read, merge, write back. Both backends run this SQL (SQLite has
/// `$n` placeholders and `ON CONFLICT … DO UPDATE` too); on Postgres the caller holds the
/// rollup advisory lock.
macro_rules! merge_metric_rollups {
    ($tx:ident, $rollups:expr, $res:expr) => {
        let table = $crate::store::metric_rollup_table($res);
        let select = format!("SELECT count, sum, min, max, sketch FROM {table} WHERE model_id = $1 AND name = $2 AND bucket = $3");
        let upsert = format!(
            "INSERT INTO {table} (model_id, name, bucket, count, sum, min, max, sketch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (model_id, name, bucket) DO UPDATE SET count = excluded.count, sum = excluded.sum, \
             min = excluded.min, max = excluded.max, sketch = excluded.sketch"
        );
        for (key, delta) in $rollups.sorted_metrics($res) {
            let existing = sqlx::query_as::<_, $crate::store::MetricRollupRow>(&select)
                .bind(key.model_id)
                .bind(&key.name)
                .bind(key.bucket)
                .fetch_optional(&mut *$tx)
                .await?;
            let mut acc = match existing {
                Some(row) => row.into_acc()?,
                None => $crate::ingest::rollup::MetricAcc::default(),
            };
            acc.merge(delta);
            sqlx::query(&upsert)
                .bind(key.model_id)
                .bind(&key.name)
                .bind(key.bucket)
                .bind(acc.count)
                .bind(acc.sum)
                .bind(acc.min)
                .bind(acc.max)
                .bind($crate::store::sketch_bytes(&acc.sketch))
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(crate) use merge_metric_rollups;

/// Merges the breakdown-dimension deltas into `rollups_dim_hour` inside the write transaction
/// `$tx`, like `merge_metric_rollups`.
macro_rules! merge_dim_rollups {
    // `$ph` turns a 1-based parameter index into its placeholder: `?` on SQLite (sqlx looks
    // `$N` names up one by one, quadratic in a 5000-parameter statement), `$N` on Postgres.
    ($tx:ident, $rollups:expr, $res:expr, $ph:expr) => {
        let ph: fn(usize) -> String = $ph;
        // Many distinct values per commit (one per user and key), so rows are read and
        // written in chunks of statements rather than one pair of statements per value.
        let table = $crate::store::dim_rollup_table($res);
        let entries = $rollups.sorted_dims($res);
        for chunk in entries.chunks(500) {
            let keys: Vec<String> = (0..chunk.len())
                .map(|i| format!("({}, {}, {}, {})", ph(4 * i + 1), ph(4 * i + 2), ph(4 * i + 3), ph(4 * i + 4)))
                .collect();
            let select = format!(
                "SELECT model_id, dim, bucket, value, requests, errors, input_tokens, output_tokens, cost_usd, latency \
                 FROM {table} WHERE (model_id, dim, bucket, value) IN (VALUES {})",
                keys.join(", ")
            );
            let mut q = sqlx::query_as::<_, $crate::store::DimKeyedRow>(&select);
            for (key, _) in chunk {
                q = q.bind(key.model_id).bind(&key.dim).bind(key.bucket).bind(&key.value);
            }
            let mut old: std::collections::HashMap<(i64, String, i64, String), $crate::ingest::rollup::DimAcc> =
                std::collections::HashMap::new();
            for row in q.fetch_all(&mut *$tx).await? {
                let k = (row.model_id, row.dim.clone(), row.bucket, row.value.clone());
                old.insert(k, row.row.into_acc()?);
            }
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = 10 * i;
                    format!("({})", (1..=10).map(|j| ph(b + j)).collect::<Vec<_>>().join(", "))
                })
                .collect();
            let upsert = format!(
                "INSERT INTO {table} (model_id, dim, bucket, value, requests, errors, input_tokens, output_tokens, \
                 cost_usd, latency) VALUES {} \
                 ON CONFLICT (model_id, dim, bucket, value) DO UPDATE SET requests = excluded.requests, \
                 errors = excluded.errors, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
                 cost_usd = excluded.cost_usd, latency = excluded.latency",
                values.join(", ")
            );
            let mut q = sqlx::query(&upsert);
            for (key, delta) in chunk {
                let mut acc = old
                    .remove(&(key.model_id, key.dim.clone(), key.bucket, key.value.clone()))
                    .unwrap_or_default();
                acc.merge(delta);
                q = q
                    .bind(key.model_id)
                    .bind(key.dim.clone())
                    .bind(key.bucket)
                    .bind(key.value.clone())
                    .bind(acc.requests)
                    .bind(acc.errors)
                    .bind(acc.input_tokens)
                    .bind(acc.output_tokens)
                    .bind(acc.cost_usd)
                    .bind($crate::store::sketch_bytes(&acc.latency));
            }
            q.execute(&mut *$tx).await?;
        }
    };
}
pub(crate) use merge_dim_rollups;

/// Merges the per-model totals of one resolution into `model_rollups_*` inside the write
/// transaction `$tx`: one SELECT and one multi-row upsert per chunk of models (not a pair of
/// statements per model), placeholders as in `merge_dim_rollups`.
macro_rules! merge_model_rollups {
    ($tx:ident, $rollups:expr, $res:expr, $ph:expr) => {
        let ph: fn(usize) -> String = $ph;
        let table = $crate::store::model_rollup_table($res);
        let entries = $rollups.sorted_totals($res);
        for chunk in entries.chunks(500) {
            let keys: Vec<String> = (0..chunk.len()).map(|i| format!("({}, {})", ph(2 * i + 1), ph(2 * i + 2))).collect();
            let select = format!(
                "SELECT model_id, bucket, requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd, cache_hits, \
                 stored, latency, ttft FROM {table} WHERE (model_id, bucket) IN (VALUES {})",
                keys.join(", ")
            );
            let mut q = sqlx::query_as::<_, $crate::store::ModelKeyedRow>(&select);
            for ((model_id, bucket), _) in chunk {
                q = q.bind(*model_id).bind(*bucket);
            }
            let mut old: std::collections::HashMap<(i64, i64), $crate::ingest::rollup::RollupAcc> = std::collections::HashMap::new();
            for row in q.fetch_all(&mut *$tx).await? {
                old.insert((row.model_id, row.bucket), row.row.into_acc()?);
            }
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", (1..=12).map(|j| ph(12 * i + j)).collect::<Vec<_>>().join(", ")))
                .collect();
            let upsert = format!(
                "INSERT INTO {table} (model_id, bucket, requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd, \
                 cache_hits, stored, latency, ttft) VALUES {} \
                 ON CONFLICT (model_id, bucket) DO UPDATE SET requests = excluded.requests, errors = excluded.errors, \
                 input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
                 cached_tokens = excluded.cached_tokens, cost_usd = excluded.cost_usd, cache_hits = excluded.cache_hits, \
                 stored = excluded.stored, latency = excluded.latency, ttft = excluded.ttft",
                values.join(", ")
            );
            let mut q = sqlx::query(&upsert);
            for ((model_id, bucket), delta) in chunk {
                let mut acc = old.remove(&(*model_id, *bucket)).unwrap_or_default();
                acc.merge(delta);
                q = q
                    .bind(*model_id)
                    .bind(*bucket)
                    .bind(acc.requests)
                    .bind(acc.errors)
                    .bind(acc.input_tokens)
                    .bind(acc.output_tokens)
                    .bind(acc.cached_tokens)
                    .bind(acc.cost_usd)
                    .bind(acc.cache_hits)
                    .bind(acc.stored)
                    .bind($crate::store::sketch_bytes(&acc.latency))
                    .bind($crate::store::sketch_bytes(&acc.ttft));
            }
            q.execute(&mut *$tx).await?;
        }
    };
}
pub(crate) use merge_model_rollups;

/// The statements both backends share. `$n` placeholders work on SQLite and Postgres alike.
macro_rules! impl_common_store {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn alerts(&self) -> &dyn $crate::store::alerts::AlertStore {
                self
            }

            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ready(&self) -> $crate::error::Result<()> {
                let applied: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE",
                )
                .fetch_one(&self.pool)
                .await?;
                let expected = Self::migrator().iter().count() as i64;
                if applied < expected {
                    return Err($crate::error::Error::Storage(format!(
                        "{applied} of {expected} migrations applied"
                    )));
                }
                Ok(())
            }

            async fn count_users(&self) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
            }

            async fn create_user(&self, new: $crate::store::NewUser<'_>) -> $crate::error::Result<$crate::types::User> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO users (username, password_hash, role, disabled, created_at, password_changed_at) \
                     VALUES ($1, $2, $3, FALSE, $4, $4) RETURNING id",
                )
                .bind(new.username)
                .bind(new.password_hash)
                .bind(new.role.as_str())
                .bind(new.now_ms)
                .fetch_one(&self.pool)
                .await
                .map_err($crate::store::map_unique("username", "a user with this name"))?;
                Ok($crate::types::User {
                    id,
                    username: new.username.to_string(),
                    role: new.role,
                    disabled: false,
                    created_at: new.now_ms,
                })
            }

            async fn user_by_name(&self, username: &str) -> $crate::error::Result<Option<$crate::store::UserRecord>> {
                sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT id, username, password_hash, role, disabled, created_at, unlocked_at FROM users \
                     WHERE lower(username) = lower($1)",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await?
                .map($crate::store::UserRow::into_record)
                .transpose()
            }

            async fn user_by_id(&self, id: i64) -> $crate::error::Result<Option<$crate::store::UserRecord>> {
                sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT id, username, password_hash, role, disabled, created_at FROM users WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map($crate::store::UserRow::into_record)
                .transpose()
            }

            async fn list_users(&self) -> $crate::error::Result<Vec<$crate::types::User>> {
                sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT id, username, password_hash, role, disabled, created_at FROM users ORDER BY username",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_record().map(|r| r.user))
                .collect()
            }

            async fn set_user_role(&self, id: i64, role: $crate::types::Role) -> $crate::error::Result<()> {
                sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                    .bind(role.as_str())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_user_disabled(&self, id: i64, disabled: bool) -> $crate::error::Result<()> {
                sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                    .bind(disabled)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_password_hash(&self, id: i64, hash: &str, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_user_unlocked(&self, id: i64, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE users SET unlocked_at = $1 WHERE id = $2").bind(now_ms).bind(id).execute(&self.pool).await?;
                Ok(())
            }

            async fn create_session(&self, id: &str, user_id: i64, now_ms: i64, expires_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(user_id)
                    .bind(now_ms)
                    .bind(expires_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn session_owner(&self, id: &str, now_ms: i64) -> $crate::error::Result<Option<$crate::store::SessionOwner>> {
                let row = sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT u.id, u.username, u.password_hash, u.role, u.disabled, u.created_at \
                     FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.disabled = FALSE",
                )
                .bind(id)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_record().map(|r| $crate::store::SessionOwner { user: r.user }))
                    .transpose()
            }

            async fn revoke_session(&self, id: &str, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind(now_ms)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_model(&self, new: $crate::store::NewModel<'_>) -> $crate::error::Result<$crate::types::Model> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO models (name, display_name, description, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(new.name)
                .bind(new.display_name)
                .bind(new.description)
                .bind(new.now_ms)
                .fetch_one(&self.pool)
                .await
                .map_err($crate::store::map_unique("name", "a model with this name"))?;
                Ok($crate::types::Model {
                    id,
                    name: new.name.to_string(),
                    display_name: new.display_name.to_string(),
                    description: new.description.to_string(),
                    created_at: new.now_ms,
                    capture_payloads: true,
                    breakdown_keys: Vec::new(),
                })
            }

            async fn model_by_name(&self, name: &str) -> $crate::error::Result<Option<$crate::types::Model>> {
                Ok(sqlx::query_as::<_, $crate::store::ModelRow>(
                    "SELECT id, name, display_name, description, created_at, capture_payloads, breakdown_keys FROM models WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .map(Into::into))
            }

            async fn list_models(&self) -> $crate::error::Result<Vec<$crate::types::Model>> {
                Ok(sqlx::query_as::<_, $crate::store::ModelRow>(
                    "SELECT id, name, display_name, description, created_at, capture_payloads, breakdown_keys FROM models ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            }

            async fn count_models(&self) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM models").fetch_one(&self.pool).await?)
            }

            async fn update_model(&self, id: i64, display_name: &str, description: &str) -> $crate::error::Result<()> {
                sqlx::query("UPDATE models SET display_name = $1, description = $2 WHERE id = $3")
                    .bind(display_name)
                    .bind(description)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn grants_of_user(&self, user_id: i64) -> $crate::error::Result<Vec<$crate::types::Grant>> {
                let rows: Vec<(i64, String, bool)> = sqlx::query_as(
                    "SELECT g.model_id, m.name, g.view_payloads FROM grants g JOIN models m ON m.id = g.model_id \
                     WHERE g.user_id = $1 ORDER BY m.name",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(model_id, model, view_payloads)| $crate::types::Grant { model_id, model, view_payloads })
                    .collect())
            }

            async fn grants_on_model(&self, model_id: i64) -> $crate::error::Result<Vec<$crate::types::UserGrant>> {
                let rows: Vec<(i64, String, bool)> = sqlx::query_as(
                    "SELECT g.user_id, u.username, g.view_payloads FROM grants g JOIN users u ON u.id = g.user_id \
                     WHERE g.model_id = $1 ORDER BY u.username",
                )
                .bind(model_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(user_id, username, view_payloads)| $crate::types::UserGrant { user_id, username, view_payloads })
                    .collect())
            }

            async fn upsert_grant(&self, user_id: i64, model_id: i64, view_payloads: bool) -> $crate::error::Result<()> {
                sqlx::query(
                    "INSERT INTO grants (user_id, model_id, view_payloads) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, model_id) DO UPDATE SET view_payloads = excluded.view_payloads",
                )
                .bind(user_id)
                .bind(model_id)
                .bind(view_payloads)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn saved_searches(&self, user_id: i64, model_id: i64) -> $crate::error::Result<Vec<$crate::types::SavedSearch>> {
                Ok(sqlx::query_as::<_, $crate::types::SavedSearch>(
                    "SELECT id, name, query, created_at FROM saved_searches WHERE user_id = $1 AND model_id = $2 ORDER BY name",
                )
                .bind(user_id)
                .bind(model_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn save_search(&self, user_id: i64, model_id: i64, name: &str, query: &str, now_ms: i64) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO saved_searches (user_id, model_id, name, query, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (user_id, model_id, name) DO UPDATE SET query = excluded.query, created_at = excluded.created_at \
                     RETURNING id",
                )
                .bind(user_id)
                .bind(model_id)
                .bind(name)
                .bind(query)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn delete_saved_search(&self, user_id: i64, id: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query("DELETE FROM saved_searches WHERE id = $1 AND user_id = $2").bind(id).bind(user_id).execute(&self.pool).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_grant(&self, user_id: i64, model_id: i64) -> $crate::error::Result<()> {
                sqlx::query("DELETE FROM grants WHERE user_id = $1 AND model_id = $2")
                    .bind(user_id)
                    .bind(model_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            async fn set_model_capture(&self, id: i64, capture_payloads: bool) -> $crate::error::Result<()> {
                sqlx::query("UPDATE models SET capture_payloads = $1 WHERE id = $2")
                    .bind(capture_payloads)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_model_breakdown_keys(&self, id: i64, keys: &[String]) -> $crate::error::Result<()> {
                sqlx::query("UPDATE models SET breakdown_keys = $1 WHERE id = $2")
                    .bind(serde_json::to_string(keys).unwrap_or_else(|_| "[]".into()))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn count_series(&self, model_id: i64) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM series WHERE model_id = $1").bind(model_id).fetch_one(&self.pool).await?)
            }

            async fn series_id(&self, model_id: i64, key: &$crate::store::SeriesKey) -> $crate::error::Result<Option<i64>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM series WHERE model_id = $1 AND provider = $2 AND model_version = $3 \
                     AND environment = $4 AND operation = $5",
                )
                .bind(model_id)
                .bind(&key.provider)
                .bind(&key.model_version)
                .bind(&key.environment)
                .bind(&key.operation)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn ensure_series(&self, model_id: i64, key: &$crate::store::SeriesKey) -> $crate::error::Result<i64> {
                sqlx::query(
                    "INSERT INTO series (model_id, provider, model_version, environment, operation) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(model_id)
                .bind(&key.provider)
                .bind(&key.model_version)
                .bind(&key.environment)
                .bind(&key.operation)
                .execute(&self.pool)
                .await?;
                self.series_id(model_id, key)
                    .await?
                    .ok_or_else(|| $crate::error::Error::Storage("series vanished after insert".into()))
            }

            async fn series_of_model(&self, model_id: i64) -> $crate::error::Result<Vec<(i64, $crate::store::SeriesKey)>> {
                let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
                    "SELECT id, provider, model_version, environment, operation FROM series WHERE model_id = $1 ORDER BY id",
                )
                .bind(model_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, provider, model_version, environment, operation)| {
                        (id, $crate::store::SeriesKey { provider, model_version, environment, operation })
                    })
                    .collect())
            }

            async fn write_batch(&self, batch: &$crate::store::WriteBatch) -> $crate::error::Result<()> {
                self.write_batch_impl(batch).await
            }

            fn prepare_batch(&self, batch: &mut $crate::store::WriteBatch) {
                self.prepare_batch_impl(batch)
            }

            fn defers_breakdowns(&self) -> bool {
                Self::DEFERS_BREAKDOWNS
            }

            fn search_barrier(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>> {
                self.search_barrier_impl()
            }

            async fn breakdown_mark(&self) -> $crate::error::Result<Option<i64>> {
                self.breakdown_mark_impl().await
            }

            async fn logs_after(&self, after: i64, limit: i64) -> $crate::error::Result<Vec<$crate::store::StoredLog>> {
                self.logs_after_impl(after, limit).await
            }

            async fn create_api_key(&self, new: $crate::store::NewApiKey<'_>) -> $crate::error::Result<i64> {
                let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
                let models = new.models.map(|m| serde_json::to_string(m).unwrap_or_default());
                Ok(sqlx::query_scalar(
                    "INSERT INTO api_keys (name, prefix, secret_hash, scopes, models, capture_payloads, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(new.name)
                .bind(new.prefix)
                .bind(new.secret_hash)
                .bind(scopes.join(","))
                .bind(models)
                .bind(new.capture_payloads)
                .bind(new.created_by)
                .bind(new.now_ms)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn api_key_by_prefix(&self, prefix: &str) -> $crate::error::Result<Option<$crate::store::ApiKeyRecord>> {
                let sql = format!("{} WHERE k.prefix = $1", $crate::store::API_KEY_SELECT);
                Ok(sqlx::query_as::<_, $crate::store::ApiKeyRow>(&sql)
                    .bind(prefix)
                    .fetch_optional(&self.pool)
                    .await?
                    .map($crate::store::ApiKeyRow::into_record))
            }

            async fn list_api_keys(&self) -> $crate::error::Result<Vec<$crate::types::ApiKey>> {
                let sql = format!("{} ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC, k.id DESC", $crate::store::API_KEY_SELECT);
                Ok(sqlx::query_as::<_, $crate::store::ApiKeyRow>(&sql)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|r| r.into_record().key)
                    .collect())
            }

            async fn revoke_api_key(&self, id: i64, now_ms: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn touch_api_key(&self, id: i64, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn list_rules(&self) -> $crate::error::Result<Vec<$crate::types::IngestRule>> {
                sqlx::query_as::<_, $crate::store::RuleRow>(
                    "SELECT id, position, name, enabled, model, config FROM ingest_rules ORDER BY position, id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map($crate::store::RuleRow::into_rule)
                .collect()
            }

            async fn create_rule(&self, rule: &$crate::types::IngestRule, now_ms: i64) -> $crate::error::Result<i64> {
                let config = serde_json::to_string(&rule.action).map_err(|e| $crate::error::Error::Internal(e.to_string()))?;
                Ok(sqlx::query_scalar(
                    "INSERT INTO ingest_rules (position, name, kind, enabled, model, config, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(rule.position)
                .bind(&rule.name)
                .bind(rule.action.kind())
                .bind(rule.enabled)
                .bind(&rule.model)
                .bind(config)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn update_rule(&self, rule: &$crate::types::IngestRule, now_ms: i64) -> $crate::error::Result<bool> {
                let config = serde_json::to_string(&rule.action).map_err(|e| $crate::error::Error::Internal(e.to_string()))?;
                let r = sqlx::query(
                    "UPDATE ingest_rules SET position = $1, name = $2, kind = $3, enabled = $4, model = $5, config = $6, \
                     updated_at = $7 WHERE id = $8",
                )
                .bind(rule.position)
                .bind(&rule.name)
                .bind(rule.action.kind())
                .bind(rule.enabled)
                .bind(&rule.model)
                .bind(config)
                .bind(now_ms)
                .bind(rule.id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_rule(&self, id: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query("DELETE FROM ingest_rules WHERE id = $1").bind(id).execute(&self.pool).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_scrape_targets(&self) -> $crate::error::Result<Vec<$crate::types::ScrapeTarget>> {
                Ok(sqlx::query_as::<_, $crate::store::ScrapeRow>(
                    "SELECT t.id, m.name AS model, t.url, t.interval_secs, t.preset, t.keep, t.enabled, t.last_scrape_ms, \
                     t.last_duration_ms, t.last_error, t.last_points, t.last_success_ms \
                     FROM scrape_targets t JOIN models m ON m.id = t.model_id ORDER BY m.name, t.id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map($crate::store::ScrapeRow::into_target)
                .collect())
            }

            async fn create_scrape_target(&self, t: &$crate::types::ScrapeTarget, model_id: i64, now_ms: i64) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO scrape_targets (model_id, url, interval_secs, preset, keep, enabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(model_id)
                .bind(&t.url)
                .bind(t.interval_secs)
                .bind(&t.preset)
                .bind(t.keep.join("\n"))
                .bind(t.enabled)
                .bind(now_ms)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn update_scrape_target(&self, t: &$crate::types::ScrapeTarget, model_id: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query(
                    "UPDATE scrape_targets SET model_id = $1, url = $2, interval_secs = $3, preset = $4, keep = $5, enabled = $6 \
                     WHERE id = $7",
                )
                .bind(model_id)
                .bind(&t.url)
                .bind(t.interval_secs)
                .bind(&t.preset)
                .bind(t.keep.join("\n"))
                .bind(t.enabled)
                .bind(t.id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_scrape_target(&self, id: i64) -> $crate::error::Result<bool> {
                let r = sqlx::query("DELETE FROM scrape_targets WHERE id = $1").bind(id).execute(&self.pool).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn record_scrape(&self, id: i64, at_ms: i64, duration_ms: i64, error: Option<&str>, points: i64) -> $crate::error::Result<()> {
                sqlx::query(
                    "UPDATE scrape_targets SET last_scrape_ms = $1, last_duration_ms = $2, last_error = $3, last_points = $4, \
                     last_success_ms = CASE WHEN $3 IS NULL THEN $1 ELSE last_success_ms END WHERE id = $5",
                )
                .bind(at_ms)
                .bind(duration_ms)
                .bind(error)
                .bind(points)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_prices(&self) -> $crate::error::Result<Vec<$crate::types::Price>> {
                let rows: Vec<(String, f64, f64, f64)> = sqlx::query_as(
                    "SELECT pattern, input_per_mtok, output_per_mtok, cached_input_per_mtok FROM prices ORDER BY pattern",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(pattern, input_per_mtok, output_per_mtok, cached_input_per_mtok)| $crate::types::Price {
                        pattern,
                        input_per_mtok,
                        output_per_mtok,
                        cached_input_per_mtok,
                    })
                    .collect())
            }

            async fn upsert_price(&self, p: &$crate::types::Price, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query(
                    "INSERT INTO prices (pattern, input_per_mtok, output_per_mtok, cached_input_per_mtok, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pattern) DO UPDATE SET input_per_mtok = excluded.input_per_mtok, \
                     output_per_mtok = excluded.output_per_mtok, cached_input_per_mtok = excluded.cached_input_per_mtok, \
                     updated_at = excluded.updated_at",
                )
                .bind(&p.pattern)
                .bind(p.input_per_mtok)
                .bind(p.output_per_mtok)
                .bind(p.cached_input_per_mtok)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_price(&self, pattern: &str) -> $crate::error::Result<bool> {
                let r = sqlx::query("DELETE FROM prices WHERE pattern = $1").bind(pattern).execute(&self.pool).await?;
                Ok(r.rows_affected() > 0)
            }

            async fn search_logs(&self, f: &$crate::store::filter::LogFilter, limit: i64) -> $crate::error::Result<Vec<$crate::store::StoredLog>> {
                let (w, binds) = f.where_clause($crate::store::filter::Dialect::of($backend));
                let sql = format!(
                    "SELECT {} FROM logs WHERE {w} ORDER BY ts DESC, id DESC LIMIT {}",
                    $crate::store::log_columns($backend),
                    limit.max(0)
                );
                // SQLite: with the logs stored in blocks.
                self.read_logs(f, limit, &sql, &binds).await
            }

            async fn log_histogram(&self, f: &$crate::store::filter::LogFilter, step: i64, cap: i64) -> $crate::error::Result<Vec<$crate::store::HistogramRow>> {
                let (range, filters, binds) = f.where_parts($crate::store::filter::Dialect::of($backend));
                let sql = format!(
                    "SELECT (ts - {from}) / {step} AS bar, CAST(SUM(hit) AS BIGINT) AS n, CAST(SUM(hit * (flags & 1)) AS BIGINT) AS errors, \
                     COUNT(*) AS scanned, MIN(ts) AS oldest FROM \
                     (SELECT ts, flags, CASE WHEN {filters} THEN 1 ELSE 0 END AS hit FROM logs WHERE {range} ORDER BY ts DESC, id DESC LIMIT {cap}) m \
                     GROUP BY bar ORDER BY bar",
                    from = f.from,
                    step = step.max(1),
                    cap = cap.max(0)
                );
                // SQLite: over the rows and the blocks together.
                self.histogram_read(f, step, cap, &sql, &binds).await
            }

            async fn tail_logs(&self, f: &$crate::store::filter::LogFilter, after: i64, limit: i64) -> $crate::error::Result<Vec<$crate::store::StoredLog>> {
                let (w, mut binds) = f.where_clause($crate::store::filter::Dialect::of($backend));
                binds.push($crate::store::filter::Bind::Int(after));
                // `+model_id` keeps the planner on the id (primary key) range, which holds only
                // the newest rows, instead of the model's whole index.
                let w = w.replacen("model_id =", "+model_id =", 1);
                let sql = format!(
                    "SELECT {} FROM logs WHERE id > ${} AND {w} ORDER BY id DESC LIMIT {}",
                    $crate::store::log_columns($backend),
                    binds.len(),
                    limit.max(0)
                );
                self.tail_read(f, after, limit, &sql, &binds).await
            }

            async fn count_matching(&self, f: &$crate::store::filter::LogFilter) -> $crate::error::Result<i64> {
                let (w, binds) = f.where_clause($crate::store::filter::Dialect::of($backend));
                let sql = format!("SELECT COUNT(*) FROM logs WHERE {w}");
                self.count_read(f, &sql, &binds).await
            }

            async fn delete_logs(&self, f: &$crate::store::filter::LogFilter) -> $crate::error::Result<u64> {
                let dialect = $crate::store::filter::Dialect::of($backend);
                let (w, binds) = f.where_clause(dialect);
                let mut conn = self.pool.acquire().await?;
                // SQLite: take the write lock up front. A transaction that reads first and
                // writes later fails at once (not after the busy timeout) if the ingest writer
                // committed in between.
                let begin = match dialect {
                    $crate::store::filter::Dialect::Sqlite => "BEGIN IMMEDIATE",
                    $crate::store::filter::Dialect::Postgres => "BEGIN",
                };
                let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
                // The ids first: the filter may be a full-text search, which stops matching
                // once the index rows are gone, so nothing is deleted by the filter itself.
                let setup: &[&str] = match dialect {
                    $crate::store::filter::Dialect::Sqlite => &[
                        "CREATE TEMP TABLE IF NOT EXISTS doomed_logs (id INTEGER PRIMARY KEY)",
                        "DELETE FROM doomed_logs",
                    ],
                    $crate::store::filter::Dialect::Postgres => &["CREATE TEMP TABLE doomed_logs (id BIGINT PRIMARY KEY) ON COMMIT DROP"],
                };
                for sql in setup {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                let sql = format!("INSERT INTO doomed_logs (id) SELECT id FROM logs WHERE {w}");
                $crate::store::filter::bind_all!(sqlx::query(&sql), &binds).execute(&mut *tx).await?;
                // SQLite: logs in blocks too (their ids join `doomed_logs`, their blocks are
                // rewritten without them).
                let in_blocks = self.delete_blocks(&mut *tx, f).await?;
                let text: &[&str] = match dialect {
                    // The old index in this file (the index file's entries go after the commit,
                    // `after_delete_impl`); ids are never handed out again, whatever the newest
                    // remaining log is.
                    $crate::store::filter::Dialect::Sqlite => &[
                        "DELETE FROM logs_fts WHERE rowid IN (SELECT id FROM doomed_logs)",
                        // Shared metadata objects: one reference fewer per deleted log, and
                        // gone once nothing refers to them.
                        "UPDATE log_metadata SET refs = refs - d.n FROM (SELECT metadata_ref AS ref, COUNT(*) AS n FROM logs \
                         WHERE id IN (SELECT id FROM doomed_logs) AND metadata_ref IS NOT NULL GROUP BY metadata_ref) AS d \
                         WHERE log_metadata.id = d.ref",
                        "DELETE FROM log_metadata WHERE refs <= 0 AND id IN (SELECT metadata_ref FROM logs \
                         WHERE id IN (SELECT id FROM doomed_logs))",
                        "UPDATE ingest_state SET value = max(value, (SELECT COALESCE(MAX(id), 0) FROM doomed_logs)) WHERE key = 'log_id_floor'",
                    ],
                    $crate::store::filter::Dialect::Postgres => &["DELETE FROM logs_text WHERE log_id IN (SELECT id FROM doomed_logs)"],
                };
                for sql in std::iter::once("DELETE FROM payloads WHERE log_id IN (SELECT id FROM doomed_logs)").chain(text.iter().copied()) {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                let done = sqlx::query("DELETE FROM logs WHERE id IN (SELECT id FROM doomed_logs)").execute(&mut *tx).await?;
                // Payloads stored in blocks: rewritten without the deleted logs'.
                self.prune_payloads_impl(&mut *tx).await?;
                let mut doomed: Vec<i64> = Vec::new();
                if dialect == $crate::store::filter::Dialect::Sqlite {
                    doomed = sqlx::query_scalar("SELECT id FROM doomed_logs").fetch_all(&mut *tx).await?;
                    sqlx::query("DELETE FROM doomed_logs").execute(&mut *tx).await?;
                }
                tx.commit().await?;
                self.forget_payload_blocks();
                self.after_delete_impl(doomed).await?;
                Ok(done.rows_affected() + in_blocks)
            }

            async fn delete_dim_value(&self, model_id: i64, dim: &str, value: &str) -> $crate::error::Result<()> {
                for table in ["rollups_dim_hour", "rollups_dim_day"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE model_id = $1 AND dim = $2 AND value = $3"))
                        .bind(model_id)
                        .bind(dim)
                        .bind(value)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(())
            }

            async fn max_log_id(&self) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar(Self::MAX_LOG_ID).fetch_one(&self.pool).await?)
            }

            async fn log_by_id(&self, id: i64) -> $crate::error::Result<Option<$crate::store::StoredLog>> {
                let sql = format!("SELECT {} FROM logs WHERE id = $1", $crate::store::log_columns($backend));
                match sqlx::query_as::<_, $crate::store::StoredLog>(&sql).bind(id).fetch_optional(&self.pool).await? {
                    Some(row) => Ok(Some(row)),
                    None => self.block_log_by_id(id).await,
                }
            }

            async fn count_logs(&self, model_id: i64) -> $crate::error::Result<i64> {
                let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logs WHERE model_id = $1").bind(model_id).fetch_one(&self.pool).await?;
                Ok(rows + self.count_model_blocks(model_id).await?)
            }

            async fn payload(&self, log_id: i64) -> $crate::error::Result<Option<Vec<u8>>> {
                self.payload_impl(log_id).await
            }

            async fn rollup_total(
                &self,
                model_id: i64,
                res: $crate::ingest::rollup::Resolution,
                from: i64,
                to: i64,
            ) -> $crate::error::Result<$crate::ingest::rollup::RollupAcc> {
                let sql = format!(
                    "SELECT requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd, cache_hits, stored, latency, ttft \
                     FROM {} WHERE model_id = $1 AND bucket >= $2 AND bucket < $3",
                    $crate::store::rollup_table(res)
                );
                let rows = sqlx::query_as::<_, $crate::store::RollupRow>(&sql)
                    .bind(model_id)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await?;
                let mut total = $crate::ingest::rollup::RollupAcc::default();
                for r in rows {
                    total.merge(&r.into_acc()?);
                }
                Ok(total)
            }

            async fn rollup_rows(
                &self,
                model_id: i64,
                res: $crate::ingest::rollup::Resolution,
                from: i64,
                to: i64,
            ) -> $crate::error::Result<Vec<$crate::store::RollupRangeRow>> {
                let sql = format!(
                    "SELECT bucket, series_id, error_type, requests, errors, input_tokens, output_tokens, cached_tokens, \
                     cost_usd, cache_hits, latency, ttft FROM {} WHERE model_id = $1 AND bucket >= $2 AND bucket < $3 \
                     ORDER BY bucket",
                    $crate::store::rollup_table(res)
                );
                Ok(sqlx::query_as(&sql).bind(model_id).bind(from).bind(to).fetch_all(&self.pool).await?)
            }

            async fn metric_rollup_rows(
                &self,
                model_id: i64,
                res: $crate::ingest::rollup::Resolution,
                from: i64,
                to: i64,
            ) -> $crate::error::Result<Vec<$crate::store::MetricRangeRow>> {
                let sql = format!(
                    "SELECT name, bucket, count, sum, min, max, sketch FROM {} \
                     WHERE model_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY name, bucket",
                    $crate::store::metric_rollup_table(res)
                );
                Ok(sqlx::query_as(&sql).bind(model_id).bind(from).bind(to).fetch_all(&self.pool).await?)
            }

            async fn model_request_counts(
                &self,
                model_id: i64,
                res: $crate::ingest::rollup::Resolution,
                from: i64,
                to: i64,
            ) -> $crate::error::Result<Vec<(i64, i64)>> {
                let sql = format!(
                    "SELECT bucket, requests FROM {} WHERE model_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket",
                    $crate::store::model_rollup_table(res)
                );
                Ok(sqlx::query_as(&sql).bind(model_id).bind(from).bind(to).fetch_all(&self.pool).await?)
            }

            async fn model_rollup_rows(
                &self,
                model_id: i64,
                res: $crate::ingest::rollup::Resolution,
                from: i64,
                to: i64,
            ) -> $crate::error::Result<Vec<$crate::store::ModelRangeRow>> {
                let sql = format!(
                    "SELECT bucket, requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd, cache_hits, \
                     latency, ttft FROM {} WHERE model_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket",
                    $crate::store::model_rollup_table(res)
                );
                Ok(sqlx::query_as(&sql).bind(model_id).bind(from).bind(to).fetch_all(&self.pool).await?)
            }

            async fn dim_rollup_rows(
                &self,
                model_id: i64,
                dim: &str,
                res: $crate::ingest::rollup::Resolution,
                from: i64,
                to: i64,
            ) -> $crate::error::Result<Vec<$crate::store::DimRangeRow>> {
                let sql = format!(
                    "SELECT bucket, value, requests, errors, input_tokens, output_tokens, cost_usd, latency \
                     FROM {} WHERE model_id = $1 AND dim = $2 AND bucket >= $3 AND bucket < $4",
                    $crate::store::dim_rollup_table(res)
                );
                Ok(sqlx::query_as(&sql)
                .bind(model_id)
                .bind(dim)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn metric_rollup_total(
                &self,
                model_id: i64,
                name: &str,
                res: $crate::ingest::rollup::Resolution,
                from: i64,
                to: i64,
            ) -> $crate::error::Result<$crate::ingest::rollup::MetricAcc> {
                let sql = format!(
                    "SELECT count, sum, min, max, sketch FROM {} WHERE model_id = $1 AND name = $2 AND bucket >= $3 AND bucket < $4",
                    $crate::store::metric_rollup_table(res)
                );
                let rows = sqlx::query_as::<_, $crate::store::MetricRollupRow>(&sql)
                    .bind(model_id)
                    .bind(name)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await?;
                let mut total = $crate::ingest::rollup::MetricAcc::default();
                for r in rows {
                    total.merge(&r.into_acc()?);
                }
                Ok(total)
            }
        }
    };
}pub(crate) use impl_common_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_select_the_same_log_columns() {
        let names = |cols: &str| cols.split(',').map(|c| c.split_whitespace().last().unwrap_or("").to_string()).collect::<Vec<_>>();
        assert_eq!(names(LOG_COLUMNS), names(SQLITE_LOG_COLUMNS));
        assert_eq!(names(LOG_COLUMNS).len(), 22);
        assert_eq!(log_columns("postgres"), LOG_COLUMNS);
        assert!(log_columns("sqlite").contains("lower(hex(trace_id)) ELSE trace_id END AS trace_id"));
    }
}
