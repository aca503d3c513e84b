//! Reading logs back: the log explorer's search (filters, keyset pages, histogram) and the
//! detail of one log, authorised per model for users and `read` API keys.

use std::collections::HashMap;

use crate::engine::{Engine, now_ms};
use crate::error::{Error, Result};
use crate::ingest::payload::Payload;
use crate::ingest::record::Level;
use crate::ingest::{FLAG_CACHE_HIT, FLAG_ERROR, FLAG_PAYLOAD, FLAG_REDACTED, FLAG_TRUNCATED, KeyPrincipal};
use crate::rbac::{Action, Principal};
use crate::search::{Cursor, DEFAULT_LIMIT, HistogramBar, LogSearch, Match, SearchPage};
use crate::store::filter::{Bind, Column, Cond, LogFilter, Numeric, TextIn, text_phrases};
use crate::store::{SeriesKey, StoredLog};
use crate::types::{LogView, Model, SavedSearch, Scope};

/// Who reads: a signed-in user (RBAC grants) or an API key with the `read` scope.
#[derive(Clone, Copy)]
pub enum Caller<'a> {
    User(&'a Principal),
    Key(&'a KeyPrincipal),
}

/// Whether the caller may read the payloads of a model it may read: users by their grant, `read`
/// API keys always.
fn may_view_payloads(caller: Caller<'_>, model: &Model) -> bool {
    match caller {
        Caller::User(p) => p.allows(Action::ViewPayloads(model.id)),
        Caller::Key(_) => true,
    }
}

impl Engine {
    /// The model, if the caller may read it; NotFound otherwise, so hidden models do not leak.
    pub async fn model_for(&self, caller: Caller<'_>, name: &str, payloads: bool) -> Result<Model> {
        match caller {
            Caller::User(p) => {
                let m = self.get_model(p, name).await?;
                if payloads {
                    p.authorize(Action::ViewPayloads(m.id))?;
                }
                Ok(m)
            }
            Caller::Key(k) => {
                k.require(Scope::Read)?;
                if !k.may_use_model(name) {
                    return Err(Error::NotFound("model"));
                }
                self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))
            }
        }
    }

    /// A log search: one page of matches (newest first), their count and a histogram over
    /// the range. See `search::LogSearch` for the filters.
    pub async fn search_logs(&self, caller: Caller<'_>, model: &str, s: &LogSearch) -> Result<SearchPage> {
        let r = self.resolve_search(caller, model, s).await?;
        let (from, to) = (r.from, r.to);
        let name = model.to_string();
        if from >= to || r.parts.is_empty() {
            let (logs, histogram) = (Vec::new(), Vec::new());
            return Ok(SearchPage { model: name, from, to, logs, next: None, count: 0, count_exact: true, counted_from: from, step: 0, histogram });
        }
        let step = histogram_step(to - from);
        let mut histogram: Vec<HistogramBar> =
            (0..(to - from + step - 1) / step).map(|i| HistogramBar { start: from + i * step, count: 0, errors: 0 }).collect();
        // The read budget is shared by the models searched.
        let cap = (HISTOGRAM_CAP / r.parts.len() as i64).max(10_000);
        let (mut count, mut counted_from) = (0, from);
        for part in &r.parts {
            let bars = self.store().log_histogram(&part.filter, step, cap).await?;
            count += bars.iter().map(|b| b.n).sum::<i64>();
            // Reading stopped at the cap: this model is counted from its oldest log read on.
            if bars.iter().map(|b| b.scanned).sum::<i64>() >= cap {
                counted_from = counted_from.max(bars.iter().map(|b| b.oldest).min().unwrap_or(from));
            }
            for b in bars {
                if let Some(h) = histogram.get_mut(b.bar as usize) {
                    h.count += b.n;
                    h.errors += b.errors;
                }
            }
        }
        let (logs, next) = self.search_page(&r, s.before, s.limit.unwrap_or(DEFAULT_LIMIT)).await?;
        let next = next.map(Cursor::as_param);
        let count_exact = counted_from == from;
        Ok(SearchPage { model: name, from, to, logs, next, count, count_exact, counted_from, step, histogram })
    }

    /// A search checked and resolved (authorised here, once): what pages, exports and the live
    /// tail run. `model` empty means every model the caller may read.
    pub async fn resolve_search(&self, caller: Caller<'_>, model: &str, s: &LogSearch) -> Result<ResolvedSearch> {
        let models = if model.is_empty() {
            if s.payloads {
                return Err(Error::invalid("payloads", "payloads can be asked for in a search of one model"));
            }
            self.readable_models(caller).await?
        } else {
            vec![self.model_for(caller, model, s.payloads).await?]
        };
        let now = now_ms();
        // Nothing is stored before the epoch or far ahead (ingest refuses timestamps beyond its
        // clock-skew allowance), so the range is clamped; a range wholly outside matches nothing.
        let to = s.to.unwrap_or(now + 60_000).min(now + 366 * 86_400_000);
        let from = s.from.unwrap_or(to - 3_600_000).max(0);
        let text = match &s.q {
            None => None,
            Some(q) => {
                if !self.ingest().full_text() {
                    return Err(Error::invalid("q", "full-text search is switched off on this server (--full-text off)"));
                }
                let phrases = text_phrases(q);
                if phrases.is_empty() {
                    return Err(Error::invalid("q", "q has no words to search for"));
                }
                Some(phrases)
            }
        };
        let mut parts = Vec::with_capacity(models.len());
        for model in models {
            let series: HashMap<i64, SeriesKey> = self.store().series_of_model(model.id).await?.into_iter().collect();
            let mut filter = log_filter(&model, &series, s, from, to);
            if let Some(phrases) = &text {
                // Payload words are found only by those who may read the payloads: otherwise a
                // search would tell whether a word is in a hidden prompt or response.
                let within = if may_view_payloads(caller, &model) { TextIn::All } else { TextIn::Messages };
                filter.conds.push(Cond::Text(phrases.clone(), within));
            }
            parts.push(Part { model, series, filter });
        }
        Ok(ResolvedSearch { parts, from, to, payloads: s.payloads })
    }

    /// Up to `limit` matches older than `before` (newest first, over every model searched) and
    /// the cursor of the next page, if there is one.
    pub async fn search_page(&self, r: &ResolvedSearch, before: Option<Cursor>, limit: i64) -> Result<(Vec<LogView>, Option<Cursor>)> {
        if r.from >= r.to {
            return Ok((Vec::new(), None));
        }
        // Each model's newest page, merged: one index range per model instead of a sort of
        // every model's range.
        let mut rows: Vec<(usize, StoredLog)> = Vec::new();
        for (i, part) in r.parts.iter().enumerate() {
            let mut filter = part.filter.clone();
            filter.before = before.map(|c| (c.ts, c.id));
            rows.extend(self.store().search_logs(&filter, limit + 1).await?.into_iter().map(|row| (i, row)));
        }
        rows.sort_by(|a, b| (b.1.row.ts, b.1.id).cmp(&(a.1.row.ts, a.1.id)));
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let mut logs = Vec::with_capacity(rows.len());
        for (i, row) in rows {
            let part = &r.parts[i];
            logs.push(self.log_view(&part.model, &part.series, row, r.payloads).await?);
        }
        let next = if more { logs.last().map(Cursor::of) } else { None };
        Ok((logs, next))
    }

    /// Logs stored after id `after` that match (the time range is ignored), oldest first: at
    /// most `limit`, and when more arrived, the newest `limit` of them with `sampled` set.
    /// Returns the id to continue after.
    pub async fn tail_logs(&self, r: &ResolvedSearch, after: i64, limit: i64) -> Result<TailBatch> {
        let mut rows: Vec<(usize, StoredLog)> = Vec::new();
        for (i, part) in r.parts.iter().enumerate() {
            let mut filter = part.filter.clone();
            filter.from = 0;
            filter.to = i64::MAX;
            rows.extend(self.store().tail_logs(&filter, after, limit + 1).await?.into_iter().map(|row| (i, row)));
        }
        rows.sort_by(|a, b| b.1.id.cmp(&a.1.id));
        let sampled = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        rows.reverse();
        let last = rows.last().map(|l| l.1.id).unwrap_or(after);
        let mut logs = Vec::with_capacity(rows.len());
        for (i, row) in rows {
            let part = &r.parts[i];
            logs.push(self.log_view(&part.model, &part.series, row, r.payloads).await?);
        }
        Ok(TailBatch { logs, sampled, last_id: last })
    }

    /// The caller's saved searches for a model (their own only).
    pub async fn saved_searches(&self, p: &Principal, model: &str) -> Result<Vec<SavedSearch>> {
        let m = self.get_model(p, model).await?;
        let Some(user_id) = p.user_id else { return Ok(Vec::new()) };
        self.store().saved_searches(user_id, m.id).await
    }

    /// Saves the explorer's query string under a name (replacing one of the same name). The
    /// query must be a valid search; the page cursor is dropped.
    pub async fn save_search(&self, p: &Principal, model: &str, name: &str, query: &str) -> Result<i64> {
        let m = self.get_model(p, model).await?;
        let user_id = p.user_id.ok_or(Error::Forbidden)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid("name", "name must be 1-100 characters"));
        }
        let pairs = crate::search::query_pairs(query);
        let kept: Vec<(String, String)> = pairs.into_iter().filter(|(k, v)| k != "before" && !v.is_empty()).collect();
        let ranges = ["range", "from", "to", "tz", "refresh"];
        let filters: Vec<(String, String)> = kept.iter().filter(|(k, _)| !ranges.contains(&k.as_str())).cloned().collect();
        LogSearch::from_params(&filters, &[]).map_err(|e| match e {
            Error::Invalid { field, message } => Error::invalid("query", format!("{field}: {message}")),
            other => other,
        })?;
        if query.len() > 4096 {
            return Err(Error::invalid("query", "the search is too long to save"));
        }
        if self.store().saved_searches(user_id, m.id).await?.len() >= 100 {
            return Err(Error::invalid("name", "at most 100 saved searches per model; delete one first"));
        }
        let normalized = crate::search::encode_pairs(&kept);
        self.store().save_search(user_id, m.id, name, &normalized, now_ms()).await
    }

    pub async fn delete_saved_search(&self, p: &Principal, id: i64) -> Result<()> {
        let user_id = p.user_id.ok_or(Error::NotFound("saved search"))?;
        if self.store().delete_saved_search(user_id, id).await? { Ok(()) } else { Err(Error::NotFound("saved search")) }
    }

    /// Admins: how many stored logs a deletion with this search would remove (exact).
    pub async fn count_logs_to_delete(&self, p: &Principal, model: &str, s: &LogSearch) -> Result<i64> {
        let r = self.resolve_for_delete(p, model, s).await?;
        self.count_for_delete(&r).await
    }

    /// The one model's search a deletion acts on (admins only).
    async fn resolve_for_delete(&self, p: &Principal, model: &str, s: &LogSearch) -> Result<ResolvedSearch> {
        p.authorize(Action::Administer)?;
        if model.is_empty() {
            return Err(Error::invalid("model", "deleting logs needs one model"));
        }
        self.resolve_search(Caller::User(p), model, s).await
    }

    async fn count_for_delete(&self, r: &ResolvedSearch) -> Result<i64> {
        match r.parts.first() {
            Some(part) if r.from < r.to => self.store().count_matching(&part.filter).await,
            _ => Ok(0),
        }
    }

    /// Admins: deletes the stored logs matching the search (with payloads and full-text
    /// entries), for data-subject requests. `confirm` must be the count the admin was shown;
    /// when the search is for one user, that user's id is also removed from the user
    /// breakdown rollups (request counts stay in the totals, without the id). Returns how
    /// many logs were deleted.
    pub async fn delete_logs(&self, p: &Principal, model: &str, s: &LogSearch, confirm: i64) -> Result<u64> {
        let r = self.resolve_for_delete(p, model, s).await?;
        let now_count = self.count_for_delete(&r).await?;
        if now_count == 0 {
            return Err(Error::invalid("confirm", "no stored logs match this search"));
        }
        if now_count != confirm {
            return Err(Error::invalid(
                "confirm",
                format!("{now_count} logs match now, not {confirm}: check the search and confirm the new count"),
            ));
        }
        if now_count > MAX_DELETE {
            return Err(Error::invalid("confirm", format!("at most {MAX_DELETE} logs per deletion; narrow the range")));
        }
        let part = r.parts.first().ok_or(Error::NotFound("model"))?;
        let deleted = self.store().delete_logs(&part.filter).await?;
        if let Some(Match::Value(user)) = &s.user_id {
            // Deltas held back by the writer would put the id back after the delete.
            self.ingest().writer().flush_breakdowns().await?;
            self.store().delete_dim_value(part.model.id, "user", user).await?;
        }
        tracing::info!(target: "audit", model = %part.model.name, by = %p.username, deleted, "logs deleted by filter");
        Ok(deleted)
    }

    /// The newest log id in the store: where a live tail starts.
    pub async fn newest_log_id(&self) -> Result<i64> {
        self.store().max_log_id().await
    }

    /// One log with every field. The payload comes along when the caller may view payloads;
    /// otherwise it is not read at all and `payload_withheld` says so. NotFound for logs of
    /// models the caller may not see.
    pub async fn log_detail(&self, caller: Caller<'_>, id: i64) -> Result<LogView> {
        let row = self.store().log_by_id(id).await?.ok_or(Error::NotFound("log"))?;
        let model = self
            .store()
            .list_models()
            .await?
            .into_iter()
            .find(|m| m.id == row.row.model_id)
            .ok_or(Error::NotFound("log"))?;
        match caller {
            Caller::User(p) if !p.allows(Action::ViewModel(model.id)) => return Err(Error::NotFound("log")),
            Caller::Key(k) => {
                k.require(Scope::Read)?;
                if !k.may_use_model(&model.name) {
                    return Err(Error::NotFound("log"));
                }
            }
            Caller::User(_) => {}
        }
        let payloads = may_view_payloads(caller, &model);
        let series: HashMap<i64, SeriesKey> = self.store().series_of_model(model.id).await?.into_iter().collect();
        self.log_view(&model, &series, row, payloads).await
    }

    async fn log_view(&self, model: &Model, series: &HashMap<i64, SeriesKey>, s: StoredLog, payloads: bool) -> Result<LogView> {
        let r = s.row;
        let key = series.get(&r.series_id).cloned().unwrap_or_default();
        let has_payload = r.flags & FLAG_PAYLOAD != 0;
        let (request, response) = if payloads && has_payload {
            match self.store().payload(s.id).await? {
                Some(bytes) => {
                    let p = Payload::decode(&bytes, r.flags & FLAG_TRUNCATED != 0)?;
                    (Some(p.request), Some(p.response))
                }
                None => (None, None),
            }
        } else {
            (None, None)
        };
        Ok(LogView {
            id: s.id,
            timestamp: r.ts,
            model: model.name.clone(),
            model_version: key.model_version,
            provider: key.provider,
            environment: key.environment,
            operation: key.operation,
            status: if r.flags & FLAG_ERROR != 0 { "error" } else { "ok" }.to_string(),
            level: Level::from_i64(r.level).as_str().to_string(),
            http_status: r.http_status,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_tokens: r.cached_tokens,
            cost_usd: r.cost_usd,
            cache_hit: r.flags & FLAG_CACHE_HIT != 0,
            feedback: r.feedback,
            error_type: r.error_type,
            message: r.message,
            error_message: r.error_message,
            user_id: r.user_id,
            session_id: r.session_id,
            trace_id: r.trace_id,
            span_id: r.span_id,
            metadata: r.metadata.and_then(|m| serde_json::from_str(&m).ok()),
            redacted: r.flags & FLAG_REDACTED != 0,
            has_payload,
            payload_truncated: r.flags & FLAG_TRUNCATED != 0,
            payload_withheld: has_payload && !payloads,
            request,
            response,
        })
    }
}

