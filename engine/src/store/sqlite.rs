//! The embedded SQLite store: one file in the data dir, WAL mode, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{Error, Result};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteStore {
    /// Every read and most writes. Its connections have the full-text index file attached as
    /// `fts`.
    pub(crate) pool: SqlitePool,
    /// The ingest writer's one connection, without the index file: `BEGIN IMMEDIATE` on a
    /// connection locks every attached file, which would stop the indexer during each commit.
    writer: SqlitePool,
    full_text: super::fulltext::FullText,
    /// The payload block read last, decoded: a page of logs or an export mostly reads
    /// payloads of neighbouring logs, which share blocks. Cleared when blocks are rewritten.
    last_block: std::sync::Mutex<BlockCache>,
}

#[derive(Default)]
struct BlockCache {
    /// Bumped whenever blocks are rewritten: a block read before may only be cached if this
    /// did not change while it was read.
    generation: u64,
    block: Option<DecodedBlock>,
}

struct DecodedBlock {
    first_id: i64,
    last_id: i64,
    entries: std::sync::Arc<Vec<(i64, Vec<u8>)>>,
}

/// Prepared statements the ingest writer keeps. Its multi-row statements hold thousands of
/// parameters each (hundreds of KB prepared), and the last chunk of every table varies in size
/// from commit to commit, so sqlx's default of 100 filled up with one-off shapes.
const WRITER_STATEMENTS: usize = 24;

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database", format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we answer; group commit (ingest) amortises the fsync.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let index_file = super::fulltext::index_path(opts.get_filename());
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // The connection is a file handle on this machine, not a socket that can go stale:
            // no ping (a round trip to its thread) before each commit.
            .test_before_acquire(false)
            .connect_with(opts.clone().statement_cache_capacity(WRITER_STATEMENTS))
            .await
            .map_err(|e| Error::Storage(format!("cannot open SQLite database {url}: {e}")))?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| Error::Storage(format!("SQLite migrations failed: {e}")))?;
        let prepared = super::fulltext::prepare(&index_file, &writer).await?;
        let attach = index_file.to_string_lossy().into_owned();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .after_connect(move |conn, _meta| {
                let file = attach.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE ? AS fts").bind(file).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| Error::Storage(format!("cannot open SQLite database {url}: {e}")))?;
        let full_text = super::fulltext::FullText::start(prepared, pool.clone());
        Ok(Self { pool, writer, full_text, last_block: std::sync::Mutex::new(BlockCache::default()) })
    }

    pub(crate) fn migrator() -> &'static Migrator {
        &MIGRATOR
    }
}

super::alerts::impl_alert_store!(SqliteStore);
super::impl_common_store!(SqliteStore, "sqlite");

// ----- the write path ------------------------------------------------------------------------------

use std::collections::HashMap;

use sqlx::Connection;

use super::{BreakdownMark, LogRow, StoredLog, WriteBatch, rollup_table, sketch_bytes};
use crate::ingest::rollup::{Resolution, RollupAcc};
use crate::ingest::payload;

/// Rows per multi-row INSERT: 23 columns × 400 rows stays well under SQLite's 32766 variables,
/// and a fixed size lets the prepared statement be reused.
const LOG_CHUNK: usize = 400;
/// Fewer logs of one model in a commit than this are stored as rows of `logs`, more as a block
/// (`blocks`). Measured: blocks of one to five logs (1.4 on average) cost ~196 B per log, rows
/// 132–183 B (more when a commit is too small to share its metadata), blocks of 32–64 logs ~85 B.
const BLOCK_MIN_LOGS: usize = 8;
const LOG_INSERT_COLUMNS: &str = "(id, ts, model_id, series_id, flags, level, http_status, latency_ms, ttft_ms, input_tokens, \
    output_tokens, cached_tokens, cost_usd, feedback, error_type, message, error_message, user_id, session_id, trace_id, \
    span_id, metadata, metadata_ref)";
const LOG_PARAMS: usize = 23;

