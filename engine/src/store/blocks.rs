//! Logs stored in compressed blocks (SQLite): a commit stores each model's logs as rows of
//! `log_blocks` (runs of 8 to 4,096 logs within 5 minutes, `block_runs`) instead of one row
//! of `logs` each; fewer logs of a model in a commit stay rows. A block holds its rows column by column
//! (every id, then every timestamp, …) so that similar values sit together, compressed as one
//! zstd frame. Integers are variable-length; decimal floats such as a latency of 550.9 ms are
//! kept as a small integer and a power of ten (exactly, or else as their 8 bytes).
//!
//! Filters are evaluated over decoded rows by `LogFilter::matches` (`store::filter`), the
//! conditions that need SQLite's own semantics (metadata JSON, full text) with SQLite's help
//! (`Matcher`). Rows in `logs` (from before blocks, or from small runs) are read as before;
//! every read merges both, from one read transaction.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use super::filter::{Cond, LogFilter, RowView, TextIn, Value, is_hex_id};
use crate::ingest::SearchText;
use super::textindex::{Filter, FilterBuilder, Phrases};
use super::{LogRow, StoredLog};
use crate::error::{Error, Result};
use crate::ingest::payload::{self, Payload};

/// First byte of a block body.
const FORMAT: u8 = 1;
/// zstd level: blocks are written once per commit by the ingest writer.
const LEVEL: i32 = 3;
/// A corrupt body must not take the server's memory with it: well above what the limits
/// below let a writer produce (`MAX_BLOCK_TEXT` of text plus ~100 B a log).
const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// Most logs in one block.
pub(crate) const MAX_BLOCK_LOGS: usize = 4096;
/// Text (messages, ids, metadata) after which a block is cut, so that reading one log or a
/// few never decompresses much more than this.
const MAX_BLOCK_TEXT: usize = 8 * 1024 * 1024;
/// Widest time span of one block's logs. A range read walks the blocks whose newest log is
/// at most this far past the range's end, so a page deep in the past does not walk every
/// newer block. A commit of logs spread wider (a backfill) gets several blocks.
pub(crate) const MAX_BLOCK_SPAN_MS: i64 = 5 * 60 * 1000;

/// A float as stored: `Scaled(k, n)` is exactly `n / 10^k`, else the value's bits.
#[derive(Serialize, Deserialize)]
enum Real {
    Scaled(u8, i64),
    Bits(u64),
}

impl Real {
    fn of(v: f64) -> Real {
        let mut scale = 1.0f64;
        for k in 0..=9u8 {
            let n = (v * scale).round();
            if n.abs() < 9_007_199_254_740_992.0 && ((n as i64) as f64 / scale).to_bits() == v.to_bits() {
                return Real::Scaled(k, n as i64);
            }
            scale *= 10.0;
        }
        Real::Bits(v.to_bits())
    }

    fn value(&self) -> f64 {
        match self {
            Real::Scaled(k, n) => *n as f64 / 10f64.powi(*k as i32),
            Real::Bits(b) => f64::from_bits(*b),
        }
    }
}

/// A trace or span id: lowercase hex as its bytes (half the size), anything else as text.
#[derive(Serialize, Deserialize)]
enum Id<'a> {
    Hex(&'a [u8]),
    Text(&'a str),
}

/// The columns of a block, in stored order. Ids and timestamps as differences from the row
/// before (ids ascend; timestamps mostly ascend, since a commit's rows are sorted by time).
/// Text is borrowed: from the rows when writing, from the decompressed body when reading.
#[derive(Serialize, Deserialize, Default)]
struct Columns<'a> {
    id_steps: Vec<u64>,
    ts_steps: Vec<i64>,
    series_id: Vec<i64>,
    flags: Vec<i64>,
    level: Vec<i64>,
    http_status: Vec<Option<i64>>,
    latency_ms: Vec<Option<Real>>,
    ttft_ms: Vec<Option<Real>>,
    input_tokens: Vec<Option<i64>>,
    output_tokens: Vec<Option<i64>>,
    cached_tokens: Vec<Option<i64>>,
    cost_usd: Vec<Option<Real>>,
    feedback: Vec<Option<i64>>,
    #[serde(borrow)]
    error_type: Vec<Option<&'a str>>,
    #[serde(borrow)]
    message: Vec<Option<&'a str>>,
    #[serde(borrow)]
    error_message: Vec<Option<&'a str>>,
    #[serde(borrow)]
    user_id: Vec<Option<&'a str>>,
    #[serde(borrow)]
    session_id: Vec<Option<&'a str>>,
    #[serde(borrow)]
    trace_id: Vec<Option<Id<'a>>>,
    #[serde(borrow)]
    span_id: Vec<Option<Id<'a>>>,
    #[serde(borrow)]
    metadata: Vec<Option<&'a str>>,
}

/// Encodes rows of one model (ids ascending, all ≥ `first_id`) as a block body.
pub fn encode(first_id: i64, rows: &[(i64, &LogRow)]) -> Result<Vec<u8>> {
    // Hex ids decoded into one buffer first, then borrowed from it.
    let mut bytes = Vec::new();
    let mut hex_at = |id: Option<&str>| -> Result<Option<(usize, usize)>> {
        match id {
            Some(s) if is_hex_id(s) => {
                let start = bytes.len();
                bytes.resize(start + s.len() / 2, 0);
                hex::decode_to_slice(s, &mut bytes[start..]).map_err(|e| Error::Internal(format!("hex id: {e}")))?;
                Ok(Some((start, bytes.len())))
            }
            _ => Ok(None),
        }
    };
    let mut at = Vec::with_capacity(rows.len());
    for (_, r) in rows {
        at.push((hex_at(r.trace_id.as_deref())?, hex_at(r.span_id.as_deref())?));
    }
    let bytes = bytes;
    let mut c = Columns::default();
    let (mut prev_id, mut prev_ts) = (first_id, 0i64);
    for ((id, r), (trace_at, span_at)) in rows.iter().zip(at) {
        let step = id.checked_sub(prev_id).filter(|s| *s >= 0).ok_or_else(|| Error::Internal(format!("log {id} out of order in its block")))?;
        c.id_steps.push(step as u64);
        prev_id = *id;
        c.ts_steps.push(r.ts.wrapping_sub(prev_ts));
        prev_ts = r.ts;
        c.series_id.push(r.series_id);
        c.flags.push(r.flags);
        c.level.push(r.level);
        c.http_status.push(r.http_status);
        c.latency_ms.push(r.latency_ms.map(Real::of));
        c.ttft_ms.push(r.ttft_ms.map(Real::of));
        c.input_tokens.push(r.input_tokens);
        c.output_tokens.push(r.output_tokens);
        c.cached_tokens.push(r.cached_tokens);
        c.cost_usd.push(r.cost_usd.map(Real::of));
        c.feedback.push(r.feedback);
        c.error_type.push(r.error_type.as_deref());
        c.message.push(r.message.as_deref());
        c.error_message.push(r.error_message.as_deref());
        c.user_id.push(r.user_id.as_deref());
        c.session_id.push(r.session_id.as_deref());
        c.trace_id.push(stored_id(r.trace_id.as_deref(), trace_at, &bytes));
        c.span_id.push(stored_id(r.span_id.as_deref(), span_at, &bytes));
        c.metadata.push(r.metadata.as_deref());
    }
    let raw = postcard::to_stdvec(&c).map_err(|e| Error::Internal(format!("log block encoding failed: {e}")))?;
    let mut out = vec![FORMAT];
    out.extend(crate::ingest::payload::compress(LEVEL, &raw)?);
    Ok(out)
}

fn stored_id<'a>(text: Option<&'a str>, at: Option<(usize, usize)>, bytes: &'a [u8]) -> Option<Id<'a>> {
    match (text, at) {
        (None, _) => None,
        (Some(_), Some((a, b))) => Some(Id::Hex(&bytes[a..b])),
        (Some(t), None) => Some(Id::Text(t)),
    }
}

/// A decoded block, read in place: text points into the decompressed body.
struct BlockView<'a> {
    c: Columns<'a>,
    ids: Vec<i64>,
    ts: Vec<i64>,
    model_id: i64,
}

/// The decompressed bytes of a block body.
fn raw(body: &[u8], first_id: i64) -> Result<Vec<u8>> {
    match body.split_first() {
        Some((&FORMAT, rest)) => crate::ingest::payload::decompress_bounded(rest, MAX_DECODED_BYTES).map_err(|e| corrupt(first_id, &e)),
        _ => Err(corrupt(first_id, "unknown format")),
    }
}

fn corrupt(first_id: i64, what: &str) -> Error {
    Error::Storage(format!("corrupt log block {first_id}: {what}"))
}