/// Most logs one deletion by filter removes.
pub const MAX_DELETE: i64 = 1_000_000;

/// A search resolved against the models it covers; see `Engine::resolve_search`.
#[derive(Debug, Clone)]
pub struct ResolvedSearch {
    parts: Vec<Part>,
    from: i64,
    to: i64,
    payloads: bool,
}

/// One model's share of a search.
#[derive(Debug, Clone)]
struct Part {
    model: Model,
    series: HashMap<i64, SeriesKey>,
    filter: LogFilter,
}

/// New logs for a live tail.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TailBatch {
    /// Oldest first.
    pub logs: Vec<LogView>,
    /// More matched than one batch holds; these are the newest.
    pub sampled: bool,
    pub last_id: i64,
}

/// Logs of a range read (newest first) for a search's histogram and count, matching or not:
/// past it the count covers only the newest part of the range and is a lower bound.
pub const HISTOGRAM_CAP: i64 = 200_000;

/// Bar width for a histogram of about 60 bars over `span` ms, from a list of round widths.
pub fn histogram_step(span: i64) -> i64 {
    const STEPS: [i64; 15] = [
        1_000, 5_000, 10_000, 30_000, 60_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 10_800_000,
        21_600_000, 43_200_000, 86_400_000, 604_800_000,
    ];
    let want = (span + 59) / 60;
    STEPS.iter().copied().find(|s| *s >= want).unwrap_or((want + 86_399_999) / 86_400_000 * 86_400_000)
}

