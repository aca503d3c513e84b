//! The writer: a bounded queue in front of a two-stage group-commit pipeline.
//!
//! Ingest requests hand prepared records to `Writer::submit` and wait. The folding task takes
//! every queued job (up to `max_group` records), resolves series ids and folds the records into
//! rollup deltas; the committer writes raw rows, payloads and rollups of that group in one
//! transaction while the folder already prepares the next group. Only after the commit does
//! each waiting request get its answer, so an acknowledgement means "on disk".
//!
//! Memory is bounded by a semaphore counted in records: when the queue is full, `submit`
//! fails at once with `Overloaded` (429 + Retry-After) instead of buffering more.

use super::rollup::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, Semaphore, mpsc, oneshot};

use super::rollup::{DimAcc, DimKey, HOUR_MS, MINUTE_MS, RecordFacts, Resolution};
use crate::error::{Error, Result};
use crate::store::{BreakdownMark, LogRow, MetricRow, SeriesKey, Store, WriteBatch};

/// Series a model may have before new combinations are folded into one overflow series.
pub const MAX_SERIES_PER_MODEL: usize = 500;
/// Distinct error types per model and minute kept apart in rollups; the rest become "(other)".
pub const MAX_ERROR_TYPES_PER_MINUTE: usize = 20;
pub const OTHER: &str = "(other)";
/// Distinct values per model, breakdown dimension and hour before the rest go to `(other)`.
pub const MAX_DIM_VALUES_PER_HOUR: usize = 200;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Records that may wait for the writer before ingest answers 429.
    pub queue_records: usize,
    /// Most records written in one transaction.
    pub max_group: usize,
    /// How long user and metadata breakdown deltas may be held in memory before they are
    /// merged into `rollups_dim_*` (SQLite only; see `Store::defers_breakdowns`). Reading a
    /// breakdown flushes them first, so nobody sees the lag.
    pub breakdown_flush: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig { queue_records: 200_000, max_group: 25_000, breakdown_flush: Duration::from_secs(2) }
    }
}

/// Pending breakdown entries above which the writer flushes at once (bounds memory).
const MAX_PENDING_DIMS: usize = 50_000;

/// A log record ready for the writer: the rules have run and the payload is encoded.
#[derive(Debug, Clone)]
pub struct PreparedLog {
    pub model_id: i64,
    pub ts: i64,
    pub series: SeriesKey,
    pub error_type: Option<String>,
    pub facts: RecordFacts,
    /// The raw row to store (series_id filled in by the writer); None when dropped or sampled out.
    pub row: Option<LogRow>,
    /// Breakdown dimensions of the record: (`user` or `meta:<key>`, value).
    pub dims: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct PreparedMetric {
    pub row: MetricRow,
}

struct Job {
    logs: Vec<PreparedLog>,
    metrics: Vec<PreparedMetric>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    done: oneshot::Sender<Result<()>>,
}

enum Msg {
    Job(Job),
    /// Merge held-back breakdown deltas now and answer when committed.
    Flush(oneshot::Sender<Result<()>>),
    Shutdown,
}

/// Counters for `/metrics` and the benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub records_written: AtomicU64,
    pub rows_stored: AtomicU64,
    pub commits: AtomicU64,
    pub commit_micros_total: AtomicU64,
    pub rejected_overloaded: AtomicU64,
    pub breakdown_flushes: AtomicU64,
}

pub struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
    permits: Arc<Semaphore>,
    capacity: usize,
    closed: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub stats: Arc<WriterStats>,
}

