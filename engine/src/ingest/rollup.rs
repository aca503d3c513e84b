//! Rollups: per model, per minute and per hour, the numbers dashboards and alerts read.
//!
//! The writer folds every record of a group commit into `RollupAcc`s here and the store merges
//! them into the rollup tables in the same transaction as the raw rows. Records dropped or
//! sampled out by the ingest rules are counted too; `stored` says how many rows were kept.
//!
//! Row counts stay bounded: the dimensions are the model's series (provider, version,
//! environment, operation; capped per model by the writer) and the error type (capped per
//! model and minute), so a flood of distinct values cannot blow up the rollup tables.

/// The writer's maps: keyed by small ids and short strings, looked up several times per record;
/// foldhash (seeded per process, as hashbrown's default) instead of SipHash.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

use super::sketch::Sketch;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Which rollup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Minute,
    Hour,
    /// UTC days; log rollups only (custom metrics have minute and hour).
    Day,
}

impl Resolution {
    pub fn step_ms(self) -> i64 {
        match self {
            Resolution::Minute => MINUTE_MS,
            Resolution::Hour => HOUR_MS,
            Resolution::Day => DAY_MS,
        }
    }
    pub fn bucket(self, ts: i64) -> i64 {
        ts.div_euclid(self.step_ms()) * self.step_ms()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub model_id: i64,
    pub bucket: i64,
    pub series_id: i64,
    /// Empty for successful records.
    pub error_type: String,
}

#[derive(Debug, Clone, Default)]
pub struct RollupAcc {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    pub cache_hits: i64,
    /// Raw rows kept after the ingest rules.
    pub stored: i64,
    pub latency: Sketch,
    pub ttft: Sketch,
}

/// The numbers of one record that rollups need.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordFacts {
    pub error: bool,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub cache_hit: bool,
    pub stored: bool,
}

impl RollupAcc {
    pub fn add(&mut self, f: &RecordFacts) {
        self.requests += 1;
        self.errors += f.error as i64;
        self.input_tokens += f.input_tokens.unwrap_or(0);
        self.output_tokens += f.output_tokens.unwrap_or(0);
        self.cached_tokens += f.cached_tokens.unwrap_or(0);
        self.cost_usd += f.cost_usd.unwrap_or(0.0);
        self.cache_hits += f.cache_hit as i64;
        self.stored += f.stored as i64;
        if let Some(l) = f.latency_ms {
            self.latency.add(l);
        }
        if let Some(t) = f.ttft_ms {
            self.ttft.add(t);
        }
    }

    pub fn merge(&mut self, o: &RollupAcc) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cached_tokens += o.cached_tokens;
        self.cost_usd += o.cost_usd;
        self.cache_hits += o.cache_hits;
        self.stored += o.stored;
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricKey {
    pub model_id: i64,
    pub name: String,
    pub bucket: i64,
}

#[derive(Debug, Clone)]
pub struct MetricAcc {
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub sketch: Sketch,
}

impl Default for MetricAcc {
    fn default() -> Self {
        MetricAcc { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, sketch: Sketch::new() }
    }
}

impl MetricAcc {
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sketch.add(v);
    }
    pub fn merge(&mut self, o: &MetricAcc) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sketch.merge(&o.sketch);
    }
}

/// A breakdown dimension value of one model-hour: `dim` is `user` or `meta:<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DimKey {
    pub model_id: i64,
    pub dim: String,
    pub bucket: i64,
    pub value: String,
}

/// What the user and metadata breakdowns show per value.
#[derive(Debug, Clone, Default)]
pub struct DimAcc {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency: Sketch,
}

impl DimAcc {
    pub fn add(&mut self, f: &RecordFacts) {
        self.requests += 1;
        self.errors += f.error as i64;
        self.input_tokens += f.input_tokens.unwrap_or(0);
        self.output_tokens += f.output_tokens.unwrap_or(0);
        self.cost_usd += f.cost_usd.unwrap_or(0.0);
        if let Some(l) = f.latency_ms {
            self.latency.add(l);
        }
    }
    pub fn merge(&mut self, o: &DimAcc) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_usd += o.cost_usd;
        self.latency.merge(&o.latency);
    }
}

