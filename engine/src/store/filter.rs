//! A log search as SQL: the resolved filter (series ids instead of names) and the WHERE clause
//! both backends run. Every value is a bound parameter; the only text put into the statement
//! is column names from this file and integers.

use std::fmt::Write;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Real(f64),
    Text(String),
}

/// One condition on a log row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `flags & bit` set (true) or clear (false).
    Flag(i64, bool),
    /// An integer or text column equal to a value.
    Eq(Column, Bind),
    /// A nullable column that is NULL.
    IsNull(Column),
    /// A numeric expression within an inclusive range (NULL never matches).
    Between(Numeric, Option<f64>, Option<f64>),
    /// A metadata key with this value (compared as text), or absent (None).
    Meta(String, Option<String>),
    /// Full text: every phrase occurs in the log's text (`TextIn` says which).
    Text(Vec<Vec<String>>, TextIn),
}

/// Which text of a log a full-text condition searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextIn {
    /// Message, error message and payload (request and response).
    All,
    /// Message and error message only: for callers who may not view the model's payloads, so
    /// that a search cannot tell whether a word is in a hidden prompt or response.
    Messages,
}

/// A user's search text as phrases of words: "quoted text" is one phrase, every other word
/// its own. Words are runs of letters, digits and combining marks, so operators and
/// punctuation of any query syntax are taken as separators, never as syntax. Empty when there
/// are no words.
pub fn text_phrases(q: &str) -> Vec<Vec<String>> {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !super::textindex::is_word_char(c)).filter(|w| !w.is_empty()).map(str::to_string).collect()
    };
    let mut out = Vec::new();
    for (i, seg) in q.split('"').enumerate() {
        if i % 2 == 1 {
            let phrase = words(seg);
            if !phrase.is_empty() {
                out.push(phrase);
            }
        } else {
            out.extend(words(seg).into_iter().map(|w| vec![w]));
        }
    }
    out
}

/// Phrases as quoted strings, space-separated: an FTS5 query (implicit AND) and a
/// `websearch_to_tsquery` input alike. Words hold only letters and digits, so no escaping.
pub(crate) fn quoted(phrases: &[Vec<String>]) -> String {
    phrases.iter().map(|p| format!("\"{}\"", p.join(" "))).collect::<Vec<_>>().join(" ")
}

/// The FTS5 query of a text condition: payload words live in the `payload` column, so a
/// search of messages only is limited to the `body` column.
pub(crate) fn fts5_query(phrases: &[Vec<String>], within: TextIn) -> String {
    match within {
        TextIn::All => quoted(phrases),
        TextIn::Messages => format!("body : ({})", quoted(phrases)),
    }
}

/// A `to_tsquery` of the phrases over message words only: those carry weight A in
/// `logs_text.tsv` (payload words the default, D). Words hold only letters and digits.
fn tsquery_of_messages(phrases: &[Vec<String>]) -> String {
    phrases.iter().map(|p| p.iter().map(|w| format!("'{w}':A")).collect::<Vec<_>>().join(" <-> ")).collect::<Vec<_>>().join(" & ")
}

/// An id that SQLite stores as its bytes: non-empty, even-length lowercase hex (what
/// OpenTelemetry trace and span ids are), so that reading it back as lowercase hex gives
/// exactly what was written.
pub(crate) fn is_hex_id(id: &str) -> bool {
    !id.is_empty() && id.len() % 2 == 0 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Level,
    HttpStatus,
    ErrorType,
    Feedback,
    UserId,
    SessionId,
    TraceId,
}

impl Column {
    fn sql(self) -> &'static str {
        match self {
            Column::Level => "level",
            Column::HttpStatus => "http_status",
            Column::ErrorType => "error_type",
            Column::Feedback => "feedback",
            Column::UserId => "user_id",
            Column::SessionId => "session_id",
            Column::TraceId => "trace_id",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numeric {
    LatencyMs,
    TtftMs,
    /// Input plus output tokens; a record with neither has none.
    Tokens,
    CostUsd,
    HttpStatus,
}

impl Numeric {
    fn sql(self) -> &'static str {
        match self {
            Numeric::LatencyMs => "latency_ms",
            Numeric::TtftMs => "ttft_ms",
            Numeric::Tokens => {
                "(CASE WHEN input_tokens IS NULL AND output_tokens IS NULL THEN NULL \
                 ELSE COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) END)"
            }
            Numeric::CostUsd => "cost_usd",
            Numeric::HttpStatus => "http_status",
        }
    }
}

/// A log search with names resolved: what the store runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogFilter {
    pub model_id: i64,
    /// Epoch ms, `from <= ts < to`.
    pub from: i64,
    pub to: i64,
    /// Only rows older than (ts, id): keyset pagination, newest first.
    pub before: Option<(i64, i64)>,
    /// Only these series (from provider / version / environment / operation filters).
    pub series: Option<Vec<i64>>,
    pub conds: Vec<Cond>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(backend: &str) -> Dialect {
        if backend == "postgres" { Dialect::Postgres } else { Dialect::Sqlite }
    }
}

