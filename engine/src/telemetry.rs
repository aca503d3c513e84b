//! Modelwatch's own metrics in the Prometheus text format (`GET /metrics`): ingest health from
//! the writer's counters, and per-model KPI series (requests, errors, tokens, cost, latency)
//! counted as records are acknowledged, so an existing Prometheus and Grafana can scrape them.
//! Counters start at zero when the process starts, as Prometheus expects.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::ingest::rollup::RecordFacts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabel {
    pub model: String,
}

/// The per-model families (a clone shares the counts).
#[derive(Debug, Clone)]
struct ModelFamilies {
    requests: Family<ModelLabel, Counter>,
    errors: Family<ModelLabel, Counter>,
    input_tokens: Family<ModelLabel, Counter>,
    output_tokens: Family<ModelLabel, Counter>,
    cost: Family<ModelLabel, Counter<f64, AtomicU64>>,
    latency: Family<ModelLabel, Histogram, fn() -> Histogram>,
}

/// Per-model series, updated on every acknowledged batch.
#[derive(Debug)]
pub struct IngestMetrics {
    models: ModelFamilies,
    pub accepted: Counter,
    pub rejected: Counter,
    /// Alerting: evaluation cycles, alerts firing after the last one, delivery outcomes.
    pub alert_evaluations: Counter,
    pub alerts_firing: prometheus_client::metrics::gauge::Gauge,
    pub notifications_delivered: Counter,
    pub notification_failures: Counter,
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~41 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for IngestMetrics {
    fn default() -> Self {
        IngestMetrics {
            models: ModelFamilies {
                requests: Family::default(),
                errors: Family::default(),
                input_tokens: Family::default(),
                output_tokens: Family::default(),
                cost: Family::default(),
                latency: Family::new_with_constructor(latency_histogram),
            },
            accepted: Counter::default(),
            rejected: Counter::default(),
            alert_evaluations: Counter::default(),
            alerts_firing: Default::default(),
            notifications_delivered: Counter::default(),
            notification_failures: Counter::default(),
        }
    }
}

impl IngestMetrics {
    /// Acknowledged records of one model: one label lookup per series, not per record.
    pub fn observe(&self, model: &str, facts: &[RecordFacts]) {
        let l = ModelLabel { model: model.to_string() };
        let (mut errors, mut input, mut output, mut cost) = (0u64, 0u64, 0u64, 0f64);
        for f in facts {
            errors += u64::from(f.error);
            input += f.input_tokens.unwrap_or(0).max(0) as u64;
            output += f.output_tokens.unwrap_or(0).max(0) as u64;
            cost += f.cost_usd.unwrap_or(0.0).max(0.0);
        }
        self.models.requests.get_or_create(&l).inc_by(facts.len() as u64);
        if errors > 0 {
            self.models.errors.get_or_create(&l).inc_by(errors);
        }
        if input > 0 {
            self.models.input_tokens.get_or_create(&l).inc_by(input);
        }
        if output > 0 {
            self.models.output_tokens.get_or_create(&l).inc_by(output);
        }
        if cost > 0.0 {
            self.models.cost.get_or_create(&l).inc_by(cost);
        }
        let latency = self.models.latency.get_or_create(&l);
        for ms in facts.iter().filter_map(|f| f.latency_ms) {
            latency.observe(ms / 1000.0);
        }
    }

