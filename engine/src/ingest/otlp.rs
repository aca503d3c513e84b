//! OpenTelemetry (OTLP) data mapped to Modelwatch's log records and custom metric points.
//!
//! - Spans with GenAI attributes (OpenTelemetry GenAI conventions, their older names, and
//!   OpenInference's `llm.*`) become inference records: model, provider, tokens, latency,
//!   status, payloads, trace context.
//! - Other spans and OTLP log records become event records of the model named by the
//!   configured attribute (default `modelwatch.model`), else of the service (`service.name`).
//! - Metric data points become custom metric points; cumulative counters and histograms are
//!   turned into per-interval increases by `cumulative::DeltaTracker`.
//!
//! Nothing here touches HTTP or the database: `Ingest::log_records` / `metric_points` take the
//! result through the same checks, rules and writer as the native API. `docs/otel.md` holds the
//! mapping table; keep it in step with this file.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
pub use opentelemetry_proto::tonic::{common, logs, metrics, resource, trace};

use super::cumulative::{DeltaTracker, HistogramDelta};
use super::record::{Level, Limits, LogRecord, MetaValue, MetricPoint};
use crate::error::Error;

/// How OTLP data is attributed to models.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// Attribute (on the span, log record or data point, else on the resource) that names the
    /// model of data without GenAI model attributes.
    pub model_attribute: String,
    /// Store spans without GenAI attributes as event records (else they are skipped).
    pub plain_spans: bool,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        OtlpSettings { model_attribute: "modelwatch.model".into(), plain_spans: true }
    }
}

/// One mapped item: its position among the request's spans, log records or data points, the
/// name used in errors, and the record or why it was refused.
pub type Item<T> = (usize, String, Result<T, Error>);

/// What the mapping could not keep in full; reported to the client as a partial-success warning.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notes {
    pub truncated_values: usize,
    pub dropped_attributes: usize,
    pub skipped_spans: usize,
}

impl Notes {
    /// A one-line warning, or None when everything was kept.
    pub fn warning(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.truncated_values > 0 {
            parts.push(format!("{} values were cut to the length limits", self.truncated_values));
        }
        if self.dropped_attributes > 0 {
            parts.push(format!(
                "{} attributes were not kept (metadata entry limit, overlong keys, or nested values)",
                self.dropped_attributes
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute access

fn value_of(kv: &KeyValue) -> Option<&Value> {
    kv.value.as_ref().and_then(|v| v.value.as_ref())
}

/// Attributes looked up in order: the item's own first, then (for some lookups) the resource's.
#[derive(Clone, Copy)]
struct Attrs<'a> {
    own: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl<'a> Attrs<'a> {
    fn own(&self, key: &str) -> Option<&'a Value> {
        self.own.iter().find(|kv| kv.key == key).and_then(value_of)
    }
    fn any(&self, key: &str) -> Option<&'a Value> {
        self.own(key).or_else(|| self.resource.iter().find(|kv| kv.key == key).and_then(value_of))
    }
    /// The first of `keys` the item has, as text.
    fn text(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.own(k)).and_then(scalar_text).filter(|s| !s.is_empty())
    }
    fn int(&self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|k| self.own(k)).and_then(as_f64).filter(|v| v.is_finite() && *v >= 0.0).map(|v| v.round() as i64)
    }
    fn num(&self, keys: &[&str]) -> Option<f64> {
        keys.iter().find_map(|k| self.own(k)).and_then(as_f64).filter(|v| v.is_finite())
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::StringValue(s) => Some(s.clone()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::IntValue(i) => Some(*i as f64),
        Value::DoubleValue(d) => Some(*d),
        Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Any value as JSON (byte strings as hex).
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::StringValue(s) => J::String(s.clone()),
        Value::BoolValue(b) => J::Bool(*b),
        Value::IntValue(i) => J::from(*i),
        Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map(J::Number).unwrap_or(J::Null),
        Value::ArrayValue(a) => J::Array(a.values.iter().map(any_json).collect()),
        Value::KvlistValue(l) => {
            J::Object(l.values.iter().map(|kv| (kv.key.clone(), value_of(kv).map(to_json).unwrap_or(J::Null))).collect())
        }
        Value::BytesValue(b) => J::String(hex::encode(b)),
        Value::StringValueStrindex(_) => J::Null,
    }
}

fn any_json(v: &AnyValue) -> serde_json::Value {
    v.value.as_ref().map(to_json).unwrap_or(serde_json::Value::Null)
}

/// A value as payload text: strings as sent (the conventions put JSON in strings), structured
/// values as JSON.
fn payload_text(v: &Value) -> Option<String> {
    match v {
        Value::StringValue(s) => Some(s.clone()),
        other => Some(to_json(other).to_string()),
    }
    .filter(|s| !s.is_empty() && s != "null")
}

/// Messages flattened into indexed attributes (`gen_ai.prompt.0.role`,
/// `llm.input_messages.1.message.content`, …) put back together as a JSON array.
fn indexed_messages(attrs: &[KeyValue], prefix: &str, inner: &str) -> Option<String> {
    let mut by_index: BTreeMap<usize, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    for kv in attrs {
        let Some(rest) = kv.key.strip_prefix(prefix) else { continue };
        let Some((idx, field)) = rest.split_once('.') else { continue };
        let Ok(idx) = idx.parse::<usize>() else { continue };
        let field = field.strip_prefix(inner).unwrap_or(field);
        if let Some(v) = value_of(kv) {
            by_index.entry(idx).or_default().insert(field.to_string(), to_json(v));
        }
    }
    (!by_index.is_empty())
        .then(|| serde_json::Value::Array(by_index.into_values().map(serde_json::Value::Object).collect()).to_string())
}

/// Keys the mapping reads into record fields; they are not repeated in metadata.
const MAPPED_KEYS: &[&str] = &[
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.operation.name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cost",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.conversation.id",
    "gen_ai.server.time_to_first_token",
    "gen_ai.server.ttft",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.response.time_to_first_token",
    "llm.model_name",
    "llm.provider",
    "llm.system",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.total",
    "llm.token_count.prompt_details.cache_read",
    "llm.cost.total",
    "input.value",
    "output.value",
    "input.mime_type",
    "output.mime_type",
    "error.type",
    "http.response.status_code",
    "http.status_code",
    "user.id",
    "enduser.id",
    "session.id",
    "deployment.environment",
    "deployment.environment.name",
    "service.version",
];

const MAPPED_PREFIXES: &[&str] = &["gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages."];

/// Resource attributes describing the SDK and process rather than the service; not kept.
const NOISE_PREFIXES: &[&str] = &["telemetry.", "process.", "os."];

fn is_mapped(key: &str, model_attribute: &str) -> bool {
    key == model_attribute || MAPPED_KEYS.contains(&key) || MAPPED_PREFIXES.iter().any(|p| key.starts_with(p))
}

// ---------------------------------------------------------------------------------------------
// Shared record helpers

/// A model name made acceptable: characters outside letters, digits and `._-:/@+` become `_`.
pub fn model_name(raw: &str) -> String {
    let cleaned: String =
        raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "._-:/@+".contains(c) { c } else { '_' }).take(128).collect();
    cleaned
}

/// A metric name made acceptable: characters outside letters, digits and `_.-:/` become `_`.
pub fn metric_name(raw: &str, max: usize) -> String {
    raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "_.-:/".contains(c) { c } else { '_' }).take(max).collect()
}

