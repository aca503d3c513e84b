//! SQLite's full-text index of new logs: a file of its own, written by a task of its own.
//!
//! The ingest commit used to insert into the FTS5 index in its own transaction, which made
//! indexing (about 40 % of a commit's work) part of the one serial step of ingest. Now the
//! committer hands each commit's texts to this task, which indexes them in `<name>-fts.db` on
//! its own connection while the next commit runs. Ingest answers a batch once both are done
//! (`Store::search_barrier`), so a log is searchable when its batch is acknowledged.
//!
//! The file records the log id through which it is complete (`full_text_mark`), in the same
//! transaction as the entries. After an unclean stop, or when indexing fails, the task rebuilds
//! the missing entries from the stored logs and payloads. Logs up to `full_text_split_at`
//! (stored before this file existed) stay in the old index inside the main file; searches read
//! both. Log ids are never reused (`log_id_floor`), so an entry left behind by a deletion can
//! only point at a log that no longer exists, which a search never returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::ingest::payload::{self, Payload};

/// The longest an ingest answer waits for its logs to become searchable. Past it (the index is
/// failing or rebuilding), the batch is acknowledged anyway: it is stored, and the task indexes
/// it as soon as it can.
const MAX_WAIT: Duration = Duration::from_secs(5);
/// Logs committed but not yet indexed, at most: the next commit waits until the task is
/// within this (the texts wait in memory, ~250 B each).
const MAX_BACKLOG: i64 = 200_000;
/// Rows per multi-row INSERT into the index.
const CHUNK: usize = 400;
/// Logs read per round when rebuilding from the stored logs.
const CATCH_UP_PAGE: i64 = 2000;

const CREATE_INDEX: &str =
    "CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2')";
const CREATE_MARK: &str = "CREATE TABLE IF NOT EXISTS full_text_mark (id INTEGER PRIMARY KEY CHECK (id = 1), through INTEGER NOT NULL)";

/// The index file that belongs to the database file `main`: `modelwatch.db` → `modelwatch-fts.db`.
pub(crate) fn index_path(main: &Path) -> PathBuf {
    let stem = main.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "modelwatch".into());
    let name = match main.extension() {
        Some(ext) => format!("{stem}-fts.{}", ext.to_string_lossy()),
        None => format!("{stem}-fts"),
    };
    main.with_file_name(name)
}

/// The index file opened, before its task runs.
pub(crate) struct Prepared {
    conn: SqliteConnection,
    mark: i64,
}

/// Opens (creating) the index file. `main` is the database it indexes (for the split id of a
/// new file).
pub(crate) async fn prepare(path: &Path, main: &SqlitePool) -> Result<Prepared> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL: the index is derived data. A crash may lose its last transactions, and the
        // mark, written in the same transactions, makes the task rebuild exactly those.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30));
    let mut conn = opts
        .connect()
        .await
        .map_err(|e| Error::Storage(format!("cannot open the full-text index {}: {e}", path.display())))?;
    sqlx::query(CREATE_INDEX).execute(&mut conn).await?;
    sqlx::query(CREATE_MARK).execute(&mut conn).await?;
    let mark: Option<i64> = sqlx::query_scalar("SELECT through FROM full_text_mark WHERE id = 1").fetch_optional(&mut conn).await?;
    let mark = match mark {
        Some(m) => m,
        None => {
            // A new file: it covers the logs after the split (a file deleted by hand is rebuilt
            // from there).
            let split: i64 = sqlx::query_scalar("SELECT value FROM ingest_state WHERE key = 'full_text_split_at'")
                .fetch_optional(main)
                .await?
                .unwrap_or(0);
            sqlx::query("INSERT INTO full_text_mark (id, through) VALUES (1, ?)").bind(split).execute(&mut conn).await?;
            split
        }
    };
    Ok(Prepared { conn, mark })
}

struct Job {
    texts: Vec<(i64, String)>,
    /// The batch's highest log id: the index is complete through it once the job is done.
    through: i64,
}

pub(crate) struct FullText {
    jobs: mpsc::UnboundedSender<Job>,
    submitted: AtomicI64,
    indexed: watch::Receiver<i64>,
}