impl LogFilter {
    /// The WHERE clause (without the keyword) and its parameters, numbered from `$1`.
    pub fn where_clause(&self, dialect: Dialect) -> (String, Vec<Bind>) {
        let (sql, binds, _) = self.build(dialect);
        (sql, binds)
    }

    /// The clause in two parts: the range (model, time, cursor; what the index serves) and
    /// the filters as one boolean expression (`1 = 1` when there are none), sharing one
    /// parameter list.
    pub fn where_parts(&self, dialect: Dialect) -> (String, String, Vec<Bind>) {
        let (sql, binds, split) = self.build(dialect);
        let filters = sql[split..].strip_prefix(" AND ").unwrap_or("1 = 1").to_string();
        (sql[..split].to_string(), filters, binds)
    }

    fn build(&self, dialect: Dialect) -> (String, Vec<Bind>, usize) {
        let mut binds: Vec<Bind> = Vec::new();
        let mut p = |b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        // With a cursor, the range's upper end moves down to it: the index scan (newest first)
        // then starts at the cursor instead of skipping every row of the pages before, so a
        // deep page costs what the first one does.
        let upper = self.upper();
        let mut sql = format!("model_id = {} AND ts >= {} AND ts < {}", p(Bind::Int(self.model_id)), p(Bind::Int(self.from)), p(Bind::Int(upper)));
        if let Some((ts, id)) = self.before {
            let b = p(Bind::Int(ts));
            let c = p(Bind::Int(id));
            let _ = write!(sql, " AND (ts < {b} OR id < {c})");
        }
        let split = sql.len();
        if let Some(series) = &self.series {
            let ids: Vec<String> = series.iter().map(|i| i.to_string()).collect();
            let _ = write!(sql, " AND series_id IN ({})", if ids.is_empty() { "NULL".to_string() } else { ids.join(",") });
        }
        for c in &self.conds {
            match c {
                Cond::Flag(bit, set) => {
                    let _ = write!(sql, " AND (flags & {bit}) {} 0", if *set { "<>" } else { "=" });
                }
                // SQLite stores lowercase hex ids as their bytes (`sqlite::id_value`), older rows
                // may hold them as text: match either form.
                Cond::Eq(Column::TraceId, Bind::Text(v)) if dialect == Dialect::Sqlite && is_hex_id(v) => {
                    let (a, b) = (p(Bind::Text(v.clone())), p(Bind::Text(v.clone())));
                    let _ = write!(sql, " AND trace_id IN ({a}, unhex({b}))");
                }
                Cond::Eq(col, v) => {
                    let _ = write!(sql, " AND {} = {}", col.sql(), p(v.clone()));
                }
                Cond::IsNull(col) => {
                    let _ = write!(sql, " AND {} IS NULL", col.sql());
                }
                Cond::Between(expr, min, max) => {
                    if let Some(v) = min {
                        let _ = write!(sql, " AND {} >= {}", expr.sql(), p(Bind::Real(*v)));
                    }
                    if let Some(v) = max {
                        let _ = write!(sql, " AND {} <= {}", expr.sql(), p(Bind::Real(*v)));
                    }
                }
                Cond::Text(phrases, within) => {
                    let _ = match dialect {
                        // Logs stored before the index file existed are in the old index of the
                        // main file; later ones in the file attached as `fts` (`store::fulltext`).
                        Dialect::Sqlite => {
                            let q = p(Bind::Text(fts5_query(phrases, *within)));
                            let q2 = p(Bind::Text(fts5_query(phrases, *within)));
                            write!(
                                sql,
                                " AND id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH {q} \
                                 UNION ALL SELECT rowid FROM fts.logs_fts WHERE logs_fts MATCH {q2})"
                            )
                        }
                        Dialect::Postgres if *within == TextIn::Messages => {
                            let q = p(Bind::Text(tsquery_of_messages(phrases)));
                            write!(sql, " AND id IN (SELECT log_id FROM logs_text WHERE tsv @@ to_tsquery('simple', {q}))")
                        }
                        Dialect::Postgres => {
                            let q = p(Bind::Text(quoted(phrases)));
                            write!(sql, " AND id IN (SELECT log_id FROM logs_text WHERE tsv @@ websearch_to_tsquery('simple', {q}))")
                        }
                    };
                }
                Cond::Meta(key, value) => match dialect {
                    Dialect::Sqlite => {
                        let _ = write!(sql, " AND {}", sqlite_meta_sql(key, value.as_deref(), super::SQLITE_METADATA, &mut p));
                    }
                    Dialect::Postgres => {
                        let k = p(Bind::Text(key.clone()));
                        match value {
                            Some(v) => {
                                let _ = write!(sql, " AND (metadata::jsonb ->> {k}) = {}", p(Bind::Text(v.clone())));
                            }
                            None => {
                                let _ = write!(sql, " AND (metadata IS NULL OR NOT jsonb_exists(metadata::jsonb, {k}))");
                            }
                        }
                    }
                },
            }
        }
        (sql, binds, split)
    }
}