fn cut(s: &mut String, max: usize, notes: &mut Notes) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        notes.truncated_values += 1;
    }
}

fn cut_opt(s: &mut Option<String>, max: usize, notes: &mut Notes) {
    if let Some(v) = s {
        cut(v, max, notes);
    }
}

fn nanos_to_ms(n: u64) -> i64 {
    (n / 1_000_000) as i64
}

fn hex_id(b: &[u8]) -> Option<String> {
    (!b.is_empty() && b.iter().any(|x| *x != 0)).then(|| hex::encode(b))
}

/// Puts the record within the length limits and checks its time; the model's characters are
/// already safe.
fn finish(mut r: LogRecord, field: &str, now: i64, limits: &Limits, notes: &mut Notes) -> Result<LogRecord, Error> {
    if r.timestamp <= 0 {
        r.timestamp = now;
    }
    if r.timestamp > now + limits.max_future_ms {
        return Err(Error::invalid(field, "the time lies too far in the future"));
    }
    if r.model.is_empty() {
        return Err(Error::invalid(field, "no model: set gen_ai.request.model, the model attribute or service.name"));
    }
    let name = limits.max_name_bytes;
    for s in [&mut r.model_version, &mut r.provider, &mut r.environment, &mut r.operation] {
        cut(s, name, notes);
    }
    for s in [&mut r.error_type, &mut r.user_id, &mut r.session_id] {
        cut_opt(s, name, notes);
    }
    cut_opt(&mut r.message, limits.max_text_bytes, notes);
    cut_opt(&mut r.error_message, limits.max_text_bytes, notes);
    cut_opt(&mut r.request, limits.max_payload_bytes, notes);
    cut_opt(&mut r.response, limits.max_payload_bytes, notes);
    Ok(r)
}

/// Scalar attributes into metadata, within the limits; `skip` says which keys are fields.
fn add_metadata(r: &mut LogRecord, attrs: &[KeyValue], skip: impl Fn(&str) -> bool, limits: &Limits, notes: &mut Notes) {
    for kv in attrs {
        if skip(&kv.key) || r.metadata.iter().any(|(k, _)| *k == kv.key) {
            continue;
        }
        let Some(v) = value_of(kv) else { continue };
        let value = match v {
            Value::StringValue(s) => {
                let mut s = s.clone();
                cut(&mut s, limits.max_text_bytes, notes);
                MetaValue::Str(s)
            }
            Value::BoolValue(b) => MetaValue::Bool(*b),
            Value::IntValue(i) => MetaValue::Num(*i as f64),
            Value::DoubleValue(d) if d.is_finite() => MetaValue::Num(*d),
            _ => {
                notes.dropped_attributes += 1;
                continue;
            }
        };
        if kv.key.is_empty() || kv.key.len() > limits.max_name_bytes || r.metadata.len() >= limits.max_metadata_entries {
            notes.dropped_attributes += 1;
            continue;
        }
        r.metadata.push((kv.key.clone(), value));
    }
}

fn resource_attrs(r: Option<&Resource>) -> &[KeyValue] {
    r.map(|r| r.attributes.as_slice()).unwrap_or(&[])
}

/// The model of data that carries no GenAI model name: the configured attribute, else the
/// service.
fn fallback_model(a: Attrs, s: &OtlpSettings) -> String {
    let name = a
        .any(&s.model_attribute)
        .and_then(scalar_text)
        .or_else(|| a.any("service.name").and_then(scalar_text))
        .unwrap_or_else(|| "unknown_service".into());
    model_name(&name)
}

fn environment(a: Attrs) -> String {
    a.any("deployment.environment.name").or_else(|| a.any("deployment.environment")).and_then(scalar_text).unwrap_or_default()
}

/// Resource metadata every record of the resource carries.
fn add_resource_metadata(r: &mut LogRecord, resource: &[KeyValue], s: &OtlpSettings, limits: &Limits, notes: &mut Notes) {
    add_metadata(
        r,
        resource,
        |k| k == s.model_attribute || k.starts_with("deployment.environment") || NOISE_PREFIXES.iter().any(|p| k.starts_with(p)),
        limits,
        notes,
    );
}

// ---------------------------------------------------------------------------------------------
// Traces

fn is_genai(span_attrs: &[KeyValue]) -> bool {
    span_attrs.iter().any(|kv| kv.key.starts_with("gen_ai.") || kv.key.starts_with("llm."))
}

/// Seconds as milliseconds.
fn secs_ms(v: Option<f64>) -> Option<f64> {
    v.filter(|v| *v >= 0.0).map(|v| v * 1000.0)
}

