//! Counters and histograms shared by the workers, and the progress and final reports.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::records::Format;

/// Latencies in microseconds, 1 µs .. 10 min, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Debug)]
pub struct Stats {
    pub acked: AtomicU64,
    pub requests: AtomicU64,
    pub rejected: AtomicU64,
    pub backpressure: AtomicU64,
    pub errors: AtomicU64,
    pub probes: AtomicU64,
    pub probe_timeouts: AtomicU64,
    ack_latency: Mutex<Histogram<u64>>,
    ack_to_visible: Mutex<Histogram<u64>>,
    send_to_visible: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            acked: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            backpressure: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            probe_timeouts: AtomicU64::new(0),
            ack_latency: Mutex::new(histogram()),
            ack_to_visible: Mutex::new(histogram()),
            send_to_visible: Mutex::new(histogram()),
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

fn lock(h: &Mutex<Histogram<u64>>) -> std::sync::MutexGuard<'_, Histogram<u64>> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stats {
    pub fn record_ack(&self, accepted: u64, rejected: u64, latency: Duration) {
        self.requests.fetch_add(1, Relaxed);
        self.acked.fetch_add(accepted, Relaxed);
        self.rejected.fetch_add(rejected, Relaxed);
        lock(&self.ack_latency).saturating_record(micros(latency));
    }

    pub fn record_visible(&self, ack_to_visible: Duration, send_to_visible: Duration) {
        self.probes.fetch_add(1, Relaxed);
        lock(&self.ack_to_visible).saturating_record(micros(ack_to_visible));
        lock(&self.send_to_visible).saturating_record(micros(send_to_visible));
    }

    /// p50/p90/p99/max of the ack latency so far, in ms.
    pub fn ack_percentiles(&self) -> Percentiles {
        Percentiles::of(&lock(&self.ack_latency))
    }

    pub fn visibility(&self) -> (Percentiles, Percentiles) {
        (
            Percentiles::of(&lock(&self.ack_to_visible)),
            Percentiles::of(&lock(&self.send_to_visible)),
        )
    }
}

/// Milliseconds; `None` when nothing was recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| Some(round2(us as f64 / 1000.0));
        Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The final report of a load run. Keys are stable: scripts and docs/benchmarks.md read them.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub mode: &'static str,
    pub url: String,
    pub connections: usize,
    pub batch: usize,
    /// Target logs/s; 0 = as fast as possible.
    pub rate: f64,
    pub format: Format,
    pub gzip: bool,
    pub payload_bytes: usize,
    pub models: usize,
    pub seed: u64,
    pub duration_secs: f64,
    pub records_acked: u64,
    pub acked_logs_per_sec: f64,
    pub requests: u64,
    pub requests_per_sec: f64,
    pub rejected_records: u64,
    pub backpressure_responses: u64,
    pub errors: u64,
    pub ack_latency_ms_p50: Option<f64>,
    pub ack_latency_ms_p90: Option<f64>,
    pub ack_latency_ms_p99: Option<f64>,
    pub ack_latency_ms_max: Option<f64>,
    /// Acknowledgement to visible in `GET /api/v1/logs`.
    pub visibility_lag_ms_p50: Option<f64>,
    pub visibility_lag_ms_p99: Option<f64>,
    pub visibility_lag_ms_max: Option<f64>,
    /// Sending the request to visible.
    pub send_visibility_lag_ms_p50: Option<f64>,
    pub send_visibility_lag_ms_p99: Option<f64>,
    pub send_visibility_lag_ms_max: Option<f64>,
    pub probes: u64,
    pub probe_timeouts: u64,
    /// Why probing was off, if it was.
    pub probe_disabled: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunInfo {
    pub url: String,
    pub connections: usize,
    pub batch: usize,
    pub rate: f64,
    pub format: Format,
    pub gzip: bool,
    pub payload_bytes: usize,
    pub models: usize,
    pub seed: u64,
}

