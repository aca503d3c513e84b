//! Turning cumulative counters and histograms into per-interval samples.
//!
//! OpenTelemetry SDKs (cumulative temporality, their default) and Prometheus endpoints report
//! counters and histograms as running totals since the process started. Modelwatch stores custom
//! metrics as samples that its rollups add up, so a running total becomes "the increase since
//! the previous report of the same series". A histogram's increase gives the count, sum, mean
//! and estimated quantiles of the observations made in that interval.
//!
//! A series seen for the first time gives no increase (there is nothing to compare with),
//! unless its start time shows it began after this process did: then the whole total is the
//! increase. A total that went down, or a new start time, is a restart of the reporting
//! process, and the new total is the increase.

use std::collections::HashMap;
use std::sync::Mutex;

/// How many series the tracker remembers; the least recently seen go first beyond this.
const MAX_SERIES: usize = 100_000;

#[derive(Debug, Clone)]
struct Prev {
    start: i64,
    sum: f64,
    count: f64,
    buckets: Vec<f64>,
    seen: u64,
}

/// The increase of a histogram over one reporting interval.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramDelta {
    pub count: f64,
    pub sum: f64,
    /// Upper bounds (the last is +Inf) and the observations that fell in each bucket.
    pub bounds: Vec<f64>,
    pub counts: Vec<f64>,
}

impl HistogramDelta {
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The q-quantile estimated from the buckets, interpolating linearly inside the bucket as
    /// Prometheus's `histogram_quantile` does. The lowest bucket starts at 0 (or at its bound
    /// when that is negative); the +Inf bucket answers its lower bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: f64 = self.counts.iter().sum();
        if total <= 0.0 || self.bounds.is_empty() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut seen = 0.0;
        for (i, (&upper, &n)) in self.bounds.iter().zip(&self.counts).enumerate() {
            if n > 0.0 && seen + n >= rank {
                let lower = if i == 0 { upper.min(0.0) } else { self.bounds[i - 1] };
                if upper.is_infinite() {
                    return Some(lower);
                }
                let within = ((rank - seen) / n).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            seen += n;
        }
        self.bounds.iter().rev().find(|b| b.is_finite()).copied()
    }
}

/// Remembers the last total of each cumulative series.
pub struct DeltaTracker {
    /// Series that started before this time may have counted before we saw them.
    started_ms: i64,
    series: Mutex<HashMap<String, Prev>>,
    tick: std::sync::atomic::AtomicU64,
}

impl DeltaTracker {
    pub fn new(started_ms: i64) -> Self {
        DeltaTracker { started_ms, series: Mutex::new(HashMap::new()), tick: Default::default() }
    }

    /// The increase of a counter since its previous report. `start_ms` is when the counter
    /// began (0 when unknown).
    pub fn counter(&self, key: &str, start_ms: i64, total: f64) -> Option<f64> {
        self.histogram(key, start_ms, total, 0.0, &[], &[]).map(|d| d.count)
    }

    /// The increase of a histogram since its previous report. `counts[i]` is the cumulative
    /// number of observations in the bucket whose upper bound is `bounds[i]` (not cumulative
    /// across buckets).
    pub fn histogram(&self, key: &str, start_ms: i64, count: f64, sum: f64, bounds: &[f64], counts: &[f64]) -> Option<HistogramDelta> {
        let tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let next = Prev { start: start_ms, sum, count, buckets: counts.to_vec(), seen: tick };
        let delta = match map.get(key) {
            None => {
                // Only a series that started after us cannot have counted anything unseen.
                (start_ms > 0 && start_ms >= self.started_ms)
                    .then(|| HistogramDelta { count, sum, bounds: bounds.to_vec(), counts: counts.to_vec() })
            }
            Some(prev) => {
                let restarted = (start_ms != 0 && start_ms != prev.start)
                    || count < prev.count
                    || prev.buckets.len() != counts.len()
                    || counts.iter().zip(&prev.buckets).any(|(n, p)| n < p);
                if restarted {
                    Some(HistogramDelta { count, sum, bounds: bounds.to_vec(), counts: counts.to_vec() })
                } else {
                    Some(HistogramDelta {
                        count: count - prev.count,
                        sum: sum - prev.sum,
                        bounds: bounds.to_vec(),
                        counts: counts.iter().zip(&prev.buckets).map(|(n, p)| n - p).collect(),
                    })
                }
            }
        };
        map.insert(key.to_string(), next);
        if map.len() > MAX_SERIES {
            // Forget the oldest tenth in one go, so this runs rarely.
            let mut ages: Vec<u64> = map.values().map(|p| p.seen).collect();
            ages.sort_unstable();
            let cut = ages[MAX_SERIES / 10];
            map.retain(|_, p| p.seen > cut);
        }
        delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_increases_restarts_and_first_sight() {
        let t = DeltaTracker::new(1_000);
        // Started before us: the first total is only a baseline.
        assert_eq!(t.counter("a", 500, 10.0), None);
        assert_eq!(t.counter("a", 500, 15.0), Some(5.0));
        assert_eq!(t.counter("a", 500, 15.0), Some(0.0));
        // Reset (the process restarted): the new total is the increase.
        assert_eq!(t.counter("a", 500, 3.0), Some(3.0));
        assert_eq!(t.counter("a", 2_000, 4.0), Some(4.0));
        // Started after us: everything it counted is new.
        assert_eq!(t.counter("b", 1_500, 7.0), Some(7.0));
        // Unknown start: baseline only.
        assert_eq!(t.counter("c", 0, 7.0), None);
        assert_eq!(t.counter("c", 0, 9.0), Some(2.0));
    }

    #[test]
    fn histogram_delta_and_quantiles() {
        let t = DeltaTracker::new(0);
        let bounds = [0.1, 0.5, 1.0, f64::INFINITY];
        let d = t.histogram("h", 10, 10.0, 3.0, &bounds, &[5.0, 5.0, 0.0, 0.0]).unwrap();
        assert_eq!(d.count, 10.0);
        assert_eq!(d.mean(), Some(0.3));
        // Rank 5 of 10 is the top of the first bucket.
        assert!((d.quantile(0.5).unwrap() - 0.1).abs() < 1e-9);
        // Rank 9.5: 90% into the second bucket.
        assert!((d.quantile(0.95).unwrap() - 0.46).abs() < 1e-9);
        let d = t.histogram("h", 10, 14.0, 7.0, &bounds, &[5.0, 5.0, 2.0, 2.0]).unwrap();
        assert_eq!((d.count, d.sum), (4.0, 4.0));
        assert_eq!(d.counts, vec![0.0, 0.0, 2.0, 2.0]);
        // Half are above the last finite bound: the quantile is that bound.
        assert_eq!(d.quantile(0.99), Some(1.0));
        // Rank 1 of 4: half-way through the (0.5, 1.0] bucket.
        assert!((d.quantile(0.25).unwrap() - 0.75).abs() < 1e-9);
        let empty = HistogramDelta { count: 0.0, sum: 0.0, bounds: bounds.to_vec(), counts: vec![0.0; 4] };
        assert_eq!(empty.quantile(0.5), None);
        assert_eq!(empty.mean(), None);
    }
}