impl Writer {
    pub fn start(store: Arc<dyn Store>, cfg: WriterConfig) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(WriterStats::default());
        let task = tokio::spawn(run(store, rx, cfg.clone(), stats.clone()));
        Writer {
            tx,
            permits: Arc::new(Semaphore::new(cfg.queue_records.max(1))),
            capacity: cfg.queue_records.max(1),
            closed: AtomicBool::new(false),
            task: Mutex::new(Some(task)),
            stats,
        }
    }

    /// Records waiting for the writer right now.
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// Queues records and waits until they are committed.
    pub async fn submit(&self, logs: Vec<PreparedLog>, metrics: Vec<PreparedMetric>) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Unavailable);
        }
        let n = (logs.len() + metrics.len()).max(1);
        if n > self.capacity {
            return Err(Error::TooLarge {
                field: "records".into(),
                message: format!("{n} records exceed the ingest queue of {}", self.capacity),
            });
        }
        let permit = match self.permits.clone().try_acquire_many_owned(n as u32) {
            Ok(p) => p,
            Err(_) => {
                self.stats.rejected_overloaded.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Overloaded { retry_after_secs: 1 });
            }
        };
        let (done, wait) = oneshot::channel();
        self.tx.send(Msg::Job(Job { logs, metrics, _permit: permit, done })).map_err(|_| Error::Unavailable)?;
        // A dropped sender means the writer stopped before taking the job: nothing was stored.
        wait.await.unwrap_or(Err(Error::Unavailable))
    }

    /// Commits the breakdown deltas the writer holds back, so a breakdown read right after an
    /// acknowledged ingest sees it. Immediate when nothing is held back.
    pub async fn flush_breakdowns(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_err() {
            return Ok(());
        }
        wait.await.unwrap_or(Ok(()))
    }

    /// Stops taking new records and waits until everything accepted so far is committed.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// Remembers series ids and which error types each model-minute already has.
struct Resolver {
    series: HashMap<i64, HashMap<SeriesKey, i64>>,
    series_count: HashMap<i64, usize>,
    error_types: HashMap<(i64, i64), HashSet<String>>,
    /// (model, hour) → dim → values seen by this process in that hour.
    dim_values: HashMap<(i64, i64), HashMap<String, HashSet<String>>>,
}

impl Resolver {
    async fn series_id(&mut self, store: &dyn Store, model_id: i64, key: &SeriesKey) -> Result<i64> {
        if let Some(id) = self.series.get(&model_id).and_then(|m| m.get(key)) {
            return Ok(*id);
        }
        let count = match self.series_count.get(&model_id) {
            Some(c) => *c,
            None => store.count_series(model_id).await? as usize,
        };
        let key = if count >= MAX_SERIES_PER_MODEL && store.series_id(model_id, key).await?.is_none() {
            SeriesKey::overflow()
        } else {
            key.clone()
        };
        let id = store.ensure_series(model_id, &key).await?;
        self.series_count.insert(model_id, count + 1);
        self.series.entry(model_id).or_default().insert(key, id);
        Ok(id)
    }

    fn error_type(&mut self, model_id: i64, ts: i64, et: &str) -> String {
        let set = self.error_types.entry((model_id, ts.div_euclid(MINUTE_MS))).or_default();
        if set.contains(et) {
            return et.to_string();
        }
        if set.len() >= MAX_ERROR_TYPES_PER_MINUTE {
            return OTHER.to_string();
        }
        set.insert(et.to_string());
        et.to_string()
    }

    /// The value under which a breakdown dimension is rolled up: itself while the model-hour
    /// has room, `(other)` after. Values are counted per process, so with several writers (or
    /// after a restart) an hour may hold a small multiple of the cap; it stays bounded.
    fn dim_value<'a>(&mut self, model_id: i64, dim: &str, ts: i64, value: &'a str) -> &'a str {
        let dims = self.dim_values.entry((model_id, ts.div_euclid(HOUR_MS))).or_default();
        // Look up before inserting so that the common case (a known value) allocates nothing.
        let set = match dims.get_mut(dim) {
            Some(set) => set,
            None => dims.entry(dim.to_string()).or_default(),
        };
        if set.contains(value) {
            return value;
        }
        if set.len() >= MAX_DIM_VALUES_PER_HOUR {
            return OTHER;
        }
        set.insert(value.to_string());
        value
    }

    fn forget_old_minutes(&mut self, now_minute: i64) {
        // Late records for old minutes may add a few more types; that stays bounded per call.
        self.error_types.retain(|(_, m), _| *m + 180 >= now_minute);
        let now_hour = now_minute * MINUTE_MS / HOUR_MS;
        self.dim_values.retain(|(_, h), _| *h + 3 >= now_hour);
    }
}

