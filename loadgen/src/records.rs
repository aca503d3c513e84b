//! Synthetic AI-model log records in Modelwatch's native schema, and the pre-encoded batch
//! pool that keeps the generator off the critical path.
//!
//! Records are generated once, at start, into a pool of [`BatchTemplate`]s. Each template holds
//! the records already serialised *without* their `timestamp`; encoding a batch for a request
//! only splices `{"timestamp":<now - age>,` in front of each record, so it costs a memory copy
//! and one integer per record rather than a JSON serialisation.

use std::collections::BTreeMap;
use std::io::Write;

use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::LogNormal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What kind of call a model serves; decides `operation`, tokens and the latency scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Embedding,
    Predict,
}

/// One model of the fixed list `--models N` draws from.
#[derive(Debug)]
pub struct ModelSpec {
    pub name: &'static str,
    pub version: &'static str,
    pub provider: &'static str,
    pub kind: Kind,
    /// Relative share of traffic.
    pub weight: u32,
}

const fn m(
    name: &'static str,
    version: &'static str,
    provider: &'static str,
    kind: Kind,
    weight: u32,
) -> ModelSpec {
    ModelSpec {
        name,
        version,
        provider,
        kind,
        weight,
    }
}

/// The first `--models` entries are used, so the default 8 covers chat, embedding and predict.
pub const MODELS: &[ModelSpec] = &[
    m("gpt-4o", "gpt-4o-2024-11-20", "openai", Kind::Chat, 20),
    m(
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "openai",
        Kind::Chat,
        30,
    ),
    m(
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "anthropic",
        Kind::Chat,
        18,
    ),
    m("llama-3.1-70b-instruct", "3.1-awq", "vllm", Kind::Chat, 10),
    m(
        "mistral-large",
        "mistral-large-2411",
        "mistral",
        Kind::Chat,
        6,
    ),
    m("text-embedding-3-small", "1", "openai", Kind::Embedding, 12),
    m("fraud-detector-v3", "3.4.1", "sklearn", Kind::Predict, 10),
    m("churn-model", "2025.06", "xgboost", Kind::Predict, 4),
    m(
        "gemini-2.5-pro",
        "gemini-2.5-pro-001",
        "google",
        Kind::Chat,
        8,
    ),
    m(
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "anthropic",
        Kind::Chat,
        10,
    ),
    m("gpt-4.1", "gpt-4.1-2025-04-14", "openai", Kind::Chat, 8),
    m(
        "gemini-2.5-flash",
        "gemini-2.5-flash-001",
        "google",
        Kind::Chat,
        10,
    ),
    m("text-embedding-3-large", "1", "openai", Kind::Embedding, 4),
    m("qwen2.5-72b-instruct", "2.5-gptq", "vllm", Kind::Chat, 5),
    m(
        "mistral-small",
        "mistral-small-2503",
        "mistral",
        Kind::Chat,
        5,
    ),
    m("bge-m3", "1.0", "huggingface", Kind::Embedding, 3),
    m(
        "image-classifier-resnet50",
        "1.8.0",
        "torchserve",
        Kind::Predict,
        3,
    ),
    m("demand-forecast", "0.9.2", "sklearn", Kind::Predict, 2),
];

/// One log record, field names exactly as the native ingest API expects. Optional fields are
/// left out of the JSON when absent. `cost_usd` is never sent: the server prices records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Epoch ms. `None` while the record sits in a template (the timestamp is spliced in at send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    pub model: String,
    pub model_version: String,
    pub provider: String,
    pub environment: String,
    pub operation: String,
    pub status: String,
    pub http_status: u16,
    pub latency_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    pub cache_hit: bool,
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub user_id: String,
    pub session_id: String,
    pub trace_id: String,
    pub span_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    pub metadata: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<i8>,
}

#[derive(Debug, Clone)]
pub struct GenConfig {
    /// How many entries of [`MODELS`] to use (1..=MODELS.len()).
    pub models: usize,
    /// Share of records that are errors, 0..=1.
    pub error_rate: f64,
    /// Approximate bytes of `request` + `response` per record; 0 leaves both out.
    pub payload_bytes: usize,
}