impl<'a> BlockView<'a> {
    fn open(raw: &'a [u8], first_id: i64, model_id: i64) -> Result<BlockView<'a>> {
        let c: Columns<'a> = postcard::from_bytes(raw).map_err(|e| corrupt(first_id, &e.to_string()))?;
        let n = c.id_steps.len();
        let lens = [
            c.ts_steps.len(),
            c.series_id.len(),
            c.flags.len(),
            c.level.len(),
            c.http_status.len(),
            c.latency_ms.len(),
            c.ttft_ms.len(),
            c.input_tokens.len(),
            c.output_tokens.len(),
            c.cached_tokens.len(),
            c.cost_usd.len(),
            c.feedback.len(),
            c.error_type.len(),
            c.message.len(),
            c.error_message.len(),
            c.user_id.len(),
            c.session_id.len(),
            c.trace_id.len(),
            c.span_id.len(),
            c.metadata.len(),
        ];
        if lens.iter().any(|l| *l != n) {
            return Err(corrupt(first_id, "columns of different lengths"));
        }
        let (mut ids, mut ts) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut id, mut t) = (first_id, 0i64);
        for i in 0..n {
            id = i64::try_from(c.id_steps[i]).ok().and_then(|s| id.checked_add(s)).ok_or_else(|| corrupt(first_id, "id overflow"))?;
            t = t.wrapping_add(c.ts_steps[i]);
            ids.push(id);
            ts.push(t);
        }
        Ok(BlockView { c, ids, ts, model_id })
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn row(&self, i: usize) -> BlockRow<'_, 'a> {
        BlockRow { v: self, i }
    }

    /// Row `i` as an owned log.
    fn stored(&self, i: usize) -> StoredLog {
        let c = &self.c;
        let text = |v: &Option<&str>| v.map(str::to_string);
        let id_text = |v: &Option<Id<'_>>| {
            v.as_ref().map(|id| match id {
                Id::Hex(b) => hex::encode(b),
                Id::Text(t) => t.to_string(),
            })
        };
        StoredLog {
            id: self.ids[i],
            row: LogRow {
                ts: self.ts[i],
                model_id: self.model_id,
                series_id: c.series_id[i],
                flags: c.flags[i],
                level: c.level[i],
                http_status: c.http_status[i],
                latency_ms: c.latency_ms[i].as_ref().map(Real::value),
                ttft_ms: c.ttft_ms[i].as_ref().map(Real::value),
                input_tokens: c.input_tokens[i],
                output_tokens: c.output_tokens[i],
                cached_tokens: c.cached_tokens[i],
                cost_usd: c.cost_usd[i].as_ref().map(Real::value),
                feedback: c.feedback[i],
                error_type: text(&c.error_type[i]),
                message: text(&c.message[i]),
                error_message: text(&c.error_message[i]),
                user_id: text(&c.user_id[i]),
                session_id: text(&c.session_id[i]),
                trace_id: id_text(&c.trace_id[i]),
                span_id: id_text(&c.span_id[i]),
                metadata: text(&c.metadata[i]),
                payload: None,
                search_text: None,
                text_hashes: Vec::new(),
            },
        }
    }
}

/// One row of a `BlockView`, for `LogFilter::matches`.
struct BlockRow<'v, 'a> {
    v: &'v BlockView<'a>,
    i: usize,
}

impl RowView for BlockRow<'_, '_> {
    fn id(&self) -> i64 {
        self.v.ids[self.i]
    }
    fn ts(&self) -> i64 {
        self.v.ts[self.i]
    }
    fn model_id(&self) -> i64 {
        self.v.model_id
    }
    fn series_id(&self) -> i64 {
        self.v.c.series_id[self.i]
    }
    fn flags(&self) -> i64 {
        self.v.c.flags[self.i]
    }
    fn level(&self) -> i64 {
        self.v.c.level[self.i]
    }
    fn http_status(&self) -> Option<i64> {
        self.v.c.http_status[self.i]
    }
    fn latency_ms(&self) -> Option<f64> {
        self.v.c.latency_ms[self.i].as_ref().map(Real::value)
    }
    fn ttft_ms(&self) -> Option<f64> {
        self.v.c.ttft_ms[self.i].as_ref().map(Real::value)
    }
    fn input_tokens(&self) -> Option<i64> {
        self.v.c.input_tokens[self.i]
    }
    fn output_tokens(&self) -> Option<i64> {
        self.v.c.output_tokens[self.i]
    }
    fn cost_usd(&self) -> Option<f64> {
        self.v.c.cost_usd[self.i].as_ref().map(Real::value)
    }
    fn feedback(&self) -> Option<i64> {
        self.v.c.feedback[self.i]
    }
    fn error_type(&self) -> Option<&str> {
        self.v.c.error_type[self.i]
    }
    fn user_id(&self) -> Option<&str> {
        self.v.c.user_id[self.i]
    }
    fn session_id(&self) -> Option<&str> {
        self.v.c.session_id[self.i]
    }
    fn trace_id(&self) -> Value<'_> {
        match &self.v.c.trace_id[self.i] {
            None => Value::Null,
            Some(Id::Hex(b)) => Value::Hex(b),
            Some(Id::Text(t)) => Value::Text(t),
        }
    }
    fn metadata(&self) -> Option<&str> {
        self.v.c.metadata[self.i]
    }
}

/// Every row of a block, ids ascending.
pub fn decode(body: &[u8], first_id: i64, model_id: i64) -> Result<Vec<StoredLog>> {
    let raw = raw(body, first_id)?;
    let v = BlockView::open(&raw, first_id, model_id)?;
    Ok((0..v.len()).map(|i| v.stored(i)).collect())
}

// ----- reading ---------------------------------------------------------------------------------------

/// A block's row in `log_blocks` without its body. `first_id..=last_id` is the id range the
/// block was written with (deleting rows does not change it); blocks' ranges never overlap.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub(crate) struct BlockMeta {
    pub first_id: i64,
    pub last_id: i64,
    pub model_id: i64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub count: i64,
    /// The block has a filter of its words (`textindex`; empty when written while full-text
    /// search was off, whose logs are not found by text later). Blocks written before filters
    /// have none and are found through FTS5 (`fulltext`).
    pub indexed: bool,
}

const META: &str = "first_id, last_id, model_id, min_ts, max_ts, count, text_index IS NOT NULL AS indexed";
/// Block rows listed per query while walking a range.
const PAGE: i64 = 64;

/// A block's stored body; none when a deletion emptied the block since it was listed (its
/// logs are deleted).
async fn fetch_body(conn: &mut SqliteConnection, m: &BlockMeta) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar("SELECT body FROM log_blocks WHERE first_id = ?").bind(m.first_id).fetch_optional(&mut *conn).await?)
}

/// Every log of a block (none if it is gone, see `fetch_body`).
async fn body(conn: &mut SqliteConnection, m: &BlockMeta) -> Result<Vec<StoredLog>> {
    match fetch_body(conn, m).await? {
        Some(b) => decode(&b, m.first_id, m.model_id),
        None => Ok(Vec::new()),
    }
}

/// Answers the conditions of a filter that `LogFilter::matches` leaves to the store: full-text
/// hits (of a block with a filter of its words, by checking its logs' words, `textindex`; of
/// an older block, from both FTS5 index files, for the id ranges asked for) and metadata
/// conditions (each distinct metadata object is evaluated once, by the same SQL as on rows).
pub(crate) struct Matcher {
    text: Vec<TextCond>,
    /// Id ranges whose FTS5 hits are in `TextCond::ids`.
    spans: Vec<(i64, i64)>,
    /// (condition index, key, value, answers by metadata text).
    meta: Vec<(usize, String, Option<String>, HashMap<String, bool>)>,
}

/// A full-text condition of the filter.
struct TextCond {
    /// Its index among the filter's conditions.
    cond: usize,
    /// As an FTS5 query.
    fts: String,
    phrases: Phrases,
    within: TextIn,
    /// The ids that match, of the FTS5 spans loaded and the indexed blocks visited.
    ids: std::collections::BTreeSet<i64>,
}

impl Matcher {
    pub(crate) fn new(f: &LogFilter) -> Matcher {
        let mut m = Matcher { text: Vec::new(), spans: Vec::new(), meta: Vec::new() };
        for (i, c) in f.conds.iter().enumerate() {
            match c {
                Cond::Text(phrases, within) => m.text.push(TextCond {
                    cond: i,
                    fts: super::filter::fts5_query(phrases, *within),
                    phrases: Phrases::new(phrases),
                    within: *within,
                    ids: Default::default(),
                }),
                Cond::Meta(k, v) => m.meta.push((i, k.clone(), v.clone(), HashMap::new())),
                _ => {}
            }
        }
        m
    }