/// Breakdown deltas held back between commits (SQLite): merged into one statement set every
/// `breakdown_flush` instead of once per commit. Crash safety: every flush records the highest
/// log id it covers, and `recover_breakdowns` rebuilds the rest from the stored rows on start.
/// Records without a stored row (dropped or sampled out) cannot be rebuilt, so a commit that
/// holds any with breakdown values flushes at once.
#[derive(Default)]
struct PendingDims {
    dims: HashMap<(Resolution, DimKey), DimAcc>,
    since: Option<Instant>,
}

/// The records folded since the committer last took its group: one write batch, and the
/// requests waiting for it.
struct Folded {
    batch: WriteBatch,
    jobs: Vec<Job>,
    flush_waiters: Vec<oneshot::Sender<Result<()>>>,
    records: usize,
    /// Records without a stored row carried breakdown values (they cannot be rebuilt from
    /// stored rows after a crash, so their deltas may not be held back).
    unstored_dims: bool,
}

impl Folded {
    fn new() -> Folded {
        Folded { batch: WriteBatch::default(), jobs: Vec::new(), flush_waiters: Vec::new(), records: 0, unstored_dims: false }
    }
}

/// What the folder hands to the committer.
struct Slot {
    folded: Option<Folded>,
    /// The folder has stopped: commit what is left and end.
    closed: bool,
}

struct Handoff {
    slot: Mutex<Slot>,
    /// Something was put into the slot (one consumer: permits are kept).
    ready: Notify,
    /// The committer took the slot's group.
    taken: Notify,
    /// Cleared when a task ends for any reason (a panic included), so the other one does not
    /// wait for it forever.
    folder_alive: AtomicBool,
    committer_alive: AtomicBool,
}

/// Marks a pipeline task as gone when it ends, and wakes the other task.
struct Alive {
    handoff: Arc<Handoff>,
    committer: bool,
}

impl Drop for Alive {
    fn drop(&mut self) {
        if self.committer {
            self.handoff.committer_alive.store(false, Ordering::Release);
            self.handoff.taken.notify_waiters();
        } else {
            self.handoff.folder_alive.store(false, Ordering::Release);
            self.handoff.ready.notify_one();
        }
    }
}

/// The writer is a two-stage pipeline. This task folds each queued job into the group the
/// committer will take next (series ids resolved, rollup deltas added) as soon as it arrives;
/// the committer takes everything folded so far whenever it is free and writes it in one
/// transaction. So the group of a commit is whatever arrived during the previous commit (group
/// commit), and folding overlaps the database's work instead of preceding it.
async fn run(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Msg>, cfg: WriterConfig, stats: Arc<WriterStats>) {
    let max_group = cfg.max_group.max(1);
    let defer = store.defers_breakdowns() && !cfg.breakdown_flush.is_zero();
    let handoff = Arc::new(Handoff {
        slot: Mutex::new(Slot { folded: None, closed: false }),
        ready: Notify::new(),
        taken: Notify::new(),
        folder_alive: AtomicBool::new(true),
        committer_alive: AtomicBool::new(true),
    });
    let _alive = Alive { handoff: handoff.clone(), committer: false };
    let committer = tokio::spawn(commit_loop(store.clone(), handoff.clone(), cfg.breakdown_flush, defer, stats));
    let mut resolver = Resolver {
        series: HashMap::default(),
        series_count: HashMap::default(),
        error_types: HashMap::default(),
        dim_values: HashMap::default(),
    };
    let mut last_sweep = Instant::now();
    let mut stopping = false;
    'jobs: loop {
        let msg = if stopping {
            // Also take what raced with the shutdown message.
            match rx.try_recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        } else {
            match rx.recv().await {
                Some(m) => m,
                None => break,
            }
        };
        match msg {
            Msg::Job(mut job) => {
                // Series ids first (the only step that can fail), so a failed job adds nothing.
                let series = match resolve_series(store.as_ref(), &mut resolver, &job).await {
                    Ok(ids) => ids,
                    Err(e) => {
                        tracing::error!(error = %e, "ingest write failed; clients get an error and may retry");
                        let _ = job.done.send(Err(Error::Storage(e.to_string())));
                        continue;
                    }
                };
                // A full group waits for the committer to take it.
                let mut slot = loop {
                    let taken = handoff.taken.notified();
                    if !handoff.committer_alive.load(Ordering::Acquire) {
                        // The committer died (a bug): stop; every waiting request gets
                        // `Unavailable` as its answer channel is dropped.
                        tracing::error!("ingest committer stopped; the writer stops taking records");
                        break 'jobs;
                    }
                    let slot = handoff.slot.lock().await;
                    if slot.folded.as_ref().is_none_or(|f| f.records < max_group) {
                        break slot;
                    }
                    drop(slot);
                    taken.await;
                };
                let f = slot.folded.get_or_insert_with(Folded::new);
                f.records += job.logs.len() + job.metrics.len();
                f.unstored_dims |= fold_job(&mut resolver, &mut f.batch, &mut job, &series);
                f.jobs.push(job);
            }
            Msg::Flush(w) => handoff.slot.lock().await.folded.get_or_insert_with(Folded::new).flush_waiters.push(w),
            // Every job queued before the shutdown message has been folded.
            Msg::Shutdown => stopping = true,
        }
        handoff.ready.notify_one();
        if last_sweep.elapsed() > Duration::from_secs(60) {
            resolver.forget_old_minutes(crate::now_ms().div_euclid(MINUTE_MS));
            last_sweep = Instant::now();
        }
    }
    // The committer writes what is left (and any held-back deltas), then stops.
    handoff.slot.lock().await.closed = true;
    handoff.ready.notify_one();
    let _ = committer.await;
}