/// The highest log id ever handed out: the newest stored log (in `logs` or in a block), or a
/// deleted one above it (`log_id_floor`). New ids start above it.
pub(super) const HIGHEST_LOG_ID: &str = "SELECT max(COALESCE((SELECT MAX(id) FROM logs), 0), \
     COALESCE((SELECT last_id FROM log_blocks ORDER BY first_id DESC LIMIT 1), 0), \
     COALESCE((SELECT value FROM ingest_state WHERE key = 'log_id_floor'), 0))";
/// The newest log id stored, in `logs` or in blocks (a block's range end counts, even if its
/// newest log was deleted). 0 when there are none.
pub(super) const NEWEST_LOG_ID: &str = "SELECT max(COALESCE((SELECT MAX(id) FROM logs), 0), \
     COALESCE((SELECT last_id FROM log_blocks ORDER BY first_id DESC LIMIT 1), 0))";

pub(super) fn values_sql(rows: usize, params: usize) -> String {
    let mut s = String::with_capacity(rows * params * 3);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for p in 0..params {
            if p > 0 {
                s.push(',');
            }
            s.push('?');
        }
        s.push(')');
    }
    s
}

/// A commit's logs made ready for storage ahead of its transaction (`Store::prepare_batch`):
/// their id order (by model, then time, so that each model's logs of the commit become blocks
/// with one contiguous id range each), the runs stored as blocks (encoded, with the filters of
/// their words) or as rows, and the payload blocks. Positions in the id order stand for ids;
/// the transaction adds the first id it hands out. Encoding is most of a commit's CPU work,
/// and this way it runs while the previous commit writes.
#[derive(Debug, Default)]
pub(crate) struct EncodedLogs {
    /// How many logs the batch had when encoded (the write path checks it still has).
    logs: usize,
    /// Index in the batch's `logs` of each position.
    order: Vec<usize>,
    runs: Vec<EncodedRun>,
    /// (first position, last position, body).
    payload_blocks: Vec<(i64, i64, Vec<u8>)>,
}

#[derive(Debug)]
struct EncodedRun {
    first: i64,
    last: i64,
    /// None: a run of few logs, stored as rows of `logs` (a block of one or two logs costs
    /// what rows do, and rows cost a search nothing extra to read).
    block: Option<super::blocks::Encoded>,
}

impl EncodedLogs {
    pub(crate) fn of(logs: &[LogRow]) -> Result<EncodedLogs> {
        let mut order: Vec<usize> = (0..logs.len()).collect();
        order.sort_by_key(|&i| (logs[i].model_id, logs[i].ts));
        let rows: Vec<(i64, &LogRow)> = order.iter().enumerate().map(|(k, &i)| (k as i64, &logs[i])).collect();
        let mut runs = Vec::new();
        // Payloads in blocks of neighbouring logs: those of one block of logs together (a text
        // search that checks a block's logs reads just their payloads), those of logs stored
        // as rows with their neighbours.
        let mut payload_groups: Vec<Vec<(i64, &[u8])>> = Vec::new();
        let mut after_single = false;
        for run in super::blocks::block_runs(&rows) {
            let (first, last) = (run[0].0, run[run.len() - 1].0);
            let single = run.len() < BLOCK_MIN_LOGS;
            let block = if single { None } else { Some(super::blocks::Encoded::of(first, run)?) };
            runs.push(EncodedRun { first, last, block });
            if !(single && after_single) || payload_groups.is_empty() {
                payload_groups.push(Vec::new());
            }
            after_single = single;
            if let Some(group) = payload_groups.last_mut() {
                group.extend(run.iter().filter_map(|(k, r)| r.payload.as_deref().map(|p| (*k, p))));
            }
        }
        let mut payload_blocks = Vec::new();
        // Positions ascend within each group, and groups do not overlap.
        for run in payload_groups.iter().flat_map(|g| payload::block_runs(g)) {
            let (first, last) = (run[0].0, run[run.len() - 1].0);
            payload_blocks.push((first, last, payload::encode_block(first, run)?));
        }
        Ok(EncodedLogs { logs: logs.len(), order, runs, payload_blocks })
    }
}