    /// Makes full-text answers available for ids `lo..=hi`.
    async fn load_text(&mut self, conn: &mut SqliteConnection, lo: i64, hi: i64) -> Result<()> {
        if self.text.is_empty() || self.spans.iter().any(|(a, b)| *a <= lo && hi <= *b) {
            return Ok(());
        }
        for TextCond { fts: q, ids, .. } in &mut self.text {
            let found: Vec<i64> = sqlx::query_scalar(
                "SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? AND rowid BETWEEN ? AND ? \
                 UNION ALL SELECT rowid FROM fts.logs_fts WHERE logs_fts MATCH ? AND rowid BETWEEN ? AND ?",
            )
            .bind(q.as_str())
            .bind(lo)
            .bind(hi)
            .bind(q.as_str())
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *conn)
            .await?;
            ids.extend(found);
        }
        self.spans.push((lo, hi));
        Ok(())
    }

    /// Makes metadata answers available for these metadata objects.
    async fn load_meta(&mut self, conn: &mut SqliteConnection, objects: &[&str]) -> Result<()> {
        for (_, key, value, answers) in &mut self.meta {
            let mut new: Vec<&str> = objects.iter().copied().filter(|m| !answers.contains_key(*m)).collect();
            new.sort_unstable();
            new.dedup();
            if new.is_empty() {
                continue;
            }
            let list = serde_json::to_string(&new).map_err(|e| Error::Internal(format!("metadata list: {e}")))?;
            let mut binds = vec![super::filter::Bind::Text(list)];
            let mut p = |b: super::filter::Bind| {
                binds.push(b);
                format!("${}", binds.len())
            };
            let cond = super::filter::sqlite_meta_sql(key, value.as_deref(), "j.value", &mut p);
            let sql = format!("SELECT CAST(j.key AS INTEGER) FROM json_each($1) AS j WHERE {cond}");
            let hits: HashSet<i64> =
                super::filter::bind_all!(sqlx::query_scalar::<_, i64>(&sql), &binds).fetch_all(&mut *conn).await?.into_iter().collect();
            for (i, m) in new.iter().enumerate() {
                answers.insert(m.to_string(), hits.contains(&(i as i64)));
            }
        }
        Ok(())
    }

    fn text_hit(&self, i: usize, id: i64) -> bool {
        self.text.iter().find(|t| t.cond == i).is_some_and(|t| t.ids.contains(&id))
    }

    /// For a block with a filter of its words: which text conditions may match some of its
    /// logs (false: none can).
    async fn text_candidates(&self, conn: &mut SqliteConnection, m: &BlockMeta) -> Result<Vec<bool>> {
        let bytes: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT text_index FROM log_blocks WHERE first_id = ?").bind(m.first_id).fetch_optional(&mut *conn).await?;
        let bytes = bytes.flatten();
        // A filter this version cannot read rules nothing out: the logs are checked.
        let filter = bytes.as_deref().and_then(Filter::open);
        Ok(self.text.iter().map(|t| filter.as_ref().is_none_or(|f| t.phrases.may_match(f))).collect())
    }

    /// Checks the words of the block's logs `rows` against the text conditions that may match
    /// (`candidates`), recording the ids that do.
    async fn check_words(&mut self, conn: &mut SqliteConnection, m: &BlockMeta, v: &BlockView<'_>, rows: &[usize], candidates: &[bool]) -> Result<()> {
        if !candidates.iter().any(|c| *c) || rows.is_empty() {
            return Ok(());
        }
        // Payload words count only for conditions over all of a log's text.
        let payload_searched = self.text.iter().zip(candidates).any(|(t, c)| *c && t.within == TextIn::All);
        let with_payload = payload_searched && rows.iter().any(|&i| v.c.flags[i] & crate::ingest::FLAG_PAYLOAD != 0);
        let payloads = if with_payload { payloads_between(conn, m.first_id - 1, m.last_id).await? } else { HashMap::new() };
        for &i in rows {
            let Some(text) = log_text(v.c.message[i], v.c.error_message[i], payloads.get(&v.ids[i]).map(Vec::as_slice), v.ids[i]) else { continue };
            for (t, _) in self.text.iter_mut().zip(candidates).filter(|(_, c)| **c) {
                // The parts as the index holds them: FTS5 columns, one match per phrase each.
                let hit = match t.within {
                    TextIn::All => t.phrases.matches_within(&[text.message_part(), text.payload_part()]),
                    TextIn::Messages => t.phrases.matches_text(text.message_part()),
                };
                if hit {
                    t.ids.insert(v.ids[i]);
                }
            }
        }
        Ok(())
    }

    fn meta_hit(&self, i: usize, metadata: &str) -> bool {
        self.meta.iter().find(|m| m.0 == i).and_then(|m| m.3.get(metadata).copied()).unwrap_or(false)
    }

    /// A block's logs within the filter's range, evaluated in place: what `want` asks for.
    async fn visit(&mut self, conn: &mut SqliteConnection, f: &LogFilter, m: &BlockMeta, want: Want) -> Result<Found> {
        let mut found = Found::default();
        // No full-text hit possible in the block: nothing in it can match, so only a histogram
        // (which counts every log of the range) has to read it.
        let candidates = if m.indexed && !self.text.is_empty() {
            let c = self.text_candidates(conn, m).await?;
            if !matches!(want, Want::Marks) && c.iter().any(|c| !*c) {
                return Ok(found);
            }
            c
        } else {
            self.load_text(conn, m.first_id, m.last_id).await?;
            if !matches!(want, Want::Marks) && self.text.iter().any(|t| t.ids.range(m.first_id..=m.last_id).next().is_none()) {
                return Ok(found);
            }
            Vec::new()
        };
        let Some(body) = fetch_body(conn, m).await? else { return Ok(found) };
        let raw = raw(&body, m.first_id)?;
        let v = BlockView::open(&raw, m.first_id, m.model_id)?;
        let rows: Vec<usize> = (0..v.len()).filter(|&i| f.in_range(&v.row(i))).collect();
        if rows.is_empty() {
            return Ok(found);
        }
        if m.indexed {
            self.check_words(conn, m, &v, &rows, &candidates).await?;
        }
        if !self.meta.is_empty() {
            let objects: Vec<&str> = rows.iter().filter_map(|&i| v.c.metadata[i]).collect();
            self.load_meta(conn, &objects).await?;
        }
        let this = &*self;
        let hit = |i: usize| f.matches(&v.row(i), |c, id| this.text_hit(c, id), |c, md| this.meta_hit(c, md));
        match want {
            Want::Logs => found.logs = rows.into_iter().filter(|&i| hit(i)).map(|i| v.stored(i)).collect(),
            Want::Marks => found.marks = rows.into_iter().map(|i| (v.ts[i], v.ids[i], v.c.flags[i], hit(i))).collect(),
            Want::Ids => found.ids = rows.into_iter().filter(|&i| hit(i)).map(|i| v.ids[i]).collect(),
        }
        Ok(found)
    }
}

/// What `Matcher::visit` returns of a block's matching logs.
#[derive(Clone, Copy)]
enum Want {
    /// The matching logs.
    Logs,
    /// (ts, id, flags, matches) of every log in the range.
    Marks,
    /// The ids of the matching logs.
    Ids,
}

#[derive(Default)]
struct Found {
    logs: Vec<StoredLog>,
    marks: Vec<(i64, i64, i64, bool)>,
    ids: Vec<i64>,
}

/// The blocks of a filter's model whose time span meets its range, newest (by their newest
/// log) first, listed a page at a time.
struct Scan<'f> {
    f: &'f LogFilter,
    /// (max_ts, first_id) of the last block returned.
    last: (i64, i64),
    page: std::vec::IntoIter<BlockMeta>,
    done: bool,
    matcher: Matcher,
}

impl<'f> Scan<'f> {
    fn new(f: &'f LogFilter) -> Scan<'f> {
        // No block whose span meets the range ends later than this (`MAX_BLOCK_SPAN_MS`).
        let start = f.upper().saturating_add(MAX_BLOCK_SPAN_MS);
        Scan { f, last: (start, i64::MAX), page: Vec::new().into_iter(), done: false, matcher: Matcher::new(f) }
    }

    async fn next(&mut self, conn: &mut SqliteConnection) -> Result<Option<BlockMeta>> {
        loop {
            if let Some(m) = self.page.next() {
                return Ok(Some(m));
            }
            if self.done || self.f.from >= self.f.upper() {
                return Ok(None);
            }
            let metas: Vec<BlockMeta> = sqlx::query_as(&format!(
                "SELECT {META} FROM log_blocks WHERE model_id = ? AND max_ts >= ? AND max_ts <= ? AND min_ts < ? \
                 AND (max_ts < ? OR first_id < ?) ORDER BY max_ts DESC, first_id DESC LIMIT {PAGE}"
            ))
            .bind(self.f.model_id)
            .bind(self.f.from)
            .bind(self.last.0)
            .bind(self.f.upper())
            .bind(self.last.0)
            .bind(self.last.1)
            .fetch_all(&mut *conn)
            .await?;
            self.done = (metas.len() as i64) < PAGE;
            if let Some(m) = metas.last() {
                self.last = (m.max_ts, m.first_id);
            }
            // One FTS5 query for the page's ids instead of one per block (blocks with a filter of
            // their words are checked by their words instead).
            let older = || metas.iter().filter(|m| !m.indexed);
            if let (Some(lo), Some(hi)) = (older().map(|m| m.first_id).min(), older().map(|m| m.last_id).max()) {
                self.matcher.load_text(conn, lo, hi).await?;
            }
            self.page = metas.into_iter();
        }
    }

    async fn visit(&mut self, conn: &mut SqliteConnection, m: &BlockMeta, want: Want) -> Result<Found> {
        self.matcher.visit(conn, self.f, m, want).await
    }
}

fn newest_first(a: &StoredLog, b: &StoredLog) -> std::cmp::Ordering {
    (b.row.ts, b.id).cmp(&(a.row.ts, a.id))
}

/// The newest `limit` matching logs (by time, then id), among `rows` (from `logs`) and blocks.
pub(crate) async fn search(conn: &mut SqliteConnection, f: &LogFilter, limit: i64, mut rows: Vec<StoredLog>) -> Result<Vec<StoredLog>> {
    let limit = limit.max(0) as usize;
    let mut scan = Scan::new(f);
    rows.sort_by(newest_first);
    rows.truncate(limit);
    while let Some(m) = scan.next(conn).await? {
        // Every later block's logs are older than the page's oldest.
        if rows.len() >= limit && rows.last().is_none_or(|w| m.max_ts < w.row.ts) {
            break;
        }
        rows.extend(scan.visit(conn, &m, Want::Logs).await?.logs);
        rows.sort_by(newest_first);
        rows.truncate(limit);
    }
    Ok(rows)
}

/// (ts, id, flags, matches) of logs in blocks within the range: at least the newest `cap` of
/// them, newest blocks first (see `Store::log_histogram`).
pub(crate) async fn histogram_marks(conn: &mut SqliteConnection, f: &LogFilter, cap: i64) -> Result<Vec<(i64, i64, i64, bool)>> {
    let cap = cap.max(0) as usize;
    let mut seen = Vec::new();
    let mut scan = Scan::new(f);
    // Once `cap` logs are read, a block whose newest log is older than the cap-th newest read
    // cannot change the result, and neither can any after it.
    let mut threshold: Option<i64> = None;
    while let Some(m) = scan.next(conn).await? {
        if threshold.is_some_and(|t| m.max_ts < t) {
            break;
        }
        seen.extend(scan.visit(conn, &m, Want::Marks).await?.marks);
        if threshold.is_none() && seen.len() >= cap && cap > 0 {
            let mut ts: Vec<i64> = seen.iter().map(|s| s.0).collect();
            let (_, nth, _) = ts.select_nth_unstable_by(cap - 1, |a, b| b.cmp(a));
            threshold = Some(*nth);
        }
    }
    Ok(seen)
}

/// Histogram bars of the newest `cap` of `seen` (by time, then id), as the rows' SQL counts
/// them, added to `bars` (bars of other logs, by bar).
pub(crate) fn histogram_bars(f: &LogFilter, step: i64, cap: i64, mut seen: Vec<(i64, i64, i64, bool)>, bars: Vec<super::HistogramRow>) -> Vec<super::HistogramRow> {
    seen.sort_unstable_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    seen.truncate(cap.max(0) as usize);
    let step = step.max(1);
    let mut out: std::collections::BTreeMap<i64, super::HistogramRow> = bars.into_iter().map(|b| (b.bar, b)).collect();
    for (ts, _, flags, hit) in seen {
        let bar = (ts - f.from) / step;
        let b = out.entry(bar).or_insert(super::HistogramRow { bar, n: 0, errors: 0, scanned: 0, oldest: ts });
        b.scanned += 1;
        b.oldest = b.oldest.min(ts);
        if hit {
            b.n += 1;
            b.errors += flags & 1;
        }
    }
    out.into_values().collect()
}

/// Matching logs stored in blocks: their number.
pub(crate) async fn count(conn: &mut SqliteConnection, f: &LogFilter) -> Result<i64> {
    let mut scan = Scan::new(f);
    let whole = f.series.is_none() && f.conds.is_empty() && f.before.is_none();
    let mut n = 0;
    while let Some(m) = scan.next(conn).await? {
        // A block wholly inside the range, with nothing to filter: its count will do.
        if whole && m.min_ts >= f.from && m.max_ts < f.upper() {
            n += m.count;
            continue;
        }
        n += scan.visit(conn, &m, Want::Ids).await?.ids.len() as i64;
    }
    Ok(n)
}

/// Blocks with logs above id `after`, lowest first (`model`: of that model only), a page at a
/// time from `from_first` on.
async fn blocks_above(conn: &mut SqliteConnection, after: i64, model: Option<i64>, descending: bool, page_after: Option<i64>) -> Result<Vec<BlockMeta>> {
    // Ranges never overlap: the blocks above `after` are the one holding it and those after.
    let order = if descending { "DESC" } else { "ASC" };
    let cursor = match (page_after, descending) {
        (Some(_), true) => "AND first_id < ?3",
        (Some(_), false) => "AND first_id > ?3",
        (None, _) => "AND ?3 IS NULL",
    };
    // `+model_id`: the primary-key range holds only the newest blocks; the model's index would
    // read all of its blocks.
    let model_cond = if model.is_some() { "AND +model_id = ?2" } else { "AND ?2 IS NULL" };
    Ok(sqlx::query_as(&format!(
        "SELECT {META} FROM log_blocks WHERE first_id >= COALESCE((SELECT MAX(first_id) FROM log_blocks WHERE first_id <= ?1), 0) \
         AND last_id > ?1 {model_cond} {cursor} ORDER BY first_id {order} LIMIT {PAGE}"
    ))
    .bind(after)
    .bind(model)
    .bind(page_after)
    .fetch_all(&mut *conn)
    .await?)
}

/// The newest `limit` logs matching `f` with ids above `after`, newest first, among `rows`
/// (from `logs`) and blocks.
pub(crate) async fn tail(conn: &mut SqliteConnection, f: &LogFilter, after: i64, limit: i64, mut rows: Vec<StoredLog>) -> Result<Vec<StoredLog>> {
    let limit = limit.max(0) as usize;
    let mut matcher = Matcher::new(f);
    let mut page_after = None;
    'pages: loop {
        let metas = blocks_above(conn, after, Some(f.model_id), true, page_after).await?;
        for m in &metas {
            // Ids descend from block to block: once enough are found, older blocks are not needed.
            if rows.iter().filter(|r| r.id > m.last_id).count() >= limit {
                break 'pages;
            }
            rows.extend(matcher.visit(conn, f, m, Want::Logs).await?.logs.into_iter().filter(|r| r.id > after));
        }
        match metas.last() {
            Some(m) if metas.len() as i64 == PAGE => page_after = Some(m.first_id),
            _ => break,
        }
    }
    rows.sort_by(|a, b| b.id.cmp(&a.id));
    rows.truncate(limit);
    Ok(rows)
}