/// The series id of every log of a job.
async fn resolve_series(store: &dyn Store, resolver: &mut Resolver, job: &Job) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(job.logs.len());
    for p in &job.logs {
        ids.push(resolver.series_id(store, p.model_id, &p.series).await?);
    }
    Ok(ids)
}

/// Adds a job's records to a batch. Returns whether a record without a stored row carried
/// breakdown values.
fn fold_job(resolver: &mut Resolver, batch: &mut WriteBatch, job: &mut Job, series: &[i64]) -> bool {
    let mut unstored_dims = false;
    batch.logs.reserve(job.logs.len());
    for (p, &series_id) in job.logs.drain(..).zip(series) {
        let ts = p.ts;
        let et = match (&p.error_type, p.facts.error) {
            (_, false) => String::new(),
            (Some(t), true) => resolver.error_type(p.model_id, ts, t),
            (None, true) => resolver.error_type(p.model_id, ts, "error"),
        };
        batch.rollups.add_log(p.model_id, series_id, &et, ts, &p.facts);
        for (dim, value) in &p.dims {
            let v = resolver.dim_value(p.model_id, dim, ts, value);
            batch.rollups.add_dim(p.model_id, dim, v, ts, &p.facts);
        }
        unstored_dims |= p.row.is_none() && !p.dims.is_empty();
        if let Some(mut row) = p.row {
            row.series_id = series_id;
            batch.logs.push(row);
        }
    }
    for m in job.metrics.drain(..) {
        batch.rollups.add_metric(m.row.model_id, &m.row.name, m.row.ts, m.row.value);
        batch.metrics.push(m.row);
    }
    unstored_dims
}