/// Spans → log records, one item per span kept.
pub fn map_traces(req: &ExportTraceServiceRequest, s: &OtlpSettings, limits: &Limits, now: i64, notes: &mut Notes) -> Vec<Item<LogRecord>> {
    let mut out = Vec::new();
    let mut index = 0;
    for (ri, rs) in req.resource_spans.iter().enumerate() {
        let resource = resource_attrs(rs.resource.as_ref());
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            for (ki, span) in ss.spans.iter().enumerate() {
                let field = format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{ki}]");
                let i = index;
                index += 1;
                let genai = is_genai(&span.attributes);
                if !genai && !s.plain_spans {
                    notes.skipped_spans += 1;
                    continue;
                }
                let r = map_span(span, resource, genai, s, limits, notes);
                out.push((i, field.clone(), finish(r, &field, now, limits, notes)));
            }
        }
    }
    out
}

fn map_span(span: &trace::v1::Span, resource: &[KeyValue], genai: bool, s: &OtlpSettings, limits: &Limits, notes: &mut Notes) -> LogRecord {
    let a = Attrs { own: &span.attributes, resource };
    let mut r = LogRecord { timestamp: nanos_to_ms(span.start_time_unix_nano), ..Default::default() };
    if span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0 {
        r.latency_ms = Some((span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6);
    }
    let request_model = a.text(&["gen_ai.request.model", "llm.model_name"]);
    let response_model = a.text(&["gen_ai.response.model"]);
    r.model = match request_model.as_deref().or(response_model.as_deref()) {
        Some(m) if genai => model_name(m),
        _ => fallback_model(a, s),
    };
    if let (Some(req), Some(resp)) = (&request_model, &response_model)
        && req != resp
    {
        r.model_version = resp.clone();
    }
    r.environment = environment(a);
    r.provider = a.text(&["gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"]).unwrap_or_default();
    r.operation = a.text(&["gen_ai.operation.name"]).unwrap_or_else(|| if genai { String::new() } else { span.name.clone() });
    r.message = (!span.name.is_empty()).then(|| span.name.clone());
    r.input_tokens = a.int(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"]);
    r.output_tokens = a.int(&["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"]);
    r.cached_tokens = a.int(&[
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ]);
    r.cost_usd = a.num(&["gen_ai.usage.cost", "llm.cost.total"]).filter(|c| *c >= 0.0);
    r.ttft_ms = secs_ms(a.num(&[
        "gen_ai.server.time_to_first_token",
        "gen_ai.server.ttft",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.response.time_to_first_token",
    ]));
    r.http_status = a.int(&["http.response.status_code", "http.status_code"]).filter(|c| (100..600).contains(c));
    r.user_id = a.text(&["user.id", "enduser.id"]);
    r.session_id = a.text(&["session.id", "gen_ai.conversation.id"]);
    r.trace_id = hex_id(&span.trace_id);
    r.span_id = hex_id(&span.span_id);

    // Status: an error status, or an error type, or a 5xx.
    let status = span.status.as_ref();
    let status_error = status.is_some_and(|st| st.code == trace::v1::status::StatusCode::Error as i32);
    let exception = span.events.iter().find(|e| e.name == "exception");
    let ex = |key: &str| {
        exception.and_then(|e| e.attributes.iter().find(|kv| kv.key == key)).and_then(value_of).and_then(scalar_text)
    };
    r.error_type = a.text(&["error.type"]).or_else(|| if status_error { ex("exception.type") } else { None });
    r.error = status_error || r.error_type.is_some() || r.http_status.is_some_and(|c| c >= 500);
    if r.error {
        r.level = Level::Error;
        r.error_message =
            status.map(|st| st.message.clone()).filter(|m| !m.is_empty()).or_else(|| ex("exception.message"));
    }

    // Payloads: the current attributes, the older prompt/completion events, OpenLLMetry's
    // indexed attributes, OpenInference's input/output values and message lists.
    let event_attr = |event: &str, key: &str| {
        span.events
            .iter()
            .filter(|e| e.name == event)
            .flat_map(|e| e.attributes.iter())
            .find(|kv| kv.key == key)
            .and_then(value_of)
            .and_then(payload_text)
    };
    r.request = a
        .own("gen_ai.input.messages")
        .and_then(payload_text)
        .or_else(|| event_attr("gen_ai.content.prompt", "gen_ai.prompt"))
        .or_else(|| a.own("gen_ai.prompt").and_then(payload_text))
        .or_else(|| indexed_messages(&span.attributes, "gen_ai.prompt.", ""))
        .or_else(|| indexed_messages(&span.attributes, "llm.input_messages.", "message."))
        .or_else(|| a.own("input.value").and_then(payload_text));
    if let Some(system) = a.own("gen_ai.system_instructions").and_then(payload_text)
        && let Some(req) = &r.request
    {
        // Keep the system instructions with the messages, in a shape the log view shows.
        let sys: serde_json::Value = serde_json::from_str(&system).unwrap_or(serde_json::Value::String(system));
        let msgs: serde_json::Value = serde_json::from_str(req).unwrap_or(serde_json::Value::String(req.clone()));
        r.request = Some(serde_json::json!({"system": {"role": "system", "parts": sys}, "messages": msgs}).to_string());
    }
    r.response = a
        .own("gen_ai.output.messages")
        .and_then(payload_text)
        .or_else(|| event_attr("gen_ai.content.completion", "gen_ai.completion"))
        .or_else(|| a.own("gen_ai.completion").and_then(payload_text))
        .or_else(|| indexed_messages(&span.attributes, "gen_ai.completion.", ""))
        .or_else(|| indexed_messages(&span.attributes, "llm.output_messages.", "message."))
        .or_else(|| a.own("output.value").and_then(payload_text));

    // Everything else worth keeping goes to metadata: span attributes first, then resource.
    if !genai {
        r.metadata.push(("otel.span_kind".into(), MetaValue::Str(span_kind(span.kind).into())));
    }
    add_metadata(&mut r, &span.attributes, |k| is_mapped(k, &s.model_attribute), limits, notes);
    add_resource_metadata(&mut r, resource, s, limits, notes);
    r
}

fn span_kind(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

// ---------------------------------------------------------------------------------------------
// Logs

/// OTLP log records → event records.
pub fn map_logs(req: &ExportLogsServiceRequest, s: &OtlpSettings, limits: &Limits, now: i64, notes: &mut Notes) -> Vec<Item<LogRecord>> {
    let mut out = Vec::new();
    let mut index = 0;
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        let resource = resource_attrs(rl.resource.as_ref());
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            for (li, log) in sl.log_records.iter().enumerate() {
                let field = format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]");
                let r = map_log(log, resource, s, limits, notes);
                out.push((index, field.clone(), finish(r, &field, now, limits, notes)));
                index += 1;
            }
        }
    }
    out
}