impl SqliteStore {
    /// See `Store::prepare_batch`. A failure leaves the batch unprepared: the commit encodes
    /// it again and reports the error.
    pub(crate) fn prepare_batch_impl(&self, b: &mut WriteBatch) {
        if b.logs.is_empty() {
            return;
        }
        match EncodedLogs::of(&b.logs) {
            Ok(enc) => b.encoded = super::Prepared(Some(enc)),
            Err(e) => tracing::warn!(error = %e, "cannot encode a commit's logs ahead of it"),
        }
    }

    pub(crate) async fn write_batch_impl(&self, b: &WriteBatch) -> Result<()> {
        if !b.logs.is_empty() {
            self.full_text.wait_for_room().await;
        }
        let mut conn = self.writer.acquire().await?;
        // IMMEDIATE: take the write lock first, so the id range read below stays ours.
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;

        let mut index_texts: Vec<(i64, crate::ingest::SearchText)> = Vec::new();
        let mut index_through = None;
        if !b.logs.is_empty() {
            // Above the newest log and above every deleted one: ids are never reused.
            let base: i64 = sqlx::query_scalar(HIGHEST_LOG_ID).fetch_one(&mut *tx).await?;
            let owned;
            let enc = match b.encoded.0.as_ref().filter(|e| e.logs == b.logs.len()) {
                Some(enc) => enc,
                None => {
                    owned = EncodedLogs::of(&b.logs)?;
                    &owned
                }
            };
            let id = |k: i64| base + 1 + k;
            let mut singles: Vec<(i64, &LogRow)> = Vec::new();
            let mut blocks = Vec::with_capacity(enc.runs.len());
            for run in &enc.runs {
                match &run.block {
                    Some(block) => blocks.push((id(run.first), id(run.last), block)),
                    None => singles.extend((run.first..=run.last).map(|k| (id(k), &b.logs[enc.order[k as usize]]))),
                }
            }
            super::blocks::insert_blocks(&mut tx, &blocks).await?;
            insert_rows(&mut *tx, &singles).await?;
            // Payload blocks, many per statement (3 parameters each).
            for chunk in enc.payload_blocks.chunks(256) {
                let sql = format!("INSERT INTO payload_blocks (first_id, last_id, body) VALUES {}", values_sql(chunk.len(), 3));
                let mut q = sqlx::query(&sql);
                for (first, last, body) in chunk {
                    q = q.bind(id(*first)).bind(id(*last)).bind(body.as_slice());
                }
                q.execute(&mut *tx).await?;
            }
            // Logs in blocks are found through their block's filter of words (`textindex`);
            // those stored as rows go to FTS5, written by its own task after the commit
            // (`fulltext`), which is also told how far the logs go (its mark).
            index_texts = singles.iter().filter_map(|(id, r)| r.search_text.as_ref().map(|t| (*id, t.clone()))).collect();
            index_through = Some(base + b.logs.len() as i64);
        }

        if !b.metrics.is_empty() {
            let base: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM metric_points").fetch_one(&mut *tx).await?;
            for (ci, chunk) in b.metrics.chunks(LOG_CHUNK).enumerate() {
                let sql = format!(
                    "INSERT INTO metric_points (id, ts, model_id, name, value, labels) VALUES {}",
                    values_sql(chunk.len(), 6)
                );
                let mut q = sqlx::query(&sql);
                for (i, m) in chunk.iter().enumerate() {
                    let id = base + 1 + (ci * LOG_CHUNK + i) as i64;
                    q = q.bind(id).bind(m.ts).bind(m.model_id).bind(&m.name).bind(m.value).bind(&m.labels);
                }
                q.execute(&mut *tx).await?;
            }
        }

        for res in [Resolution::Minute, Resolution::Hour, Resolution::Day] {
            let table = rollup_table(res);
            // One SELECT and one multi-row upsert per chunk of keys instead of a pair of
            // statements per key.
            for chunk in b.rollups.sorted_logs(res).chunks(500) {
                let select = format!(
                    "SELECT model_id, bucket, series_id, error_type, requests, errors, input_tokens, output_tokens, \
                     cached_tokens, cost_usd, cache_hits, stored, latency, ttft FROM {table} \
                     WHERE (model_id, bucket, series_id, error_type) IN (VALUES {})",
                    values_sql(chunk.len(), 4)
                );
                let mut q = sqlx::query_as::<_, super::RollupKeyedRow>(&select);
                for (key, _) in chunk {
                    q = q.bind(key.model_id).bind(key.bucket).bind(key.series_id).bind(key.error_type.as_str());
                }
                let mut old: HashMap<(i64, i64, i64, String), RollupAcc> = HashMap::new();
                for row in q.fetch_all(&mut *tx).await? {
                    old.insert((row.model_id, row.bucket, row.series_id, row.error_type), row.row.into_acc()?);
                }
                let upsert = format!(
                    "INSERT OR REPLACE INTO {table} (model_id, bucket, series_id, error_type, requests, errors, input_tokens, \
                     output_tokens, cached_tokens, cost_usd, cache_hits, stored, latency, ttft) VALUES {}",
                    values_sql(chunk.len(), 14)
                );
                let mut q = sqlx::query(&upsert);
                for (key, delta) in chunk {
                    let mut acc = old
                        .remove(&(key.model_id, key.bucket, key.series_id, key.error_type.clone()))
                        .unwrap_or_default();
                    acc.merge(delta);
                    q = q
                        .bind(key.model_id)
                        .bind(key.bucket)
                        .bind(key.series_id)
                        .bind(key.error_type.as_str())
                        .bind(acc.requests)
                        .bind(acc.errors)
                        .bind(acc.input_tokens)
                        .bind(acc.output_tokens)
                        .bind(acc.cached_tokens)
                        .bind(acc.cost_usd)
                        .bind(acc.cache_hits)
                        .bind(acc.stored)
                        .bind(sketch_bytes(&acc.latency))
                        .bind(sketch_bytes(&acc.ttft));
                }
                q.execute(&mut *tx).await?;
            }

            if res != Resolution::Day {
                super::merge_metric_rollups!(tx, b.rollups, res);
            }
            super::merge_dim_rollups!(tx, b.rollups, res, |_| "?".to_string());
            super::merge_model_rollups!(tx, b.rollups, res, |_| "?".to_string());
        }
        let through = match b.breakdown_mark {
            BreakdownMark::Unchanged => None,
            BreakdownMark::Through(id) => Some(id),
            BreakdownMark::AllLogs => {
                Some(sqlx::query_scalar::<_, i64>(NEWEST_LOG_ID).fetch_one(&mut *tx).await?)
            }
        };
        if let Some(id) = through {
            sqlx::query("UPDATE ingest_state SET value = ? WHERE key = 'breakdowns_through_log_id' AND value < ?")
                .bind(id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if let Some(through) = index_through {
            self.full_text.submit(index_texts, through);
        }
        Ok(())
    }

    /// After a deletion: logs committed just before it may still have been waiting for the
    /// full-text task, which then indexed them after the deletion removed their entries. Wait
    /// for the task and remove those entries too, so that no word of a deleted log stays in
    /// the index file.
    pub(crate) async fn after_delete_impl(&self, ids: Vec<i64>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.full_text.barrier().await;
        for chunk in ids.chunks(500) {
            let sql = format!("DELETE FROM fts.logs_fts WHERE rowid IN ({})", vec!["?"; chunk.len()].join(","));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// See `Store::search_barrier`.
    pub(crate) fn search_barrier_impl(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>> {
        Some(Box::pin(self.full_text.barrier()))
    }
}

impl SqliteStore {
    /// The stored payload of a log: from its block, or from `payloads` for rows written before
    /// blocks.
    pub(crate) async fn payload_impl(&self, log_id: i64) -> Result<Option<Vec<u8>>> {
        let find = |entries: &[(i64, Vec<u8>)]| entries.binary_search_by_key(&log_id, |(id, _)| *id).ok().map(|i| entries[i].1.clone());
        let generation = {
            let cache = self.cache();
            if let Some(b) = cache.block.as_ref().filter(|b| b.first_id <= log_id && log_id <= b.last_id)
                && let Some(found) = find(&b.entries)
            {
                return Ok(Some(found));
            }
            cache.generation
        };
        let row: Option<(i64, i64, Vec<u8>)> =
            sqlx::query_as("SELECT first_id, last_id, body FROM payload_blocks WHERE first_id <= ? ORDER BY first_id DESC LIMIT 1")
                .bind(log_id)
                .fetch_optional(&self.pool)
                .await?;
        if let Some((first_id, last_id, body)) = row
            && last_id >= log_id
        {
            let entries = std::sync::Arc::new(payload::decode_block(&body, first_id)?);
            let found = find(&entries);
            let mut cache = self.cache();
            if cache.generation == generation {
                cache.block = Some(DecodedBlock { first_id, last_id, entries });
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(sqlx::query_scalar("SELECT body FROM payloads WHERE log_id = ?").bind(log_id).fetch_optional(&self.pool).await?)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, BlockCache> {
        self.last_block.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the payloads of the logs in the `doomed_logs` temp table (see `delete_logs`) from
    /// their blocks: each block holding one is rewritten without them, or dropped when nothing
    /// in it is left. Blocks are read one at a time.
    pub(crate) async fn prune_payloads_impl(&self, tx: &mut sqlx::SqliteConnection) -> Result<()> {
        let firsts: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT b FROM (SELECT (SELECT first_id FROM payload_blocks p WHERE p.first_id <= d.id \
             ORDER BY p.first_id DESC LIMIT 1) AS b FROM doomed_logs d) WHERE b IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        for first_id in firsts {
            let (last_id, body): (i64, Vec<u8>) = sqlx::query_as("SELECT last_id, body FROM payload_blocks WHERE first_id = ?")
                .bind(first_id)
                .fetch_one(&mut *tx)
                .await?;
            let doomed: std::collections::HashSet<i64> = sqlx::query_scalar("SELECT id FROM doomed_logs WHERE id BETWEEN ? AND ?")
                .bind(first_id)
                .bind(last_id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
            if doomed.is_empty() {
                continue;
            }
            let entries = payload::decode_block(&body, first_id)?;
            let kept: Vec<(i64, &[u8])> = entries.iter().filter(|(id, _)| !doomed.contains(id)).map(|(id, p)| (*id, p.as_slice())).collect();
            if kept.len() == entries.len() {
                continue;
            }
            match kept.last() {
                None => {
                    sqlx::query("DELETE FROM payload_blocks WHERE first_id = ?").bind(first_id).execute(&mut *tx).await?;
                }
                // The block's range shrinks to what is left: ids above it may be given to new
                // logs (ids continue from the highest stored one).
                Some((last, _)) => {
                    sqlx::query("UPDATE payload_blocks SET last_id = ?, body = ? WHERE first_id = ?")
                        .bind(*last)
                        .bind(payload::encode_block(first_id, &kept)?)
                        .bind(first_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Drops the cached block once a deletion has committed, and keeps a read that fetched a
    /// block before the commit from caching it afterwards.
    pub(crate) fn forget_payload_blocks(&self) {
        let mut cache = self.cache();
        cache.generation += 1;
        cache.block = None;
    }

    /// One process owns the file, so the writer may hold breakdown deltas back between commits.
    pub(crate) const DEFERS_BREAKDOWNS: bool = true;

    pub(crate) async fn breakdown_mark_impl(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT value FROM ingest_state WHERE key = 'breakdowns_through_log_id'")
            .fetch_optional(&self.pool)
            .await?)
    }

    pub(crate) async fn logs_after_impl(&self, after: i64, limit: i64) -> Result<Vec<StoredLog>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {} FROM logs WHERE id > ? ORDER BY id LIMIT ?", super::log_columns("sqlite"));
        let mut rows = sqlx::query_as::<_, StoredLog>(&sql).bind(after).bind(limit).fetch_all(&mut *conn).await?;
        rows.extend(super::blocks::after(&mut conn, after, limit).await?);
        rows.sort_by_key(|r| r.id);
        rows.truncate(limit.max(0) as usize);
        Ok(rows)
    }
}

/// Stores logs as rows of `logs`, one each (a model with few logs in a commit, where a block
/// would cost more than rows; `BLOCK_MIN_LOGS`), metadata used three times or more shared.
pub(crate) async fn insert_rows(conn: &mut sqlx::SqliteConnection, rows: &[(i64, &LogRow)]) -> Result<()> {
    let shared = share_metadata(&mut *conn, rows).await?;
    for chunk in rows.chunks(LOG_CHUNK) {
        let sql = format!("INSERT INTO logs {LOG_INSERT_COLUMNS} VALUES {}", values_sql(chunk.len(), LOG_PARAMS));
        let mut q = sqlx::query(&sql);
        for (id, r) in chunk {
            let metadata_ref = r.metadata.as_deref().and_then(|m| shared.get(m).copied());
            q = bind_log(q, *id, r, metadata_ref);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

fn bind_log<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    id: i64,
    r: &'q LogRow,
    metadata_ref: Option<i64>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(id)
        .bind(r.ts)
        .bind(r.model_id)
        .bind(r.series_id)
        .bind(r.flags)
        .bind(r.level)
        .bind(r.http_status)
        .bind(r.latency_ms)
        .bind(r.ttft_ms)
        .bind(r.input_tokens)
        .bind(r.output_tokens)
        .bind(r.cached_tokens)
        .bind(r.cost_usd)
        .bind(r.feedback)
        .bind(r.error_type.as_deref())
        .bind(r.message.as_deref())
        .bind(r.error_message.as_deref())
        .bind(r.user_id.as_deref())
        .bind(r.session_id.as_deref())
        .bind(id_value(r.trace_id.as_deref()))
        .bind(id_value(r.span_id.as_deref()))
        // Stored once in `log_metadata` when shared, inline otherwise.
        .bind(if metadata_ref.is_some() { None } else { r.metadata.as_deref() })
        .bind(metadata_ref)
}

/// Metadata objects that occur at least `SHARE_FROM` times in this batch: counted into
/// `log_metadata` (added if new) and returned with their ids, for the logs to refer to
/// instead of holding a copy. Others stay inline, so metadata unique to each log (a request
/// id) costs no more than before: a shared body is stored twice (row and unique index), which
/// only pays from three uses on. Read back by `SQLITE_METADATA`; counts lowered by `delete_logs`.
async fn share_metadata(tx: &mut sqlx::SqliteConnection, logs: &[(i64, &LogRow)]) -> Result<HashMap<String, i64>> {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for m in logs.iter().filter_map(|(_, r)| r.metadata.as_deref()) {
        *counts.entry(m).or_default() += 1;
    }
    let repeated: Vec<(&str, i64)> = counts.into_iter().filter(|(_, n)| *n >= SHARE_FROM).collect();
    let mut ids = HashMap::with_capacity(repeated.len());
    for chunk in repeated.chunks(METADATA_CHUNK) {
        let sql = format!(
            "INSERT INTO log_metadata (body, refs) VALUES {} ON CONFLICT (body) DO UPDATE SET refs = refs + excluded.refs \
             RETURNING id, body",
            values_sql(chunk.len(), 2)
        );
        let mut q = sqlx::query_as::<_, (i64, String)>(&sql).persistent(false);
        for (body, n) in chunk {
            q = q.bind(*body).bind(*n);
        }
        ids.extend(q.fetch_all(&mut *tx).await?.into_iter().map(|(id, body)| (body, id)));
    }
    Ok(ids)
}

/// Uses of one metadata object within a commit from which it is stored once and shared.
const SHARE_FROM: i64 = 3;

/// Objects per `log_metadata` upsert (2 variables each).
const METADATA_CHUNK: usize = 500;

/// A trace or span id as stored on SQLite: lowercase hex (what OpenTelemetry ids are) as its
/// bytes, half the size; anything else as the text it is. Reads turn the bytes back into the
/// same hex (`SQLITE_LOG_COLUMNS`), and an id filter matches either form.
#[derive(Debug, PartialEq)]
pub(crate) enum IdValue<'a> {
    Bytes(Vec<u8>),
    Text(&'a str),
}

pub(crate) fn id_value(id: Option<&str>) -> Option<IdValue<'_>> {
    let id = id?;
    Some(match super::filter::is_hex_id(id).then(|| hex::decode(id).ok()).flatten() {
        Some(bytes) => IdValue::Bytes(bytes),
        None => IdValue::Text(id),
    })
}

impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for IdValue<'q> {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        match self {
            IdValue::Bytes(b) => <Vec<u8> as sqlx::Encode<'q, sqlx::Sqlite>>::encode_by_ref(b, buf),
            IdValue::Text(t) => <&str as sqlx::Encode<'q, sqlx::Sqlite>>::encode_by_ref(t, buf),
        }
    }
}

impl sqlx::Type<sqlx::Sqlite> for IdValue<'_> {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <&str as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
    fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Sqlite>>::compatible(ty) || <Vec<u8> as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows written before shared metadata (migration 0011) keep theirs inline: after the
    /// upgrade they read and filter as before.
    #[tokio::test]
    async fn logs_stored_before_shared_metadata_read_and_filter_as_before() {
        use crate::store::Store;
        use crate::store::filter::{Cond, LogFilter};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path).create_if_missing(true)).await.unwrap();
        let before = Migrator {
            migrations: std::borrow::Cow::Owned(MIGRATOR.migrations.iter().filter(|m| m.version < 11).cloned().collect()),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        };
        before.run(&old).await.unwrap();
        sqlx::query(
            "INSERT INTO logs (id, ts, model_id, series_id, flags, level, metadata) VALUES \
             (1, 1000, 1, 1, 0, 1, '{\"team\":\"a\"}'), (2, 1001, 1, 1, 0, 1, '{\"team\":\"b\",\"tier\":2}'), (3, 1002, 1, 1, 0, 1, NULL)",
        )
        .execute(&old)
        .await
        .unwrap();
        old.close().await;

        let store = SqliteStore::open(&format!("sqlite://{}", path.display())).await.unwrap();
        assert_eq!(store.log_by_id(1).await.unwrap().unwrap().row.metadata.as_deref(), Some(r#"{"team":"a"}"#));
        assert_eq!(store.log_by_id(3).await.unwrap().unwrap().row.metadata, None);
        let count = |key: &str, value: Option<&str>| {
            let f = LogFilter {
                model_id: 1,
                from: 0,
                to: 10_000,
                before: None,
                series: None,
                conds: vec![Cond::Meta(key.into(), value.map(str::to_string))],
            };
            let store = &store;
            async move { store.count_matching(&f).await.unwrap() }
        };
        assert_eq!(count("team", Some("b")).await, 1);
        assert_eq!(count("tier", Some("2")).await, 1);
        assert_eq!(count("team", Some("c")).await, 0);
        assert_eq!(count("tier", None).await, 2);
    }

    #[test]
    fn lowercase_hex_ids_are_stored_as_bytes_and_the_rest_as_text() {
        assert_eq!(
            id_value(Some("0af7651916cd43dd8448eb211c80319c")),
            Some(IdValue::Bytes(hex::decode("0af7651916cd43dd8448eb211c80319c").unwrap()))
        );
        assert_eq!(id_value(Some("00f067aa0ba902b7")).map(|v| matches!(v, IdValue::Bytes(b) if b.len() == 8)), Some(true));
        // Upper case, odd length, non-hex and empty would not read back as written.
        for text in ["0AF7651916CD43DD", "abc", "tr-1", "", "zz"] {
            assert_eq!(id_value(Some(text)), Some(IdValue::Text(text)));
        }
        assert_eq!(id_value(None), None);
    }
}

// ----- logs in blocks: the `Store` methods' SQLite half (see `impl_common_store!`) -------------------

use super::filter::{Bind, LogFilter, bind_all};

impl SqliteStore {
    /// A read transaction: the block list and the bodies it names are read from one snapshot.
    async fn read_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin().await?)
    }

    /// `sql` (the rows' query, in `logs`) and the blocks, read from one snapshot: a commit in
    /// between must not show up in one and not the other (the live tail continues after the
    /// newest id it was given).
    pub(crate) async fn read_logs(&self, f: &LogFilter, limit: i64, sql: &str, binds: &[Bind]) -> Result<Vec<StoredLog>> {
        let mut tx = self.read_tx().await?;
        let rows = bind_all!(sqlx::query_as::<_, StoredLog>(sql), binds).fetch_all(&mut *tx).await?;
        super::blocks::search(&mut tx, f, limit, rows).await
    }

    /// The histogram over rows in `logs` and blocks together: the newest `cap` logs of both.
    /// The rows are counted by `sql` (bars of their newest `cap`); when rows and blocks
    /// together hold more than `cap` logs in the range, the newest `cap` of both are chosen
    /// log by log instead.
    pub(crate) async fn histogram_read(&self, f: &LogFilter, step: i64, cap: i64, sql: &str, binds: &[Bind]) -> Result<Vec<super::HistogramRow>> {
        let mut tx = self.read_tx().await?;
        let in_blocks = super::blocks::histogram_marks(&mut tx, f, cap).await?;
        let bars: Vec<super::HistogramRow> = bind_all!(sqlx::query_as::<_, super::HistogramRow>(sql), binds).fetch_all(&mut *tx).await?;
        let in_rows: i64 = bars.iter().map(|b| b.scanned).sum();
        if in_blocks.is_empty() || in_rows + in_blocks.len() as i64 <= cap {
            return Ok(super::blocks::histogram_bars(f, step, cap, in_blocks, bars));
        }
        let (range, filters, binds) = f.where_parts(super::filter::Dialect::Sqlite);
        let raw = format!(
            "SELECT ts, id, flags, CASE WHEN {filters} THEN 1 ELSE 0 END AS hit FROM logs WHERE {range} ORDER BY ts DESC, id DESC LIMIT {}",
            cap.max(0)
        );
        let mut seen: Vec<(i64, i64, i64, bool)> = bind_all!(sqlx::query_as::<_, (i64, i64, i64, bool)>(&raw), &binds).fetch_all(&mut *tx).await?;
        seen.extend(in_blocks);
        Ok(super::blocks::histogram_bars(f, step, cap, seen, Vec::new()))
    }

    /// See `read_logs`.
    pub(crate) async fn tail_read(&self, f: &LogFilter, after: i64, limit: i64, sql: &str, binds: &[Bind]) -> Result<Vec<StoredLog>> {
        let mut tx = self.read_tx().await?;
        let rows = bind_all!(sqlx::query_as::<_, StoredLog>(sql), binds).fetch_all(&mut *tx).await?;
        super::blocks::tail(&mut tx, f, after, limit, rows).await
    }

    /// See `read_logs`.
    pub(crate) async fn count_read(&self, f: &LogFilter, sql: &str, binds: &[Bind]) -> Result<i64> {
        let mut tx = self.read_tx().await?;
        let rows: i64 = bind_all!(sqlx::query_scalar::<_, i64>(sql), binds).fetch_one(&mut *tx).await?;
        Ok(rows + super::blocks::count(&mut tx, f).await?)
    }

    pub(crate) async fn delete_blocks(&self, tx: &mut sqlx::SqliteConnection, f: &LogFilter) -> Result<u64> {
        super::blocks::delete(tx, f).await
    }

    pub(crate) async fn block_log_by_id(&self, id: i64) -> Result<Option<StoredLog>> {
        let mut conn = self.pool.acquire().await?;
        super::blocks::by_id(&mut conn, id).await
    }

    pub(crate) async fn count_model_blocks(&self, model_id: i64) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        super::blocks::count_model(&mut conn, model_id).await
    }

    pub(crate) const MAX_LOG_ID: &'static str = NEWEST_LOG_ID;
}