/// The second stage: takes everything folded so far, writes it in one transaction and answers
/// its requests after the commit. Owns the breakdown deltas held back between commits (SQLite).
async fn commit_loop(store: Arc<dyn Store>, handoff: Arc<Handoff>, flush_every: Duration, defer: bool, stats: Arc<WriterStats>) {
    let _alive = Alive { handoff: handoff.clone(), committer: true };
    let mut pending = PendingDims::default();
    // The next group, taken while this one commits and prepared meanwhile (`prepare`).
    let mut ahead: Option<tokio::task::JoinHandle<Folded>> = None;
    loop {
        let (mut f, closed) = match ahead.take() {
            Some(prepared) => match prepared.await {
                Ok(f) => (f, false),
                Err(e) => {
                    // A panic while encoding (a bug): the group's requests get `Unavailable`
                    // (their answer channels were dropped with it); nothing of it was stored.
                    tracing::error!(error = %e, "preparing an ingest group failed");
                    continue;
                }
            },
            None => {
                let ready = handoff.ready.notified();
                let (folded, closed) = {
                    let mut slot = handoff.slot.lock().await;
                    (slot.folded.take(), slot.closed || !handoff.folder_alive.load(Ordering::Acquire))
                };
                let f = match folded {
                    Some(f) => {
                        handoff.taken.notify_waiters();
                        f
                    }
                    // Nothing to write, and the folder is gone: flush what is held back, then end.
                    None if closed => Folded::new(),
                    None => {
                        match pending.since {
                            Some(since) => {
                                if tokio::time::timeout_at((since + flush_every).into(), ready).await.is_ok() {
                                    continue;
                                }
                                // Quiet for a while with deltas held back: flush them on their own.
                                Folded::new()
                            }
                            None => {
                                ready.await;
                                continue;
                            }
                        }
                    }
                };
                match prepare(&store, f).await {
                    Some(f) => (f, closed),
                    None => continue,
                }
            }
        };
        // Take what was folded meanwhile and prepare it while this group commits: groups stay
        // what arrives during one commit, and encoding them is off the serial path.
        if !closed {
            let next = handoff.slot.lock().await.folded.take();
            if let Some(next) = next {
                handoff.taken.notify_waiters();
                ahead = Some(tokio::task::spawn_blocking({
                    let store = store.clone();
                    move || prepared(store.as_ref(), next)
                }));
            }
        }
        let flush_due = !defer
            || closed
            || !f.flush_waiters.is_empty()
            || pending.dims.len() >= MAX_PENDING_DIMS
            || pending.since.is_some_and(|t| t.elapsed() >= flush_every);
        let nothing = f.batch.logs.is_empty() && f.batch.metrics.is_empty() && f.batch.rollups.is_empty();
        if nothing && (pending.dims.is_empty() || !flush_due) {
            for j in f.jobs {
                let _ = j.done.send(Ok(()));
            }
            for w in f.flush_waiters {
                let _ = w.send(Ok(()));
            }
        } else {
            let started = Instant::now();
            let result = commit(store.as_ref(), &mut f.batch, &mut pending, defer, flush_due, f.unstored_dims).await;
            let micros = started.elapsed().as_micros() as u64;
            match &result {
                Ok(w) => {
                    stats.records_written.fetch_add(f.records as u64, Ordering::Relaxed);
                    stats.rows_stored.fetch_add(w.stored, Ordering::Relaxed);
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    stats.commit_micros_total.fetch_add(micros, Ordering::Relaxed);
                    stats.breakdown_flushes.fetch_add(w.flushed as u64, Ordering::Relaxed);
                }
                Err(e) => tracing::error!(error = %e, records = f.records, "ingest write failed; clients get an error and may retry"),
            }
            let failed = result.is_err();
            let outcome: std::result::Result<(), String> = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
            let answer = move |jobs: Vec<Job>, waiters: Vec<oneshot::Sender<Result<()>>>| {
                for j in jobs {
                    let _ = j.done.send(outcome.clone().map_err(Error::Storage));
                }
                for w in waiters {
                    let _ = w.send(outcome.clone().map_err(Error::Storage));
                }
            };
            // Answer once the batch is also searchable (SQLite indexes text after the commit,
            // on its own task); meanwhile the next batch commits.
            match if failed { None } else { store.search_barrier() } {
                Some(barrier) => {
                    let (jobs, waiters) = (f.jobs, f.flush_waiters);
                    tokio::spawn(async move {
                        barrier.await;
                        answer(jobs, waiters);
                    });
                }
                None => answer(f.jobs, f.flush_waiters),
            }
            if failed && !closed {
                // The database is failing: do not retry held-back deltas in a busy loop.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // Closed: the folder has handed over everything, and this round flushed what was
        // held back (tried once; after a failed flush the next start rebuilds the breakdowns
        // of stored rows, see `recover_breakdowns`).
        if closed {
            break;
        }
    }
}

/// The CPU work of a group before its commit: rollup deltas finished, logs encoded
/// (`Store::prepare_batch`).
fn prepared(store: &dyn Store, mut f: Folded) -> Folded {
    f.batch.rollups.finish();
    store.prepare_batch(&mut f.batch);
    f
}

/// `prepared` on a blocking thread, for the group the committer writes next. None when it
/// panicked (a bug: the group's requests get `Unavailable`).
async fn prepare(store: &Arc<dyn Store>, f: Folded) -> Option<Folded> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || prepared(store.as_ref(), f)).await {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(error = %e, "preparing an ingest group failed");
            None
        }
    }
}