impl LoadReport {
    pub fn new(
        info: RunInfo,
        stats: &Stats,
        elapsed: Duration,
        probe_disabled: Option<String>,
    ) -> LoadReport {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ack = stats.ack_percentiles();
        let (vis_ack, vis_send) = stats.visibility();
        let acked = stats.acked.load(Relaxed);
        let requests = stats.requests.load(Relaxed);
        LoadReport {
            mode: "load",
            url: info.url,
            connections: info.connections,
            batch: info.batch,
            rate: info.rate,
            format: info.format,
            gzip: info.gzip,
            payload_bytes: info.payload_bytes,
            models: info.models,
            seed: info.seed,
            duration_secs: round2(secs),
            records_acked: acked,
            acked_logs_per_sec: (acked as f64 / secs).round(),
            requests,
            requests_per_sec: round2(requests as f64 / secs),
            rejected_records: stats.rejected.load(Relaxed),
            backpressure_responses: stats.backpressure.load(Relaxed),
            errors: stats.errors.load(Relaxed),
            ack_latency_ms_p50: ack.p50,
            ack_latency_ms_p90: ack.p90,
            ack_latency_ms_p99: ack.p99,
            ack_latency_ms_max: ack.max,
            visibility_lag_ms_p50: vis_ack.p50,
            visibility_lag_ms_p99: vis_ack.p99,
            visibility_lag_ms_max: vis_ack.max,
            send_visibility_lag_ms_p50: vis_send.p50,
            send_visibility_lag_ms_p99: vis_send.p99,
            send_visibility_lag_ms_max: vis_send.max,
            probes: stats.probes.load(Relaxed),
            probe_timeouts: stats.probe_timeouts.load(Relaxed),
            probe_disabled,
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let rate = if self.rate > 0.0 {
            format!("{} logs/s", thousands(self.rate as u64))
        } else {
            "unlimited".into()
        };
        let _ = writeln!(
            s,
            "Modelwatch load test against {}: {} connections, batch {}, {}{}, rate {}, {} models, payload {} B, seed {}",
            self.url,
            self.connections,
            self.batch,
            fmt_format(self.format),
            if self.gzip { "+gzip" } else { "" },
            rate,
            self.models,
            self.payload_bytes,
            self.seed
        );
        let _ = writeln!(s, "  duration                 {:.2} s", self.duration_secs);
        let _ = writeln!(
            s,
            "  records acknowledged     {}  ({} logs/s)",
            thousands(self.records_acked),
            thousands(self.acked_logs_per_sec as u64)
        );
        let _ = writeln!(
            s,
            "  requests acknowledged    {}  ({:.1}/s)",
            thousands(self.requests),
            self.requests_per_sec
        );
        let _ = writeln!(
            s,
            "  rejected records         {}",
            thousands(self.rejected_records)
        );
        let _ = writeln!(
            s,
            "  backpressure responses   {}",
            thousands(self.backpressure_responses)
        );
        let _ = writeln!(s, "  errors                   {}", thousands(self.errors));
        let _ = writeln!(
            s,
            "  ack latency per request  p50 {}  p90 {}  p99 {}  max {}",
            ms(self.ack_latency_ms_p50),
            ms(self.ack_latency_ms_p90),
            ms(self.ack_latency_ms_p99),
            ms(self.ack_latency_ms_max)
        );
        match &self.probe_disabled {
            Some(why) => {
                let _ = writeln!(s, "  visibility lag           not measured: {why}");
            }
            None => {
                let _ = writeln!(
                    s,
                    "  visibility, ack->visible p50 {}  p99 {}  max {}",
                    ms(self.visibility_lag_ms_p50),
                    ms(self.visibility_lag_ms_p99),
                    ms(self.visibility_lag_ms_max)
                );
                let _ = writeln!(
                    s,
                    "  visibility, send->visible p50 {}  p99 {}  max {}",
                    ms(self.send_visibility_lag_ms_p50),
                    ms(self.send_visibility_lag_ms_p99),
                    ms(self.send_visibility_lag_ms_max)
                );
                let _ = writeln!(
                    s,
                    "  probes                   {} seen, {} timed out",
                    self.probes, self.probe_timeouts
                );
            }
        }
        s
    }
}

/// The final report of `--dry-run`: generation and encoding only.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunReport {
    pub mode: &'static str,
    pub batch: usize,
    pub format: Format,
    pub gzip: bool,
    pub payload_bytes: usize,
    pub models: usize,
    pub seed: u64,
    pub pool_batches: usize,
    pub pool_build_ms: f64,
    pub duration_secs: f64,
    pub records_generated: u64,
    pub generated_logs_per_sec: f64,
    pub batches_encoded: u64,
    /// Body bytes as they would be sent (after gzip when on), per second.
    pub body_mb_per_sec: f64,
    pub avg_body_bytes: f64,
    pub avg_record_bytes_uncompressed: f64,
}