/// Logs in blocks with ids above `after`, lowest first, at most `limit`.
pub(crate) async fn after(conn: &mut SqliteConnection, after: i64, limit: i64) -> Result<Vec<StoredLog>> {
    let limit = limit.max(0) as usize;
    let mut out = Vec::new();
    let mut page_after = None;
    'pages: loop {
        let metas = blocks_above(conn, after, None, false, page_after).await?;
        for m in &metas {
            if out.len() >= limit {
                break 'pages;
            }
            out.extend(body(conn, m).await?.into_iter().filter(|r| r.id > after));
        }
        match metas.last() {
            Some(m) if metas.len() as i64 == PAGE => page_after = Some(m.first_id),
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// The log with this id, if a block holds it.
pub(crate) async fn by_id(conn: &mut SqliteConnection, id: i64) -> Result<Option<StoredLog>> {
    let m: Option<BlockMeta> = sqlx::query_as(&format!("SELECT {META} FROM log_blocks WHERE first_id <= ? ORDER BY first_id DESC LIMIT 1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match m {
        Some(m) if m.last_id >= id => Ok(body(conn, &m).await?.into_iter().find(|r| r.id == id)),
        _ => Ok(None),
    }
}

/// How many logs of a model blocks hold.
pub(crate) async fn count_model(conn: &mut SqliteConnection, model_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COALESCE(SUM(count), 0) FROM log_blocks WHERE model_id = ?").bind(model_id).fetch_one(&mut *conn).await?)
}

// ----- writing and deleting ------------------------------------------------------------------------

/// Cuts a commit's logs (in id order, sorted by model and then time) into the runs that become
/// blocks: one model each, at most `MAX_BLOCK_LOGS` logs, `MAX_BLOCK_TEXT` of text and
/// `MAX_BLOCK_SPAN_MS` of time.
pub(crate) fn block_runs<'r, 'a>(rows: &'r [(i64, &'a LogRow)]) -> Vec<&'r [(i64, &'a LogRow)]> {
    let text = |r: &LogRow| {
        [&r.error_type, &r.message, &r.error_message, &r.user_id, &r.session_id, &r.trace_id, &r.span_id, &r.metadata]
            .iter()
            .map(|v| v.as_ref().map_or(0, String::len))
            .sum::<usize>()
    };
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, r)) in rows.iter().enumerate() {
        let first = rows[start].1;
        let (min_ts, max_ts) = (first.ts.min(r.ts), first.ts.max(r.ts));
        if i > start
            && (r.model_id != first.model_id
                || i - start >= MAX_BLOCK_LOGS
                || bytes + text(r) > MAX_BLOCK_TEXT
                || max_ts.saturating_sub(min_ts) > MAX_BLOCK_SPAN_MS)
        {
            runs.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += text(r);
    }
    if start < rows.len() {
        runs.push(&rows[start..]);
    }
    runs
}

/// Stores logs as blocks (`rows` in id order, sorted by model and then time; see `block_runs`).
#[cfg(test)]
pub(crate) async fn insert(conn: &mut SqliteConnection, rows: &[(i64, &LogRow)]) -> Result<()> {
    for run in block_runs(rows) {
        insert_run(conn, run).await?;
    }
    Ok(())
}

/// Stores one run of `block_runs` as a block, with the filter of its words.
#[cfg(test)]
pub(crate) async fn insert_run(conn: &mut SqliteConnection, run: &[(i64, &LogRow)]) -> Result<()> {
    insert_blocks(conn, &[(run[0].0, run[run.len() - 1].0, &Encoded::of(run[0].0, run)?)]).await
}

/// A run of logs encoded as a block body, with the facts its row carries and the filter of its
/// words. Encoding needs only the logs' order, not their ids (the body keeps steps between
/// ids), so the writer encodes a commit's blocks before the transaction that hands out the ids
/// (`Store::prepare_batch`).
#[derive(Debug)]
pub(crate) struct Encoded {
    model_id: i64,
    min_ts: i64,
    max_ts: i64,
    count: i64,
    body: Vec<u8>,
    text_index: Option<Vec<u8>>,
}

impl Encoded {
    /// `rows` in id order, in the block whose range starts at `first_id`. The ids may be
    /// any with the same steps (from `first_id` and between each other) as the stored ones.
    pub(crate) fn of(first_id: i64, rows: &[(i64, &LogRow)]) -> Result<Encoded> {
        let written: usize = rows.iter().map(|(_, r)| r.text_hashes.len().max(r.search_text.as_ref().map_or(0, |t| t.all().len() / 2))).sum();
        let mut filter = FilterBuilder::new(written);
        for (_, r) in rows {
            if !r.text_hashes.is_empty() {
                r.text_hashes.iter().for_each(|h| filter.insert(*h));
            } else if let Some(t) = &r.search_text {
                // Rows not built by ingest (tests, tools) come without the hashes.
                super::textindex::for_each_word(t.all(), |w| filter.insert(super::textindex::word_hash(w)));
            }
        }
        Ok(Encoded {
            model_id: rows[0].1.model_id,
            min_ts: rows.iter().map(|r| r.1.ts).min().unwrap_or(0),
            max_ts: rows.iter().map(|r| r.1.ts).max().unwrap_or(0),
            count: rows.len() as i64,
            body: encode(first_id, rows)?,
            text_index: Some(filter.finish()),
        })
    }
}

/// A stored log's text as ingest indexed it (`ingest::search_text` of its message, error
/// message and payload).
fn log_text(message: Option<&str>, error_message: Option<&str>, payload: Option<&[u8]>, id: i64) -> Option<SearchText> {
    let p = payload.and_then(|bytes| match Payload::decode(bytes, false) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(log = id, error = %e, "payload unreadable; its words are not searched");
            None
        }
    });
    let (req, resp) = p.as_ref().map(|p| (Some(p.request.as_str()), Some(p.response.as_str()))).unwrap_or((None, None));
    SearchText::new([message, error_message, req, resp])
}

/// The stored payloads (encoded, `ingest::payload`) of the logs with `after < id <= last`,
/// from payload blocks and from rows of the older one-per-log table. A payload block that
/// cannot be read is skipped with a warning (its logs read as without payload).
pub(crate) async fn payloads_between(conn: &mut SqliteConnection, after: i64, last: i64) -> Result<HashMap<i64, Vec<u8>>> {
    let mut out = HashMap::new();
    // Blocks are keyed by their first id and do not overlap: start at the block holding
    // `after + 1`, not at the beginning of the table.
    let blocks: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT first_id, body FROM payload_blocks \
         WHERE first_id >= COALESCE((SELECT MAX(first_id) FROM payload_blocks WHERE first_id <= ?), 0) AND first_id <= ? AND last_id > ?",
    )
    .bind(after + 1)
    .bind(last)
    .bind(after)
    .fetch_all(&mut *conn)
    .await?;
    for (first_id, body) in blocks {
        match payload::decode_block(&body, first_id) {
            Ok(entries) => out.extend(entries.into_iter().filter(|(id, _)| *id > after && *id <= last)),
            Err(e) => tracing::warn!(block = first_id, error = %e, "payload block unreadable"),
        }
    }
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT log_id, body FROM payloads WHERE log_id > ? AND log_id <= ?").bind(after).bind(last).fetch_all(&mut *conn).await?;
    out.extend(rows);
    Ok(out)
}

