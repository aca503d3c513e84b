//! The native log record and custom metric point: parsing and validation of what clients send.
//!
//! This module turns bytes into `LogRecord`s and `MetricPoint`s, or into errors that name the
//! record and field (`logs[3].latency_ms`). It never decides what is stored (that is `rules`)
//! and never touches the database. A batch is split into records first (NDJSON lines or JSON
//! array elements), so one bad record never hides the others.
//!
//! Unknown top-level fields with a scalar value are kept in `metadata`; unknown fields holding
//! an object or array are refused, so nothing is silently dropped.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// Limits on what one request may carry. The defaults suit LLM gateways; all are configurable.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Records (or metric points) in one request.
    pub max_records: usize,
    /// Identifiers and labels: model, provider, user_id, trace_id, metadata keys, ...
    pub max_name_bytes: usize,
    /// `message`, `error_message` and metadata string values.
    pub max_text_bytes: usize,
    /// `request` and `response` as sent; longer payloads are refused. Storage truncates further
    /// to `payload::Payload::cap` and flags the truncation.
    pub max_payload_bytes: usize,
    pub max_metadata_entries: usize,
    /// How far in the future a timestamp may lie (clock skew allowance).
    pub max_future_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_records: 10_000,
            max_name_bytes: 256,
            max_text_bytes: 16 * 1024,
            max_payload_bytes: 1024 * 1024,
            max_metadata_entries: 64,
            max_future_ms: 24 * 3_600_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    #[default]
    Info = 2,
    Warn = 3,
    Error = 4,
    Fatal = 5,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" | "information" | "notice" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" => Level::Error,
            "fatal" | "critical" | "crit" | "emergency" | "alert" => Level::Fatal,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }
    pub fn from_i64(v: i64) -> Level {
        match v {
            0 => Level::Trace,
            1 => Level::Debug,
            3 => Level::Warn,
            4 => Level::Error,
            5 => Level::Fatal,
            _ => Level::Info,
        }
    }
}

/// A metadata value: the schema allows strings, numbers and booleans only.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl MetaValue {
    pub fn as_text(&self) -> String {
        match self {
            MetaValue::Str(s) => s.clone(),
            MetaValue::Num(n) => format_num(*n),
            MetaValue::Bool(b) => b.to_string(),
        }
    }
}

fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// One inference or event, as every input (native, OTLP) maps to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogRecord {
    pub timestamp: i64,
    pub model: String,
    pub model_version: String,
    pub provider: String,
    pub environment: String,
    pub operation: String,
    pub error: bool,
    pub http_status: Option<i64>,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub cache_hit: bool,
    pub level: Level,
    pub message: Option<String>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub request: Option<String>,
    pub response: Option<String>,
    pub metadata: Vec<(String, MetaValue)>,
    pub feedback: Option<i64>,
}

impl LogRecord {
    pub fn metadata_get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Metadata as a compact JSON object, or None when empty: keys in byte order, the last of
    /// repeated keys kept (what a `serde_json::Map` of the entries writes), whole numbers as
    /// integers. Written straight from the entries, without building a map (this runs once per
    /// stored record at ingest).
    pub fn metadata_json(&self) -> Option<String> {
        use serde::ser::{SerializeMap, Serializer as _};
        if self.metadata.is_empty() {
            return None;
        }
        let m = &self.metadata;
        // By key, and for a repeated key the latest entry first, which `dedup_by` keeps.
        let mut order: Vec<usize> = (0..m.len()).collect();
        order.sort_unstable_by(|&a, &b| m[a].0.cmp(&m[b].0).then(b.cmp(&a)));
        order.dedup_by(|later, kept| m[*later].0 == m[*kept].0);
        let mut out = Vec::with_capacity(16 * m.len() + 2);
        let mut ser = serde_json::Serializer::new(&mut out);
        let mut map = ser.serialize_map(Some(order.len())).ok()?;
        for i in order {
            map.serialize_entry(&m[i].0, &MetaJson(&m[i].1)).ok()?;
        }
        map.end().ok()?;
        String::from_utf8(out).ok()
    }
}

/// A metadata value as `metadata_json` writes it.
struct MetaJson<'a>(&'a MetaValue);

impl serde::Serialize for MetaJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            MetaValue::Str(v) => s.serialize_str(v),
            // Whole numbers stay integers (as sent, and as breakdowns and filters write them).
            MetaValue::Num(n) if n.fract() == 0.0 && n.abs() < 9e15 => s.serialize_i64(*n as i64),
            MetaValue::Num(n) if n.is_finite() => s.serialize_f64(*n),
            MetaValue::Num(_) => s.serialize_unit(),
            MetaValue::Bool(b) => s.serialize_bool(*b),
        }
    }
}

/// A custom metric sample reported by the user's jobs: accuracy, drift, GPU utilisation, ...
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub timestamp: i64,
    pub model: String,
    pub name: String,
    pub value: f64,
    pub labels: Vec<(String, String)>,
}

impl MetricPoint {
    pub fn labels_json(&self) -> Option<String> {
        if self.labels.is_empty() {
            return None;
        }
        let map: serde_json::Map<String, serde_json::Value> =
            self.labels.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        Some(serde_json::Value::Object(map).to_string())
    }
}