impl DryRunReport {
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Dry run (generate and encode on one thread, nothing sent): batch {}, {}{}, {} models, payload {} B, seed {}",
            self.batch,
            fmt_format(self.format),
            if self.gzip { "+gzip" } else { "" },
            self.models,
            self.payload_bytes,
            self.seed
        );
        let _ = writeln!(
            s,
            "  pool                     {} batches built in {:.0} ms",
            self.pool_batches, self.pool_build_ms
        );
        let _ = writeln!(s, "  duration                 {:.2} s", self.duration_secs);
        let _ = writeln!(
            s,
            "  records generated        {}  ({} logs/s)",
            thousands(self.records_generated),
            thousands(self.generated_logs_per_sec as u64)
        );
        let _ = writeln!(
            s,
            "  batches encoded          {}",
            thousands(self.batches_encoded)
        );
        let _ = writeln!(
            s,
            "  body bytes               {:.1} MB/s, {:.0} B per request",
            self.body_mb_per_sec, self.avg_body_bytes
        );
        let _ = writeln!(
            s,
            "  record size              {:.0} B (before gzip)",
            self.avg_record_bytes_uncompressed
        );
        s
    }
}

fn fmt_format(f: Format) -> &'static str {
    match f {
        Format::Ndjson => "ndjson",
        Format::Json => "json",
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "-".into(),
    }
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One progress line for stderr: totals so far and the rate over the last interval.
pub fn progress_line(
    stats: &Stats,
    elapsed: Duration,
    acked_in_interval: u64,
    interval: Duration,
) -> String {
    let ack = stats.ack_percentiles();
    let now_rate = acked_in_interval as f64 / interval.as_secs_f64().max(1e-9);
    let avg_rate = stats.acked.load(Relaxed) as f64 / elapsed.as_secs_f64().max(1e-9);
    format!(
        "[{:>5.1}s] acked {} ({} logs/s now, {} avg), {} req, rejected {}, backpressure {}, errors {}, ack p50 {} p99 {}, probes {}",
        elapsed.as_secs_f64(),
        thousands(stats.acked.load(Relaxed)),
        thousands(now_rate as u64),
        thousands(avg_rate as u64),
        thousands(stats.requests.load(Relaxed)),
        thousands(stats.rejected.load(Relaxed)),
        thousands(stats.backpressure.load(Relaxed)),
        thousands(stats.errors.load(Relaxed)),
        ms(ack.p50),
        ms(ack.p99),
        stats.probes.load(Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn report_has_stable_snake_case_keys() {
        let stats = Stats::default();
        for ms in [5u64, 10, 20, 40] {
            stats.record_ack(1000, 1, Duration::from_millis(ms));
        }
        stats.record_visible(Duration::from_millis(3), Duration::from_millis(30));
        let info = RunInfo {
            url: "http://127.0.0.1:8080".into(),
            connections: 8,
            batch: 1000,
            rate: 0.0,
            format: Format::Ndjson,
            gzip: false,
            payload_bytes: 200,
            models: 8,
            seed: 1,
        };
        let r = LoadReport::new(info, &stats, Duration::from_secs(2), None);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["records_acked"], 4000);
        assert_eq!(v["acked_logs_per_sec"], 2000.0);
        assert_eq!(v["requests_per_sec"], 2.0);
        assert_eq!(v["rejected_records"], 4);
        assert_eq!(v["format"], "ndjson");
        let p50 = v["ack_latency_ms_p50"].as_f64().unwrap();
        assert!((p50 - 10.0).abs() < 0.1, "{p50}");
        let p99 = v["ack_latency_ms_p99"].as_f64().unwrap();
        assert!((p99 - 40.0).abs() < 0.1, "{p99}");
        assert!((v["visibility_lag_ms_p99"].as_f64().unwrap() - 3.0).abs() < 0.01);
        assert!((v["send_visibility_lag_ms_max"].as_f64().unwrap() - 30.0).abs() < 0.05);
        for key in [
            "ack_latency_ms_p90",
            "ack_latency_ms_max",
            "visibility_lag_ms_p50",
            "visibility_lag_ms_max",
            "probes",
            "probe_timeouts",
            "backpressure_responses",
            "errors",
            "duration_secs",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(r.text().contains("4,000"));
    }
}