/// A `Cond::Meta` on SQLite over the metadata expression `m` (JSON text or NULL).
pub(crate) fn sqlite_meta_sql(key: &str, value: Option<&str>, m: &str, p: &mut impl FnMut(Bind) -> String) -> String {
    // Keys are checked to be plain (letters, digits, _ - . /), so quoting them inside the JSON
    // path is safe; the path itself is still bound.
    let path = p(Bind::Text(format!("$.\"{key}\"")));
    match value {
        Some(v) => {
            let path2 = p(Bind::Text(format!("$.\"{key}\"")));
            format!(
                "(CASE json_type({m}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                 ELSE CAST(json_extract({m}, {path2}) AS TEXT) END) = {}",
                p(Bind::Text(v.to_string()))
            )
        }
        None => format!("({m} IS NULL OR json_type({m}, {path}) IS NULL)"),
    }
}

/// A stored log as `LogFilter::matches` reads it: a `StoredLog`, or a row of a decoded block
/// read in place (`store::blocks`).
pub(crate) trait RowView {
    fn id(&self) -> i64;
    fn ts(&self) -> i64;
    fn model_id(&self) -> i64;
    fn series_id(&self) -> i64;
    fn flags(&self) -> i64;
    fn level(&self) -> i64;
    fn http_status(&self) -> Option<i64>;
    fn latency_ms(&self) -> Option<f64>;
    fn ttft_ms(&self) -> Option<f64>;
    fn input_tokens(&self) -> Option<i64>;
    fn output_tokens(&self) -> Option<i64>;
    fn cost_usd(&self) -> Option<f64>;
    fn feedback(&self) -> Option<i64>;
    fn error_type(&self) -> Option<&str>;
    fn user_id(&self) -> Option<&str>;
    fn session_id(&self) -> Option<&str>;
    /// The trace id as stored: text, or the bytes of a lowercase hex id.
    fn trace_id(&self) -> Value<'_>;
    fn metadata(&self) -> Option<&str>;
}

impl RowView for super::StoredLog {
    fn id(&self) -> i64 {
        self.id
    }
    fn ts(&self) -> i64 {
        self.row.ts
    }
    fn model_id(&self) -> i64 {
        self.row.model_id
    }
    fn series_id(&self) -> i64 {
        self.row.series_id
    }
    fn flags(&self) -> i64 {
        self.row.flags
    }
    fn level(&self) -> i64 {
        self.row.level
    }
    fn http_status(&self) -> Option<i64> {
        self.row.http_status
    }
    fn latency_ms(&self) -> Option<f64> {
        self.row.latency_ms
    }
    fn ttft_ms(&self) -> Option<f64> {
        self.row.ttft_ms
    }
    fn input_tokens(&self) -> Option<i64> {
        self.row.input_tokens
    }
    fn output_tokens(&self) -> Option<i64> {
        self.row.output_tokens
    }
    fn cost_usd(&self) -> Option<f64> {
        self.row.cost_usd
    }
    fn feedback(&self) -> Option<i64> {
        self.row.feedback
    }
    fn error_type(&self) -> Option<&str> {
        self.row.error_type.as_deref()
    }
    fn user_id(&self) -> Option<&str> {
        self.row.user_id.as_deref()
    }
    fn session_id(&self) -> Option<&str> {
        self.row.session_id.as_deref()
    }
    fn trace_id(&self) -> Value<'_> {
        self.row.trace_id.as_deref().map_or(Value::Null, Value::Text)
    }
    fn metadata(&self) -> Option<&str> {
        self.row.metadata.as_deref()
    }
}