impl FullText {
    /// Starts the indexing task. `main` reads stored logs when the index has to catch up.
    pub(crate) fn start(p: Prepared, main: SqlitePool) -> FullText {
        let (jobs, rx) = mpsc::unbounded_channel();
        let (indexed_tx, indexed) = watch::channel(p.mark);
        tokio::spawn(run(p.conn, main, rx, indexed_tx, p.mark));
        FullText { jobs, submitted: AtomicI64::new(p.mark), indexed }
    }

    /// Hands over the texts of a committed batch whose highest log id is `through`. The queue
    /// is bounded by `wait_for_room`, which the writer calls before each commit.
    pub(crate) fn submit(&self, texts: Vec<(i64, String)>, through: i64) {
        self.submitted.fetch_max(through, Ordering::AcqRel);
        // A send fails only when the task has ended; its next start rebuilds from the mark.
        let _ = self.jobs.send(Job { texts, through });
    }

    /// Waits while the task is more than `MAX_BACKLOG` logs behind, so that a slow or failing
    /// index holds ingest back (the ingest queue then answers 429) instead of piling up texts
    /// in memory. Returns at once if the task has ended.
    pub(crate) async fn wait_for_room(&self) {
        let submitted = self.submitted.load(Ordering::Acquire);
        let mut indexed = self.indexed.clone();
        let _ = indexed.wait_for(|v| submitted - *v <= MAX_BACKLOG).await;
    }

    /// Resolves once everything submitted so far is searchable, or after `MAX_WAIT`.
    pub(crate) fn barrier(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let target = self.submitted.load(Ordering::Acquire);
        let mut indexed = self.indexed.clone();
        async move {
            let _ = tokio::time::timeout(MAX_WAIT, indexed.wait_for(|v| *v >= target)).await;
        }
    }

    /// The log id through which the index is complete.
    pub(crate) fn indexed_through(&self) -> i64 {
        *self.indexed.borrow()
    }
}

async fn run(mut conn: SqliteConnection, main: SqlitePool, mut rx: mpsc::UnboundedReceiver<Job>, indexed: watch::Sender<i64>, mark: i64) {
    let mut through = mark;
    // Logs stored after the mark: an unclean stop, or the first start with this file.
    catch_up(&mut conn, &main, &mut through, &indexed).await;
    while let Some(first) = rx.recv().await {
        // Jobs that queued up while the last one ran go in together.
        let mut jobs = vec![first];
        while jobs.len() < 64 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        match index(&mut conn, &jobs, through).await {
            Ok(t) => {
                through = t;
                indexed.send_replace(through);
            }
            Err(e) => {
                tracing::error!(error = %e, "full-text indexing failed; rebuilding the missing entries from the stored logs");
                tokio::time::sleep(Duration::from_secs(1)).await;
                catch_up(&mut conn, &main, &mut through, &indexed).await;
            }
        }
    }
}