/// A refused record: its position in the batch, the field and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rejection {
    pub index: usize,
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(index: usize, err: Error) -> Self {
        Rejection { index, field: err.field().unwrap_or("").to_string(), code: err.code(), message: err.public_message() }
    }
}

/// How a request body encodes its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// A JSON array of objects, or a single object.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Splits a body into raw records. Errors here concern the whole body (status 400/413).
pub fn split_records<'a>(body: &'a str, format: BodyFormat, what: &str, limits: &Limits) -> Result<Vec<&'a str>> {
    let records: Vec<&str> = match format {
        BodyFormat::Ndjson => body.lines().map(str::trim).filter(|l| !l.is_empty()).collect(),
        BodyFormat::Json => {
            let trimmed = body.trim_start();
            if trimmed.starts_with('{') {
                vec![body.trim()]
            } else {
                match serde_json::from_str::<Vec<&RawValue>>(body) {
                    Ok(raw) => raw.into_iter().map(RawValue::get).collect(),
                    // A NaN or Infinity token fails the whole array; split it by hand so that only
                    // its record is refused, and by name (`parse_log` finds the field).
                    Err(e) => match non_finite_at(body, &e).and_then(|_| split_array(body)) {
                        Some(records) => records,
                        None => return Err(Error::malformed(what, format!("body is not a JSON array of objects: {e}"))),
                    },
                }
            }
        }
    };
    if records.is_empty() {
        return Err(Error::invalid(what, "the batch is empty"));
    }
    if records.len() > limits.max_records {
        return Err(Error::TooLarge {
            field: what.to_string(),
            message: format!("{} records in one request; the limit is {}", records.len(), limits.max_records),
        });
    }
    Ok(records)
}

/// Parses one log record. `prefix` is how the record is named in errors, e.g. `logs[3]`.
pub fn parse_log(raw: &str, prefix: &str, now_ms: i64, limits: &Limits) -> Result<LogRecord> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let seed = LogSeed { limits, now_ms };
    let parsed = seed.deserialize(&mut de).and_then(|r| de.end().map(|_| r));
    let mut rec = parsed.map_err(|e| field_error(prefix, raw, e))?;
    rec.finish(prefix, now_ms)?;
    Ok(rec)
}

/// Parses one custom metric point.
pub fn parse_metric(raw: &str, prefix: &str, now_ms: i64, limits: &Limits) -> Result<MetricPoint> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let seed = MetricSeed { limits, now_ms };
    let parsed = seed.deserialize(&mut de).and_then(|r| de.end().map(|_| r));
    let p = parsed.map_err(|e| field_error(prefix, raw, e))?;
    if p.model.is_empty() {
        return Err(Error::invalid(format!("{prefix}.model"), "model is required"));
    }
    if p.name.is_empty() {
        return Err(Error::invalid(format!("{prefix}.name"), "name is required"));
    }
    Ok(p)
}

// Errors from inside the visitor carry the field name before a NUL byte; serde's own errors
// (syntax, wrong top-level type) do not, and are reported against the record itself.
const SEP: char = '\u{0}';

fn field_error(prefix: &str, raw: &str, e: serde_json::Error) -> Error {
    let text = e.to_string();
    if let Some((field, rest)) = text.split_once(SEP) {
        // serde_json appends " at line L column C" to custom errors; keep the message clean.
        let msg = rest.rsplit_once(" at line ").map(|(m, _)| m).unwrap_or(rest);
        let path = if field.is_empty() { prefix.to_string() } else { format!("{prefix}.{field}") };
        return Error::invalid(path, msg.to_string());
    }
    // (A bare `NaN` as the record has no field to name: the record is malformed.)
    if let Some(field) = non_finite_at(raw, &e).filter(|f| !f.is_empty()) {
        return Error::invalid(format!("{prefix}.{field}"), "must be a finite number");
    }
    if e.is_syntax() || e.is_eof() {
        Error::malformed(prefix, format!("invalid JSON: {text}"))
    } else {
        Error::invalid(prefix, format!("a record must be a JSON object: {text}"))
    }
}

fn fail<E: de::Error>(field: &str, msg: impl fmt::Display) -> E {
    E::custom(format!("{field}{SEP}{msg}"))
}

// ----- non-finite numbers (error path only) -------------------------------------------------------

/// The path (`latency_ms`, `metadata.score`) of the value that `e` failed on, when that value is a
/// number JSON cannot carry: `NaN`, `Infinity`, `-Infinity` (as Python's `json` writes them) or one
/// beyond f64 (`1e999`). serde_json refuses these in its tokenizer, before any visitor sees a field,
/// so its error names no field. Called only after parsing failed: the happy path pays nothing.
fn non_finite_at(raw: &str, e: &serde_json::Error) -> Option<String> {
    if e.line() == 0 {
        return None;
    }
    // serde_json counts lines from 1 and columns in bytes from the line's start; `at` falls inside
    // the offending token or just after it (it may stop there or at the token's first byte).
    let line_start = if e.line() == 1 { 0 } else { raw.match_indices('\n').nth(e.line() - 2)?.0 + 1 };
    let mut walk = Lenient { s: raw, i: 0, at: line_start + e.column(), found: None };
    walk.value("", 0);
    walk.found
}