fn match_series(m: &Option<Match>, value: &str) -> bool {
    match m {
        None => true,
        Some(Match::Value(v)) => v == value,
        Some(Match::Missing) => value.is_empty(),
    }
}

fn text_cond(out: &mut Vec<Cond>, col: Column, m: &Option<Match>) {
    match m {
        None => {}
        Some(Match::Value(v)) => out.push(Cond::Eq(col, Bind::Text(v.clone()))),
        Some(Match::Missing) => out.push(Cond::IsNull(col)),
    }
}

/// The store's filter for a search: series filters become the ids of matching series.
fn log_filter(model: &Model, series: &HashMap<i64, SeriesKey>, s: &LogSearch, from: i64, to: i64) -> LogFilter {
    let by_series = s.provider.is_some() || s.model_version.is_some() || s.environment.is_some() || s.operation.is_some();
    let series = by_series.then(|| {
        let mut ids: Vec<i64> = series
            .iter()
            .filter(|(_, k)| {
                match_series(&s.provider, &k.provider)
                    && match_series(&s.model_version, &k.model_version)
                    && match_series(&s.environment, &k.environment)
                    && match_series(&s.operation, &k.operation)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    });
    let mut conds = Vec::new();
    if let Some(e) = s.status {
        conds.push(Cond::Flag(FLAG_ERROR, e));
    }
    if let Some(c) = s.cache_hit {
        conds.push(Cond::Flag(FLAG_CACHE_HIT, c));
    }
    if let Some(l) = s.level.as_deref().and_then(Level::parse) {
        conds.push(Cond::Eq(Column::Level, Bind::Int(l as i64)));
    }
    if let Some(h) = s.http_status {
        let (lo, hi) = h.bounds();
        conds.push(Cond::Between(Numeric::HttpStatus, Some(lo as f64), Some(hi as f64)));
    }
    if let Some(f) = s.feedback {
        conds.push(Cond::Eq(Column::Feedback, Bind::Int(f)));
    }
    text_cond(&mut conds, Column::ErrorType, &s.error_type);
    text_cond(&mut conds, Column::UserId, &s.user_id);
    text_cond(&mut conds, Column::SessionId, &s.session_id);
    text_cond(&mut conds, Column::TraceId, &s.trace_id);
    for (n, r) in [(Numeric::LatencyMs, s.latency_ms), (Numeric::TtftMs, s.ttft_ms), (Numeric::Tokens, s.tokens), (Numeric::CostUsd, s.cost_usd)] {
        if !r.is_open() {
            conds.push(Cond::Between(n, r.min, r.max));
        }
    }
    for (k, m) in &s.meta {
        conds.push(Cond::Meta(
            k.clone(),
            match m {
                Match::Value(v) => Some(v.clone()),
                Match::Missing => None,
            },
        ));
    }
    LogFilter { model_id: model.id, from, to, before: None, series, conds }
}

#[cfg(test)]
mod tests {
    use super::histogram_step;

    #[test]
    fn histogram_bars_stay_near_sixty() {
        for span in [1_000, 60_000, 3_600_000, 86_400_000, 7 * 86_400_000, 30 * 86_400_000, 400 * 86_400_000] {
            let bars = (span + histogram_step(span) - 1) / histogram_step(span);
            assert!((1..=60).contains(&bars), "{span}: {bars} bars");
        }
        assert_eq!(histogram_step(3_600_000), 60_000);
    }
}