/// Writes the jobs' texts of logs above `through` and the new mark in one transaction.
async fn index(conn: &mut SqliteConnection, jobs: &[Job], through: i64) -> Result<i64> {
    let mut tx = conn.begin().await?;
    let mut done = through;
    for job in jobs {
        let texts: Vec<&(i64, String)> = job.texts.iter().filter(|(id, _)| *id > through).collect();
        for chunk in texts.chunks(CHUNK) {
            let mut sql = String::with_capacity(40 + chunk.len() * 6);
            sql.push_str("INSERT INTO logs_fts (rowid, body) VALUES ");
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "(?,?)" } else { ",(?,?)" });
            }
            let mut q = sqlx::query(&sql);
            for (id, text) in chunk {
                q = q.bind(*id).bind(text.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        done = done.max(job.through);
    }
    if done > through {
        sqlx::query("UPDATE full_text_mark SET through = ? WHERE id = 1").bind(done).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Indexes the stored logs above `through` up to the newest log at the start, from their rows
/// and payloads; retries until it succeeds. Later logs come as jobs.
async fn catch_up(conn: &mut SqliteConnection, main: &SqlitePool, through: &mut i64, indexed: &watch::Sender<i64>) {
    loop {
        match catch_up_once(conn, main, through, indexed).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, through = *through, "full-text index cannot catch up; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

async fn catch_up_once(conn: &mut SqliteConnection, main: &SqlitePool, through: &mut i64, indexed: &watch::Sender<i64>) -> Result<()> {
    let newest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM logs").fetch_one(main).await?;
    if newest > *through {
        tracing::info!(from = *through, to = newest, "full-text index catching up with stored logs");
    }
    while *through < newest {
        let rows: Vec<(i64, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id, message, error_message FROM logs WHERE id > ? AND id <= ? ORDER BY id LIMIT ?")
                .bind(*through)
                .bind(newest)
                .bind(CATCH_UP_PAGE)
                .fetch_all(main)
                .await?;
        let last = match rows.last() {
            Some((id, _, _)) => *id,
            None => newest,
        };
        let payloads = stored_payloads(main, *through, last).await?;
        let texts = rows
            .into_iter()
            .filter_map(|(id, message, error_message)| {
                let p = payloads.get(&id).and_then(|bytes| match Payload::decode(bytes, false) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::warn!(log = id, error = %e, "payload not indexed");
                        None
                    }
                });
                let (req, resp) = p.as_ref().map(|p| (Some(p.request.as_str()), Some(p.response.as_str()))).unwrap_or((None, None));
                crate::ingest::search_text([message.as_deref(), error_message.as_deref(), req, resp]).map(|t| (id, t))
            })
            .collect();
        *through = index(conn, &[Job { texts, through: last }], *through).await?;
        indexed.send_replace(*through);
    }
    Ok(())
}

/// The stored payloads of the logs in `(after, last]`, from blocks and from rows of the older
/// one-per-log table.
async fn stored_payloads(main: &SqlitePool, after: i64, last: i64) -> Result<HashMap<i64, Vec<u8>>> {
    let mut out = HashMap::new();
    let blocks: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT first_id, body FROM payload_blocks WHERE last_id > ? AND first_id <= ?")
        .bind(after)
        .bind(last)
        .fetch_all(main)
        .await?;
    for (first_id, body) in blocks {
        for (id, bytes) in payload::decode_block(&body, first_id)? {
            if id > after && id <= last {
                out.insert(id, bytes);
            }
        }
    }
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT log_id, body FROM payloads WHERE log_id > ? AND log_id <= ?")
        .bind(after)
        .bind(last)
        .fetch_all(main)
        .await?;
    out.extend(rows);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_wait_while_the_index_is_far_behind() {
        let dir = tempfile::tempdir().unwrap();
        let main_path = dir.path().join("m.db");
        let main = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&main_path).create_if_missing(true)).await.unwrap();
        for sql in [
            "CREATE TABLE ingest_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO ingest_state VALUES ('full_text_split_at', 0)",
            "CREATE TABLE logs (id INTEGER PRIMARY KEY, message TEXT, error_message TEXT)",
            "CREATE TABLE payload_blocks (first_id INTEGER PRIMARY KEY, last_id INTEGER, body BLOB)",
            "CREATE TABLE payloads (log_id INTEGER PRIMARY KEY, body BLOB)",
        ] {
            sqlx::query(sql).execute(&main).await.unwrap();
        }
        let path = index_path(&main_path);
        let ft = FullText::start(prepare(&path, &main).await.unwrap(), main.clone());
        ft.barrier().await;
        // Another connection holds the index file's write lock: the task cannot write.
        let mut blocker = SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
        ft.submit(vec![(1, "hello world".into())], 1);
        ft.submit(vec![(MAX_BACKLOG + 5, "far ahead".into())], MAX_BACKLOG + 5);
        let waited = tokio::time::timeout(Duration::from_millis(500), ft.wait_for_room()).await;
        assert!(waited.is_err(), "a commit must wait while the index is far behind");
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), ft.wait_for_room()).await.expect("room once the index caught up");
        ft.barrier().await;
        assert_eq!(ft.indexed_through(), MAX_BACKLOG + 5);
        for (word, n) in [("hello", 1), ("ahead", 1), ("missing", 0)] {
            let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH ?").bind(word).fetch_one(&mut blocker).await.unwrap();
            assert_eq!(found, n, "{word}");
        }
        let mark: i64 = sqlx::query_scalar("SELECT through FROM full_text_mark").fetch_one(&mut blocker).await.unwrap();
        assert_eq!(mark, MAX_BACKLOG + 5);
    }

    #[test]
    fn index_file_sits_next_to_the_database() {
        assert_eq!(index_path(Path::new("/data/modelwatch.db")), PathBuf::from("/data/modelwatch-fts.db"));
        assert_eq!(index_path(Path::new("rel/store")), PathBuf::from("rel/store-fts"));
    }
}