/// The rollup changes of one group commit, for every resolution.
///
/// Records are added at the finest level only (minute rollups, hourly breakdowns), which is
/// one sketch insert per distribution per record; `finish` then merges those into the hour and
/// day rows and the per-model totals. The store reads the finished maps.
#[derive(Debug, Default)]
pub struct RollupDelta {
    pub logs: HashMap<(Resolution, RollupKey), RollupAcc>,
    pub metrics: HashMap<(Resolution, MetricKey), MetricAcc>,
    /// Per model totals over all series and error types: (resolution, model, bucket).
    pub totals: HashMap<(Resolution, i64, i64), RollupAcc>,
    /// Breakdown dimensions by hour and by day.
    pub dims: HashMap<(Resolution, DimKey), DimAcc>,
    /// Hourly breakdown deltas keyed by interned dimension and value ids, until `finish`.
    staged_dims: HashMap<(i64, i64, u32, u32), DimAcc>,
    interned: HashMap<String, u32>,
    finished: bool,
}

impl RollupDelta {
    /// No changes at all (after `finish`).
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.metrics.is_empty() && self.totals.is_empty() && self.dims.is_empty()
    }
    pub fn add_log(&mut self, model_id: i64, series_id: i64, error_type: &str, ts: i64, f: &RecordFacts) {
        debug_assert!(!self.finished, "add_log after finish");
        // An empty error type (every successful record) does not allocate.
        let key = RollupKey { model_id, bucket: Resolution::Minute.bucket(ts), series_id, error_type: error_type.to_string() };
        self.logs.entry((Resolution::Minute, key)).or_default().add(f);
    }
    pub fn add_dim(&mut self, model_id: i64, dim: &str, value: &str, ts: i64, f: &RecordFacts) {
        debug_assert!(!self.finished, "add_dim after finish");
        let d = self.intern(dim);
        let v = self.intern(value);
        self.staged_dims.entry((model_id, Resolution::Hour.bucket(ts), d, v)).or_default().add(f);
    }
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.interned.get(s) {
            return *id;
        }
        let id = self.interned.len() as u32;
        self.interned.insert(s.to_string(), id);
        id
    }
    /// Derives the hour and day rows and the model totals from the minute rows, and the daily
    /// breakdowns from the hourly ones. Call once, after the last `add_*`.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let minutes: Vec<(RollupKey, RollupAcc)> = self
            .logs
            .iter()
            .filter(|((r, _), _)| *r == Resolution::Minute)
            .map(|((_, k), a)| (k.clone(), a.clone()))
            .collect();
        for (k, acc) in minutes {
            for res in [Resolution::Hour, Resolution::Day] {
                let key = RollupKey { bucket: res.bucket(k.bucket), ..k.clone() };
                self.logs.entry((res, key)).or_default().merge(&acc);
            }
            for res in [Resolution::Minute, Resolution::Hour, Resolution::Day] {
                self.totals.entry((res, k.model_id, res.bucket(k.bucket))).or_default().merge(&acc);
            }
        }
        let mut names = vec![String::new(); self.interned.len()];
        for (s, id) in self.interned.drain() {
            names[id as usize] = s;
        }
        for ((model_id, hour, d, v), acc) in self.staged_dims.drain() {
            let key = DimKey { model_id, dim: names[d as usize].clone(), bucket: hour, value: names[v as usize].clone() };
            let day = DimKey { bucket: Resolution::Day.bucket(hour), ..key.clone() };
            self.dims.entry((Resolution::Day, day)).or_default().merge(&acc);
            self.dims.insert((Resolution::Hour, key), acc);
        }
    }
    /// Model totals of one resolution in (model, bucket) order.
    pub fn sorted_totals(&self, res: Resolution) -> Vec<((i64, i64), &RollupAcc)> {
        debug_assert!(self.finished || self.logs.is_empty(), "RollupDelta read before finish");
        let mut v: Vec<_> = self.totals.iter().filter(|((r, _, _), _)| *r == res).map(|((_, m, b), a)| ((*m, *b), a)).collect();
        v.sort_by_key(|x| x.0);
        v
    }
    /// Breakdown deltas of one resolution (hour or day) in key order.
    pub fn sorted_dims(&self, res: Resolution) -> Vec<(&DimKey, &DimAcc)> {
        debug_assert!(self.finished || self.staged_dims.is_empty(), "RollupDelta read before finish");
        let mut v: Vec<_> = self.dims.iter().filter(|((r, _), _)| *r == res).map(|((_, k), a)| (k, a)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
    pub fn add_metric(&mut self, model_id: i64, name: &str, ts: i64, v: f64) {
        for res in [Resolution::Minute, Resolution::Hour] {
            let key = MetricKey { model_id, name: name.to_string(), bucket: res.bucket(ts) };
            self.metrics.entry((res, key)).or_default().add(v);
        }
    }
    /// Entries in a fixed order, so concurrent writers lock rows in the same order (Postgres).
    pub fn sorted_logs(&self, res: Resolution) -> Vec<(&RollupKey, &RollupAcc)> {
        debug_assert!(self.finished || self.logs.is_empty(), "RollupDelta read before finish");
        let mut v: Vec<_> = self.logs.iter().filter(|((r, _), _)| *r == res).map(|((_, k), a)| (k, a)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
    pub fn sorted_metrics(&self, res: Resolution) -> Vec<(&MetricKey, &MetricAcc)> {
        let mut v: Vec<_> = self.metrics.iter().filter(|((r, _), _)| *r == res).map(|((_, k), a)| (k, a)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_accumulation() {
        assert_eq!(Resolution::Minute.bucket(125_000), 120_000);
        assert_eq!(Resolution::Hour.bucket(3_700_000), 3_600_000);
        assert_eq!(Resolution::Minute.bucket(-1), -60_000);
        let mut d = RollupDelta::default();
        let f = RecordFacts { error: true, latency_ms: Some(10.0), input_tokens: Some(5), cost_usd: Some(0.5), stored: true, ..Default::default() };
        d.add_log(1, 2, "timeout", 61_000, &f);
        d.add_log(1, 2, "timeout", 119_000, &f);
        d.add_log(1, 2, "", 120_000, &RecordFacts::default());
        d.add_dim(1, "user", "u1", 61_000, &f);
        d.add_dim(1, "user", "u1", 2 * HOUR_MS, &f);
        d.add_dim(1, "user", "u2", 2 * HOUR_MS + 5, &f);
        d.finish();
        d.finish(); // idempotent
        let m = d.sorted_logs(Resolution::Minute);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].1.requests, 2);
        assert_eq!(m[0].1.errors, 2);
        assert_eq!(m[0].1.input_tokens, 10);
        assert_eq!(m[0].1.latency.count(), 2);
        let h = d.sorted_logs(Resolution::Hour);
        assert_eq!(h.len(), 2, "ok and error rows in the same hour");
        assert_eq!(h.iter().map(|x| x.1.requests).sum::<i64>(), 3);
        assert_eq!(d.sorted_logs(Resolution::Day).len(), 2);
        // Model totals merge series and error types: one row per bucket.
        assert_eq!(d.sorted_totals(Resolution::Minute).iter().map(|x| x.1.requests).collect::<Vec<_>>(), vec![2, 1]);
        let day = d.sorted_totals(Resolution::Day);
        assert_eq!((day.len(), day[0].1.requests, day[0].1.errors, day[0].1.latency.count()), (1, 3, 2, 2));
        let hours = d.sorted_dims(Resolution::Hour);
        assert_eq!(hours.len(), 3);
        assert_eq!((hours[0].0.value.as_str(), hours[0].0.bucket, hours[0].1.requests), ("u1", 0, 1));
        assert_eq!((hours[2].0.value.as_str(), hours[2].0.bucket, hours[2].1.latency.count()), ("u2", 2 * HOUR_MS, 1));
        let days = d.sorted_dims(Resolution::Day);
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].0.value.as_str(), days[0].1.requests, days[0].1.errors, days[0].1.input_tokens), ("u1", 2, 2, 10));
        assert_eq!(days[1].1.requests, 1);
    }
}
