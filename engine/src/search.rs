//! The log explorer's search, as URL query pairs: what the search page, the dashboards' links
//! and `GET /api/v1/logs` all speak. Parsing names the offending parameter; `to_params` writes
//! a search back, so a page's links (older results, a shared search) reproduce it.
//!
//! Shared with the browser bundle (no storage here): the engine runs the search in `reads`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::LogView;

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 1000;
/// The value a filter takes to match records where the field is missing (an empty provider,
/// no error type, no such metadata key). Breakdown rows for "(none)" link with it.
pub const NONE_VALUE: &str = "(none)";
/// Longest accepted filter value, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;

/// A text filter: one value, or "the field is not set".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Match {
    Value(String),
    Missing,
}

impl Match {
    fn parse(key: &str, v: &str) -> Result<Match> {
        if v.len() > MAX_VALUE_LEN {
            return Err(Error::invalid(key, format!("{key} is longer than {MAX_VALUE_LEN} bytes")));
        }
        Ok(if v == NONE_VALUE { Match::Missing } else { Match::Value(v.to_string()) })
    }
    pub fn as_param(&self) -> &str {
        match self {
            Match::Value(v) => v,
            Match::Missing => NONE_VALUE,
        }
    }
}

/// An inclusive numeric range; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Range {
    pub fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }
}

/// HTTP status: one code, or a class such as `5xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpStatus {
    Code(i64),
    Class(i64),
}

impl HttpStatus {
    fn parse(v: &str) -> Result<HttpStatus> {
        let bad = || Error::invalid("http_status", "http_status must be a status code (e.g. 503) or a class (e.g. 5xx)");
        let v = v.trim().to_ascii_lowercase();
        if let Some(d) = v.strip_suffix("xx") {
            let c: i64 = d.parse().map_err(|_| bad())?;
            return if (1..=5).contains(&c) { Ok(HttpStatus::Class(c)) } else { Err(bad()) };
        }
        let c: i64 = v.parse().map_err(|_| bad())?;
        if (100..=599).contains(&c) { Ok(HttpStatus::Code(c)) } else { Err(bad()) }
    }
    /// Inclusive bounds.
    pub fn bounds(self) -> (i64, i64) {
        match self {
            HttpStatus::Code(c) => (c, c),
            HttpStatus::Class(c) => (c * 100, c * 100 + 99),
        }
    }
    fn as_param(self) -> String {
        match self {
            HttpStatus::Code(c) => c.to_string(),
            HttpStatus::Class(c) => format!("{c}xx"),
        }
    }
}

/// Where the next page starts: results older than this (timestamp, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub ts: i64,
    pub id: i64,
}

impl Cursor {
    pub fn of(log: &LogView) -> Cursor {
        Cursor { ts: log.timestamp, id: log.id }
    }
    fn parse(v: &str) -> Result<Cursor> {
        let bad = || Error::invalid("before", "before must be a cursor from a previous page (timestamp.id)");
        let (ts, id) = v.split_once('.').ok_or_else(bad)?;
        Ok(Cursor { ts: ts.parse().map_err(|_| bad())?, id: id.parse().map_err(|_| bad())? })
    }
    pub fn as_param(self) -> String {
        format!("{}.{}", self.ts, self.id)
    }
}

/// Every filter of a log search. `None` (or an open range) means "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogSearch {
    /// Epoch ms, inclusive; default one hour before `to`.
    pub from: Option<i64>,
    /// Epoch ms, exclusive; default a minute from now.
    pub to: Option<i64>,
    pub before: Option<Cursor>,
    pub limit: Option<i64>,
    /// `ok` or `error`.
    pub status: Option<bool>,
    pub level: Option<String>,
    pub provider: Option<Match>,
    pub model_version: Option<Match>,
    pub environment: Option<Match>,
    pub operation: Option<Match>,
    pub error_type: Option<Match>,
    pub http_status: Option<HttpStatus>,
    pub latency_ms: Range,
    pub ttft_ms: Range,
    /// Input plus output tokens.
    pub tokens: Range,
    pub cost_usd: Range,
    pub cache_hit: Option<bool>,
    pub feedback: Option<i64>,
    pub user_id: Option<Match>,
    pub session_id: Option<Match>,
    pub trace_id: Option<Match>,
    /// `meta:KEY=VALUE` pairs, all of which must match.
    pub meta: Vec<(String, Match)>,
    /// Full text over message, error message and payload: every word (or "quoted phrase").
    pub q: Option<String>,
    /// Include request/response text (API; needs payload permission).
    pub payloads: bool,
}