const WORDS: &[&str] = &[
    "the",
    "model",
    "request",
    "answer",
    "please",
    "summarise",
    "following",
    "report",
    "customer",
    "order",
    "invoice",
    "account",
    "refund",
    "policy",
    "shipping",
    "delivery",
    "question",
    "about",
    "which",
    "would",
    "could",
    "should",
    "there",
    "their",
    "these",
    "those",
    "because",
    "before",
    "after",
    "during",
    "between",
    "quarter",
    "revenue",
    "growth",
    "market",
    "product",
    "feature",
    "release",
    "version",
    "update",
    "error",
    "issue",
    "ticket",
    "support",
    "team",
    "manager",
    "meeting",
    "schedule",
    "tomorrow",
    "today",
    "yesterday",
    "week",
    "month",
    "year",
    "data",
    "table",
    "column",
    "query",
    "result",
    "results",
    "analysis",
    "trend",
    "increase",
    "decrease",
    "total",
    "average",
    "median",
    "number",
    "of",
    "and",
    "or",
    "to",
    "in",
    "for",
    "with",
    "on",
    "is",
    "are",
    "was",
    "were",
    "be",
    "it",
    "this",
    "that",
    "we",
    "you",
    "they",
    "our",
    "your",
    "can",
    "will",
    "not",
    "all",
    "any",
    "some",
    "more",
    "less",
    "most",
    "very",
    "also",
    "only",
    "just",
    "new",
    "first",
    "last",
    "next",
    "best",
    "good",
    "great",
    "simple",
    "short",
    "long",
    "clear",
    "detailed",
    "draft",
    "email",
    "letter",
    "message",
    "note",
    "list",
    "steps",
    "example",
    "examples",
    "explain",
    "describe",
    "translate",
    "french",
    "german",
    "spanish",
    "code",
    "function",
    "python",
    "rust",
    "test",
    "tests",
    "bug",
    "fix",
    "deploy",
    "server",
    "database",
    "latency",
    "cost",
    "budget",
    "contract",
    "legal",
    "review",
    "section",
    "paragraph",
    "sentence",
    "words",
    "tone",
    "friendly",
    "formal",
    "audience",
    "users",
    "user",
    "help",
    "need",
    "want",
    "know",
    "think",
    "make",
    "use",
    "find",
    "give",
    "take",
    "keep",
    "show",
    "check",
    "here",
    "what",
    "how",
    "why",
    "when",
    "where",
    "who",
    "sure",
    "certainly",
    "thanks",
    "thank",
    "regards",
];

const FIRST_NAMES: &[&str] = &[
    "anna", "jonas", "maria", "li", "tom", "fatima", "lukas", "sofia", "omar", "emma",
];
const LAST_NAMES: &[&str] = &[
    "schmidt", "rossi", "nguyen", "smith", "garcia", "novak", "kowalski", "dubois",
];
const PHONES: &[&str] = &[
    "+44 20 7946 0958",
    "(415) 555-0132",
    "+1 415 555 0199",
    "+49 30 901820",
    "(212) 555-0147",
];
const REGIONS: &[&str] = &["eu-west-1", "eu-central-1", "us-east-1", "us-west-2"];

struct ErrorKind {
    error_type: &'static str,
    statuses: &'static [u16],
    message: &'static str,
}

const ERRORS: &[ErrorKind] = &[
    ErrorKind {
        error_type: "rate_limit",
        statuses: &[429],
        message: "Rate limit reached for requests per minute. Please try again in 2s.",
    },
    ErrorKind {
        error_type: "timeout",
        statuses: &[504],
        message: "Upstream request timed out after 60s",
    },
    ErrorKind {
        error_type: "server_error",
        statuses: &[500, 503],
        message: "The server had an error while processing your request",
    },
    ErrorKind {
        error_type: "context_length_exceeded",
        statuses: &[400],
        message: "This model's maximum context length is 128000 tokens; the messages resulted in 131702 tokens",
    },
];

/// Median latency (ms) per kind; sigma 0.6 for all.
fn latency_median_ms(kind: Kind) -> f64 {
    match kind {
        Kind::Chat => 700.0,
        Kind::Embedding => 40.0,
        Kind::Predict => 8.0,
    }
}