/// The elements of a JSON array as text, when its structure is sound apart from number tokens.
fn split_array(body: &str) -> Option<Vec<&str>> {
    let mut walk = Lenient { s: body, i: 0, at: usize::MAX, found: None };
    walk.ws();
    walk.eat(b'[')?;
    let mut out = Vec::new();
    walk.ws();
    if walk.eat(b']').is_none() {
        loop {
            walk.ws();
            let start = walk.i;
            if !walk.value("", 0) {
                return None;
            }
            out.push(&body[start..walk.i]);
            walk.ws();
            if walk.eat(b']').is_some() {
                break;
            }
            walk.eat(b',')?;
        }
    }
    walk.ws();
    (walk.i == body.len()).then_some(out)
}

/// A JSON walker that takes any bare token (`NaN`, `1e999`, `true`) as a value: strict about
/// structure (quotes, brackets, commas, colons), blind to what serde_json already checks.
struct Lenient<'a> {
    s: &'a str,
    i: usize,
    /// The byte where the parser failed; a non-finite token around it is recorded in `found`.
    at: usize,
    found: Option<String>,
}

impl<'a> Lenient<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    /// A string at the cursor (on its opening quote); its text as written, escapes included.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => break,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        self.s.get(start..self.i - 1)
    }

    /// Walks one value named `path`. False when the text is not walkable or the offending token
    /// was found (either way there is nothing more to learn).
    fn value(&mut self, path: &str, depth: usize) -> bool {
        // serde_json stops at 128 levels; records never need more than a few.
        if depth > 16 {
            return false;
        }
        self.ws();
        match self.peek() {
            None => false,
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.eat(b'}').is_some() {
                    return true;
                }
                loop {
                    self.ws();
                    let Some(key) = self.string() else { return false };
                    let child = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
                    self.ws();
                    if self.eat(b':').is_none() || !self.value(&child, depth + 1) {
                        return false;
                    }
                    self.ws();
                    if self.eat(b'}').is_some() {
                        return true;
                    }
                    if self.eat(b',').is_none() {
                        return false;
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.eat(b']').is_some() {
                    return true;
                }
                loop {
                    if !self.value(path, depth + 1) {
                        return false;
                    }
                    self.ws();
                    if self.eat(b']').is_some() {
                        return true;
                    }
                    if self.eat(b',').is_none() {
                        return false;
                    }
                }
            }
            Some(b'"') => self.string().is_some(),
            Some(_) => {
                let start = self.i;
                while self.peek().is_some_and(|b| !b.is_ascii_whitespace() && !b",:{}[]\"".contains(&b)) {
                    self.i += 1;
                }
                // Rust's float syntax is a superset of JSON's and knows NaN, inf and Infinity.
                let token = &self.s[start..self.i];
                if (start..=self.i).contains(&self.at) && token.parse::<f64>().is_ok_and(|v| !v.is_finite()) {
                    self.found = Some(path.to_string());
                    return false;
                }
                self.i > start
            }
        }
    }
}

// ----- typed value readers ----------------------------------------------------------------------