fn severity(number: i32, text: &str) -> Level {
    match number {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        21..=24 => Level::Fatal,
        _ => Level::parse(text).unwrap_or(Level::Info),
    }
}

fn map_log(log: &logs::v1::LogRecord, resource: &[KeyValue], s: &OtlpSettings, limits: &Limits, notes: &mut Notes) -> LogRecord {
    let a = Attrs { own: &log.attributes, resource };
    let ts = if log.time_unix_nano > 0 { log.time_unix_nano } else { log.observed_time_unix_nano };
    let mut r = LogRecord { timestamp: nanos_to_ms(ts), ..Default::default() };
    r.model = match a.text(&["gen_ai.request.model", "gen_ai.response.model"]) {
        Some(m) if a.own(&s.model_attribute).is_none() => model_name(&m),
        _ => fallback_model(a, s),
    };
    r.environment = environment(a);
    r.provider = a.text(&["gen_ai.provider.name", "gen_ai.system"]).unwrap_or_default();
    r.operation = if log.event_name.is_empty() { "log".into() } else { log.event_name.clone() };
    r.level = severity(log.severity_number, &log.severity_text);
    r.message = log.body.as_ref().and_then(|b| b.value.as_ref()).and_then(payload_text);
    r.error_type = a.text(&["exception.type", "error.type"]);
    r.error_message = a.text(&["exception.message"]);
    r.error = r.level >= Level::Error || r.error_type.is_some();
    r.user_id = a.text(&["user.id", "enduser.id"]);
    r.session_id = a.text(&["session.id", "gen_ai.conversation.id"]);
    r.trace_id = hex_id(&log.trace_id);
    r.span_id = hex_id(&log.span_id);
    let skip = |k: &str| {
        is_mapped(k, &s.model_attribute) || matches!(k, "exception.type" | "exception.message")
    };
    add_metadata(&mut r, &log.attributes, skip, limits, notes);
    add_resource_metadata(&mut r, resource, s, limits, notes);
    r
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// Units the GenAI metrics use in seconds; their points are stored in milliseconds.
fn in_seconds(unit: &str) -> bool {
    unit == "s"
}

/// The standard GenAI metrics, recognised by name: their data points name the model, and
/// token usage is split by token type.
pub const GENAI_METRICS: &[&str] = &[
    "gen_ai.client.operation.duration",
    "gen_ai.client.token.usage",
    "gen_ai.server.request.duration",
    "gen_ai.server.time_to_first_token",
    "gen_ai.server.time_per_output_token",
];

struct PointCtx<'a> {
    metric: &'a metrics::v1::Metric,
    resource: &'a [KeyValue],
    attrs: &'a [KeyValue],
    start_ns: u64,
    time_ns: u64,
}

/// OTLP metrics → custom metric points. One item per point stored; a data point that yields
/// several (a histogram's count, sum, mean and quantiles) has one index. Returns the items and
/// the number of data points in the request.
pub fn map_metrics(
    req: &ExportMetricsServiceRequest,
    s: &OtlpSettings,
    limits: &Limits,
    now: i64,
    tracker: &DeltaTracker,
) -> (Vec<Item<MetricPoint>>, usize) {
    let mut out = Vec::new();
    let mut index = 0;
    for (ri, rm) in req.resource_metrics.iter().enumerate() {
        let resource = resource_attrs(rm.resource.as_ref());
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            for (mi, metric) in sm.metrics.iter().enumerate() {
                let base = format!("resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}]");
                let mut emit = |ctx: PointCtx, values: Vec<(String, f64)>, pi: usize| {
                    let field = format!("{base}.dataPoints[{pi}]");
                    for item in point_items(&ctx, values, s, limits, now, &field) {
                        out.push((index, field.clone(), item));
                    }
                    index += 1;
                };
                match &metric.data {
                    Some(Data::Gauge(g)) => {
                        for (pi, p) in g.data_points.iter().enumerate() {
                            let ctx = PointCtx { metric, resource, attrs: &p.attributes, start_ns: p.start_time_unix_nano, time_ns: p.time_unix_nano };
                            let values = number(p.value.as_ref()).map(|v| vec![(String::new(), v)]).unwrap_or_default();
                            emit(ctx, values, pi);
                        }
                    }
                    Some(Data::Sum(sum)) => {
                        let cumulative = sum.aggregation_temporality == metrics::v1::AggregationTemporality::Cumulative as i32;
                        for (pi, p) in sum.data_points.iter().enumerate() {
                            let ctx = PointCtx { metric, resource, attrs: &p.attributes, start_ns: p.start_time_unix_nano, time_ns: p.time_unix_nano };
                            let values = match number(p.value.as_ref()) {
                                // A running total: store its increase since the previous export.
                                Some(v) if sum.is_monotonic && cumulative => {
                                    tracker.counter(&series_key(&ctx), nanos_to_ms(p.start_time_unix_nano), v).map(|d| vec![(String::new(), d)]).unwrap_or_default()
                                }
                                Some(v) => vec![(String::new(), v)],
                                None => Vec::new(),
                            };
                            emit(ctx, values, pi);
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        let cumulative = h.aggregation_temporality == metrics::v1::AggregationTemporality::Cumulative as i32;
                        for (pi, p) in h.data_points.iter().enumerate() {
                            let ctx = PointCtx { metric, resource, attrs: &p.attributes, start_ns: p.start_time_unix_nano, time_ns: p.time_unix_nano };
                            let mut bounds = p.explicit_bounds.clone();
                            bounds.push(f64::INFINITY);
                            let counts: Vec<f64> = p.bucket_counts.iter().map(|c| *c as f64).collect();
                            let delta = histogram_delta(tracker, &ctx, cumulative, p.count as f64, p.sum.unwrap_or(0.0), bounds, counts);
                            emit(ctx, delta.map(|d| histogram_values(&d)).unwrap_or_default(), pi);
                        }
                    }
                    Some(Data::ExponentialHistogram(h)) => {
                        let cumulative = h.aggregation_temporality == metrics::v1::AggregationTemporality::Cumulative as i32;
                        for (pi, p) in h.data_points.iter().enumerate() {
                            let ctx = PointCtx { metric, resource, attrs: &p.attributes, start_ns: p.start_time_unix_nano, time_ns: p.time_unix_nano };
                            let (bounds, counts) = exponential_buckets(p);
                            let delta = histogram_delta(tracker, &ctx, cumulative, p.count as f64, p.sum.unwrap_or(0.0), bounds, counts);
                            emit(ctx, delta.map(|d| histogram_values(&d)).unwrap_or_default(), pi);
                        }
                    }
                    Some(Data::Summary(sm)) => {
                        for (pi, p) in sm.data_points.iter().enumerate() {
                            let ctx = PointCtx { metric, resource, attrs: &p.attributes, start_ns: p.start_time_unix_nano, time_ns: p.time_unix_nano };
                            let values = p
                                .quantile_values
                                .iter()
                                .map(|q| (format!(".p{}", quantile_label(q.quantile)), q.value))
                                .collect();
                            emit(ctx, values, pi);
                        }
                    }
                    None => {}
                }
            }
        }
    }
    (out, index)
}