struct Written {
    stored: u64,
    flushed: bool,
}

/// Writes a folded batch in one transaction, with the held-back breakdown deltas when due.
async fn commit(
    store: &dyn Store,
    batch: &mut WriteBatch,
    pending: &mut PendingDims,
    defer: bool,
    flush_due: bool,
    unstored_dims: bool,
) -> Result<Written> {
    let flush = !defer || flush_due || unstored_dims;
    if defer {
        // Held-back deltas join this commit when it flushes; they are dropped from memory only
        // after the commit succeeds, so a failed write loses nothing.
        let group_dims = std::mem::take(&mut batch.rollups.dims);
        if flush {
            batch.rollups.dims = pending.dims.clone();
            merge_dims(&mut batch.rollups.dims, group_dims.iter());
            batch.breakdown_mark = BreakdownMark::AllLogs;
            store.write_batch(batch).await?;
            pending.dims.clear();
            pending.since = None;
        } else {
            store.write_batch(batch).await?;
            merge_dims(&mut pending.dims, group_dims.iter());
            if !pending.dims.is_empty() && pending.since.is_none() {
                pending.since = Some(Instant::now());
            }
        }
    } else {
        // Breakdowns are complete after every commit; keep the mark in step for a later start
        // with deferral on.
        batch.breakdown_mark = BreakdownMark::AllLogs;
        store.write_batch(batch).await?;
    }
    Ok(Written { stored: batch.logs.len() as u64, flushed: flush && !batch.rollups.dims.is_empty() })
}

fn merge_dims<'a>(into: &mut HashMap<(Resolution, DimKey), DimAcc>, from: impl Iterator<Item = (&'a (Resolution, DimKey), &'a DimAcc)>) {
    for (k, acc) in from {
        match into.get_mut(k) {
            Some(a) => a.merge(acc),
            None => {
                into.insert(k.clone(), acc.clone());
            }
        }
    }
}

/// Rebuilds the breakdown deltas of stored logs that no flush covered (the server was killed
/// while it held them back), from the rows themselves. Called once at start, before ingest.
pub async fn recover_breakdowns(store: &dyn Store) -> Result<u64> {
    let Some(mut after) = store.breakdown_mark().await? else { return Ok(0) };
    let models: HashMap<i64, Vec<String>> = store.list_models().await?.into_iter().map(|m| (m.id, m.breakdown_keys)).collect();
    let mut resolver = Resolver {
        series: HashMap::default(),
        series_count: HashMap::default(),
        error_types: HashMap::default(),
        dim_values: HashMap::default(),
    };
    let mut recovered = 0;
    loop {
        let rows = store.logs_after(after, 20_000).await?;
        let Some(last) = rows.last().map(|r| r.id) else { break };
        let mut batch = WriteBatch::default();
        for r in &rows {
            let no_keys = Vec::new();
            let keys = models.get(&r.row.model_id).unwrap_or(&no_keys);
            let facts = RecordFacts {
                error: r.row.flags & super::FLAG_ERROR != 0,
                latency_ms: r.row.latency_ms,
                ttft_ms: r.row.ttft_ms,
                input_tokens: r.row.input_tokens,
                output_tokens: r.row.output_tokens,
                cached_tokens: r.row.cached_tokens,
                cost_usd: r.row.cost_usd,
                cache_hit: r.row.flags & super::FLAG_CACHE_HIT != 0,
                stored: true,
            };
            for (dim, value) in super::stored_breakdown_dims(&r.row, keys) {
                let v = resolver.dim_value(r.row.model_id, &dim, r.row.ts, &value);
                batch.rollups.add_dim(r.row.model_id, &dim, v, r.row.ts, &facts);
            }
        }
        batch.rollups.finish();
        batch.breakdown_mark = BreakdownMark::Through(last);
        store.write_batch(&batch).await?;
        recovered += rows.len() as u64;
        after = last;
    }
    if recovered > 0 {
        tracing::warn!(logs = recovered, "rebuilt breakdown rollups of logs written before an unclean stop");
    }
    Ok(recovered)
}