fn lognormal(median: f64, sigma: f64) -> LogNormal<f64> {
    LogNormal::new(median.ln(), sigma).expect("valid lognormal parameters")
}

/// Rounds to 0.1 so numbers stay short on the wire and parse back to the same f64.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn random_hex(rng: &mut impl Rng, digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..digits)
        .map(|_| HEX[rng.gen_range(0..16)] as char)
        .collect()
}

/// Makes records. Deterministic for a given seed.
pub struct Generator {
    rng: StdRng,
    cfg: GenConfig,
    models: &'static [ModelSpec],
    pick: WeightedIndex<u32>,
    users: Vec<String>,
    lat: [LogNormal<f64>; 3],
    cache_hit_lat: LogNormal<f64>,
    input_tokens: [LogNormal<f64>; 2],
    output_tokens: LogNormal<f64>,
}

impl Generator {
    pub fn new(cfg: GenConfig, seed: u64) -> Generator {
        assert!(
            (1..=MODELS.len()).contains(&cfg.models),
            "models must be in 1..={}",
            MODELS.len()
        );
        let models = &MODELS[..cfg.models];
        let pick = WeightedIndex::new(models.iter().map(|m| m.weight)).expect("positive weights");
        let users = (1..=500).map(|i| format!("u-{i:04}")).collect();
        Generator {
            rng: StdRng::seed_from_u64(seed),
            cfg,
            models,
            pick,
            users,
            lat: [Kind::Chat, Kind::Embedding, Kind::Predict]
                .map(|k| lognormal(latency_median_ms(k), 0.6)),
            cache_hit_lat: lognormal(15.0, 0.5),
            input_tokens: [lognormal(900.0, 0.9), lognormal(300.0, 0.7)],
            output_tokens: lognormal(220.0, 0.8),
        }
    }