/// Any JSON value, read without building a tree for the types the schema accepts.
enum Scalar {
    Null,
    Bool(bool),
    Num(f64),
    Int(i64),
    Str(String),
    Nested,
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Scalar, E> {
        Ok(i64::try_from(v).map(Scalar::Int).unwrap_or(Scalar::Num(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Num(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    // Nested values are skipped without recursion limits of our own: serde_json caps depth at 128.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested)
    }
}

impl Scalar {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::Num(_) | Scalar::Int(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Nested => "an object or array",
        }
    }

    fn string<E: de::Error>(self, field: &str, max: usize) -> std::result::Result<Option<String>, E> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Str(s) if s.len() > max => Err(fail(field, format!("longer than {max} bytes ({} bytes)", s.len()))),
            Scalar::Str(s) => Ok(if s.is_empty() { None } else { Some(s) }),
            other => Err(fail(field, format!("expected a string, got {}", other.kind()))),
        }
    }

    fn number<E: de::Error>(self, field: &str, min: f64, max: f64) -> std::result::Result<Option<f64>, E> {
        let v = match self {
            Scalar::Null => return Ok(None),
            Scalar::Num(v) => v,
            Scalar::Int(v) => v as f64,
            other => return Err(fail(field, format!("expected a number, got {}", other.kind()))),
        };
        if !v.is_finite() || v < min || v > max {
            return Err(fail(field, format!("must be between {min} and {max}")));
        }
        Ok(Some(v))
    }

    fn integer<E: de::Error>(self, field: &str, min: i64, max: i64) -> std::result::Result<Option<i64>, E> {
        let v = match self {
            Scalar::Null => return Ok(None),
            Scalar::Int(v) => v,
            Scalar::Num(v) if v.fract() == 0.0 && v.abs() < 9e15 => v as i64,
            Scalar::Num(_) => return Err(fail(field, "expected a whole number")),
            other => return Err(fail(field, format!("expected a whole number, got {}", other.kind()))),
        };
        if v < min || v > max {
            return Err(fail(field, format!("must be between {min} and {max}")));
        }
        Ok(Some(v))
    }

    fn boolean<E: de::Error>(self, field: &str) -> std::result::Result<Option<bool>, E> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Bool(b) => Ok(Some(b)),
            other => Err(fail(field, format!("expected true or false, got {}", other.kind()))),
        }
    }

    /// A metadata value (string, number or boolean); None for null, which is skipped.
    fn meta_value<E: de::Error>(self, field: &str, max_text: usize, nested: &str) -> std::result::Result<Option<MetaValue>, E> {
        Ok(Some(match self {
            Scalar::Null => return Ok(None),
            Scalar::Bool(b) => MetaValue::Bool(b),
            Scalar::Int(i) => MetaValue::Num(i as f64),
            Scalar::Num(n) => MetaValue::Num(n),
            Scalar::Str(s) if s.len() > max_text => return Err(fail(field, format!("longer than {max_text} bytes"))),
            Scalar::Str(s) => MetaValue::Str(s),
            Scalar::Nested => return Err(fail(field, nested)),
        }))
    }

    /// RFC 3339 text, or epoch milliseconds; numbers below 10^11 are taken as epoch seconds
    /// (10^11 ms is 1973, 10^11 s is the year 5138), which is what most SDKs mean.
    fn timestamp<E: de::Error>(self, field: &str) -> std::result::Result<Option<i64>, E> {
        match self {
            Scalar::Null => Ok(None),
            Scalar::Int(v) if (0..100_000_000_000).contains(&v) => Ok(Some(v * 1000)),
            Scalar::Int(v) if v >= 0 => Ok(Some(v)),
            Scalar::Num(v) if v.is_finite() && (0.0..1e11).contains(&v) => Ok(Some((v * 1000.0) as i64)),
            Scalar::Num(v) if v.is_finite() && (1e11..1e15).contains(&v) => Ok(Some(v as i64)),
            Scalar::Str(s) => {
                let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| fail(field, format!("not an RFC 3339 time ({e}); e.g. 2026-11-22T10:00:00Z")))?;
                Ok(Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
            }
            Scalar::Int(_) | Scalar::Num(_) => Err(fail(field, "expected epoch milliseconds or an RFC 3339 time")),
            other => Err(fail(field, format!("expected a time, got {}", other.kind()))),
        }
    }
}

fn check_future<E: de::Error>(field: &str, ts: i64, now_ms: i64, limits: &Limits) -> std::result::Result<(), E> {
    if ts > now_ms + limits.max_future_ms {
        return Err(fail(field, "lies more than 24 h in the future; check the client's clock and units"));
    }
    Ok(())
}

// ----- log records -------------------------------------------------------------------------------

struct LogSeed<'l> {
    limits: &'l Limits,
    now_ms: i64,
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_> {
    type Value = LogRecord;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<LogRecord, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_> {
    type Value = LogRecord;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a log record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<LogRecord, A::Error> {
        let l = self.limits;
        let name = l.max_name_bytes;
        let text = l.max_text_bytes;
        let mut r = LogRecord { timestamp: i64::MIN, ..Default::default() };
        let mut status: Option<String> = None;
        let mut level: Option<String> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let key: &str = &key;
            if key == "metadata" {
                r.metadata.extend(map.next_value_seed(MetaSeed { limits: l, existing: r.metadata.len() })?);
                continue;
            }
            let v: Scalar = map.next_value_seed(ScalarSeed)?;
            match key {
                "timestamp" => {
                    if let Some(ts) = v.timestamp(key)? {
                        check_future(key, ts, self.now_ms, l)?;
                        r.timestamp = ts;
                    }
                }
                "model" => r.model = v.string(key, name)?.unwrap_or_default(),
                "model_version" => r.model_version = v.string(key, name)?.unwrap_or_default(),
                "provider" => r.provider = v.string(key, name)?.unwrap_or_default(),
                "environment" => r.environment = v.string(key, name)?.unwrap_or_default(),
                "operation" => r.operation = v.string(key, name)?.unwrap_or_default(),
                "status" => status = v.string(key, name)?,
                "level" => level = v.string(key, name)?,
                "http_status" => r.http_status = v.integer(key, 100, 599)?,
                "latency_ms" => r.latency_ms = v.number(key, 0.0, 1e9)?,
                "ttft_ms" => r.ttft_ms = v.number(key, 0.0, 1e9)?,
                "input_tokens" => r.input_tokens = v.integer(key, 0, 1_000_000_000)?,
                "output_tokens" => r.output_tokens = v.integer(key, 0, 1_000_000_000)?,
                "cached_tokens" => r.cached_tokens = v.integer(key, 0, 1_000_000_000)?,
                "cost_usd" => r.cost_usd = v.number(key, 0.0, 1e9)?,
                "cache_hit" => r.cache_hit = v.boolean(key)?.unwrap_or(false),
                "message" => r.message = v.string(key, text)?,
                "error_type" => r.error_type = v.string(key, name)?,
                "error_message" => r.error_message = v.string(key, text)?,
                "user_id" => r.user_id = v.string(key, name)?,
                "session_id" => r.session_id = v.string(key, name)?,
                "trace_id" => r.trace_id = v.string(key, name)?,
                "span_id" => r.span_id = v.string(key, name)?,
                "request" => r.request = v.string(key, l.max_payload_bytes)?,
                "response" => r.response = v.string(key, l.max_payload_bytes)?,
                "feedback" => r.feedback = v.integer(key, -1, 1)?,
                _ => {
                    // Unknown scalars are kept in metadata; nested values are refused.
                    if key.len() > name {
                        return Err(fail("", format!("field name longer than {name} bytes")));
                    }
                    let nested = "unknown field with an object or array value; put extra data in metadata as strings, numbers or booleans";
                    let Some(value) = v.meta_value(key, text, nested)? else { continue };
                    if r.metadata.len() >= l.max_metadata_entries {
                        return Err(fail("metadata", format!("more than {} metadata entries", l.max_metadata_entries)));
                    }
                    r.metadata.push((key.to_string(), value));
                }
            }
        }
        if let Some(s) = status {
            r.error = match s.to_ascii_lowercase().as_str() {
                "ok" | "success" | "unset" => false,
                "error" | "failed" | "failure" => true,
                _ => return Err(fail("status", "must be \"ok\" or \"error\"")),
            };
        } else {
            // Without an explicit status, an error type or an HTTP error status means failure.
            r.error = r.error_type.is_some() || r.http_status.is_some_and(|s| s >= 400);
        }
        r.level = match level {
            Some(s) => Level::parse(&s).ok_or_else(|| fail::<A::Error>("level", "must be one of trace, debug, info, warn, error, fatal"))?,
            None if r.error => Level::Error,
            None => Level::Info,
        };
        Ok(r)
    }
}