fn number(v: Option<&number_data_point::Value>) -> Option<f64> {
    match v? {
        number_data_point::Value::AsDouble(d) => Some(*d),
        number_data_point::Value::AsInt(i) => Some(*i as f64),
    }
}

fn quantile_label(q: f64) -> String {
    let pct = q * 100.0;
    if pct.fract() == 0.0 { format!("{}", pct as i64) } else { format!("{pct}").replace('.', "_") }
}

/// A series' identity for the delta tracker: metric, resource and point attributes.
fn series_key(ctx: &PointCtx) -> String {
    let mut key = ctx.metric.name.clone();
    for kv in ctx.resource.iter().chain(ctx.attrs) {
        key.push('\u{1f}');
        key.push_str(&kv.key);
        key.push('=');
        if let Some(v) = value_of(kv) {
            key.push_str(&to_json(v).to_string());
        }
    }
    key
}

fn histogram_delta(
    tracker: &DeltaTracker,
    ctx: &PointCtx,
    cumulative: bool,
    count: f64,
    sum: f64,
    bounds: Vec<f64>,
    counts: Vec<f64>,
) -> Option<HistogramDelta> {
    if counts.len() != bounds.len() {
        return None;
    }
    if cumulative {
        tracker.histogram(&series_key(ctx), nanos_to_ms(ctx.start_ns), count, sum, &bounds, &counts)
    } else {
        Some(HistogramDelta { count, sum, bounds, counts })
    }
}

/// Upper bounds and counts of an exponential histogram's buckets, lowest first (negative
/// buckets and the zero bucket included).
fn exponential_buckets(p: &metrics::v1::ExponentialHistogramDataPoint) -> (Vec<f64>, Vec<f64>) {
    let base = 2f64.powf(2f64.powi(-p.scale));
    let mut bounds = Vec::new();
    let mut counts = Vec::new();
    if let Some(neg) = &p.negative {
        // Bucket i covers (-base^(i+1), -base^i]; the upper bound is -base^i. Largest magnitude first.
        for (i, c) in neg.bucket_counts.iter().enumerate().rev() {
            bounds.push(-base.powi(neg.offset + i as i32));
            counts.push(*c as f64);
        }
    }
    if p.zero_count > 0 {
        bounds.push(p.zero_threshold.max(0.0));
        counts.push(p.zero_count as f64);
    }
    if let Some(pos) = &p.positive {
        for (i, c) in pos.bucket_counts.iter().enumerate() {
            bounds.push(base.powi(pos.offset + i as i32 + 1));
            counts.push(*c as f64);
        }
    }
    (bounds, counts)
}

/// The points a histogram's increase yields: count and sum always, mean and quantiles when it
/// saw observations.
fn histogram_values(d: &HistogramDelta) -> Vec<(String, f64)> {
    let mut v = vec![(".count".to_string(), d.count), (".sum".to_string(), d.sum)];
    if let Some(m) = d.mean() {
        v.push((".avg".into(), m));
    }
    for (label, q) in [(".p50", 0.5), (".p95", 0.95), (".p99", 0.99)] {
        if let Some(x) = d.quantile(q) {
            v.push((label.into(), x));
        }
    }
    v
}