/// The levels a search can ask for, as written in URLs.
pub const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

fn number(key: &str, v: &str) -> Result<f64> {
    match v.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(Error::invalid(key, format!("{key} must be a number"))),
    }
}

fn integer(key: &str, v: &str) -> Result<i64> {
    v.trim().parse::<i64>().map_err(|_| Error::invalid(key, format!("{key} must be an integer")))
}

fn boolean(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Error::invalid(key, format!("{key} must be true or false"))),
    }
}

/// A metadata key as a filter takes it: the characters ingest accepts in practice, so a key
/// can go into a JSON path without quoting games.
fn meta_key(param: &str, key: &str) -> Result<String> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(Error::invalid(param, "metadata keys in filters are 1-128 characters of letters, digits, _ - . /"))
    }
}

impl LogSearch {
    /// Parses URL query pairs. Empty values are skipped (an unfilled form field). Keys in
    /// `ignore` belong to the caller (the page's `refresh`, the API's `model`); any other
    /// unknown key is refused, so a typo does not silently widen a search.
    pub fn from_params(pairs: &[(String, String)], ignore: &[&str]) -> Result<LogSearch> {
        let mut s = LogSearch::default();
        for (k, v) in pairs {
            let key = k.as_str();
            if v.is_empty() || ignore.contains(&key) {
                continue;
            }
            let set = |slot: &mut Option<Match>| -> Result<()> {
                *slot = Some(Match::parse(key, v)?);
                Ok(())
            };
            match key {
                "from" => s.from = Some(integer(key, v)?),
                "to" => s.to = Some(integer(key, v)?),
                "before" => s.before = Some(Cursor::parse(v)?),
                "limit" => {
                    let n = integer(key, v)?;
                    if !(1..=MAX_LIMIT).contains(&n) {
                        return Err(Error::invalid("limit", format!("limit must be between 1 and {MAX_LIMIT}")));
                    }
                    s.limit = Some(n);
                }
                "status" => {
                    s.status = Some(match v.as_str() {
                        "error" => true,
                        "ok" => false,
                        _ => return Err(Error::invalid("status", "status must be ok or error")),
                    })
                }
                "level" => {
                    let l = v.to_ascii_lowercase();
                    if !LEVELS.contains(&l.as_str()) {
                        return Err(Error::invalid("level", format!("level must be one of {}", LEVELS.join(", "))));
                    }
                    s.level = Some(l);
                }
                "provider" => set(&mut s.provider)?,
                "model_version" => set(&mut s.model_version)?,
                "environment" => set(&mut s.environment)?,
                "operation" => set(&mut s.operation)?,
                "error_type" => set(&mut s.error_type)?,
                "user_id" | "user" => set(&mut s.user_id)?,
                "session_id" | "session" => set(&mut s.session_id)?,
                "trace_id" => set(&mut s.trace_id)?,
                "http_status" => s.http_status = Some(HttpStatus::parse(v)?),
                "latency_min" => s.latency_ms.min = Some(number(key, v)?),
                "latency_max" => s.latency_ms.max = Some(number(key, v)?),
                "ttft_min" => s.ttft_ms.min = Some(number(key, v)?),
                "ttft_max" => s.ttft_ms.max = Some(number(key, v)?),
                "tokens_min" => s.tokens.min = Some(number(key, v)?),
                "tokens_max" => s.tokens.max = Some(number(key, v)?),
                "cost_min" => s.cost_usd.min = Some(number(key, v)?),
                "cost_max" => s.cost_usd.max = Some(number(key, v)?),
                "cache_hit" => s.cache_hit = Some(boolean(key, v)?),
                "feedback" => {
                    let f = integer(key, v)?;
                    if !(-1..=1).contains(&f) {
                        return Err(Error::invalid("feedback", "feedback must be -1, 0 or 1"));
                    }
                    s.feedback = Some(f);
                }
                "payloads" => s.payloads = boolean(key, v)?,
                "q" => {
                    if v.len() > 512 {
                        return Err(Error::invalid("q", "q is longer than 512 bytes"));
                    }
                    s.q = Some(v.clone());
                }
                // The search form's one metadata field: `key=value`.
                "meta" => {
                    let (mk, mv) = v
                        .split_once('=')
                        .ok_or_else(|| Error::invalid("meta", "meta must look like key=value"))?;
                    s.add_meta(key, mk.trim(), mv.trim())?;
                }
                _ => match key.strip_prefix("meta:") {
                    Some(mk) if !v.is_empty() => s.add_meta(key, mk, v)?,
                    Some(_) => {}
                    None => return Err(Error::invalid(key, format!("unknown search parameter {key}"))),
                },
            }
        }
        if let (Some(f), Some(t)) = (s.from, s.to)
            && f >= t
        {
            return Err(Error::invalid("from", "from must be before to"));
        }
        for (name, r) in [("latency", s.latency_ms), ("ttft", s.ttft_ms), ("tokens", s.tokens), ("cost", s.cost_usd)] {
            if let (Some(a), Some(b)) = (r.min, r.max)
                && a > b
            {
                return Err(Error::invalid(format!("{name}_min"), format!("{name}_min is above {name}_max")));
            }
        }
        Ok(s)
    }