impl LogFilter {
    /// The range's upper end: `to`, or lower with a cursor (see `build`).
    pub(crate) fn upper(&self) -> i64 {
        match self.before {
            Some((ts, _)) => self.to.min(ts.saturating_add(1)),
            None => self.to,
        }
    }

    /// The range part of the clause over a row: model, time and cursor.
    pub(crate) fn in_range(&self, r: &impl RowView) -> bool {
        let ts = r.ts();
        r.model_id() == self.model_id && ts >= self.from && ts < self.upper() && self.before.is_none_or(|(b, id)| ts < b || r.id() < id)
    }

    /// The filters of the clause over a row, as SQLite evaluates `build`'s SQL. Conditions that
    /// need SQLite's own semantics are answered by the caller: `text(i, id)` whether the
    /// `Cond::Text` at index `i` of `conds` holds for the log, `meta(i, json)` whether the
    /// `Cond::Meta` at `i` holds for a log with this metadata (logs without any are decided
    /// here).
    pub(crate) fn matches(&self, r: &impl RowView, text: impl Fn(usize, i64) -> bool, meta: impl Fn(usize, &str) -> bool) -> bool {
        if let Some(series) = &self.series
            && !series.contains(&r.series_id())
        {
            return false;
        }
        self.conds.iter().enumerate().all(|(i, c)| match c {
            Cond::Flag(bit, set) => ((r.flags() & bit) != 0) == *set,
            Cond::Eq(col, v) => match (col.value(r), v) {
                (Value::Null, _) => false,
                (Value::Int(a), Bind::Int(b)) => a == *b,
                (Value::Int(a), Bind::Real(b)) => a as f64 == *b,
                // Integer affinity: text that reads as a number compares as one.
                (Value::Int(a), Bind::Text(b)) => b.trim().parse::<f64>().is_ok_and(|b| a as f64 == b),
                (Value::Text(a), Bind::Text(b)) => a == b,
                // Text affinity: the number compares as its text.
                (Value::Text(a), Bind::Int(b)) => a == b.to_string(),
                (Value::Hex(a), Bind::Text(b)) => is_hex_of(a, b),
                (Value::Hex(a), Bind::Int(b)) => is_hex_of(a, &b.to_string()),
                (Value::Text(_) | Value::Hex(_), Bind::Real(_)) => false,
            },
            Cond::IsNull(col) => matches!(col.value(r), Value::Null),
            Cond::Between(expr, min, max) => match expr.value(r) {
                None => false,
                Some(v) => min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m),
            },
            Cond::Meta(_, value) => match r.metadata() {
                None => value.is_none(),
                Some(m) => meta(i, m),
            },
            Cond::Text(..) => text(i, r.id()),
        })
    }
}

/// Whether `text` is `bytes` written as lowercase hex.
fn is_hex_of(bytes: &[u8], text: &str) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.len() == bytes.len() * 2
        && bytes.iter().zip(text.as_bytes().chunks(2)).all(|(b, t)| t[0] == DIGITS[(b >> 4) as usize] && t[1] == DIGITS[(b & 15) as usize])
}

/// A column's value in a row, for `matches`.
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    /// A lowercase hex id, as its bytes.
    Hex(&'a [u8]),
}

impl Column {
    fn value(self, r: &impl RowView) -> Value<'_> {
        let v = match self {
            Column::Level => Some(Value::Int(r.level())),
            Column::HttpStatus => r.http_status().map(Value::Int),
            Column::Feedback => r.feedback().map(Value::Int),
            Column::ErrorType => r.error_type().map(Value::Text),
            Column::UserId => r.user_id().map(Value::Text),
            Column::SessionId => r.session_id().map(Value::Text),
            Column::TraceId => return r.trace_id(),
        };
        v.unwrap_or(Value::Null)
    }
}

