//! The Postgres store, for installs that outgrow one machine. Several server processes may share it.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::{Error, Result};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    pub(crate) async fn payload_impl(&self, log_id: i64) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT body FROM payloads WHERE log_id = $1").bind(log_id).fetch_optional(&self.pool).await?)
    }

    /// Payload rows go with their logs in `delete_logs`; nothing else holds them.
    pub(crate) async fn prune_payloads_impl(&self, _tx: &mut sqlx::PgConnection) -> Result<()> {
        Ok(())
    }

    pub(crate) fn forget_payload_blocks(&self) {}

    /// Nothing to do: the text rows went in the deletion's transaction.
    pub(crate) async fn after_delete_impl(&self, _ids: Vec<i64>) -> Result<()> {
        Ok(())
    }

    /// Nothing to prepare: rows go to Postgres as they are.
    pub(crate) fn prepare_batch_impl(&self, _b: &mut WriteBatch) {}

    /// Text is indexed in the commit's own transaction: searchable at commit.
    pub(crate) fn search_barrier_impl(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>> {
        None
    }
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| Error::Storage(format!("cannot connect to Postgres: {e}")))?;
        // Migrations take an advisory lock, so concurrent starts of several servers are safe.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Storage(format!("Postgres migrations failed: {e}")))?;
        Ok(Self { pool })
    }

    pub(crate) fn migrator() -> &'static Migrator {
        &MIGRATOR
    }
}

super::alerts::impl_alert_store!(PostgresStore);
super::impl_common_store!(PostgresStore, "postgres");

impl PostgresStore {
    /// Several servers may write; each commit merges its own breakdown deltas.
    pub(crate) const DEFERS_BREAKDOWNS: bool = false;

    pub(crate) async fn breakdown_mark_impl(&self) -> Result<Option<i64>> {
        Ok(None)
    }

    pub(crate) async fn logs_after_impl(&self, _after: i64, _limit: i64) -> Result<Vec<super::StoredLog>> {
        Ok(Vec::new())
    }
}

// Logs live in `logs` only: the hooks `impl_common_store!` calls for SQLite's blocks pass the
// rows through.
use super::StoredLog;
use super::filter::{Bind, LogFilter, bind_all};

impl PostgresStore {
    pub(crate) async fn read_logs(&self, _f: &LogFilter, _limit: i64, sql: &str, binds: &[Bind]) -> Result<Vec<StoredLog>> {
        Ok(bind_all!(sqlx::query_as::<_, StoredLog>(sql), binds).fetch_all(&self.pool).await?)
    }

    pub(crate) async fn histogram_read(&self, _f: &LogFilter, _step: i64, _cap: i64, sql: &str, binds: &[Bind]) -> Result<Vec<super::HistogramRow>> {
        Ok(bind_all!(sqlx::query_as::<_, super::HistogramRow>(sql), binds).fetch_all(&self.pool).await?)
    }

    pub(crate) async fn tail_read(&self, _f: &LogFilter, _after: i64, _limit: i64, sql: &str, binds: &[Bind]) -> Result<Vec<StoredLog>> {
        Ok(bind_all!(sqlx::query_as::<_, StoredLog>(sql), binds).fetch_all(&self.pool).await?)
    }

    pub(crate) async fn count_read(&self, _f: &LogFilter, sql: &str, binds: &[Bind]) -> Result<i64> {
        Ok(bind_all!(sqlx::query_scalar::<_, i64>(sql), binds).fetch_one(&self.pool).await?)
    }

    pub(crate) async fn delete_blocks(&self, _tx: &mut sqlx::PgConnection, _f: &LogFilter) -> Result<u64> {
        Ok(0)
    }

    pub(crate) async fn block_log_by_id(&self, _id: i64) -> Result<Option<StoredLog>> {
        Ok(None)
    }

    pub(crate) async fn count_model_blocks(&self, _model_id: i64) -> Result<i64> {
        Ok(0)
    }

    pub(crate) const MAX_LOG_ID: &'static str = "SELECT COALESCE(MAX(id), 0) FROM logs";
}


// ----- the write path ------------------------------------------------------------------------------