    fn add_meta(&mut self, param: &str, key: &str, value: &str) -> Result<()> {
        let key = meta_key(param, key)?;
        if self.meta.len() >= 8 {
            return Err(Error::invalid(param, "at most 8 metadata filters"));
        }
        let m = Match::parse(param, value)?;
        self.meta.retain(|(k, _)| *k != key);
        self.meta.push((key, m));
        Ok(())
    }

    /// The search as URL query pairs, in a stable order (without `before`).
    pub fn to_params(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: String| out.push((k.to_string(), v));
        if let Some(v) = &self.q {
            push("q", v.clone());
        }
        if let Some(v) = self.from {
            push("from", v.to_string());
        }
        if let Some(v) = self.to {
            push("to", v.to_string());
        }
        if let Some(v) = self.status {
            push("status", if v { "error" } else { "ok" }.into());
        }
        if let Some(v) = &self.level {
            push("level", v.clone());
        }
        for (k, m) in [
            ("provider", &self.provider),
            ("model_version", &self.model_version),
            ("environment", &self.environment),
            ("operation", &self.operation),
            ("error_type", &self.error_type),
            ("user_id", &self.user_id),
            ("session_id", &self.session_id),
            ("trace_id", &self.trace_id),
        ] {
            if let Some(m) = m {
                push(k, m.as_param().to_string());
            }
        }
        if let Some(h) = self.http_status {
            push("http_status", h.as_param());
        }
        for (name, r) in [("latency", self.latency_ms), ("ttft", self.ttft_ms), ("tokens", self.tokens), ("cost", self.cost_usd)] {
            if let Some(v) = r.min {
                push(&format!("{name}_min"), v.to_string());
            }
            if let Some(v) = r.max {
                push(&format!("{name}_max"), v.to_string());
            }
        }
        if let Some(v) = self.cache_hit {
            push("cache_hit", v.to_string());
        }
        if let Some(v) = self.feedback {
            push("feedback", v.to_string());
        }
        for (k, m) in &self.meta {
            push(&format!("meta:{k}"), m.as_param().to_string());
        }
        if let Some(v) = self.limit {
            push("limit", v.to_string());
        }
        if self.payloads {
            push("payloads", "true".into());
        }
        out
    }

    /// The filters besides the time range, for showing them as chips.
    pub fn filter_params(&self) -> Vec<(String, String)> {
        self.to_params().into_iter().filter(|(k, _)| !matches!(k.as_str(), "from" | "to" | "limit" | "payloads")).collect()
    }
}

/// Pairs of a URL query string (`a=1&b=x+y`), decoded; a leading `?` is ignored.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes()).into_owned().collect()
}

/// Pairs as a URL query string, encoded.
pub fn encode_pairs(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// One bar of the histogram above the results: matches with `start <= ts < start + step`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistogramBar {
    pub start: i64,
    pub count: i64,
    /// Of which errors.
    pub errors: i64,
}