    pub fn models(&self) -> &'static [ModelSpec] {
        self.models
    }

    /// A random record without a timestamp.
    pub fn record(&mut self) -> LogRecord {
        let spec = &self.models[self.pick.sample(&mut self.rng)];
        self.record_for(spec)
    }

    /// A random record for the given model, without a timestamp.
    pub fn record_for(&mut self, spec: &ModelSpec) -> LogRecord {
        let rng = &mut self.rng;
        let is_error = rng.gen_bool(self.cfg.error_rate.clamp(0.0, 1.0));
        let environment = if rng.gen_bool(0.8) {
            "production"
        } else {
            "staging"
        };
        let operation = match spec.kind {
            Kind::Chat => "chat",
            Kind::Embedding => "embedding",
            Kind::Predict => "predict",
        };
        let cache_hit = !is_error && spec.kind != Kind::Predict && rng.gen_bool(0.05);
        let lat_dist = match spec.kind {
            Kind::Chat => &self.lat[0],
            Kind::Embedding => &self.lat[1],
            Kind::Predict => &self.lat[2],
        };
        let mut latency_ms = if cache_hit {
            self.cache_hit_lat.sample(rng)
        } else {
            lat_dist.sample(rng)
        };

        let (mut input_tokens, mut output_tokens, mut cached_tokens) = (None, None, None);
        match spec.kind {
            Kind::Chat => {
                let input = self.input_tokens[0].sample(rng).round().max(1.0) as u64;
                input_tokens = Some(input);
                output_tokens = Some(if is_error {
                    0
                } else {
                    self.output_tokens.sample(rng).round().max(1.0) as u64
                });
                if !is_error && rng.gen_bool(0.2) {
                    cached_tokens = Some(input * rng.gen_range(10..=90) / 100);
                }
            }
            Kind::Embedding => {
                input_tokens = Some(self.input_tokens[1].sample(rng).round().max(1.0) as u64);
                output_tokens = Some(0);
            }
            Kind::Predict => {}
        }

        let (mut status, mut http_status, mut level) = ("ok", 200u16, "info");
        let (mut error_type, mut error_message) = (None, None);
        if is_error {
            let e = &ERRORS[rng.gen_range(0..ERRORS.len())];
            status = "error";
            level = "error";
            http_status = e.statuses[rng.gen_range(0..e.statuses.len())];
            error_type = Some(e.error_type.to_string());
            error_message = Some(e.message.to_string());
            latency_ms = match e.error_type {
                "timeout" => 60_000.0 + rng.gen_range(0.0..500.0),
                "rate_limit" | "context_length_exceeded" => rng.gen_range(20.0..120.0),
                _ => latency_ms,
            };
        }
        let ttft_ms = (spec.kind == Kind::Chat && !is_error)
            .then(|| round1(latency_ms * rng.gen_range(0.08..0.4)));
        let feedback = (spec.kind == Kind::Chat && rng.gen_bool(0.02))
            .then(|| if rng.gen_bool(0.7) { 1 } else { -1 });

        let user_id = self.users[rng.gen_range(0..self.users.len())].clone();
        let session_id = format!("s-{}", random_hex(rng, 12));
        let trace_id = random_hex(rng, 32);
        let span_id = random_hex(rng, 16);

        let mut metadata = BTreeMap::new();
        metadata.insert(
            "region".into(),
            Value::from(REGIONS[rng.gen_range(0..REGIONS.len())]),
        );
        metadata.insert(
            "tenant".into(),
            Value::from(format!("t-{}", rng.gen_range(1..=40))),
        );
        metadata.insert(
            "gateway".into(),
            Value::from(if spec.kind == Kind::Predict {
                "seldon"
            } else {
                "litellm"
            }),
        );

        let (request, response) = self.payloads(is_error);
        LogRecord {
            timestamp: None,
            model: spec.name.to_string(),
            model_version: spec.version.to_string(),
            provider: spec.provider.to_string(),
            environment: environment.to_string(),
            operation: operation.to_string(),
            status: status.to_string(),
            http_status,
            latency_ms: round1(latency_ms),
            ttft_ms,
            input_tokens,
            output_tokens,
            cached_tokens,
            cache_hit,
            level: level.to_string(),
            error_type,
            error_message,
            user_id,
            session_id,
            trace_id,
            span_id,
            request,
            response,
            metadata,
            feedback,
        }
    }

    /// Request and response text totalling `payload_bytes` (an error has only a request).
    fn payloads(&mut self, is_error: bool) -> (Option<String>, Option<String>) {
        let total = self.cfg.payload_bytes;
        if total == 0 {
            return (None, None);
        }
        // About 3% of records carry an e-mail address or a phone number for the redaction rules.
        let pii = if self.rng.gen_bool(0.03) {
            Some(self.pii())
        } else {
            None
        };
        if is_error {
            return (Some(self.text(total, pii.as_deref())), None);
        }
        let req_len = (total * 2 / 5).max(1);
        let resp_len = total - req_len;
        let in_request = self.rng.gen_bool(0.5);
        let request = self.text(req_len, if in_request { pii.as_deref() } else { None });
        let response = (resp_len > 0)
            .then(|| self.text(resp_len, if in_request { None } else { pii.as_deref() }));
        (Some(request), response)
    }

    fn pii(&mut self) -> String {
        let rng = &mut self.rng;
        if rng.gen_bool(0.6) {
            let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
            let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
            format!(
                "Contact me at {first}.{last}{}@example.com. ",
                rng.gen_range(1..100)
            )
        } else {
            format!("Call me on {}. ", PHONES[rng.gen_range(0..PHONES.len())])
        }
    }

    /// English-looking text of exactly `len` bytes (ASCII), from the word list: compresses like
    /// real prompts do. `lead` is put first when it fits.
    fn text(&mut self, len: usize, lead: Option<&str>) -> String {
        let mut s = String::with_capacity(len + 16);
        if let Some(lead) = lead
            && lead.len() < len
        {
            s.push_str(lead);
        }
        let mut words_left_in_sentence = 0;
        while s.len() < len {
            let w = WORDS[self.rng.gen_range(0..WORDS.len())];
            if words_left_in_sentence == 0 {
                if !s.is_empty() {
                    s.push(' ');
                }
                let mut cs = w.chars();
                if let Some(c) = cs.next() {
                    s.push(c.to_ascii_uppercase());
                    s.push_str(cs.as_str());
                }
                words_left_in_sentence = self.rng.gen_range(5..15);
            } else {
                s.push(' ');
                s.push_str(w);
            }
            words_left_in_sentence -= 1;
            if words_left_in_sentence == 0 {
                s.push(if self.rng.gen_bool(0.15) { '?' } else { '.' });
            }
        }
        s.truncate(len);
        s
    }
}

