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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};
use crate::ingest::SearchText;
use crate::ingest::payload::Payload;

/// The longest an ingest answer waits for its logs to become searchable. Past it (the index is
/// failing or rebuilding), the batch is acknowledged anyway: it is stored, and the task indexes
/// it as soon as it can.
const MAX_WAIT: Duration = Duration::from_secs(5);
/// Text handed over but not yet indexed, at most: the next commit waits (up to `ROOM_WAIT`)
/// until the task is within this, so that a slow index holds ingest back (the ingest queue
/// then answers 429) instead of piling up text in memory.
const MAX_BACKLOG_BYTES: usize = 32 * 1024 * 1024;
const ROOM_WAIT: Duration = Duration::from_secs(10);
/// Texts indexed in one transaction at most, so that a deletion (which locks the index file)
/// never waits long.
const MAX_TEXTS_PER_TRANSACTION: usize = 20_000;
/// Rows per multi-row INSERT into the index.
const CHUNK: usize = 400;
/// Logs read per round when rebuilding from the stored logs.
const CATCH_UP_PAGE: i64 = 2000;

/// `body`: message and error message; `payload`: request and response text, apart so that a
/// search by someone who may not view payloads can leave it out (`body : "…"`).
const CREATE_INDEX: &str = "CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(body, payload, content = '', contentless_delete = 1, \
     tokenize = 'unicode61 remove_diacritics 2')";
/// `through`: every log up to it is indexed. `db`: the `database_id` of the database the file
/// belongs to (a restored or replaced database must not use another's index).
const CREATE_MARK: &str =
    "CREATE TABLE IF NOT EXISTS full_text_mark (id INTEGER PRIMARY KEY CHECK (id = 1), through INTEGER NOT NULL, db INTEGER NOT NULL)";

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

/// Opens (creating) the index file of the database `main`. A file that belongs to another
/// database, or claims logs the database does not have (a database restored without its
/// index), is emptied and rebuilt from `full_text_split_at`.
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
    let state = |key: &'static str| async move {
        sqlx::query_scalar::<_, i64>("SELECT value FROM ingest_state WHERE key = ?").bind(key).fetch_optional(main).await.map(|v| v.unwrap_or(0))
    };
    let (db, split) = (state("database_id").await?, state("full_text_split_at").await?);
    let newest: i64 = sqlx::query_scalar(super::sqlite::HIGHEST_LOG_ID).fetch_one(main).await?;
    let mark: Option<(i64, i64)> = sqlx::query_as("SELECT through, db FROM full_text_mark WHERE id = 1").fetch_optional(&mut conn).await?;
    // A file from before payload text had a column of its own cannot leave payload words out.
    let split_columns: bool =
        sqlx::query_scalar("SELECT COUNT(*) > 0 FROM pragma_table_info('logs_fts') WHERE name = 'payload'").fetch_one(&mut conn).await?;
    let mark = match mark {
        Some((through, file_db)) if file_db == db && through <= newest && split_columns => through,
        other => {
            if other.is_some() {
                tracing::warn!(file = %path.display(), "the full-text index file belongs to another database or an older version; rebuilding it");
            }
            let mut tx = conn.begin().await?;
            sqlx::query("DROP TABLE IF EXISTS logs_fts").execute(&mut *tx).await?;
            sqlx::query(CREATE_INDEX).execute(&mut *tx).await?;
            sqlx::query("INSERT OR REPLACE INTO full_text_mark (id, through, db) VALUES (1, ?, ?)").bind(split).bind(db).execute(&mut *tx).await?;
            tx.commit().await?;
            split
        }
    };
    Ok(Prepared { conn, mark })
}

struct Job {
    texts: Vec<(i64, SearchText)>,
    bytes: usize,
    /// The batch's highest log id.
    through: i64,
}

pub(crate) struct FullText {
    jobs: mpsc::UnboundedSender<Job>,
    submitted: AtomicI64,
    queued_bytes: Arc<AtomicUsize>,
    max_backlog_bytes: usize,
    /// The highest log id of the jobs done (or the mark, if higher).
    indexed: watch::Receiver<i64>,
}