/// Replaces the block that starts at `first_id` with `block`, holding the logs
/// `first_id..=last_id` (new blocks go in with `insert_blocks`).
pub(crate) async fn rewrite_block(conn: &mut SqliteConnection, first_id: i64, last_id: i64, block: &Encoded) -> Result<()> {
    sqlx::query(
        "UPDATE log_blocks SET last_id = ?2, model_id = ?3, min_ts = ?4, max_ts = ?5, count = ?6, body = ?7, text_index = ?8 WHERE first_id = ?1",
    )
    .bind(first_id)
    .bind(last_id)
    .bind(block.model_id)
    .bind(block.min_ts)
    .bind(block.max_ts)
    .bind(block.count)
    .bind(block.body.as_slice())
    .bind(block.text_index.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts new blocks (`(first_id, last_id, block)`), many per statement: one round trip to
/// the connection's thread for a commit's blocks instead of one each.
pub(crate) async fn insert_blocks(conn: &mut SqliteConnection, blocks: &[(i64, i64, &Encoded)]) -> Result<()> {
    for chunk in blocks.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO log_blocks (first_id, last_id, model_id, min_ts, max_ts, count, body, text_index) VALUES {}",
            super::sqlite::values_sql(chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for (first_id, last_id, block) in chunk {
            q = q
                .bind(*first_id)
                .bind(*last_id)
                .bind(block.model_id)
                .bind(block.min_ts)
                .bind(block.max_ts)
                .bind(block.count)
                .bind(block.body.as_slice())
                .bind(block.text_index.as_deref());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Blocks per multi-row INSERT (8 parameters each, far below SQLite's limit).
const INSERT_CHUNK: usize = 64;

/// Deletes the logs in blocks that match `f`, in the caller's transaction: their ids go into
/// the `doomed_logs` temp table (payloads, full-text entries and the id floor follow from
/// there, as for rows in `logs`) and each block holding one is rewritten without them, or
/// dropped when nothing is left. Returns how many were deleted.
pub(crate) async fn delete(conn: &mut SqliteConnection, f: &LogFilter) -> Result<u64> {
    let mut scan = Scan::new(f);
    let mut affected: Vec<(BlockMeta, Vec<i64>)> = Vec::new();
    while let Some(m) = scan.next(conn).await? {
        let doomed = scan.visit(conn, &m, Want::Ids).await?.ids;
        if !doomed.is_empty() {
            affected.push((m, doomed));
        }
    }
    let mut n = 0u64;
    for (m, doomed) in &affected {
        let gone: HashSet<i64> = doomed.iter().copied().collect();
        let kept: Vec<StoredLog> = body(conn, m).await?.into_iter().filter(|r| !gone.contains(&r.id)).collect();
        for chunk in doomed.chunks(500) {
            let sql = format!("INSERT OR IGNORE INTO doomed_logs (id) VALUES {}", vec!["(?)"; chunk.len()].join(","));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *conn).await?;
        }
        n += doomed.len() as u64;
        if kept.is_empty() {
            sqlx::query("DELETE FROM log_blocks WHERE first_id = ?").bind(m.first_id).execute(&mut *conn).await?;
        } else {
            let rows: Vec<(i64, &LogRow)> = kept.iter().map(|r| (r.id, &r.row)).collect();
            // The filter is rebuilt from the logs kept, so that no word of a deleted log is
            // left in it.
            let text_index = if m.indexed {
                let payloads = payloads_between(conn, m.first_id - 1, m.last_id).await?;
                let words: Vec<Vec<u64>> = kept
                    .iter()
                    .map(|r| {
                        log_text(r.row.message.as_deref(), r.row.error_message.as_deref(), payloads.get(&r.id).map(Vec::as_slice), r.id)
                            .map(|t| super::textindex::hashes(t.all()))
                            .unwrap_or_default()
                    })
                    .collect();
                let mut filter = FilterBuilder::new(words.iter().map(Vec::len).sum());
                words.iter().flatten().for_each(|h| filter.insert(*h));
                Some(filter.finish())
            } else {
                None
            };
            // The block keeps its id range: ids are steps from its first id, deleted or not.
            let block = Encoded { text_index, ..Encoded::of(m.first_id, &rows)? };
            rewrite_block(conn, m.first_id, m.last_id, &block).await?;
        }
    }
    Ok(n)
}

/// (id, message, error message) of the logs with `after < id <= through` in blocks without a
/// filter of their words (written before `textindex`), lowest first, at most `limit`: what
/// the FTS5 index is rebuilt from.
pub(crate) async fn texts(conn: &mut SqliteConnection, after_id: i64, through: i64, limit: i64) -> Result<Vec<(i64, Option<String>, Option<String>)>> {
    let limit = limit.max(0) as usize;
    let mut out = Vec::new();
    // Ranges never overlap: the blocks above `after_id` are the one holding it and those
    // after. The index `log_blocks_without_words` holds just the blocks without filters.
    let mut from: i64 = sqlx::query_scalar("SELECT COALESCE((SELECT MAX(first_id) FROM log_blocks WHERE first_id <= ?), 0)")
        .bind(after_id)
        .fetch_one(&mut *conn)
        .await?;
    while out.len() < limit {
        let metas: Vec<BlockMeta> = sqlx::query_as(&format!(
            "SELECT {META} FROM log_blocks WHERE text_index IS NULL AND first_id >= ? AND first_id <= ? ORDER BY first_id LIMIT {PAGE}"
        ))
        .bind(from)
        .bind(through)
        .fetch_all(&mut *conn)
        .await?;
        for m in &metas {
            if out.len() >= limit {
                break;
            }
            if m.last_id > after_id {
                out.extend(body(conn, m).await?.into_iter().filter(|r| r.id > after_id && r.id <= through).map(|r| (r.id, r.row.message, r.row.error_message)));
            }
        }
        match metas.last() {
            Some(m) if metas.len() as i64 == PAGE => from = m.first_id + 1,
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::store::filter::{Bind, Column, Numeric};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Store, WriteBatch};

    fn row(ts: i64) -> LogRow {
        LogRow { ts, model_id: 1, series_id: 1, level: 2, ..Default::default() }
    }

    #[test]
    fn blocks_give_back_exactly_what_was_stored() {
        let floats = [0.1, 550.9, 0.0002082, -12.5, 1e300, 5e-324, f64::MAX, f64::MIN_POSITIVE, -0.0, 0.0, 1.0 / 3.0, 123456789.123];
        let mut rows = Vec::new();
        for (i, f) in floats.iter().enumerate() {
            let mut r = row(if i % 2 == 0 { 1_796_169_724_211 + i as i64 } else { -5 - i as i64 });
            r.latency_ms = Some(*f);
            r.ttft_ms = Some(-*f);
            r.cost_usd = Some(*f / 7.0);
            rows.push(r);
        }
        let extreme = LogRow {
            ts: i64::MIN,
            model_id: 1,
            series_id: i64::MAX,
            flags: -1,
            level: i64::MIN,
            http_status: Some(i64::MAX),
            input_tokens: Some(i64::MIN),
            output_tokens: Some(0),
            cached_tokens: None,
            feedback: Some(-1),
            error_type: Some(String::new()),
            message: Some("Zürich 東京 \u{0} \"quoted\"".into()),
            error_message: None,
            user_id: Some("u".repeat(5000)),
            session_id: Some(String::new()),
            trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
            span_id: Some("00F067AA0BA902B7".into()),
            metadata: Some(r#"{"team":"a","n":1.5}"#.into()),
            ..Default::default()
        };
        rows.push(extreme);
        rows.push(LogRow { ts: i64::MAX, trace_id: Some("abc".into()), span_id: Some(String::new()), ..row(0) });
        rows.push(LogRow { trace_id: Some("tr-1".into()), span_id: Some("00f067aa0ba902b7".into()), ..row(7) });
        // Ids with gaps, as after a deletion.
        let ids: Vec<i64> = (0..rows.len() as i64).map(|i| 1000 + i * i).collect();
        let pairs: Vec<(i64, &LogRow)> = ids.iter().copied().zip(rows.iter()).collect();
        let body = encode(1000, &pairs).unwrap();
        let back = decode(&body, 1000, 1).unwrap();
        assert_eq!(back.len(), rows.len());
        for ((id, want), got) in pairs.iter().zip(&back) {
            assert_eq!(got.id, *id);
            assert_eq!(&got.row, *want);
            // Bit-exact floats: -0.0 stays negative.
            for (a, b) in [(got.row.latency_ms, want.latency_ms), (got.row.ttft_ms, want.ttft_ms), (got.row.cost_usd, want.cost_usd)] {
                assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits));
            }
        }
        assert!(encode(1001, &pairs).is_err(), "ids below the block's first id");
        assert!(decode(&body[..body.len() - 3], 1000, 1).is_err(), "a cut body is an error, not a panic");
        assert!(decode(&[9, 1, 2], 1000, 1).is_err());
        assert!(matches!(Real::of(550.9), Real::Scaled(1, 5509)));
        assert!(matches!(Real::of(0.0002082), Real::Scaled(7, 2082)));
        assert!(matches!(Real::of(-0.0), Real::Bits(_)));
    }

    /// Rows shaped like the load generator's: what a block costs per log.
    #[test]
    fn a_block_of_realistic_logs_costs_a_fraction_of_a_row() {
        let rows = crate::testing::loadgen_shaped_logs(1000, 7, 0.02);
        let pairs: Vec<(i64, &LogRow)> = rows.iter().enumerate().map(|(i, r)| (i as i64 + 1, r)).collect();
        let bytes = encode(1, &pairs).unwrap().len();
        // The random ids alone are 16 + 8 + 6 bytes a log; a row in `logs` took 114.
        assert!(bytes / rows.len() < 60, "{bytes} bytes for {} logs", rows.len());
    }

    // With accents composed and not, and a non-Latin letter with a diacritic, which FTS5 (on
    // rows) and the filters of words (on blocks) must cut into the same words.
    const WORDS: [&str; 9] = ["timeout", "rate", "limit", "hello", "world", "Naïve", "nai\u{308}ve", "йод", "иод"];
    const METADATA: [&str; 9] = [
        r#"{"team":"a"}"#,
        r#"{"team":"b","tier":2}"#,
        r#"{"tier":2.5}"#,
        r#"{"flag":true,"team":"a"}"#,
        r#"{"team":null}"#,
        r#"{"nested":{"a":1}}"#,
        r#"{"n":10}"#,
        r#"{"n":"10"}"#,
        r#"{"flag":false}"#,
    ];
    const TRACES: [&str; 4] = ["0af7651916cd43dd8448eb211c80319c", "0AF7651916CD43DD8448EB211C80319C", "tr-1", ""];

    fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> Option<T> {
        if rng.gen_bool(0.3) { None } else { Some(items[rng.gen_range(0..items.len())].clone()) }
    }

    fn random_row(rng: &mut StdRng) -> LogRow {
        let words = |rng: &mut StdRng| -> Option<String> {
            if rng.gen_bool(0.3) {
                return None;
            }
            let n = rng.gen_range(1..4);
            Some((0..n).map(|_| WORDS[rng.gen_range(0..WORDS.len())]).collect::<Vec<_>>().join(" "))
        };
        let real = |rng: &mut StdRng, scale: f64| if rng.gen_bool(0.2) { None } else { Some((rng.gen_range(0.0..scale) * 10.0).round() / 10.0) };
        let message = words(rng);
        let error_message = words(rng);
        // Some with a payload: its words are found only by searches of all text (`TextIn`).
        let (request, response) = if rng.gen_bool(0.4) { (words(rng), words(rng)) } else { (None, None) };
        let payload = Payload::new(request.clone(), response.clone(), 32 * 1024);
        let flags = (rng.gen_range(0..32) & !crate::ingest::FLAG_PAYLOAD) | if payload.is_some() { crate::ingest::FLAG_PAYLOAD } else { 0 };
        LogRow {
            ts: rng.gen_range(0..2_000),
            model_id: rng.gen_range(1..4),
            series_id: rng.gen_range(1..5),
            flags,
            level: rng.gen_range(0..5),
            http_status: pick(rng, &[200, 404, 429, 500]),
            latency_ms: real(rng, 3000.0),
            ttft_ms: real(rng, 300.0),
            input_tokens: pick(rng, &[0, 5, 100, 900]),
            output_tokens: pick(rng, &[1, 50, 700]),
            cached_tokens: pick(rng, &[0, 10]),
            cost_usd: if rng.gen_bool(0.2) { None } else { Some(rng.gen_range(0..100_000) as f64 / 1e7) },
            feedback: pick(rng, &[-1, 1]),
            error_type: pick(rng, &["timeout".to_string(), "rate_limit".to_string()]),
            search_text: SearchText::new([message.as_deref(), error_message.as_deref(), request.as_deref(), response.as_deref()]),
            message,
            error_message,
            user_id: pick(rng, &["u1".to_string(), "u2".to_string(), "5".to_string()]),
            session_id: pick(rng, &["s1".to_string(), "s2".to_string()]),
            trace_id: pick(rng, &TRACES).map(str::to_string),
            span_id: pick(rng, &["00f067aa0ba902b7".to_string(), "span".to_string()]),
            metadata: pick(rng, &METADATA).map(str::to_string),
            payload: payload.map(|p| p.encode().unwrap()),
            // Taken by the writer from `search_text` (ingest takes them in the HTTP worker).
            text_hashes: Vec::new(),
        }
    }

    fn random_filter(rng: &mut StdRng) -> LogFilter {
        let from = rng.gen_range(0..1500);
        let to = from + rng.gen_range(1..1500);
        let before = if rng.gen_bool(0.3) { Some((rng.gen_range(0..2000), rng.gen_range(0..3000))) } else { None };
        let series = if rng.gen_bool(0.2) { Some((1..5).filter(|_| rng.gen_bool(0.5)).collect()) } else { None };
        let n = rng.gen_range(0..3);
        let conds = (0..n)
            .map(|_| match rng.gen_range(0..13) {
                0 => Cond::Flag(1 << rng.gen_range(0..5), rng.gen_bool(0.5)),
                1 => Cond::Eq(Column::Level, Bind::Int(rng.gen_range(0..5))),
                2 => Cond::Between(Numeric::HttpStatus, Some(400.0), Some(499.0)),
                3 => Cond::Eq(Column::Feedback, Bind::Int(if rng.gen_bool(0.5) { 1 } else { -1 })),
                4 => Cond::Eq(Column::ErrorType, Bind::Text("timeout".into())),
                5 => Cond::Eq(Column::UserId, Bind::Text(["u1", "5", "x"][rng.gen_range(0..3)].into())),
                6 => Cond::Eq(Column::TraceId, Bind::Text(TRACES[rng.gen_range(0..TRACES.len())].into())),
                7 => Cond::IsNull([Column::UserId, Column::SessionId, Column::ErrorType, Column::Feedback][rng.gen_range(0..4)]),
                8 => {
                    let n = [Numeric::LatencyMs, Numeric::TtftMs, Numeric::Tokens, Numeric::CostUsd][rng.gen_range(0..4)];
                    let scale = if n == Numeric::CostUsd { 1e-5 } else { 1.0 };
                    let lo = if rng.gen_bool(0.7) { Some(rng.gen_range(0.0..500.0) * scale) } else { None };
                    let hi = if rng.gen_bool(0.7) { Some(rng.gen_range(0.0..2000.0) * scale) } else { None };
                    Cond::Between(n, lo, hi)
                }
                9 | 10 => {
                    let key = ["team", "tier", "flag", "n", "nested"][rng.gen_range(0..5)];
                    let value = ["a", "b", "2", "2.5", "true", "false", "10", r#"{"a":1}"#][rng.gen_range(0..8)];
                    Cond::Meta(key.into(), if rng.gen_bool(0.8) { Some(value.into()) } else { None })
                }
                _ => {
                    // Words, and now and then a phrase of two.
                    let n = rng.gen_range(1..3);
                    Cond::Text(
                        (0..n)
                            .map(|_| {
                                let len = if rng.gen_bool(0.3) { 2 } else { 1 };
                                (0..len).map(|_| WORDS[rng.gen_range(0..WORDS.len())].to_string()).collect()
                            })
                            .collect(),
                        if rng.gen_bool(0.5) { TextIn::All } else { TextIn::Messages },
                    )
                }
            })
            .collect();
        LogFilter { model_id: rng.gen_range(1..4), from, to, before, series, conds }
    }

    async fn open(dir: &std::path::Path, name: &str) -> SqliteStore {
        SqliteStore::open(&format!("sqlite://{}", dir.join(name).display())).await.unwrap()
    }

    /// The same logs, once in blocks (stored by the ingest writer) and once as rows in `logs`
    /// (as before blocks): every read gives the same answer from both, and so does every
    /// deletion. This is what keeps `LogFilter::matches` equal to the SQL of `build`.
    #[tokio::test]
    async fn logs_in_blocks_read_and_delete_exactly_like_rows() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = open(dir.path(), "blocks.db").await;
        let rows = open(dir.path(), "rows.db").await;
        let mut rng = StdRng::seed_from_u64(11);
        // Commits of various sizes, so that each model has many blocks with overlapping times.
        let mut left = 1500;
        while left > 0 {
            let n = if rng.gen_bool(0.3) { rng.gen_range(1..20) } else { rng.gen_range(60..200) }.min(left);
            left -= n;
            let logs = (0..n).map(|_| random_row(&mut rng)).collect();
            let mut batch = WriteBatch { logs, ..Default::default() };
            // Half encoded ahead, as the writer does (`Store::prepare_batch`), half in the commit.
            if rng.gen_bool(0.5) {
                blocks.prepare_batch(&mut batch);
            }
            blocks.write_batch(&batch).await.unwrap();
        }
        if let Some(b) = blocks.search_barrier() {
            b.await;
        }
        let all = blocks.logs_after(0, 10_000).await.unwrap();
        assert_eq!(all.len(), 1500);
        // Most in blocks; a model with few logs in a commit got rows (`BLOCK_MIN_LOGS`).
        let (in_rows, blocks_n): (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM logs), (SELECT COUNT(*) FROM log_blocks)").fetch_one(&blocks.pool).await.unwrap();
        assert!(in_rows > 0 && in_rows < 500 && blocks_n > 20, "{in_rows} rows, {blocks_n} blocks");
        {
            let mut conn = rows.pool.acquire().await.unwrap();
            let pairs: Vec<(i64, &LogRow)> = all.iter().map(|l| (l.id, &l.row)).collect();
            crate::store::sqlite::insert_rows(&mut conn, &pairs).await.unwrap();
            for l in &all {
                let payload = blocks.payload(l.id).await.unwrap().map(|b| Payload::decode(&b, false).unwrap());
                if let Some(bytes) = blocks.payload(l.id).await.unwrap() {
                    sqlx::query("INSERT INTO payloads (log_id, body) VALUES (?, ?)").bind(l.id).bind(bytes).execute(&mut *conn).await.unwrap();
                }
                let (req, resp) = payload.as_ref().map(|p| (Some(p.request.as_str()), Some(p.response.as_str()))).unwrap_or((None, None));
                let text = SearchText::new([l.row.message.as_deref(), l.row.error_message.as_deref(), req, resp]);
                if let Some(t) = text {
                    sqlx::query("INSERT INTO logs_fts (rowid, body, payload) VALUES (?, ?, ?)")
                        .bind(l.id)
                        .bind(t.message_part())
                        .bind(t.payload_part())
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                }
            }
        }
        assert_eq!(rows.logs_after(0, 10_000).await.unwrap(), all);
        for l in all.iter().step_by(37) {
            assert_eq!(blocks.log_by_id(l.id).await.unwrap().as_ref(), Some(l));
        }
        assert_eq!(blocks.log_by_id(all.last().unwrap().id + 1).await.unwrap(), None);
        for model in 1..4 {
            assert_eq!(blocks.count_logs(model).await.unwrap(), rows.count_logs(model).await.unwrap());
        }
        assert_eq!(blocks.max_log_id().await.unwrap(), rows.max_log_id().await.unwrap());
        for k in [0, 1, 700, 1499] {
            assert_eq!(blocks.logs_after(all[k].id, 300).await.unwrap(), rows.logs_after(all[k].id, 300).await.unwrap(), "after {k}");
        }

        let mut matched = 0;
        for round in 0..300 {
            let f = random_filter(&mut rng);
            let want = rows.search_logs(&f, 5000).await.unwrap();
            matched += want.len();
            assert_eq!(blocks.search_logs(&f, 5000).await.unwrap(), want, "round {round}: {f:?}");
            let limit = rng.gen_range(1..40);
            assert_eq!(blocks.search_logs(&f, limit).await.unwrap(), rows.search_logs(&f, limit).await.unwrap(), "round {round} limit {limit}");
            assert_eq!(blocks.count_matching(&f).await.unwrap(), want.len() as i64, "round {round}");
            let after = all[rng.gen_range(0..all.len())].id;
            let tail = LogFilter { from: 0, to: i64::MAX, before: None, ..f.clone() };
            assert_eq!(blocks.tail_logs(&tail, after, limit).await.unwrap(), rows.tail_logs(&tail, after, limit).await.unwrap(), "round {round} tail");
            // The histogram as the rows' SQL computed it before blocks (newest `cap` logs of
            // the range by time, then id).
            let (step, cap) = (rng.gen_range(1..300), rng.gen_range(1..1500));
            let (range, filters, binds) = f.where_parts(crate::store::filter::Dialect::Sqlite);
            let sql = format!(
                "SELECT (ts - {from}) / {step} AS bar, CAST(SUM(hit) AS BIGINT) AS n, CAST(SUM(hit * (flags & 1)) AS BIGINT) AS errors, \
                 COUNT(*) AS scanned, MIN(ts) AS oldest FROM \
                 (SELECT ts, flags, CASE WHEN {filters} THEN 1 ELSE 0 END AS hit FROM logs WHERE {range} ORDER BY ts DESC, id DESC LIMIT {cap}) m \
                 GROUP BY bar ORDER BY bar",
                from = f.from
            );
            let expected = crate::store::filter::bind_all!(sqlx::query_as::<_, crate::store::HistogramRow>(&sql), &binds).fetch_all(&rows.pool).await.unwrap();
            assert_eq!(blocks.log_histogram(&f, step, cap).await.unwrap(), expected, "round {round} histogram");
            assert_eq!(rows.log_histogram(&f, step, cap).await.unwrap(), expected, "round {round} histogram of rows");
        }
        assert!(matched > 3000, "the filters must match something: {matched}");

        for round in 0..20 {
            let f = random_filter(&mut rng);
            assert_eq!(blocks.delete_logs(&f).await.unwrap(), rows.delete_logs(&f).await.unwrap(), "delete {round}: {f:?}");
            assert_eq!(blocks.logs_after(0, 10_000).await.unwrap(), rows.logs_after(0, 10_000).await.unwrap(), "after delete {round}");
        }
        let left = blocks.logs_after(0, 10_000).await.unwrap();
        assert!(left.len() < 1500 && !left.is_empty(), "{}", left.len());
        // Whole models deleted: their blocks are gone, not left empty.
        for model in 1..4 {
            let f = LogFilter { model_id: model, from: 0, to: i64::MAX, ..Default::default() };
            assert_eq!(blocks.delete_logs(&f).await.unwrap(), rows.delete_logs(&f).await.unwrap());
        }
        assert_eq!(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM log_blocks").fetch_one(&blocks.pool).await.unwrap(), 0);
        // Ids are not handed out again.
        let top = all.last().unwrap().id;
        blocks.write_batch(&WriteBatch { logs: vec![row(5)], ..Default::default() }).await.unwrap();
        assert_eq!(blocks.logs_after(0, 10).await.unwrap().iter().map(|l| l.id).collect::<Vec<_>>(), vec![top + 1]);
    }

    /// Full-text search over blocks tests each block's filter of words, then the logs' own
    /// words, payloads included; a block written before filters (none) is found through FTS5;
    /// a deletion leaves no word of a deleted log in the filter.
    #[tokio::test]
    async fn blocks_are_searched_through_their_filter_of_words() {
        use crate::store::textindex::{Filter, hashes, word_hash};
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), "words.db").await;
        let logs = (0..40)
            .map(|i| {
                let message = format!("call number {i} done");
                let (req, resp) = if i == 7 { ("Résumé of the Zanzibar trip", "ok") } else { ("hello", "world") };
                let payload = Payload::new(Some(req.into()), Some(resp.into()), 32 * 1024).unwrap().encode().unwrap();
                let search_text = SearchText::new([Some(&message), None, Some(req), Some(resp)]);
                let text_hashes = hashes(search_text.as_ref().unwrap().all());
                LogRow {
                    ts: 1000 + i,
                    model_id: 1 + i / 20,
                    flags: crate::ingest::FLAG_PAYLOAD,
                    message: Some(message),
                    payload: Some(payload),
                    search_text,
                    text_hashes,
                    ..Default::default()
                }
            })
            .collect();
        store.write_batch(&WriteBatch { logs, ..Default::default() }).await.unwrap();
        let blocks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_blocks WHERE text_index IS NOT NULL").fetch_one(&store.pool).await.unwrap();
        assert_eq!(blocks, 2);
        // Each block's payloads are a payload block of their own: checking a block's logs
        // decompresses only their payloads.
        let spans = |table: &'static str| {
            let pool = store.pool.clone();
            async move { sqlx::query_as::<_, (i64, i64)>(&format!("SELECT first_id, last_id FROM {table} ORDER BY first_id")).fetch_all(&pool).await.unwrap() }
        };
        assert_eq!(spans("payload_blocks").await, spans("log_blocks").await);
        let q_in = |model: i64, phrases: &[&[&str]], within: TextIn| LogFilter {
            model_id: model,
            from: 0,
            to: 10_000,
            conds: vec![Cond::Text(phrases.iter().map(|p| p.iter().map(|w| w.to_string()).collect()).collect(), within)],
            ..Default::default()
        };
        let q = |model: i64, phrases: &[&[&str]]| q_in(model, phrases, TextIn::All);
        let found = |logs: Vec<StoredLog>| logs.into_iter().map(|l| l.row.message.unwrap()).collect::<Vec<_>>();
        // Words of a payload, whatever their case and accents.
        assert_eq!(found(store.search_logs(&q(1, &[&["resume"], &["ZANZIBAR"]]), 100).await.unwrap()), ["call number 7 done"]);
        // ...but not in a search of messages only (a caller who may not view payloads).
        assert!(store.search_logs(&q_in(1, &[&["zanzibar"]], TextIn::Messages), 100).await.unwrap().is_empty());
        assert_eq!(store.count_matching(&q_in(1, &[&["hello"]], TextIn::Messages)).await.unwrap(), 0);
        assert_eq!(found(store.search_logs(&q_in(1, &[&["number", "7"]], TextIn::Messages), 100).await.unwrap()), ["call number 7 done"]);
        // A phrase: its words one after another.
        assert_eq!(found(store.search_logs(&q(1, &[&["number", "7"]]), 100).await.unwrap()), ["call number 7 done"]);
        assert!(store.search_logs(&q(1, &[&["7", "number"]]), 100).await.unwrap().is_empty());
        assert!(store.search_logs(&q(1, &[&["resume"], &["absent"]]), 100).await.unwrap().is_empty());
        assert_eq!(store.count_matching(&q(1, &[&["hello", "world"]])).await.unwrap(), 19);
        assert_eq!(store.count_matching(&q(2, &[&["hello", "world"]])).await.unwrap(), 20);

        let filter_of = |model: i64| {
            let pool = store.pool.clone();
            async move { sqlx::query_scalar::<_, Vec<u8>>("SELECT text_index FROM log_blocks WHERE model_id = ?").bind(model).fetch_one(&pool).await.unwrap() }
        };
        let bytes = filter_of(1).await;
        assert!(Filter::open(&bytes).unwrap().may_contain(word_hash("zanzibar")));
        assert_eq!(store.delete_logs(&q(1, &[&["zanzibar"]])).await.unwrap(), 1);
        let bytes = filter_of(1).await;
        let f = Filter::open(&bytes).unwrap();
        assert!(!f.may_contain(word_hash("zanzibar")), "a deleted log's word stayed in the filter");
        assert!(f.may_contain(word_hash("hello")) && f.may_contain(word_hash("19")));
        assert!(store.search_logs(&q(1, &[&["zanzibar"]]), 100).await.unwrap().is_empty());
        assert_eq!(store.count_matching(&q(1, &[&["hello"]])).await.unwrap(), 19);

        // A block from before filters: its logs are found through FTS5, not its (missing) filter.
        sqlx::query("UPDATE log_blocks SET text_index = NULL WHERE model_id = 2").execute(&store.pool).await.unwrap();
        assert!(store.search_logs(&q(2, &[&["hello"]]), 100).await.unwrap().is_empty());
        let id: i64 = sqlx::query_scalar("SELECT first_id + 3 FROM log_blocks WHERE model_id = 2").fetch_one(&store.pool).await.unwrap();
        sqlx::query("INSERT INTO fts.logs_fts (rowid, body, payload) VALUES (?, 'older words', 'hidden prompt')").bind(id).execute(&store.pool).await.unwrap();
        let older = store.search_logs(&q(2, &[&["older", "words"]]), 100).await.unwrap();
        assert_eq!(older.iter().map(|l| l.id).collect::<Vec<_>>(), [id]);
        assert_eq!(store.search_logs(&q(2, &[&["hidden"]]), 100).await.unwrap().len(), 1);
        assert!(store.search_logs(&q_in(2, &[&["hidden"]], TextIn::Messages), 100).await.unwrap().is_empty());
        assert_eq!(store.search_logs(&q_in(2, &[&["older"]], TextIn::Messages), 100).await.unwrap().len(), 1);
    }

    /// A database with logs in `logs` (stored before blocks, some with shared metadata) that
    /// then takes new logs in blocks: reads and deletions see both.
    #[tokio::test]
    async fn rows_from_before_blocks_and_blocks_are_read_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), "mixed.db").await;
        let shared = r#"{"team":"a"}"#.to_string();
        let old: Vec<(i64, LogRow)> = (1..=6)
            .map(|i| (i, LogRow { metadata: Some(shared.clone()), message: Some(format!("old {i}")), ..row(100 + i) }))
            .collect();
        {
            let mut conn = store.pool.acquire().await.unwrap();
            let old: Vec<(i64, &LogRow)> = old.iter().map(|(id, r)| (*id, r)).collect();
            crate::store::sqlite::insert_rows(&mut conn, &old).await.unwrap();
        }
        let refs: i64 = sqlx::query_scalar("SELECT refs FROM log_metadata").fetch_one(&store.pool).await.unwrap();
        assert_eq!(refs, 6, "the old rows share one metadata object");
        let new: Vec<LogRow> = (0..40).map(|i| LogRow { metadata: Some(shared.clone()), ..row(103 + i % 4) }).collect();
        store.write_batch(&WriteBatch { logs: new, ..Default::default() }).await.unwrap();
        assert_eq!(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM log_blocks").fetch_one(&store.pool).await.unwrap(), 1);
        let ids: Vec<i64> = store.logs_after(0, 100).await.unwrap().iter().map(|l| l.id).collect();
        assert_eq!(ids, (1..=46).collect::<Vec<_>>(), "new ids continue after the old rows");
        let f = LogFilter { model_id: 1, from: 0, to: 1000, ..Default::default() };
        let page: Vec<(i64, i64)> = store.search_logs(&f, 12).await.unwrap().iter().map(|l| (l.row.ts, l.id)).collect();
        // The block's logs are in time order: ts 103 got ids 7..=16, …, ts 106 ids 37..=46.
        let mut want: Vec<(i64, i64)> = (37..=46).rev().map(|id| (106, id)).collect();
        want.extend([(106, 6), (105, 36)]);
        assert_eq!(page, want);
        let meta = LogFilter { conds: vec![Cond::Meta("team".into(), Some("a".into()))], ..f.clone() };
        assert_eq!(store.count_matching(&meta).await.unwrap(), 46);
        let bars = store.log_histogram(&f, 1000, 12).await.unwrap();
        assert_eq!((bars[0].scanned, bars[0].n, bars[0].oldest), (12, 12, 105));
        // Deleting across both: the old rows' shared object loses their references and goes.
        let older = LogFilter { to: 105, ..f.clone() };
        assert_eq!(store.delete_logs(&older).await.unwrap(), 24, "ts 101..=104: four old rows, twenty new");
        assert_eq!(sqlx::query_scalar::<_, i64>("SELECT refs FROM log_metadata").fetch_one(&store.pool).await.unwrap(), 2);
        assert_eq!(store.delete_logs(&f).await.unwrap(), 22);
        assert_eq!(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM log_metadata").fetch_one(&store.pool).await.unwrap(), 0);
        assert_eq!(store.count_logs(1).await.unwrap(), 0);
    }

    #[test]
    fn commits_are_cut_into_bounded_blocks() {
        // Model 1: 9,000 logs 1 s apart; model 2: 1,000 logs of 10 KB in the same second.
        let rows: Vec<LogRow> = (0..10_000)
            .map(|i| if i < 9_000 { row(i * 1_000) } else { LogRow { model_id: 2, message: Some("x".repeat(10_000)), ..row(0) } })
            .collect();
        let pairs: Vec<(i64, &LogRow)> = rows.iter().enumerate().map(|(i, r)| (i as i64 + 1, r)).collect();
        let runs = block_runs(&pairs);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), rows.len());
        for run in &runs {
            assert!(run.iter().all(|(_, r)| r.model_id == run[0].1.model_id), "one model per block");
            assert!(run.len() <= MAX_BLOCK_LOGS);
            assert!(run[run.len() - 1].1.ts - run[0].1.ts <= MAX_BLOCK_SPAN_MS);
            assert!(run.iter().map(|(_, r)| r.message.as_ref().map_or(0, String::len)).sum::<usize>() <= MAX_BLOCK_TEXT);
        }
        let sizes = |model: i64| runs.iter().filter(|r| r[0].1.model_id == model).map(|r| r.len()).collect::<Vec<_>>();
        // 301 logs fit in 5 minutes; 838 messages of 10 KB in 8 MB.
        assert_eq!(sizes(1).iter().max(), Some(&301));
        assert_eq!(sizes(2), vec![838, 162]);
        assert!(runs.windows(2).all(|w| w[0][w[0].len() - 1].0 + 1 == w[1][0].0), "contiguous ids");
        // 5,000 logs in one millisecond: cut by count.
        let same: Vec<LogRow> = (0..5_000).map(|_| row(7)).collect();
        let pairs: Vec<(i64, &LogRow)> = same.iter().enumerate().map(|(i, r)| (i as i64 + 1, r)).collect();
        assert_eq!(block_runs(&pairs).iter().map(|r| r.len()).collect::<Vec<_>>(), vec![MAX_BLOCK_LOGS, 5_000 - MAX_BLOCK_LOGS]);
    }

    /// Encoding a batch ahead of its transaction (`Store::prepare_batch`, which the writer runs
    /// while the previous batch commits) stores exactly what encoding inside the transaction
    /// does: the same blocks, rows and payload blocks under the same ids. A batch whose logs
    /// changed after it was prepared is encoded again.
    #[tokio::test]
    async fn prepared_batches_are_stored_like_unprepared_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (inline, ahead) = (open(dir.path(), "inline.db").await, open(dir.path(), "ahead.db").await);
        let mut rng = StdRng::seed_from_u64(5);
        let logs = |n: usize, rng: &mut StdRng| -> Vec<LogRow> {
            (0..n)
                .map(|i| {
                    let mut r = random_row(rng);
                    if i % 3 != 0 {
                        let text = format!("request {i} {}", "lorem ipsum ".repeat(i % 40));
                        r.payload = crate::ingest::payload::Payload::new(Some(text), Some(format!("answer {i}")), 4096).map(|p| p.encode().unwrap());
                    }
                    r
                })
                .collect()
        };
        for n in [300, 3, 1000, 40] {
            let batch = logs(n, &mut rng);
            inline.write_batch(&WriteBatch { logs: batch.clone(), ..Default::default() }).await.unwrap();
            let mut prepared = WriteBatch { logs: batch, ..Default::default() };
            ahead.prepare_batch(&mut prepared);
            assert!(prepared.encoded.0.is_some());
            ahead.write_batch(&prepared).await.unwrap();
        }
        let more = logs(60, &mut rng);
        let mut changed = WriteBatch { logs: more[..30].to_vec(), ..Default::default() };
        ahead.prepare_batch(&mut changed);
        changed.logs.extend_from_slice(&more[30..]);
        ahead.write_batch(&changed).await.unwrap();
        inline.write_batch(&WriteBatch { logs: more, ..Default::default() }).await.unwrap();

        type BlockRow = (i64, i64, i64, i64, i64, i64, Vec<u8>, Option<Vec<u8>>);
        let blocks = |s: &SqliteStore| {
            let pool = s.pool.clone();
            async move {
                let b: Vec<BlockRow> = sqlx::query_as("SELECT first_id, last_id, model_id, min_ts, max_ts, count, body, text_index FROM log_blocks ORDER BY first_id")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                let p: Vec<(i64, i64, Vec<u8>)> =
                    sqlx::query_as("SELECT first_id, last_id, body FROM payload_blocks ORDER BY first_id").fetch_all(&pool).await.unwrap();
                (b, p)
            }
        };
        let (want, got) = (blocks(&inline).await, blocks(&ahead).await);
        assert!(want.0.len() >= 4 && want.1.len() >= 4, "{} log blocks, {} payload blocks", want.0.len(), want.1.len());
        assert!(want.0.iter().all(|b| b.7.is_some()), "every block has a filter of its words");
        assert_eq!(got, want);
        let (want, got) = (inline.logs_after(0, 10_000).await.unwrap(), ahead.logs_after(0, 10_000).await.unwrap());
        assert_eq!(want.len(), 1403);
        assert_eq!(got, want);
        for l in want.iter().step_by(97) {
            assert_eq!(ahead.payload_impl(l.id).await.unwrap(), inline.payload_impl(l.id).await.unwrap());
        }
    }

    /// A commit spanning hours (a backfill) gets several blocks, and a range far below the
    /// newest logs still finds exactly its own.
    #[tokio::test]
    async fn backfilled_logs_are_found_in_past_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), "backfill.db").await;
        let logs: Vec<LogRow> = (0..6_000).map(|i| LogRow { level: i % 5, ..row(i * 2_000) }).collect();
        store.write_batch(&WriteBatch { logs, ..Default::default() }).await.unwrap();
        let blocks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_blocks").fetch_one(&store.pool).await.unwrap();
        assert!(blocks >= 40, "3 h 20 min in blocks of at most 5 min: {blocks}");
        let wide: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_blocks WHERE max_ts - min_ts > ?").bind(MAX_BLOCK_SPAN_MS).fetch_one(&store.pool).await.unwrap();
        assert_eq!(wide, 0);
        // Ten minutes an hour into the data: logs 1800..2100 (2 s apart).
        let f = LogFilter { model_id: 1, from: 3_600_000, to: 4_200_000, ..Default::default() };
        assert_eq!(store.count_matching(&f).await.unwrap(), 300);
        let page = store.search_logs(&f, 50).await.unwrap();
        assert_eq!(page.iter().map(|l| l.row.ts).collect::<Vec<_>>(), (2050..2100).rev().map(|i| i * 2_000).collect::<Vec<_>>());
        let before = page.last().map(|l| (l.row.ts, l.id));
        let next = store.search_logs(&LogFilter { before, ..f.clone() }, 10).await.unwrap();
        assert_eq!(next[0].row.ts, 2049 * 2_000);
        let errors = LogFilter { conds: vec![Cond::Eq(Column::Level, Bind::Int(4))], ..f.clone() };
        assert_eq!(store.count_matching(&errors).await.unwrap(), 60);
        let bars = store.log_histogram(&f, 60_000, 1_000).await.unwrap();
        assert_eq!(bars.iter().map(|b| b.scanned).collect::<Vec<_>>(), vec![30; 10]);
    }
}