/// Body encoding of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line (`application/x-ndjson`).
    Ndjson,
    /// One JSON array (`application/json`).
    Json,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Json => "application/json",
        }
    }
}

/// A batch of records serialised once, minus their timestamps.
#[derive(Debug, Clone)]
pub struct BatchTemplate {
    /// Each record's JSON without its opening `{`, concatenated.
    text: String,
    /// Per record: end offset in `text` and age in ms (timestamp = now - age).
    records: Vec<(u32, u32)>,
}

const TS_PREFIX: &[u8] = b"{\"timestamp\":";

#[allow(clippy::len_without_is_empty)]
impl BatchTemplate {
    /// `records` must have no timestamp; each gets an age of 0..1000 ms, as if collected over
    /// the last second by a gateway.
    pub fn new(records: &[LogRecord], rng: &mut impl Rng) -> BatchTemplate {
        let mut text = String::new();
        let mut offsets = Vec::with_capacity(records.len());
        for r in records {
            debug_assert!(r.timestamp.is_none());
            let json = serde_json::to_string(r).expect("a record serialises");
            text.push_str(&json[1..]);
            offsets.push((text.len() as u32, rng.gen_range(0..1000)));
        }
        BatchTemplate {
            text,
            records: offsets,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Bytes of one encoding, roughly (for buffer sizing and reports).
    pub fn approx_encoded_len(&self) -> usize {
        self.text.len() + self.records.len() * (TS_PREFIX.len() + 16)
    }

    /// The batch with timestamps `now_ms - age`, plus `extra` (a complete JSON object) last.
    pub fn encode(&self, format: Format, now_ms: i64, extra: Option<&str>) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.approx_encoded_len() + extra.map_or(0, |e| e.len() + 2));
        self.encode_into(&mut out, format, now_ms, extra);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>, format: Format, now_ms: i64, extra: Option<&str>) {
        let text = self.text.as_bytes();
        let mut itoa = itoa::Buffer::new();
        if format == Format::Json {
            out.push(b'[');
        }
        let mut start = 0usize;
        for (i, &(end, age)) in self.records.iter().enumerate() {
            if format == Format::Json && i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(TS_PREFIX);
            out.extend_from_slice(itoa.format(now_ms - age as i64).as_bytes());
            out.push(b',');
            out.extend_from_slice(&text[start..end as usize]);
            if format == Format::Ndjson {
                out.push(b'\n');
            }
            start = end as usize;
        }
        if let Some(extra) = extra {
            if format == Format::Json && !self.records.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(extra.as_bytes());
            if format == Format::Ndjson {
                out.push(b'\n');
            }
        }
        if format == Format::Json {
            out.push(b']');
        }
    }
}

/// Generates `batches` templates of `batch` records each.
pub fn build_pool(
    generator: &mut Generator,
    batch: usize,
    batches: usize,
    rng: &mut impl Rng,
) -> Vec<BatchTemplate> {
    (0..batches)
        .map(|_| {
            let records: Vec<LogRecord> = (0..batch).map(|_| generator.record()).collect();
            BatchTemplate::new(&records, rng)
        })
        .collect()
}

/// Pool size: 64 distinct batches, fewer for very large batches (at most ~200k records held).
pub fn pool_batches(batch: usize) -> usize {
    (200_000 / batch.max(1)).clamp(4, 64)
}