    /// Everything as Prometheus text, with the writer's figures read now. `models`: the models
    /// whose per-model series the reader may see (an API key limited to some models must not
    /// learn the others' names or figures); None: all.
    pub fn encode(&self, w: &WriterFigures, models: Option<&HashSet<String>>) -> String {
        let mut r = Registry::with_prefix("modelwatch");
        r.register("ingest_accepted_records", "Records acknowledged by the ingest API", self.accepted.clone());
        r.register("ingest_rejected_records", "Records refused by validation, keys or limits", self.rejected.clone());
        r.register("ingest_overloaded_records", "Records answered 429 because the queue was full", ConstCounter::new(w.overloaded));
        r.register("ingest_queue_records", "Records waiting for the database writer", ConstGauge::new(w.queue as i64));
        r.register("ingest_commits", "Write transactions committed", ConstCounter::new(w.commits));
        r.register_with_unit("ingest_commit", "Time spent in write transactions", Unit::Seconds, ConstCounter::new(w.commit_seconds));
        r.register("ingest_stored_rows", "Log rows stored (after drop and sampling rules)", ConstCounter::new(w.rows_stored));
        match models {
            None => {
                let f = self.models.clone();
                r.register(REQUESTS.0, REQUESTS.1, f.requests);
                r.register(ERRORS.0, ERRORS.1, f.errors);
                r.register(INPUT_TOKENS.0, INPUT_TOKENS.1, f.input_tokens);
                r.register(OUTPUT_TOKENS.0, OUTPUT_TOKENS.1, f.output_tokens);
                r.register(COST.0, COST.1, f.cost);
                r.register_with_unit(LATENCY.0, LATENCY.1, Unit::Seconds, f.latency);
            }
            Some(models) => {
                let mut models: Vec<ModelLabel> = models.iter().map(|m| ModelLabel { model: m.clone() }).collect();
                models.sort_by(|a, b| a.model.cmp(&b.model));
                r.register_collector(Box::new(SomeModels { models, families: self.models.clone() }));
            }
        }
        r.register("alert_evaluations", "Alert evaluation cycles run by this process", self.alert_evaluations.clone());
        r.register("alerts_firing", "Rule × model alerts firing after the last evaluation", self.alerts_firing.clone());
        r.register("notifications_delivered", "Notifications delivered", self.notifications_delivered.clone());
        r.register("notification_failures", "Failed notification delivery attempts (each retried)", self.notification_failures.clone());
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

/// The per-model families: name and help (as registered, without the `_total` of counters).
const REQUESTS: (&str, &str) = ("model_requests", "Requests (log records) per model");
const ERRORS: (&str, &str) = ("model_errors", "Failed requests per model");
const INPUT_TOKENS: (&str, &str) = ("model_input_tokens", "Input tokens per model");
const OUTPUT_TOKENS: (&str, &str) = ("model_output_tokens", "Output tokens per model");
const COST: (&str, &str) = ("model_cost_usd", "Cost in US dollars per model");
const LATENCY: (&str, &str) = ("model_latency", "Request latency per model");

/// The per-model families restricted to some models, encoded as the registry encodes whole
/// families (the same names, help and types), so a limited reader sees the same exposition
/// minus the models it may not see.
#[derive(Debug)]
struct SomeModels {
    models: Vec<ModelLabel>,
    families: ModelFamilies,
}

impl SomeModels {
    fn family<M: EncodeMetric + TypedMetric, C: MetricConstructor<M>>(
        &self,
        encoder: &mut DescriptorEncoder,
        (name, help): (&str, &str),
        unit: Option<&Unit>,
        family: &Family<ModelLabel, M, C>,
    ) -> std::fmt::Result {
        let help = format!("{help}.");
        let mut metric = encoder.encode_descriptor(name, &help, unit, M::TYPE)?;
        for label in &self.models {
            if let Some(m) = family.get(label) {
                m.encode(metric.encode_family(label)?)?;
            }
        }
        Ok(())
    }
}

impl Collector for SomeModels {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let f = &self.families;
        self.family(&mut encoder, REQUESTS, None, &f.requests)?;
        self.family(&mut encoder, ERRORS, None, &f.errors)?;
        self.family(&mut encoder, INPUT_TOKENS, None, &f.input_tokens)?;
        self.family(&mut encoder, OUTPUT_TOKENS, None, &f.output_tokens)?;
        self.family(&mut encoder, COST, None, &f.cost)?;
        self.family(&mut encoder, LATENCY, Some(&Unit::Seconds), &f.latency)
    }
}

/// The writer's own counters at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterFigures {
    pub queue: usize,
    pub commits: u64,
    pub commit_seconds: f64,
    pub rows_stored: u64,
    pub overloaded: u64,
}

pub(crate) fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}