/// The metric points of one data point: named `<metric><suffix>`, attributed to a model, with
/// the point's attributes as labels.
fn point_items(ctx: &PointCtx, values: Vec<(String, f64)>, s: &OtlpSettings, limits: &Limits, now: i64, field: &str) -> Vec<Result<MetricPoint, Error>> {
    if values.is_empty() {
        return Vec::new();
    }
    let a = Attrs { own: ctx.attrs, resource: ctx.resource };
    let name = &ctx.metric.name;
    let genai = GENAI_METRICS.contains(&name.as_str());
    let model = match a.text(&["gen_ai.request.model", "gen_ai.response.model"]) {
        Some(m) if a.own(&s.model_attribute).is_none() => model_name(&m),
        _ => fallback_model(a, s),
    };
    let mut ts = nanos_to_ms(ctx.time_ns);
    if ts <= 0 {
        ts = now;
    }
    if ts > now + limits.max_future_ms {
        return vec![Err(Error::invalid(format!("{field}.timeUnixNano"), "the time lies too far in the future"))];
    }
    // GenAI durations come in seconds; Modelwatch's latencies are milliseconds.
    let scale = if genai && in_seconds(&ctx.metric.unit) { 1000.0 } else { 1.0 };
    // Token usage is one histogram for input and output tokens: keep them apart by name.
    let mut base = name.clone();
    if name == "gen_ai.client.token.usage"
        && let Some(t) = a.text(&["gen_ai.token.type"])
    {
        base = format!("{name}.{t}");
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    for kv in ctx.attrs {
        if kv.key == s.model_attribute || labels.len() >= limits.max_metadata_entries {
            continue;
        }
        if let Some(mut text) = value_of(kv).and_then(scalar_text) {
            text.truncate(text.floor_char_boundary(limits.max_text_bytes));
            labels.push((kv.key.clone(), text));
        }
    }
    values
        .into_iter()
        .map(|(suffix, v)| {
            let value = if suffix == ".count" { v } else { v * scale };
            if !value.is_finite() {
                return Err(Error::invalid(field, "the value is not a finite number"));
            }
            Ok(MetricPoint {
                timestamp: ts,
                model: model.clone(),
                name: metric_name(&format!("{base}{suffix}"), limits.max_name_bytes),
                value,
                labels: labels.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::metrics::v1 as m;
    use opentelemetry_proto::tonic::trace::v1 as t;

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
    }
    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }
    const NOW: i64 = 1_800_000_000_000;
    const NS: u64 = 1_000_000;

    fn traces(resource: Vec<KeyValue>, spans: Vec<t::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![t::ResourceSpans {
                resource: Some(Resource { attributes: resource, ..Default::default() }),
                scope_spans: vec![t::ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    fn span(name: &str, attrs: Vec<KeyValue>) -> t::Span {
        t::Span {
            name: name.into(),
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            start_time_unix_nano: (NOW as u64 - 5_000) * NS,
            end_time_unix_nano: (NOW as u64 - 5_000) * NS + 812_500_000,
            attributes: attrs,
            ..Default::default()
        }
    }

    fn one(req: &ExportTraceServiceRequest, s: &OtlpSettings) -> LogRecord {
        let mut notes = Notes::default();
        let mut items = map_traces(req, s, &Limits::default(), NOW, &mut notes);
        assert_eq!(items.len(), 1);
        items.remove(0).2.unwrap()
    }

    #[test]
    fn genai_span_current_conventions() {
        let req = traces(
            vec![kv("service.name", s("chat-api")), kv("deployment.environment.name", s("prod")), kv("telemetry.sdk.name", s("opentelemetry"))],
            vec![span(
                "chat gpt-4o",
                vec![
                    kv("gen_ai.operation.name", s("chat")),
                    kv("gen_ai.provider.name", s("openai")),
                    kv("gen_ai.request.model", s("gpt-4o")),
                    kv("gen_ai.response.model", s("gpt-4o-2024-08-06")),
                    kv("gen_ai.usage.input_tokens", Value::IntValue(1200)),
                    kv("gen_ai.usage.output_tokens", Value::IntValue(250)),
                    kv("gen_ai.usage.cache_read.input_tokens", Value::IntValue(1000)),
                    kv("gen_ai.input.messages", s(r#"[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]"#)),
                    kv("gen_ai.output.messages", s(r#"[{"role":"assistant","parts":[{"type":"text","content":"Hello"}]}]"#)),
                    kv("gen_ai.request.temperature", Value::DoubleValue(0.2)),
                    kv("user.id", s("u-1")),
                ],
            )],
        );
        let r = one(&req, &OtlpSettings::default());
        assert_eq!(r.model, "gpt-4o");
        assert_eq!(r.model_version, "gpt-4o-2024-08-06");
        assert_eq!(r.provider, "openai");
        assert_eq!(r.operation, "chat");
        assert_eq!(r.environment, "prod");
        assert_eq!((r.input_tokens, r.output_tokens, r.cached_tokens), (Some(1200), Some(250), Some(1000)));
        assert_eq!(r.latency_ms, Some(812.5));
        assert_eq!(r.timestamp, NOW - 5_000);
        assert!(!r.error);
        assert_eq!(r.trace_id.as_deref(), Some("abababababababababababababababab"));
        assert_eq!(r.span_id.as_deref(), Some("cdcdcdcdcdcdcdcd"));
        assert!(r.request.as_deref().unwrap().contains("\"Hi\""));
        assert!(r.response.as_deref().unwrap().contains("\"Hello\""));
        assert_eq!(r.user_id.as_deref(), Some("u-1"));
        assert_eq!(r.metadata_get("gen_ai.request.temperature"), Some(&MetaValue::Num(0.2)));
        assert_eq!(r.metadata_get("service.name"), Some(&MetaValue::Str("chat-api".into())));
        assert_eq!(r.metadata_get("telemetry.sdk.name"), None);
        assert_eq!(r.metadata_get("gen_ai.usage.input_tokens"), None, "mapped fields are not repeated");
    }

    #[test]
    fn older_and_openinference_names() {
        let mut sp = span(
            "openai.chat",
            vec![
                kv("gen_ai.system", s("openai")),
                kv("gen_ai.request.model", s("gpt-3.5-turbo")),
                kv("gen_ai.usage.prompt_tokens", Value::IntValue(10)),
                kv("gen_ai.usage.completion_tokens", s("20")),
                kv("gen_ai.prompt.0.role", s("user")),
                kv("gen_ai.prompt.0.content", s("What is 2+2?")),
                kv("gen_ai.completion.0.role", s("assistant")),
                kv("gen_ai.completion.0.content", s("4")),
            ],
        );
        sp.status = Some(t::Status { code: t::status::StatusCode::Error as i32, message: "rate limited".into() });
        sp.events.push(t::span::Event {
            name: "exception".into(),
            attributes: vec![kv("exception.type", s("RateLimitError")), kv("exception.message", s("429"))],
            ..Default::default()
        });
        let r = one(&traces(vec![], vec![sp]), &OtlpSettings::default());
        assert_eq!((r.provider.as_str(), r.input_tokens, r.output_tokens), ("openai", Some(10), Some(20)));
        assert!(r.error);
        assert_eq!(r.error_type.as_deref(), Some("RateLimitError"));
        assert_eq!(r.error_message.as_deref(), Some("rate limited"));
        assert_eq!(r.level, Level::Error);
        let req: serde_json::Value = serde_json::from_str(r.request.as_deref().unwrap()).unwrap();
        assert_eq!(req, serde_json::json!([{"role": "user", "content": "What is 2+2?"}]));
        let resp: serde_json::Value = serde_json::from_str(r.response.as_deref().unwrap()).unwrap();
        assert_eq!(resp, serde_json::json!([{"role": "assistant", "content": "4"}]));

        let oi = span(
            "ChatCompletion",
            vec![
                kv("openinference.span.kind", s("LLM")),
                kv("llm.model_name", s("claude-3-5-sonnet")),
                kv("llm.provider", s("anthropic")),
                kv("llm.token_count.prompt", Value::IntValue(7)),
                kv("llm.token_count.completion", Value::IntValue(9)),
                kv("llm.input_messages.0.message.role", s("user")),
                kv("llm.input_messages.0.message.content", s("hello")),
                kv("output.value", s("hi there")),
            ],
        );
        let r = one(&traces(vec![], vec![oi]), &OtlpSettings::default());
        assert_eq!((r.model.as_str(), r.provider.as_str()), ("claude-3-5-sonnet", "anthropic"));
        assert_eq!((r.input_tokens, r.output_tokens), (Some(7), Some(9)));
        assert_eq!(r.request.as_deref(), Some(r#"[{"content":"hello","role":"user"}]"#));
        assert_eq!(r.response.as_deref(), Some("hi there"));
        assert_eq!(r.metadata_get("openinference.span.kind"), Some(&MetaValue::Str("LLM".into())));
    }

    #[test]
    fn structured_messages_and_older_events() {
        let msgs = Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(Value::KvlistValue(KeyValueList { values: vec![kv("role", s("user")), kv("content", s("hey"))] })),
            }],
        });
        let mut sp = span("chat", vec![kv("gen_ai.request.model", s("m1")), kv("gen_ai.input.messages", msgs)]);
        sp.events.push(t::span::Event {
            name: "gen_ai.content.completion".into(),
            attributes: vec![kv("gen_ai.completion", s("done"))],
            ..Default::default()
        });
        let r = one(&traces(vec![], vec![sp]), &OtlpSettings::default());
        assert_eq!(r.request.as_deref(), Some(r#"[{"content":"hey","role":"user"}]"#));
        assert_eq!(r.response.as_deref(), Some("done"));
    }

    #[test]
    fn plain_spans_follow_the_model_attribute_or_service() {
        let sp = span("POST /predict", vec![kv("http.response.status_code", Value::IntValue(503))]);
        let req = traces(vec![kv("service.name", s("fraud scorer"))], vec![sp.clone()]);
        let r = one(&req, &OtlpSettings::default());
        assert_eq!(r.model, "fraud_scorer", "service name made a valid model name");
        assert_eq!(r.operation, "POST /predict");
        assert_eq!(r.http_status, Some(503));
        assert!(r.error);
        assert_eq!(r.metadata_get("otel.span_kind"), Some(&MetaValue::Str("unspecified".into())));
        let req = traces(vec![kv("service.name", s("svc")), kv("ml.model", s("fraud-v2"))], vec![sp.clone()]);
        let settings = OtlpSettings { model_attribute: "ml.model".into(), plain_spans: true };
        assert_eq!(one(&req, &settings).model, "fraud-v2");
        let mut notes = Notes::default();
        let skip = OtlpSettings { plain_spans: false, ..Default::default() };
        assert!(map_traces(&req, &skip, &Limits::default(), NOW, &mut notes).is_empty());
        assert_eq!(notes.skipped_spans, 1);
    }

    #[test]
    fn limits_cut_and_refuse() {
        let limits = Limits { max_metadata_entries: 2, max_text_bytes: 8, ..Default::default() };
        let long = "é".repeat(10);
        let mut sp = span("chat", vec![
            kv("gen_ai.request.model", s("m")),
            kv("a", s(&long)),
            kv("b", Value::IntValue(1)),
            kv("c", Value::IntValue(2)),
            kv("d", Value::ArrayValue(ArrayValue::default())),
        ]);
        let mut notes = Notes::default();
        let items = map_traces(&traces(vec![], vec![sp.clone()]), &OtlpSettings::default(), &limits, NOW, &mut notes);
        let r = items[0].2.as_ref().unwrap();
        assert_eq!(r.metadata_get("a"), Some(&MetaValue::Str("éééé".into())));
        assert_eq!(r.metadata.len(), 2);
        assert_eq!(notes.truncated_values, 1);
        assert_eq!(notes.dropped_attributes, 2, "one over the entry limit, one nested");
        assert!(notes.warning().unwrap().contains("2 attributes"));
        // A time far in the future is refused and named.
        sp.start_time_unix_nano = (NOW as u64 + 48 * 3_600_000) * NS;
        sp.end_time_unix_nano = sp.start_time_unix_nano;
        let items = map_traces(&traces(vec![], vec![sp]), &OtlpSettings::default(), &limits, NOW, &mut notes);
        let err = items[0].2.as_ref().unwrap_err();
        assert_eq!(err.field(), Some("resourceSpans[0].scopeSpans[0].spans[0]"));
    }

    #[test]
    fn log_records_become_events() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![logs::v1::ResourceLogs {
                resource: Some(Resource { attributes: vec![kv("service.name", s("rag-worker"))], ..Default::default() }),
                scope_logs: vec![logs::v1::ScopeLogs {
                    log_records: vec![
                        logs::v1::LogRecord {
                            time_unix_nano: (NOW as u64 - 1000) * NS,
                            severity_number: 17,
                            body: Some(AnyValue { value: Some(s("index lookup failed")) }),
                            attributes: vec![kv("exception.type", s("Timeout")), kv("shard", Value::IntValue(3))],
                            trace_id: vec![1; 16],
                            ..Default::default()
                        },
                        logs::v1::LogRecord {
                            observed_time_unix_nano: (NOW as u64 - 500) * NS,
                            severity_text: "WARN".into(),
                            event_name: "gen_ai.choice".into(),
                            attributes: vec![kv("gen_ai.request.model", s("gpt-4o-mini"))],
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut notes = Notes::default();
        let items = map_logs(&req, &OtlpSettings::default(), &Limits::default(), NOW, &mut notes);
        let a = items[0].2.as_ref().unwrap();
        assert_eq!((a.model.as_str(), a.level, a.error), ("rag-worker", Level::Error, true));
        assert_eq!(a.message.as_deref(), Some("index lookup failed"));
        assert_eq!(a.error_type.as_deref(), Some("Timeout"));
        assert_eq!(a.operation, "log");
        assert_eq!(a.timestamp, NOW - 1000);
        assert_eq!(a.metadata_get("shard"), Some(&MetaValue::Num(3.0)));
        let b = items[1].2.as_ref().unwrap();
        assert_eq!((b.model.as_str(), b.level, b.error, b.operation.as_str()), ("gpt-4o-mini", Level::Warn, false, "gen_ai.choice"));
        assert_eq!(b.timestamp, NOW - 500);
    }

    fn metrics_req(metrics: Vec<m::Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![m::ResourceMetrics {
                resource: Some(Resource { attributes: vec![kv("service.name", s("gateway"))], ..Default::default() }),
                scope_metrics: vec![m::ScopeMetrics { metrics, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    fn by_name(items: &[Item<MetricPoint>]) -> BTreeMap<String, (String, f64)> {
        items.iter().map(|(_, _, r)| r.as_ref().unwrap()).map(|p| (p.name.clone(), (p.model.clone(), p.value))).collect()
    }

    #[test]
    fn metrics_gauge_counter_histogram() {
        let start = (NOW as u64 - 60_000) * NS;
        let hist = |count: u64, sum: f64, buckets: Vec<u64>| m::Metric {
            name: "gen_ai.client.operation.duration".into(),
            unit: "s".into(),
            data: Some(Data::Histogram(m::Histogram {
                aggregation_temporality: m::AggregationTemporality::Cumulative as i32,
                data_points: vec![m::HistogramDataPoint {
                    attributes: vec![kv("gen_ai.request.model", s("gpt-4o"))],
                    start_time_unix_nano: start,
                    time_unix_nano: NOW as u64 * NS,
                    count,
                    sum: Some(sum),
                    bucket_counts: buckets,
                    explicit_bounds: vec![0.5, 1.0, 2.0],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let counter = |v: i64| m::Metric {
            name: "requests".into(),
            data: Some(Data::Sum(m::Sum {
                aggregation_temporality: m::AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
                data_points: vec![m::NumberDataPoint {
                    start_time_unix_nano: start,
                    time_unix_nano: NOW as u64 * NS,
                    value: Some(number_data_point::Value::AsInt(v)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let gauge = m::Metric {
            name: "gpu utilisation %".into(),
            data: Some(Data::Gauge(m::Gauge {
                data_points: vec![m::NumberDataPoint {
                    time_unix_nano: NOW as u64 * NS,
                    value: Some(number_data_point::Value::AsDouble(0.75)),
                    attributes: vec![kv("modelwatch.model", s("llama-70b")), kv("gpu", s("0"))],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let tracker = DeltaTracker::new(0);
        let (items, points) = map_metrics(&metrics_req(vec![hist(4, 3.0, vec![2, 2, 0, 0]), counter(10), gauge.clone()]), &OtlpSettings::default(), &Limits::default(), NOW, &tracker);
        assert_eq!(points, 3);
        // The series started after the tracker: everything counts on first sight.
        assert_eq!(by_name(&items).len(), 6 + 1 + 1);
        let (items, _) = map_metrics(&metrics_req(vec![hist(8, 7.0, vec![2, 4, 2, 0]), counter(25), gauge]), &OtlpSettings::default(), &Limits::default(), NOW, &tracker);
        let got = by_name(&items);
        assert_eq!(got["requests"], ("gateway".into(), 15.0));
        assert_eq!(got["gpu_utilisation__"], ("llama-70b".into(), 0.75));
        assert_eq!(got["gen_ai.client.operation.duration.count"], ("gpt-4o".into(), 4.0));
        assert_eq!(got["gen_ai.client.operation.duration.sum"].1, 4000.0, "seconds stored as ms");
        assert_eq!(got["gen_ai.client.operation.duration.avg"].1, 1000.0);
        // Of the 4 new observations 2 lie in (0.5, 1] and 2 in (1, 2]: the median is 1 s.
        assert!((got["gen_ai.client.operation.duration.p50"].1 - 1000.0).abs() < 1e-6);
        let labels = &items.iter().find(|i| i.2.as_ref().unwrap().name == "gpu_utilisation__").unwrap().2.as_ref().unwrap().labels;
        assert_eq!(labels, &vec![("gpu".to_string(), "0".to_string())]);
    }

    #[test]
    fn exponential_histogram_bounds() {
        let p = m::ExponentialHistogramDataPoint {
            scale: 0,
            zero_count: 1,
            positive: Some(m::exponential_histogram_data_point::Buckets { offset: 0, bucket_counts: vec![1, 2] }),
            ..Default::default()
        };
        let (b, c) = exponential_buckets(&p);
        assert_eq!(b, vec![0.0, 2.0, 4.0]);
        assert_eq!(c, vec![1.0, 1.0, 2.0]);
    }

    #[test]
    fn token_usage_split_by_type() {
        let metric = m::Metric {
            name: "gen_ai.client.token.usage".into(),
            unit: "{token}".into(),
            data: Some(Data::Histogram(m::Histogram {
                aggregation_temporality: m::AggregationTemporality::Delta as i32,
                data_points: vec![m::HistogramDataPoint {
                    attributes: vec![kv("gen_ai.request.model", s("gpt-4o")), kv("gen_ai.token.type", s("input"))],
                    time_unix_nano: NOW as u64 * NS,
                    count: 2,
                    sum: Some(300.0),
                    bucket_counts: vec![0, 2],
                    explicit_bounds: vec![100.0],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let (items, _) = map_metrics(&metrics_req(vec![metric]), &OtlpSettings::default(), &Limits::default(), NOW, &DeltaTracker::new(0));
        let got = by_name(&items);
        assert_eq!(got["gen_ai.client.token.usage.input.sum"], ("gpt-4o".into(), 300.0));
        assert_eq!(got["gen_ai.client.token.usage.input.count"].1, 2.0);
    }
}