/// gzip at the fastest level: the load generator must not be the bottleneck.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Parses an encoded body back into records.
#[cfg(test)]
pub fn decode(body: &[u8], format: Format) -> Result<Vec<LogRecord>, serde_json::Error> {
    match format {
        Format::Json => serde_json::from_slice(body),
        Format::Ndjson => body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(serde_json::from_slice)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn generator(error_rate: f64, payload_bytes: usize) -> Generator {
        Generator::new(
            GenConfig {
                models: 8,
                error_rate,
                payload_bytes,
            },
            42,
        )
    }

    #[test]
    fn records_are_json_objects_with_the_required_fields() {
        let mut g = generator(0.2, 200);
        for _ in 0..2000 {
            let mut r = g.record();
            r.timestamp = Some(1_700_000_000_000);
            let v: Value = serde_json::to_value(&r).unwrap();
            let o = v.as_object().unwrap();
            for f in [
                "timestamp",
                "model",
                "model_version",
                "provider",
                "environment",
                "operation",
                "status",
                "http_status",
                "latency_ms",
                "cache_hit",
                "level",
                "user_id",
                "session_id",
                "trace_id",
                "span_id",
                "request",
                "metadata",
            ] {
                assert!(o.contains_key(f), "missing {f} in {v}");
            }
            assert!(!o.contains_key("cost_usd"));
            assert_eq!(r.trace_id.len(), 32);
            assert_eq!(r.span_id.len(), 16);
            assert!(r.trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(r.latency_ms >= 0.0);
            assert!(["production", "staging"].contains(&r.environment.as_str()));
            let spec = MODELS.iter().find(|m| m.name == r.model).unwrap();
            match spec.kind {
                Kind::Chat => assert_eq!(r.operation, "chat"),
                Kind::Embedding => assert_eq!(r.operation, "embedding"),
                Kind::Predict => {
                    assert_eq!(r.operation, "predict");
                    assert!(r.input_tokens.is_none() && r.ttft_ms.is_none());
                }
            }
            if r.status == "error" {
                assert!(r.error_type.is_some() && r.error_message.is_some());
                assert_eq!(r.level, "error");
                assert!([400, 429, 500, 503, 504].contains(&r.http_status));
            } else {
                assert_eq!(r.status, "ok");
                assert_eq!((r.http_status, r.level.as_str()), (200, "info"));
                assert!(r.error_type.is_none());
            }
            if let (Some(c), Some(i)) = (r.cached_tokens, r.input_tokens) {
                assert!(c <= i);
            }
            if let Some(t) = r.ttft_ms {
                assert!(t <= r.latency_ms);
            }
        }
    }

    #[test]
    fn error_share_is_near_the_requested_rate() {
        for rate in [0.02, 0.1, 0.5] {
            let mut g = generator(rate, 0);
            let n = 10_000;
            let errors = (0..n).filter(|_| g.record().status == "error").count();
            let share = errors as f64 / n as f64;
            // ±4 standard deviations of a binomial share.
            let tol = 4.0 * (rate * (1.0 - rate) / n as f64).sqrt();
            assert!((share - rate).abs() <= tol, "rate {rate}: got {share}");
        }
        let mut g = generator(0.0, 0);
        assert!((0..1000).all(|_| g.record().status == "ok"));
    }

    #[test]
    fn latency_medians_fit_the_model_kind() {
        let mut g = generator(0.0, 0);
        let mut by_kind: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for _ in 0..20_000 {
            let r = g.record();
            if !r.cache_hit {
                by_kind.entry(r.operation).or_default().push(r.latency_ms);
            }
        }
        for (op, want) in [("chat", 700.0), ("embedding", 40.0), ("predict", 8.0)] {
            let v = by_kind.get_mut(op).unwrap();
            v.sort_by(f64::total_cmp);
            let median = v[v.len() / 2];
            assert!(
                (median / want - 1.0).abs() < 0.15,
                "{op}: median {median}, want ~{want}"
            );
        }
    }

    #[test]
    fn payload_size_is_near_the_requested_size() {
        for want in [50usize, 200, 2000] {
            let mut g = generator(0.02, want);
            let n = 1000;
            let total: usize = (0..n)
                .map(|_| {
                    let r = g.record();
                    r.request.map_or(0, |s| s.len()) + r.response.map_or(0, |s| s.len())
                })
                .sum();
            let mean = total as f64 / n as f64;
            assert!(
                (mean / want as f64 - 1.0).abs() < 0.05,
                "want {want}, mean {mean}"
            );
        }
        let mut g = generator(0.02, 0);
        let r = g.record();
        assert!(r.request.is_none() && r.response.is_none());
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("\"request\"") && !json.contains("\"response\""));
    }

    #[test]
    fn some_payloads_carry_pii_for_redaction() {
        let mut g = generator(0.0, 300);
        let texts: Vec<String> = (0..5000)
            .map(|_| {
                let r = g.record();
                format!(
                    "{} {}",
                    r.request.unwrap_or_default(),
                    r.response.unwrap_or_default()
                )
            })
            .collect();
        let emails = texts.iter().filter(|t| t.contains("@example.com")).count();
        let phones = texts
            .iter()
            .filter(|t| PHONES.iter().any(|p| t.contains(p)))
            .count();
        assert!(
            emails > 20 && phones > 10,
            "emails {emails}, phones {phones}"
        );
        assert!(emails + phones < 400);
    }

    #[test]
    fn ndjson_and_json_encodings_parse_back_to_the_same_records() {
        let mut g = generator(0.1, 200);
        let records: Vec<LogRecord> = (0..300).map(|_| g.record()).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let tpl = BatchTemplate::new(&records, &mut rng);
        let now = 1_760_000_000_123i64;
        let mut marker = g.record();
        marker.timestamp = Some(now);
        let marker_json = serde_json::to_string(&marker).unwrap();
        for extra in [None, Some(marker_json.as_str())] {
            let nd = decode(&tpl.encode(Format::Ndjson, now, extra), Format::Ndjson).unwrap();
            let js = decode(&tpl.encode(Format::Json, now, extra), Format::Json).unwrap();
            assert_eq!(nd, js);
            assert_eq!(nd.len(), records.len() + extra.is_some() as usize);
            for (got, want) in nd.iter().zip(&records) {
                let ts = got.timestamp.unwrap();
                assert!(ts <= now && ts > now - 1000);
                assert_eq!(
                    &LogRecord {
                        timestamp: None,
                        ..got.clone()
                    },
                    want
                );
            }
            if extra.is_some() {
                assert_eq!(nd.last().unwrap(), &marker);
            }
        }
        // Re-encoding at a later time only moves the timestamps.
        let a = decode(&tpl.encode(Format::Ndjson, now, None), Format::Ndjson).unwrap();
        let b = decode(
            &tpl.encode(Format::Ndjson, now + 5000, None),
            Format::Ndjson,
        )
        .unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(y.timestamp.unwrap() - x.timestamp.unwrap(), 5000);
        }
        // An empty template with a marker is still valid.
        let empty = BatchTemplate::new(&[], &mut rng);
        assert_eq!(
            decode(
                &empty.encode(Format::Json, now, Some(&marker_json)),
                Format::Json
            )
            .unwrap(),
            vec![marker]
        );
    }

    #[test]
    fn gzip_round_trips_and_compresses_text() {
        let mut g = generator(0.02, 200);
        let mut rng = StdRng::seed_from_u64(1);
        let pool = build_pool(&mut g, 500, 2, &mut rng);
        let body = pool[0].encode(Format::Ndjson, 1_760_000_000_000, None);
        let gz = gzip(&body);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        assert!(
            gz.len() * 3 < body.len(),
            "gzip {} of {}",
            gz.len(),
            body.len()
        );
    }

    #[test]
    fn same_seed_same_records() {
        let a: Vec<LogRecord> = {
            let mut g = generator(0.1, 100);
            (0..50).map(|_| g.record()).collect()
        };
        let b: Vec<LogRecord> = {
            let mut g = generator(0.1, 100);
            (0..50).map(|_| g.record()).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn models_option_limits_the_models_used() {
        let mut g = Generator::new(
            GenConfig {
                models: 2,
                error_rate: 0.0,
                payload_bytes: 0,
            },
            3,
        );
        let seen: std::collections::BTreeSet<String> = (0..500).map(|_| g.record().model).collect();
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            vec!["gpt-4o".to_string(), "gpt-4o-mini".to_string()]
        );
        assert_eq!(pool_batches(1000), 64);
        assert_eq!(pool_batches(10_000), 20);
        assert_eq!(pool_batches(100_000), 4);
    }
}