impl FullText {
    /// Starts the indexing task. `main` reads stored logs when the index has to catch up.
    pub(crate) fn start(p: Prepared, main: SqlitePool) -> FullText {
        let (jobs, rx) = mpsc::unbounded_channel();
        let (indexed_tx, indexed) = watch::channel(p.mark);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(p.conn, main, rx, indexed_tx, p.mark, queued_bytes.clone()));
        FullText { jobs, submitted: AtomicI64::new(p.mark), queued_bytes, max_backlog_bytes: MAX_BACKLOG_BYTES, indexed }
    }

    /// Hands over the texts of a committed batch whose highest log id is `through`. The queue
    /// is bounded by `wait_for_room`, which the writer calls before each commit.
    pub(crate) fn submit(&self, texts: Vec<(i64, SearchText)>, through: i64) {
        let bytes = texts.iter().map(|(_, t)| t.all().len() + 16).sum();
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        self.submitted.fetch_max(through, Ordering::AcqRel);
        // A send fails only when the task has ended; its next start rebuilds from the mark.
        let _ = self.jobs.send(Job { texts, bytes, through });
    }

    /// Waits while more than `MAX_BACKLOG_BYTES` of text waits for the task, at most
    /// `ROOM_WAIT` (a failing index must not stop ingest or shutdown for good).
    pub(crate) async fn wait_for_room(&self) {
        let mut indexed = self.indexed.clone();
        let _ = tokio::time::timeout(ROOM_WAIT, async {
            while self.queued_bytes.load(Ordering::Acquire) > self.max_backlog_bytes {
                if indexed.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// Resolves once everything submitted so far is searchable, or after `MAX_WAIT`.
    pub(crate) fn barrier(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let target = self.submitted.load(Ordering::Acquire);
        let mut indexed = self.indexed.clone();
        async move {
            let _ = tokio::time::timeout(MAX_WAIT, indexed.wait_for(|v| *v >= target)).await;
        }
    }

    /// The highest log id indexed.
    #[cfg(test)]
    pub(crate) fn indexed_through(&self) -> i64 {
        *self.indexed.borrow()
    }
}

/// The task's state: the mark (every log up to it is indexed) and the jobs done.
struct Task {
    conn: SqliteConnection,
    main: SqlitePool,
    rx: mpsc::UnboundedReceiver<Job>,
    indexed: watch::Sender<i64>,
    queued_bytes: Arc<AtomicUsize>,
    mark: i64,
    jobs_through: i64,
    job_failed: bool,
}

async fn run(conn: SqliteConnection, main: SqlitePool, rx: mpsc::UnboundedReceiver<Job>, indexed: watch::Sender<i64>, mark: i64, queued_bytes: Arc<AtomicUsize>) {
    let mut t = Task { conn, main, rx, indexed, queued_bytes, mark, jobs_through: mark, job_failed: false };
    // Logs stored after the mark: an unclean stop, or a new or rebuilt file. New batches keep
    // being indexed meanwhile (between pages), so ingest does not wait for a long rebuild.
    t.catch_up().await;
    loop {
        let Some(first) = t.rx.recv().await else { break };
        t.do_jobs(first).await;
    }
}

impl Task {
    fn publish(&self) {
        self.indexed.send_replace(self.mark.max(self.jobs_through));
    }

    /// Indexes `first` and whatever else is queued; after a failure, rebuilds from the mark.
    async fn do_jobs(&mut self, first: Job) {
        if !self.apply_jobs(first, true).await {
            // The rebuild starts at the mark, below the failed jobs: it covers them.
            self.job_failed = false;
            self.catch_up().await;
        }
        self.publish();
    }

    /// Indexes `first` and whatever else is queued (up to a transaction's worth). `advance`:
    /// the mark may move past the jobs (not while catching up: logs between the mark and the
    /// jobs are not indexed yet). False when the transaction failed (the texts are dropped; a
    /// rebuild reads them back from the logs).
    async fn apply_jobs(&mut self, first: Job, advance: bool) -> bool {
        let mut jobs = vec![first];
        let mut texts = jobs[0].texts.len();
        while texts < MAX_TEXTS_PER_TRANSACTION {
            match self.rx.try_recv() {
                Ok(j) => {
                    texts += j.texts.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let through = jobs.iter().map(|j| j.through).max().unwrap_or(self.mark);
        let bytes: usize = jobs.iter().map(|j| j.bytes).sum();
        let new_mark = if advance { self.mark.max(through) } else { self.mark };
        let result = index(&mut self.conn, &jobs, self.mark, new_mark).await;
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        match result {
            Ok(()) => {
                self.mark = new_mark;
                self.jobs_through = self.jobs_through.max(through);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "full-text indexing failed; rebuilding the missing entries from the stored logs");
                self.job_failed = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
                false
            }
        }
    }

    /// Indexes the stored logs above the mark up to the newest log at the start, from their
    /// rows and payloads; retries until it succeeds.
    async fn catch_up(&mut self) {
        loop {
            match self.catch_up_once().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, through = self.mark, "full-text index cannot catch up; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }

    async fn catch_up_once(&mut self) -> Result<()> {
        let newest: i64 = sqlx::query_scalar(super::sqlite::NEWEST_LOG_ID).fetch_one(&self.main).await?;
        if newest > self.mark {
            tracing::info!(from = self.mark, to = newest, "full-text index catching up with stored logs");
        }
        while self.mark < newest {
            let mut conn = self.main.acquire().await?;
            let mut rows: Vec<(i64, Option<String>, Option<String>)> =
                sqlx::query_as("SELECT id, message, error_message FROM logs WHERE id > ? AND id <= ? ORDER BY id LIMIT ?")
                    .bind(self.mark)
                    .bind(newest)
                    .bind(CATCH_UP_PAGE)
                    .fetch_all(&mut *conn)
                    .await?;
            // Logs stored in blocks (`blocks`), merged in id order.
            rows.extend(super::blocks::texts(&mut conn, self.mark, newest, CATCH_UP_PAGE).await?);
            drop(conn);
            rows.sort_by_key(|r| r.0);
            rows.truncate(CATCH_UP_PAGE as usize);
            let last = match rows.last() {
                Some((id, _, _)) => *id,
                None => newest,
            };
            let payloads = super::blocks::payloads_between(&mut *self.main.acquire().await?, self.mark, last).await?;
            let texts: Vec<(i64, SearchText)> = rows
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
                    SearchText::new([message.as_deref(), error_message.as_deref(), req, resp]).map(|t| (id, t))
                })
                .collect();
            index(&mut self.conn, &[Job { texts, bytes: 0, through: last }], self.mark, last).await?;
            self.mark = last;
            self.publish();
            // New batches go in between pages.
            if let Ok(job) = self.rx.try_recv() {
                self.apply_jobs(job, false).await;
                self.publish();
            }
        }
        if std::mem::take(&mut self.job_failed) {
            // Jobs indexed meanwhile do not cover the failed one's logs: go on from here.
            return Err(Error::Storage("a batch failed to index while catching up".into()));
        }
        self.mark = self.mark.max(self.jobs_through);
        sqlx::query("UPDATE full_text_mark SET through = max(through, ?) WHERE id = 1").bind(self.mark).execute(&mut self.conn).await?;
        self.publish();
        Ok(())
    }
}

/// Writes the jobs' texts of logs above `skip_through` and moves the mark to `mark`, in one
/// transaction. The mark never moves back (another process, such as a CLI command, may have
/// indexed further).
async fn index(conn: &mut SqliteConnection, jobs: &[Job], skip_through: i64, mark: i64) -> Result<()> {
    let mut tx = conn.begin().await?;
    for job in jobs {
        let texts: Vec<&(i64, SearchText)> = job.texts.iter().filter(|(id, _)| *id > skip_through).collect();
        for chunk in texts.chunks(CHUNK) {
            let sql = format!("INSERT INTO logs_fts (rowid, body, payload) VALUES {}", super::sqlite::values_sql(chunk.len(), 3));
            let mut q = sqlx::query(&sql);
            for (id, text) in chunk {
                q = q.bind(*id).bind(text.message_part()).bind(text.payload_part());
            }
            q.execute(&mut *tx).await?;
        }
    }
    sqlx::query("UPDATE full_text_mark SET through = max(through, ?) WHERE id = 1").bind(mark).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn main_db(dir: &Path, database_id: i64) -> SqlitePool {
        let main = SqlitePool::connect_with(SqliteConnectOptions::new().filename(dir.join("m.db")).create_if_missing(true)).await.unwrap();
        for sql in [
            "CREATE TABLE IF NOT EXISTS ingest_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT OR REPLACE INTO ingest_state VALUES ('full_text_split_at', 0)",
            "CREATE TABLE IF NOT EXISTS logs (id INTEGER PRIMARY KEY, message TEXT, error_message TEXT)",
            "CREATE TABLE IF NOT EXISTS payload_blocks (first_id INTEGER PRIMARY KEY, last_id INTEGER, body BLOB)",
            "CREATE TABLE IF NOT EXISTS payloads (log_id INTEGER PRIMARY KEY, body BLOB)",
            "CREATE TABLE IF NOT EXISTS log_blocks (first_id INTEGER PRIMARY KEY, last_id INTEGER, model_id INTEGER, \
             min_ts INTEGER, max_ts INTEGER, count INTEGER, body BLOB, text_index BLOB)",
        ] {
            sqlx::query(sql).execute(&main).await.unwrap();
        }
        sqlx::query("INSERT OR REPLACE INTO ingest_state VALUES ('database_id', ?)").bind(database_id).execute(&main).await.unwrap();
        main
    }

    fn text(message: &str) -> SearchText {
        SearchText::messages(Some(message), None).unwrap()
    }

    async fn count(conn: &mut SqliteConnection, word: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH ?").bind(word).fetch_one(conn).await.unwrap()
    }

    #[tokio::test]
    async fn commits_wait_while_the_index_is_far_behind() {
        let dir = tempfile::tempdir().unwrap();
        let main = main_db(dir.path(), 7).await;
        let path = index_path(&dir.path().join("m.db"));
        let mut ft = FullText::start(prepare(&path, &main).await.unwrap(), main.clone());
        ft.max_backlog_bytes = 100;
        ft.barrier().await;
        // Another connection holds the index file's write lock: the task cannot write.
        let mut blocker = SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
        ft.submit(vec![(1, text("hello world"))], 1);
        ft.submit(vec![(2, text(&"far ahead ".repeat(20)))], 9);
        let waited = tokio::time::timeout(Duration::from_millis(500), ft.wait_for_room()).await;
        assert!(waited.is_err(), "a commit must wait while the index is far behind");
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), ft.wait_for_room()).await.expect("room once the index caught up");
        ft.barrier().await;
        assert_eq!(ft.indexed_through(), 9);
        for (word, n) in [("hello", 1), ("ahead", 1), ("missing", 0)] {
            assert_eq!(count(&mut blocker, word).await, n, "{word}");
        }
        let mark: i64 = sqlx::query_scalar("SELECT through FROM full_text_mark").fetch_one(&mut blocker).await.unwrap();
        assert_eq!(mark, 9);
    }

    #[tokio::test]
    async fn an_index_of_another_database_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let main = main_db(dir.path(), 1).await;
        for (id, text) in [(1, "alpha"), (2, "beta")] {
            sqlx::query("INSERT INTO logs (id, message) VALUES (?, ?)").bind(id).bind(text).execute(&main).await.unwrap();
        }
        let path = index_path(&dir.path().join("m.db"));
        {
            let ft = FullText::start(prepare(&path, &main).await.unwrap(), main.clone());
            ft.submit(vec![(3, text("gamma"))], 3);
            ft.barrier().await;
            // Catching up indexed the stored logs 1 and 2; the job log 3 (not stored).
            assert_eq!(ft.indexed_through(), 3);
        }
        let mut file = SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
        assert_eq!((count(&mut file, "alpha").await, count(&mut file, "gamma").await), (1, 1));
        // The same file next to a database restored from elsewhere: emptied and rebuilt from
        // that database's logs, not trusted.
        let main = main_db(dir.path(), 2).await;
        // Logs stored in a block from before filters of words are rebuilt too; those in a
        // block with a filter (`textindex`) are found through it, not put in FTS5.
        let row = crate::store::LogRow { model_id: 1, message: Some("delta".into()), error_message: Some("epsilon".into()), ..Default::default() };
        let filtered = crate::store::LogRow { model_id: 2, message: Some("zeta".into()), ..Default::default() };
        let mut conn = main.acquire().await.unwrap();
        crate::store::blocks::insert(&mut conn, &[(5, &row)]).await.unwrap();
        sqlx::query("UPDATE log_blocks SET text_index = NULL").execute(&mut *conn).await.unwrap();
        crate::store::blocks::insert(&mut conn, &[(6, &filtered)]).await.unwrap();
        drop(conn);
        let prepared = prepare(&path, &main).await.unwrap();
        assert_eq!(prepared.mark, 0);
        let ft = FullText::start(prepared, main.clone());
        let started = std::time::Instant::now();
        while ft.indexed_through() < 6 {
            assert!(started.elapsed() < Duration::from_secs(20));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!((count(&mut file, "alpha").await, count(&mut file, "beta").await, count(&mut file, "gamma").await), (1, 1, 0));
        assert_eq!((count(&mut file, "delta").await, count(&mut file, "epsilon").await, count(&mut file, "zeta").await), (1, 1, 0));
    }

    /// A file from before payload text had its own column is rebuilt: afterwards payload words
    /// are found in the whole text but not in the message column (`body : …`).
    #[tokio::test]
    async fn an_index_without_a_payload_column_is_rebuilt_with_one() {
        let dir = tempfile::tempdir().unwrap();
        let main = main_db(dir.path(), 3).await;
        let payload = Payload::new(Some("secret zebra42xq prompt".into()), Some("answer".into()), 1024).unwrap().encode().unwrap();
        sqlx::query("INSERT INTO logs (id, message) VALUES (1, 'visible words')").execute(&main).await.unwrap();
        sqlx::query("INSERT INTO payloads (log_id, body) VALUES (1, ?)").bind(payload).execute(&main).await.unwrap();
        let path = index_path(&dir.path().join("m.db"));
        {
            let mut old = SqliteConnectOptions::new().filename(&path).create_if_missing(true).connect().await.unwrap();
            sqlx::query("CREATE VIRTUAL TABLE logs_fts USING fts5(body, content = '', contentless_delete = 1)").execute(&mut old).await.unwrap();
            sqlx::query(CREATE_MARK).execute(&mut old).await.unwrap();
            sqlx::query("INSERT INTO logs_fts (rowid, body) VALUES (1, 'visible words secret zebra42xq prompt answer')").execute(&mut old).await.unwrap();
            sqlx::query("INSERT INTO full_text_mark VALUES (1, 1, 3)").execute(&mut old).await.unwrap();
        }
        let prepared = prepare(&path, &main).await.unwrap();
        assert_eq!(prepared.mark, 0, "an index of the old shape is rebuilt");
        let ft = FullText::start(prepared, main.clone());
        let started = std::time::Instant::now();
        while ft.indexed_through() < 1 {
            assert!(started.elapsed() < Duration::from_secs(20));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut file = SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
        assert_eq!(count(&mut file, "zebra42xq").await, 1);
        assert_eq!(count(&mut file, "body : zebra42xq").await, 0, "a payload word in the message column");
        assert_eq!(count(&mut file, "body : visible").await, 1);
        assert_eq!(count(&mut file, "payload : answer").await, 1);
    }

    #[test]
    fn index_file_sits_next_to_the_database() {
        assert_eq!(index_path(Path::new("/data/modelwatch.db")), PathBuf::from("/data/modelwatch-fts.db"));
        assert_eq!(index_path(Path::new("rel/store")), PathBuf::from("rel/store-fts"));
    }
}