impl Numeric {
    fn value(self, r: &impl RowView) -> Option<f64> {
        match self {
            Numeric::LatencyMs => r.latency_ms(),
            Numeric::TtftMs => r.ttft_ms(),
            Numeric::CostUsd => r.cost_usd(),
            Numeric::HttpStatus => r.http_status().map(|v| v as f64),
            Numeric::Tokens => match (r.input_tokens(), r.output_tokens()) {
                (None, None) => None,
                (a, b) => Some((a.unwrap_or(0) as i128 + b.unwrap_or(0) as i128) as f64),
            },
        }
    }
}

/// Binds a `where_clause` parameter list to a sqlx query, in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                $crate::store::filter::Bind::Int(v) => q.bind(*v),
                $crate::store::filter::Bind::Real(v) => q.bind(*v),
                $crate::store::filter::Bind::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_bound_not_spliced() {
        let f = LogFilter {
            model_id: 7,
            from: 1,
            to: 2,
            before: Some((5, 9)),
            series: Some(vec![3, 4]),
            conds: vec![
                Cond::Flag(1, true),
                Cond::Eq(Column::UserId, Bind::Text("x' OR 1=1 --".into())),
                Cond::IsNull(Column::ErrorType),
                Cond::Between(Numeric::Tokens, Some(1.0), None),
                Cond::Meta("team".into(), Some("a".into())),
            ],
        };
        let (sql, binds) = f.where_clause(Dialect::Sqlite);
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert!(sql.contains("series_id IN (3,4)"), "{sql}");
        assert!(sql.contains("(flags & 1) <> 0"), "{sql}");
        assert!(sql.contains("error_type IS NULL"), "{sql}");
        // model, from, to (the cursor's), 2 for the cursor, user, tokens, 2 paths and the
        // metadata value.
        assert_eq!(binds.len(), 10, "{sql}");
        assert_eq!(binds[2], Bind::Int(2), "the range's end stays when the cursor lies beyond it");
        assert!(sql.contains(&format!("${}", binds.len())));
        let (pg, pg_binds) = f.where_clause(Dialect::Postgres);
        assert!(pg.contains("metadata::jsonb ->>"), "{pg}");
        assert_eq!(pg_binds.len(), 9);
        let deep = LogFilter { before: Some((5, 9)), from: 1, to: 100, ..Default::default() };
        assert_eq!(deep.where_clause(Dialect::Sqlite).1[2], Bind::Int(6), "the cursor lowers the range's end");
    }

    #[test]
    fn search_text_becomes_plain_quoted_phrases() {
        let p = text_phrases(r#"timeout "rate limit" NEAR(a b) OR x* -y 'z'"#);
        assert_eq!(quoted(&p), r#""timeout" "rate limit" "NEAR" "a" "b" "OR" "x" "y" "z""#);
        assert_eq!(quoted(&text_phrases("Zürich привет 東京")), r#""Zürich" "привет" "東京""#);
        assert_eq!(quoted(&text_phrases(r#"unbalanced "quote here"#)), r#""unbalanced" "quote here""#);
        assert!(text_phrases(r#"*** "" ; --"#).is_empty());
    }

    #[test]
    fn parts_split_the_range_from_the_filters() {
        let f = LogFilter { model_id: 1, from: 2, to: 3, conds: vec![Cond::Flag(1, true), Cond::IsNull(Column::UserId)], ..Default::default() };
        let (range, filters, binds) = f.where_parts(Dialect::Sqlite);
        assert_eq!(range, "model_id = $1 AND ts >= $2 AND ts < $3");
        assert_eq!(filters, "(flags & 1) <> 0 AND user_id IS NULL");
        assert_eq!(binds.len(), 3);
        let (_, none, _) = LogFilter::default().where_parts(Dialect::Postgres);
        assert_eq!(none, "1 = 1");
    }

    #[test]
    fn no_matching_series_matches_nothing() {
        let f = LogFilter { series: Some(vec![]), ..Default::default() };
        assert!(f.where_clause(Dialect::Postgres).0.contains("series_id IN (NULL)"));
    }
}