impl LogRecord {
    fn finish(&mut self, prefix: &str, now_ms: i64) -> Result<()> {
        if self.model.is_empty() {
            return Err(Error::invalid(format!("{prefix}.model"), "model is required"));
        }
        if self.timestamp == i64::MIN {
            self.timestamp = now_ms;
        }
        Ok(())
    }
}

struct MetaSeed<'l> {
    limits: &'l Limits,
    existing: usize,
}

impl<'de> DeserializeSeed<'de> for MetaSeed<'_> {
    type Value = Vec<(String, MetaValue)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed<'_> {
    type Value = Vec<(String, MetaValue)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of strings, numbers and booleans")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let l = self.limits;
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let field = format!("metadata.{key}");
            if key.is_empty() || key.len() > l.max_name_bytes {
                return Err(fail(&field, format!("metadata keys must be 1 to {} bytes", l.max_name_bytes)));
            }
            if self.existing + out.len() >= l.max_metadata_entries {
                return Err(fail("metadata", format!("more than {} metadata entries", l.max_metadata_entries)));
            }
            let nested = "metadata values must be strings, numbers or booleans, not objects or arrays";
            let Some(value) = map.next_value_seed(ScalarSeed)?.meta_value(&field, l.max_text_bytes, nested)? else { continue };
            out.push((key.into_owned(), value));
        }
        Ok(out)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> std::result::Result<Self::Value, A::Error> {
        Err(fail("metadata", "expected an object, got an array"))
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> std::result::Result<Self::Value, E> {
        Err(fail("metadata", "expected an object, got a string"))
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> std::result::Result<Self::Value, E> {
        Err(fail("metadata", "expected an object, got a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> std::result::Result<Self::Value, E> {
        Err(fail("metadata", "expected an object, got a number"))
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> std::result::Result<Self::Value, E> {
        Err(fail("metadata", "expected an object, got a number"))
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> std::result::Result<Self::Value, E> {
        Err(fail("metadata", "expected an object, got a number"))
    }
}

// ----- metric points -----------------------------------------------------------------------------

struct MetricSeed<'l> {
    limits: &'l Limits,
    now_ms: i64,
}

impl<'de> DeserializeSeed<'de> for MetricSeed<'_> {
    type Value = MetricPoint;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<MetricPoint, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetricSeed<'_> {
    type Value = MetricPoint;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric point object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<MetricPoint, A::Error> {
        let l = self.limits;
        let mut p = MetricPoint { timestamp: self.now_ms, model: String::new(), name: String::new(), value: f64::NAN, labels: Vec::new() };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let key: &str = &key;
            if key == "labels" {
                let meta = map.next_value_seed(MetaSeed { limits: l, existing: 0 }).map_err(|e| {
                    // Reuse the metadata reader but name the field correctly.
                    let t = e.to_string().replacen("metadata", "labels", 1);
                    de::Error::custom(t)
                })?;
                p.labels = meta.into_iter().map(|(k, v)| (k, v.as_text())).collect();
                continue;
            }
            let v = map.next_value_seed(ScalarSeed)?;
            match key {
                "timestamp" => {
                    if let Some(ts) = v.timestamp(key)? {
                        check_future(key, ts, self.now_ms, l)?;
                        p.timestamp = ts;
                    }
                }
                "model" => p.model = v.string(key, l.max_name_bytes)?.unwrap_or_default(),
                "name" => {
                    let n = v.string(key, l.max_name_bytes)?.unwrap_or_default();
                    if !n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/')) {
                        return Err(fail(key, "metric names may use letters, digits and _ . - : / only"));
                    }
                    p.name = n;
                }
                "value" => p.value = v.number(key, -1e300, 1e300)?.ok_or_else(|| fail::<A::Error>("value", "value is required"))?,
                other => return Err(fail(other, "unknown field; a metric point has timestamp, model, name, value and labels")),
            }
        }
        if p.value.is_nan() {
            return Err(fail("value", "value is required"));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `metadata_json` as it was first written: through a `serde_json::Map`.
    fn metadata_json_via_map(r: &LogRecord) -> Option<String> {
        if r.metadata.is_empty() {
            return None;
        }
        let mut map = serde_json::Map::new();
        for (k, v) in &r.metadata {
            let v = match v {
                MetaValue::Str(s) => serde_json::Value::String(s.clone()),
                MetaValue::Num(n) if n.fract() == 0.0 && n.abs() < 9e15 => serde_json::Value::from(*n as i64),
                MetaValue::Num(n) => serde_json::Number::from_f64(*n).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
                MetaValue::Bool(b) => serde_json::Value::Bool(*b),
            };
            map.insert(k.clone(), v);
        }
        Some(serde_json::Value::Object(map).to_string())
    }

    #[test]
    fn metadata_is_written_as_a_sorted_json_object_with_the_last_of_repeated_keys() {
        let cases: Vec<Vec<(&str, MetaValue)>> = vec![
            vec![],
            vec![("b", MetaValue::Num(2.0)), ("a", MetaValue::Str("x\"y\n\u{e9}".into())), ("c", MetaValue::Bool(true))],
            vec![("k", MetaValue::Num(1.0)), ("k", MetaValue::Str("second".into())), ("j", MetaValue::Num(0.25)), ("k", MetaValue::Num(3.0))],
            vec![("big", MetaValue::Num(1e16)), ("neg", MetaValue::Num(-7.0)), ("frac", MetaValue::Num(-1.5e-7)), ("inf", MetaValue::Num(f64::INFINITY))],
            vec![("Z", MetaValue::Bool(false)), ("a", MetaValue::Bool(true)), ("\u{e9}", MetaValue::Str(String::new())), ("_", MetaValue::Num(0.0))],
        ];
        for entries in cases {
            let r = LogRecord { metadata: entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), ..Default::default() };
            assert_eq!(r.metadata_json(), metadata_json_via_map(&r), "{:?}", r.metadata);
        }
        let r = LogRecord { metadata: vec![("k".into(), MetaValue::Num(1.0)), ("k".into(), MetaValue::Num(2.0)), ("a".into(), MetaValue::Num(0.5))], ..Default::default() };
        assert_eq!(r.metadata_json().as_deref(), Some(r#"{"a":0.5,"k":2}"#));
    }

    const NOW: i64 = 1_800_000_000_000;

    fn parse(raw: &str) -> Result<LogRecord> {
        parse_log(raw, "logs[0]", NOW, &Limits::default())
    }

    fn field_of(r: Result<LogRecord>) -> String {
        r.unwrap_err().field().unwrap_or("").to_string()
    }

    #[test]
    fn full_record() {
        let r = parse(
            r#"{"timestamp":"2026-11-22T10:00:00.250Z","model":"gpt-4o","model_version":"2024-08-06","provider":"openai",
            "environment":"prod","operation":"chat","status":"error","http_status":429,"latency_ms":812.5,"ttft_ms":120,
            "input_tokens":100,"output_tokens":20,"cached_tokens":10,"cost_usd":0.001,"cache_hit":true,"level":"warn",
            "message":"m","error_type":"rate_limit","error_message":"slow down","user_id":"u1","session_id":"s1",
            "trace_id":"abc","span_id":"def","request":"hi","response":"hello","metadata":{"region":"eu","n":3,"b":true},
            "feedback":-1,"tenant":"t-1"}"#,
        )
        .unwrap();
        assert_eq!(r.timestamp, 1_795_341_600_250);
        assert_eq!(r.model, "gpt-4o");
        assert!(r.error);
        assert_eq!(r.http_status, Some(429));
        assert_eq!(r.latency_ms, Some(812.5));
        assert_eq!(r.ttft_ms, Some(120.0));
        assert_eq!(r.cached_tokens, Some(10));
        assert!(r.cache_hit);
        assert_eq!(r.level, Level::Warn);
        assert_eq!(r.feedback, Some(-1));
        assert_eq!(r.metadata_get("region"), Some(&MetaValue::Str("eu".into())));
        assert_eq!(r.metadata_get("n"), Some(&MetaValue::Num(3.0)));
        // Unknown scalar fields are kept in metadata.
        assert_eq!(r.metadata_get("tenant"), Some(&MetaValue::Str("t-1".into())));
        assert_eq!(r.metadata_json().unwrap(), r#"{"b":true,"n":3,"region":"eu","tenant":"t-1"}"#);
    }

    #[test]
    fn defaults_and_derived_status() {
        let r = parse(r#"{"model":"m"}"#).unwrap();
        assert_eq!(r.timestamp, NOW);
        assert!(!r.error);
        assert_eq!(r.level, Level::Info);
        let r = parse(r#"{"model":"m","http_status":503}"#).unwrap();
        assert!(r.error);
        assert_eq!(r.level, Level::Error);
        let r = parse(r#"{"model":"m","error_type":"timeout"}"#).unwrap();
        assert!(r.error);
        // Epoch seconds and milliseconds.
        assert_eq!(parse(r#"{"model":"m","timestamp":1790000000}"#).unwrap().timestamp, 1_790_000_000_000);
        assert_eq!(parse(r#"{"model":"m","timestamp":1790000000123}"#).unwrap().timestamp, 1_790_000_000_123);
        assert_eq!(parse(r#"{"model":"m","timestamp":1790000000.5}"#).unwrap().timestamp, 1_790_000_000_500);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(parse(r#"{"latency_ms":5}"#)), "logs[0].model");
        assert_eq!(field_of(parse(r#"{"model":"m","latency_ms":"fast"}"#)), "logs[0].latency_ms");
        assert_eq!(field_of(parse(r#"{"model":"m","latency_ms":-1}"#)), "logs[0].latency_ms");
        assert_eq!(field_of(parse(r#"{"model":"m","input_tokens":1.5}"#)), "logs[0].input_tokens");
        assert_eq!(field_of(parse(r#"{"model":"m","status":"maybe"}"#)), "logs[0].status");
        assert_eq!(field_of(parse(r#"{"model":"m","level":"loud"}"#)), "logs[0].level");
        assert_eq!(field_of(parse(r#"{"model":"m","timestamp":"yesterday"}"#)), "logs[0].timestamp");
        assert_eq!(field_of(parse(r#"{"model":"m","timestamp":99999999999999}"#)), "logs[0].timestamp");
        assert_eq!(field_of(parse(r#"{"model":"m","metadata":{"a":{"b":1}}}"#)), "logs[0].metadata.a");
        assert_eq!(field_of(parse(r#"{"model":"m","metadata":[1]}"#)), "logs[0].metadata");
        assert_eq!(field_of(parse(r#"{"model":"m","extra":{"x":[1,2]}}"#)), "logs[0].extra");
        assert_eq!(field_of(parse(r#"{"model":42}"#)), "logs[0].model");
        assert_eq!(field_of(parse(r#"{"model":"m","feedback":2}"#)), "logs[0].feedback");
        assert_eq!(field_of(parse(r#"[1,2]"#)), "logs[0]");
        let long = format!(r#"{{"model":"{}"}}"#, "x".repeat(300));
        assert_eq!(field_of(parse(&long)), "logs[0].model");
        let e = parse(r#"{"model":"m""#).unwrap_err();
        assert_eq!(e.code(), "malformed_body");
        assert_eq!(e.field(), Some("logs[0]"));
    }

    #[test]
    fn non_finite_numbers_name_the_field() {
        for (raw, field) in [
            (r#"{"model":"m","latency_ms":1e999}"#, "logs[0].latency_ms"),
            (r#"{"model":"m","latency_ms":NaN}"#, "logs[0].latency_ms"),
            (r#"{"model":"m","ttft_ms":Infinity}"#, "logs[0].ttft_ms"),
            (r#"{ "model" : "m" , "cost_usd" : -Infinity }"#, "logs[0].cost_usd"),
            (r#"{"model":"m","input_tokens":-1e400}"#, "logs[0].input_tokens"),
            (r#"{"model":"m","latency_ms":1e99999999999999999999}"#, "logs[0].latency_ms"),
            (r#"{"latency_ms":NaN,"model":"m"}"#, "logs[0].latency_ms"),
            ("{\"model\":\"m\",\n  \"ttft_ms\": 1,\n  \"latency_ms\":\n  1e999\n}", "logs[0].latency_ms"),
            (r#"{"model":"m","metadata":{"score":NaN}}"#, "logs[0].metadata.score"),
            (r#"{"model":"m","tenant_score":Infinity}"#, "logs[0].tenant_score"),
            (r#"{"model":"m","message":"NaN, \"Infinity\": 1e999","latency_ms":1e999}"#, "logs[0].latency_ms"),
            (r#"{"model":"m","latency_ms":1e999,}"#, "logs[0].latency_ms"),
        ] {
            let e = parse(raw).unwrap_err();
            assert_eq!((e.field(), e.code()), (Some(field), "invalid_field"), "{raw}");
            assert_eq!(e.public_message(), "must be a finite number", "{raw}");
        }
        let e = parse_metric(r#"{"model":"m","name":"a","value":NaN}"#, "metrics[0]", NOW, &Limits::default()).unwrap_err();
        assert_eq!(e.field(), Some("metrics[0].value"));
        let e = parse_metric(r#"{"model":"m","name":"a","value":1,"labels":{"x":1e999}}"#, "metrics[0]", NOW, &Limits::default());
        assert_eq!(e.unwrap_err().field(), Some("metrics[0].labels.x"));
        // Other syntax errors stay errors of the record, finite numbers included.
        for raw in [
            r#"{"model":"m","latency_ms":NaNa}"#,
            r#"{"model":"m","latency_ms":}"#,
            r#"{"model":"m","latency_ms":1e5"#,
            r#"{"model":"m","latency_ms":1e5 "x":1e999}"#,
            r#"{"model":"m","latency_ms":01}"#,
            r#"{"model":"m","x":"NaN}"#,
            "NaN",
        ] {
            let e = parse(raw).unwrap_err();
            assert_eq!((e.field(), e.code()), (Some("logs[0]"), "malformed_body"), "{raw}");
        }
        // A JSON array with a NaN token: only that record is refused, the others are split off.
        let l = Limits::default();
        let body = "[{\"model\":\"m\"}, {\"model\":\"m\",\"latency_ms\":NaN} ,{\"model\":\"m\",\"x\":[1,{\"y\":\"]\"}]}]";
        let records = split_records(body, BodyFormat::Json, "logs", &l).unwrap();
        assert_eq!(records, vec![r#"{"model":"m"}"#, r#"{"model":"m","latency_ms":NaN}"#, r#"{"model":"m","x":[1,{"y":"]"}]}"#]);
        assert_eq!(parse(records[1]).unwrap_err().field(), Some("logs[0].latency_ms"));
        for bad in ["[{\"a\":NaN} {\"b\":1}]", "[{\"a\":NaN},]", "[{\"a\":NaN}] x", "[{\"a\":NaN}", "[{\"a\":1}, x]"] {
            assert_eq!(split_records(bad, BodyFormat::Json, "logs", &l).unwrap_err().field(), Some("logs"), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_crashing() {
        let deep = format!(r#"{{"model":"m","x":{}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.field().unwrap().starts_with("logs[0]"), "{e:?}");
    }

    #[test]
    fn split_json_ndjson() {
        let l = Limits::default();
        assert_eq!(split_records("[{\"a\":1},{\"b\":2}]", BodyFormat::Json, "logs", &l).unwrap(), vec!["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(split_records("{\"a\":1}", BodyFormat::Json, "logs", &l).unwrap().len(), 1);
        assert_eq!(split_records("{\"a\":1}\n\n{\"b\":2}\r\n", BodyFormat::Ndjson, "logs", &l).unwrap().len(), 2);
        assert_eq!(split_records("[1,", BodyFormat::Json, "logs", &l).unwrap_err().code(), "malformed_body");
        assert_eq!(split_records("[]", BodyFormat::Json, "logs", &l).unwrap_err().code(), "invalid_field");
        let small = Limits { max_records: 1, ..Limits::default() };
        assert_eq!(split_records("{}\n{}", BodyFormat::Ndjson, "logs", &small).unwrap_err().code(), "too_large");
    }

    #[test]
    fn metric_points() {
        let l = Limits::default();
        let p = parse_metric(r#"{"model":"m","name":"accuracy","value":0.93,"labels":{"dataset":"eval"}}"#, "metrics[0]", NOW, &l).unwrap();
        assert_eq!(p.value, 0.93);
        assert_eq!(p.labels, vec![("dataset".to_string(), "eval".to_string())]);
        assert_eq!(p.timestamp, NOW);
        let e = parse_metric(r#"{"model":"m","name":"a b","value":1}"#, "metrics[0]", NOW, &l).unwrap_err();
        assert_eq!(e.field(), Some("metrics[0].name"));
        let e = parse_metric(r#"{"model":"m","name":"a"}"#, "metrics[0]", NOW, &l).unwrap_err();
        assert_eq!(e.field(), Some("metrics[0].value"));
        let e = parse_metric(r#"{"model":"m","name":"a","value":1,"labels":{"x":[1]}}"#, "metrics[0]", NOW, &l).unwrap_err();
        assert_eq!(e.field(), Some("metrics[0].labels.x"));
    }

    proptest::proptest! {
        // The parser never panics, and anything it accepts has a model and a sane timestamp.
        #[test]
        fn parser_total(s in ".{0,400}") {
            if let Ok(r) = parse(&s) {
                proptest::prop_assert!(!r.model.is_empty());
                proptest::prop_assert!(r.timestamp <= NOW + Limits::default().max_future_ms);
            }
        }

        #[test]
        fn parser_total_on_jsonish(fields in proptest::collection::vec(
            ("(model|latency_ms|status|metadata|timestamp|input_tokens|x)",
             "(\"[a-z]{0,5}\"|-?[0-9]{1,20}(\\.[0-9]{1,5})?|true|null|\\{\\}|\\[\\]|\\{\"k\":[0-9]\\})"), 0..8)) {
            let body = format!("{{{}}}", fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(","));
            match parse(&body) {
                Ok(r) => proptest::prop_assert!(!r.model.is_empty()),
                Err(e) => proptest::prop_assert!(e.field().unwrap().starts_with("logs[0]"), "{e:?}"),
            }
        }
    }
}