use super::{WriteBatch, rollup_table, sketch_bytes};
use crate::ingest::rollup::{Resolution, RollupAcc};

/// Several server processes may write to one Postgres. Raw rows never conflict (ids come from a
/// sequence); rollup rows are read, merged and written back under this transaction-scoped
/// advisory lock, taken last so it is held only for the rollup merge and the commit.
const ROLLUP_LOCK: i64 = 0x6d77_726f_6c6c; // "mwroll"

impl PostgresStore {
    pub(crate) async fn write_batch_impl(&self, b: &WriteBatch) -> Result<()> {
        let mut tx = self.pool.begin().await?;

        if !b.logs.is_empty() {
            let n = b.logs.len() as i64;
            let ids: Vec<i64> = sqlx::query_scalar("SELECT nextval('logs_id_seq') FROM generate_series(1, $1)")
                .bind(n)
                .fetch_all(&mut *tx)
                .await?;
            let l = &b.logs;
            let col = |f: fn(&super::LogRow) -> Option<String>| -> Vec<Option<String>> { l.iter().map(f).collect() };
            sqlx::query(
                "INSERT INTO logs (id, ts, model_id, series_id, flags, level, http_status, latency_ms, ttft_ms, input_tokens, \
                 output_tokens, cached_tokens, cost_usd, feedback, error_type, message, error_message, user_id, session_id, \
                 trace_id, span_id, metadata) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], \
                 $7::bigint[], $8::float8[], $9::float8[], $10::bigint[], $11::bigint[], $12::bigint[], $13::float8[], \
                 $14::bigint[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[])",
            )
            .bind(&ids)
            .bind(l.iter().map(|r| r.ts).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.model_id).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.series_id).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.flags).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.level).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.http_status).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.latency_ms).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.ttft_ms).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.input_tokens).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.output_tokens).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.cached_tokens).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.cost_usd).collect::<Vec<_>>())
            .bind(l.iter().map(|r| r.feedback).collect::<Vec<_>>())
            .bind(col(|r| r.error_type.clone()))
            .bind(col(|r| r.message.clone()))
            .bind(col(|r| r.error_message.clone()))
            .bind(col(|r| r.user_id.clone()))
            .bind(col(|r| r.session_id.clone()))
            .bind(col(|r| r.trace_id.clone()))
            .bind(col(|r| r.span_id.clone()))
            .bind(col(|r| r.metadata.clone()))
            .execute(&mut *tx)
            .await?;

            let (pids, bodies): (Vec<i64>, Vec<&[u8]>) =
                ids.iter().zip(l.iter()).filter_map(|(id, r)| r.payload.as_deref().map(|p| (*id, p))).unzip();
            if !pids.is_empty() {
                sqlx::query("INSERT INTO payloads (log_id, body) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])")
                    .bind(&pids)
                    .bind(&bodies)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut tids = Vec::new();
            let (mut bodies, mut payload_texts): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
            for (id, t) in ids.iter().zip(l.iter()).filter_map(|(id, r)| r.search_text.as_ref().map(|t| (*id, t))) {
                tids.push(id);
                bodies.push(t.message_part());
                payload_texts.push(t.payload_part());
            }
            if !tids.is_empty() {
                // Message words weigh A, payload words D: a search of messages only asks for A.
                sqlx::query(
                    "INSERT INTO logs_text (log_id, tsv) \
                     SELECT id, setweight(to_tsvector('simple', body), 'A') || to_tsvector('simple', payload) \
                     FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS t(id, body, payload)",
                )
                .bind(&tids)
                .bind(&bodies)
                .bind(&payload_texts)
                .execute(&mut *tx)
                .await?;
            }
        }

        if !b.metrics.is_empty() {
            let m = &b.metrics;
            sqlx::query(
                "INSERT INTO metric_points (id, ts, model_id, name, value, labels) \
                 SELECT nextval('metric_points_id_seq'), * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::float8[], $5::text[])",
            )
            .bind(m.iter().map(|x| x.ts).collect::<Vec<_>>())
            .bind(m.iter().map(|x| x.model_id).collect::<Vec<_>>())
            .bind(m.iter().map(|x| x.name.clone()).collect::<Vec<_>>())
            .bind(m.iter().map(|x| x.value).collect::<Vec<_>>())
            .bind(m.iter().map(|x| x.labels.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }

        if !b.rollups.logs.is_empty() || !b.rollups.metrics.is_empty() {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ROLLUP_LOCK).execute(&mut *tx).await?;
        }
        for res in [Resolution::Minute, Resolution::Hour, Resolution::Day] {
            let entries = b.rollups.sorted_logs(res);
            if !entries.is_empty() {
                let table = rollup_table(res);
                let models: Vec<i64> = entries.iter().map(|(k, _)| k.model_id).collect();
                let buckets: Vec<i64> = entries.iter().map(|(k, _)| k.bucket).collect();
                let series: Vec<i64> = entries.iter().map(|(k, _)| k.series_id).collect();
                let ets: Vec<String> = entries.iter().map(|(k, _)| k.error_type.clone()).collect();
                #[derive(sqlx::FromRow)]
                struct Existing {
                    model_id: i64,
                    bucket: i64,
                    series_id: i64,
                    error_type: String,
                    #[sqlx(flatten)]
                    row: super::RollupRow,
                }
                let existing: Vec<Existing> = sqlx::query_as(&format!(
                    "SELECT t.model_id, t.bucket, t.series_id, t.error_type, t.requests, t.errors, t.input_tokens, \
                     t.output_tokens, t.cached_tokens, t.cost_usd, t.cache_hits, t.stored, t.latency, t.ttft \
                     FROM {table} t JOIN UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) AS k(m, b, s, e) \
                     ON t.model_id = k.m AND t.bucket = k.b AND t.series_id = k.s AND t.error_type = k.e"
                ))
                .bind(&models)
                .bind(&buckets)
                .bind(&series)
                .bind(&ets)
                .fetch_all(&mut *tx)
                .await?;
                let mut old: std::collections::HashMap<(i64, i64, i64, String), RollupAcc> = std::collections::HashMap::new();
                for e in existing {
                    old.insert((e.model_id, e.bucket, e.series_id, e.error_type), e.row.into_acc()?);
                }
                let merged: Vec<RollupAcc> = entries
                    .iter()
                    .map(|(k, d)| {
                        let mut acc = old.remove(&(k.model_id, k.bucket, k.series_id, k.error_type.clone())).unwrap_or_default();
                        acc.merge(d);
                        acc
                    })
                    .collect();
                sqlx::query(&format!(
                    "INSERT INTO {table} (model_id, bucket, series_id, error_type, requests, errors, input_tokens, output_tokens, \
                     cached_tokens, cost_usd, cache_hits, stored, latency, ttft) \
                     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], \
                     $7::bigint[], $8::bigint[], $9::bigint[], $10::float8[], $11::bigint[], $12::bigint[], $13::bytea[], $14::bytea[]) \
                     ON CONFLICT (model_id, bucket, series_id, error_type) DO UPDATE SET requests = excluded.requests, \
                     errors = excluded.errors, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
                     cached_tokens = excluded.cached_tokens, cost_usd = excluded.cost_usd, cache_hits = excluded.cache_hits, \
                     stored = excluded.stored, latency = excluded.latency, ttft = excluded.ttft"
                ))
                .bind(&models)
                .bind(&buckets)
                .bind(&series)
                .bind(&ets)
                .bind(merged.iter().map(|a| a.requests).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| a.errors).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| a.input_tokens).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| a.output_tokens).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| a.cached_tokens).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| a.cost_usd).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| a.cache_hits).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| a.stored).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| sketch_bytes(&a.latency)).collect::<Vec<_>>())
                .bind(merged.iter().map(|a| sketch_bytes(&a.ttft)).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
            }

            // Custom metrics have minute and hour levels; breakdown dimensions hour and day
            // (the minute call finds nothing to merge).
            if res != Resolution::Day {
                super::merge_metric_rollups!(tx, b.rollups, res);
            }
            super::merge_dim_rollups!(tx, b.rollups, res, |i| format!("${i}"));
            super::merge_model_rollups!(tx, b.rollups, res, |i| format!("${i}"));
        }
        tx.commit().await?;
        Ok(())
    }
}