/// A page of search results, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    pub model: String,
    /// The range searched (defaults filled in).
    pub from: i64,
    pub to: i64,
    pub logs: Vec<LogView>,
    /// Pass as `before` for the next (older) page; None on the last page.
    pub next: Option<String>,
    /// Matching logs in the range: exact, or a lower bound when `count_exact` is false.
    pub count: i64,
    pub count_exact: bool,
    /// Where the count and the histogram start: `from` when exact; otherwise the time of the
    /// oldest log read (the newest 200,000 logs of the range are read).
    pub counted_from: i64,
    /// Bar width in ms.
    pub step: i64,
    pub histogram: Vec<HistogramBar>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        q.split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn field(q: &str) -> String {
        match LogSearch::from_params(&pairs(q), &[]) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{q}: expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn every_filter_round_trips_through_params() {
        let q = "from=1000&to=2000&status=error&level=warn&provider=openai&model_version=(none)&environment=prod\
                 &operation=chat&error_type=timeout&user_id=u-1&session_id=s-1&trace_id=t-1&http_status=5xx\
                 &latency_min=10&latency_max=2000.5&ttft_min=1&ttft_max=2&tokens_min=5&tokens_max=6&cost_min=0.1\
                 &cost_max=0.2&cache_hit=true&feedback=-1&meta:team=search&meta:region=(none)&limit=20&payloads=true&q=rate limit";
        let s = LogSearch::from_params(&pairs(q), &[]).unwrap();
        assert_eq!(s.status, Some(true));
        assert_eq!(s.model_version, Some(Match::Missing));
        assert_eq!(s.http_status.unwrap().bounds(), (500, 599));
        assert_eq!(s.latency_ms, Range { min: Some(10.0), max: Some(2000.5) });
        assert_eq!(s.meta, vec![("team".into(), Match::Value("search".into())), ("region".into(), Match::Missing)]);
        let again = LogSearch::from_params(&s.to_params(), &[]).unwrap();
        assert_eq!(again, s);
        assert_eq!(s.to_params().len(), pairs(q).len());
    }

    #[test]
    fn empty_values_and_ignored_keys_are_skipped() {
        let s = LogSearch::from_params(&pairs("provider=&status=&refresh=30s&user=alice"), &["refresh"]).unwrap();
        assert_eq!(s, LogSearch { user_id: Some(Match::Value("alice".into())), ..Default::default() });
    }

    #[test]
    fn bad_values_name_their_parameter() {
        assert_eq!(field("status=maybe"), "status");
        assert_eq!(field("level=loud"), "level");
        assert_eq!(field("http_status=700"), "http_status");
        assert_eq!(field("http_status=9xx"), "http_status");
        assert_eq!(field("latency_min=fast"), "latency_min");
        assert_eq!(field("latency_min=NaN"), "latency_min");
        assert_eq!(field("cost_min=2&cost_max=1"), "cost_min");
        assert_eq!(field("from=5&to=5"), "from");
        assert_eq!(field("limit=0"), "limit");
        assert_eq!(field("limit=1001"), "limit");
        assert_eq!(field("before=123"), "before");
        assert_eq!(field("feedback=3"), "feedback");
        assert_eq!(field("cache_hit=perhaps"), "cache_hit");
        assert_eq!(field("meta:a'b=1"), "meta:a'b");
        assert_eq!(field("meta:=1"), "meta:");
        assert_eq!(field("colour=red"), "colour");
        assert_eq!(field("meta=novalue"), "meta");
        assert_eq!(field(&format!("user_id={}", "x".repeat(MAX_VALUE_LEN + 1))), "user_id");
    }

    #[test]
    fn the_forms_meta_field_is_one_more_metadata_filter() {
        let p = vec![("meta".to_string(), "team = search".to_string()), ("meta:region".to_string(), "eu".to_string())];
        let s = LogSearch::from_params(&p, &[]).unwrap();
        assert_eq!(s.meta, vec![("team".into(), Match::Value("search".into())), ("region".into(), Match::Value("eu".into()))]);
        assert_eq!(s.to_params()[0], ("meta:team".to_string(), "search".to_string()));
    }

    #[test]
    fn query_strings_round_trip() {
        let p = query_pairs("?q=rate+limit&meta%3Ateam=a%26b&provider=");
        assert_eq!(p, vec![("q".into(), "rate limit".into()), ("meta:team".into(), "a&b".into()), ("provider".into(), String::new())]);
        assert_eq!(query_pairs(&encode_pairs(&p)), p);
    }

    #[test]
    fn cursor_and_status_classes() {
        let s = LogSearch::from_params(&pairs("before=1700000000000.42&http_status=503"), &[]).unwrap();
        assert_eq!(s.before, Some(Cursor { ts: 1_700_000_000_000, id: 42 }));
        assert_eq!(s.before.unwrap().as_param(), "1700000000000.42");
        assert_eq!(s.http_status.unwrap().bounds(), (503, 503));
    }
}
