//! The HTTP side: preflight, the sender tasks, backpressure handling, visibility probes, the
//! progress printer, and `--dry-run`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::pacer::Pacer;
use crate::records::{self, BatchTemplate, Format, Generator, LogRecord};
use crate::report::{self, DryRunReport, LoadReport, RunInfo, Stats};

/// How many error bodies and rejections are printed before going quiet.
const PRINT_LIMIT: u32 = 5;
/// Visibility probes poll this often, and give up after `PROBE_TIMEOUT`.
const PROBE_POLL: Duration = Duration::from_millis(10);
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured, and the wait when a 429/503 has none.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
const DEFAULT_RETRY_AFTER: Duration = Duration::from_millis(100);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL without a trailing slash.
    pub url: String,
    pub key: String,
    /// Key for the visibility probe (`GET` needs the `read` scope); defaults to `key`.
    pub read_key: String,
    /// Logs/s; 0 = unlimited.
    pub rate: f64,
    pub duration: Duration,
    pub connections: usize,
    pub format: Format,
    pub gzip: bool,
    /// `None` disables probing.
    pub probe_interval: Option<Duration>,
    /// Print progress lines to stderr.
    pub progress: bool,
    pub info: RunInfo,
}

/// Why the run could not start.
#[derive(Debug)]
pub struct StartError(pub String);

/// The answer body of a 2xx (and of 422/403/400 with per-record refusals).
#[derive(Debug, Deserialize)]
struct IngestAnswer {
    #[serde(default)]
    accepted: u64,
    #[serde(default)]
    rejected: Vec<serde_json::Value>,
}

/// How long to wait after a 429/503: its `Retry-After` in seconds, capped at 5 s; 100 ms when
/// absent; 1 s when present but not a number of seconds (e.g. an HTTP date).
pub fn retry_delay(header: Option<&str>) -> Duration {
    match header {
        None => DEFAULT_RETRY_AFTER,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER)
            }
            _ => Duration::from_secs(1),
        },
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn http_client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections + 4)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        // Load goes to a local server: never through a proxy from the environment.
        .no_proxy()
        .build()
        .expect("an HTTP client without TLS builds")
}

/// Checks that the server answers and that the key may ingest, so a typo fails in a second
/// with a clear message instead of as 30 s of errors.
pub async fn preflight(client: &reqwest::Client, cfg: &LoadConfig) -> Result<(), StartError> {
    if !cfg.url.starts_with("http://") {
        return Err(StartError(format!(
            "--url must be an http:// URL (this build has no TLS; put the load generator next to the server): {}",
            cfg.url
        )));
    }
    let health = format!("{}/healthz", cfg.url);
    match client
        .get(&health)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(resp) if !resp.status().is_success() => {
            eprintln!("note: {health} answered {}; carrying on", resp.status());
        }
        Ok(_) => {}
        Err(e) => {
            return Err(StartError(format!(
                "cannot reach Modelwatch at {}: {}. Is it running? Start it with `./dev.sh run`.",
                cfg.url,
                error_chain(&e)
            )));
        }
    }
    // An empty batch: the server authenticates first (401/403), then refuses the empty body.
    let resp = client
        .post(format!("{}/api/v1/logs", cfg.url))
        .header(AUTHORIZATION, format!("Bearer {}", cfg.key))
        .header(CONTENT_TYPE, "application/json")
        .body("[]")
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| {
            StartError(format!(
                "POST {}/api/v1/logs failed: {}",
                cfg.url,
                error_chain(&e)
            ))
        })?;
    match resp.status() {
        StatusCode::UNAUTHORIZED => Err(StartError(
            "the API key was refused (401). Create one with `modelwatch key create --name loadgen --scope ingest --scope read` and pass it as --key or MODELWATCH_API_KEY.".into(),
        )),
        StatusCode::FORBIDDEN => Err(StartError(
            "the API key may not ingest (403): it needs the `ingest` scope.".into(),
        )),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Err(StartError(format!(
            "{}/api/v1/logs does not take POST ({}): is this a Modelwatch server?",
            cfg.url,
            resp.status()
        ))),
        _ => Ok(()),
    }
}

/// The whole error chain in one line ("error sending request: … : Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

struct Shared {
    cfg: LoadConfig,
    client: reqwest::Client,
    pool: Vec<BatchTemplate>,
    next_batch: AtomicUsize,
    pacer: Option<Mutex<Pacer>>,
    stats: Stats,
    start: Instant,
    deadline: Instant,
    stop: watch::Receiver<bool>,
    /// Marker records: generator for their content, and when the next one is due.
    marker_gen: Mutex<Generator>,
    next_probe: Mutex<Instant>,
    probing: AtomicBool,
    probe_disabled: Mutex<Option<String>>,
    probes: Mutex<Vec<JoinHandle<()>>>,
    printed_errors: AtomicU32,
    printed_rejections: AtomicU32,
}

impl Shared {
    fn stopped(&self) -> bool {
        *self.stop.borrow() || Instant::now() >= self.deadline
    }

    /// Sleeps `d`, returning early (false) when the run is stopped.
    async fn sleep(&self, d: Duration) -> bool {
        let until = (Instant::now() + d).min(self.deadline);
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        !self.stopped()
    }

    /// A marker record if one is due: a normal-looking record with a fresh trace id.
    fn take_marker(&self) -> Option<Marker> {
        if !self.probing.load(Relaxed) {
            return None;
        }
        let interval = self.cfg.probe_interval?;
        {
            let now = Instant::now();
            let mut next = self.next_probe.lock().unwrap_or_else(|e| e.into_inner());
            if now < *next {
                return None;
            }
            *next = now + interval;
        }
        let mut g = self.marker_gen.lock().unwrap_or_else(|e| e.into_inner());
        let spec = &g.models()[0];
        let mut rec: LogRecord = g.record_for(spec);
        drop(g);
        rec.trace_id = records::random_hex(&mut rand::thread_rng(), 32);
        let ts = now_ms();
        rec.timestamp = Some(ts);
        rec.metadata
            .insert("loadgen_probe".into(), serde_json::Value::Bool(true));
        let json = serde_json::to_string(&rec).expect("a record serialises");
        Some(Marker {
            model: rec.model,
            trace_id: rec.trace_id,
            ts,
            json,
        })
    }

    fn print_error(&self, what: &str) {
        let n = self.printed_errors.fetch_add(1, Relaxed);
        if n < PRINT_LIMIT {
            eprintln!("error: {what}");
        } else if n == PRINT_LIMIT {
            eprintln!("error: (further errors are counted, not printed)");
        }
    }

    fn print_rejections(&self, rejected: &[serde_json::Value]) {
        for r in rejected {
            let n = self.printed_rejections.fetch_add(1, Relaxed);
            if n < PRINT_LIMIT {
                eprintln!("rejected: {r}");
            } else {
                if n == PRINT_LIMIT {
                    eprintln!("rejected: (further rejections are counted, not printed)");
                }
                break;
            }
        }
    }

    fn disable_probing(&self, why: String) {
        if self.probing.swap(false, Relaxed) {
            eprintln!("note: visibility probing disabled: {why}");
            *self
                .probe_disabled
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(why);
        }
    }
}

struct Marker {
    model: String,
    trace_id: String,
    /// The marker's own timestamp (epoch ms): the probe asks for that millisecond only.
    ts: i64,
    json: String,
}

/// Runs the load test; returns the report once every sender and probe has finished.
/// `stop` ends the run early (Ctrl-C).
pub async fn run_load(
    cfg: LoadConfig,
    pool: Vec<BatchTemplate>,
    marker_gen: Generator,
    stop: watch::Receiver<bool>,
) -> LoadReport {
    let client = http_client(cfg.connections);
    let start = Instant::now();
    let probing = cfg.probe_interval.is_some();
    let probe_disabled = (!probing).then(|| "--probe-interval-ms 0".to_string());
    let shared = Arc::new(Shared {
        pacer: (cfg.rate > 0.0).then(|| Mutex::new(Pacer::new(cfg.rate))),
        client,
        pool,
        next_batch: AtomicUsize::new(0),
        stats: Stats::default(),
        start,
        deadline: start + cfg.duration,
        stop,
        marker_gen: Mutex::new(marker_gen),
        next_probe: Mutex::new(start),
        probing: AtomicBool::new(probing),
        probe_disabled: Mutex::new(probe_disabled),
        probes: Mutex::new(Vec::new()),
        printed_errors: AtomicU32::new(0),
        printed_rejections: AtomicU32::new(0),
        cfg,
    });

    let progress = shared
        .cfg
        .progress
        .then(|| tokio::spawn(progress_task(shared.clone())));
    let workers: Vec<_> = (0..shared.cfg.connections)
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    for w in workers {
        if let Err(e) = w.await {
            eprintln!("error: a sender task failed: {e}");
        }
    }
    let elapsed = shared.start.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    let probes = std::mem::take(&mut *shared.probes.lock().unwrap_or_else(|e| e.into_inner()));
    let pending = probes.iter().filter(|p| !p.is_finished()).count();
    if pending > 0 && shared.cfg.progress {
        eprintln!(
            "waiting for {pending} visibility probe(s) to finish (at most {} s)",
            PROBE_TIMEOUT.as_secs()
        );
    }
    for p in probes {
        let _ = p.await;
    }
    let disabled = shared
        .probe_disabled
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    LoadReport::new(shared.cfg.info.clone(), &shared.stats, elapsed, disabled)
}

async fn progress_task(shared: Arc<Shared>) {
    let mut last_acked = 0;
    let mut last = Instant::now();
    loop {
        if !shared.sleep(PROGRESS_EVERY).await {
            return;
        }
        let acked = shared.stats.acked.load(Relaxed);
        let now = Instant::now();
        eprintln!(
            "{}",
            report::progress_line(
                &shared.stats,
                shared.start.elapsed(),
                acked - last_acked,
                now - last
            )
        );
        last_acked = acked;
        last = now;
    }
}

/// One connection's loop: pace, encode, send, handle the answer, repeat until the deadline.
async fn worker(shared: Arc<Shared>) {
    let url = format!("{}/api/v1/logs", shared.cfg.url);
    let auth = format!("Bearer {}", shared.cfg.key);
    while !shared.stopped() {
        let idx = shared.next_batch.fetch_add(1, Relaxed) % shared.pool.len();
        let tpl = &shared.pool[idx];
        let marker = shared.take_marker();
        let n = tpl.len() + marker.is_some() as usize;

        if let Some(pacer) = &shared.pacer {
            let now = shared.start.elapsed().as_secs_f64();
            let delay = pacer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .reserve(now, n as u64);
            if delay > 0.0 && !shared.sleep(Duration::from_secs_f64(delay)).await {
                break;
            }
        }

        let raw = tpl.encode(
            shared.cfg.format,
            now_ms(),
            marker.as_ref().map(|m| m.json.as_str()),
        );
        let body = Bytes::from(if shared.cfg.gzip {
            records::gzip(&raw)
        } else {
            raw
        });

        // Send, resending the same body after 429/503 until it is answered otherwise.
        loop {
            let sent_at = Instant::now();
            let mut req = shared
                .client
                .post(&url)
                .header(AUTHORIZATION, &auth)
                .header(CONTENT_TYPE, shared.cfg.format.content_type())
                .body(body.clone());
            if shared.cfg.gzip {
                req = req.header(CONTENT_ENCODING, "gzip");
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    shared.stats.errors.fetch_add(1, Relaxed);
                    shared.print_error(&format!("POST {url}: {}", error_chain(&e)));
                    // Do not spin on a dead server.
                    shared.sleep(Duration::from_millis(100)).await;
                    break;
                }
            };
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let answer = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    shared.stats.errors.fetch_add(1, Relaxed);
                    shared.print_error(&format!(
                        "POST {url}: reading the answer: {}",
                        error_chain(&e)
                    ));
                    break;
                }
            };
            let acked_at = Instant::now();

            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                shared.stats.backpressure.fetch_add(1, Relaxed);
                if shared.sleep(retry_delay(retry_after.as_deref())).await {
                    continue;
                }
                break;
            }
            if status.is_success() {
                match serde_json::from_slice::<IngestAnswer>(&answer) {
                    Ok(a) => {
                        shared.stats.record_ack(
                            a.accepted,
                            a.rejected.len() as u64,
                            acked_at - sent_at,
                        );
                        shared.print_rejections(&a.rejected);
                        if let Some(m) = marker {
                            let marker_index = (n - 1) as u64;
                            let marker_refused = a.rejected.iter().any(|r| {
                                r.get("index").and_then(|i| i.as_u64()) == Some(marker_index)
                            });
                            if !marker_refused {
                                let handle =
                                    tokio::spawn(probe(shared.clone(), m, sent_at, acked_at));
                                shared
                                    .probes
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(handle);
                            }
                        }
                    }
                    Err(e) => {
                        shared.stats.errors.fetch_add(1, Relaxed);
                        shared.print_error(&format!(
                            "POST {url}: {status} with an unreadable answer ({e}): {}",
                            snippet(&answer)
                        ));
                    }
                }
                break;
            }
            // Any other status: an error. Count refused records when the body lists them.
            shared.stats.errors.fetch_add(1, Relaxed);
            if let Ok(a) = serde_json::from_slice::<IngestAnswer>(&answer) {
                shared
                    .stats
                    .rejected
                    .fetch_add(a.rejected.len() as u64, Relaxed);
            }
            shared.print_error(&format!("POST {url}: {status}: {}", snippet(&answer)));
            break;
        }
    }
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

#[derive(Debug, Deserialize)]
struct LogsAnswer {
    #[serde(default)]
    logs: Vec<serde_json::Value>,
}

/// Polls `GET /api/v1/logs?model=&trace_id=&from=&to=&limit=1` until the marker shows up.
/// The range is the marker's own millisecond, so the answer measures when the record became
/// visible, not how long a trace-id scan over the server's default hour takes (that grows
/// with the data stored and is an explorer figure of its own).
async fn probe(shared: Arc<Shared>, m: Marker, sent_at: Instant, acked_at: Instant) {
    let url = format!("{}/api/v1/logs", shared.cfg.url);
    let (from, to) = (m.ts.to_string(), (m.ts + 1).to_string());
    let auth = format!("Bearer {}", shared.cfg.read_key);
    let give_up = acked_at + PROBE_TIMEOUT;
    loop {
        if !shared.probing.load(Relaxed) {
            return;
        }
        let res = shared
            .client
            .get(&url)
            .query(&[
                ("model", m.model.as_str()),
                ("trace_id", m.trace_id.as_str()),
                ("from", from.as_str()),
                ("to", to.as_str()),
                ("limit", "1"),
            ])
            .header(AUTHORIZATION, &auth)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        // A failed request (server busy or gone) just means: poll again until the timeout.
        if let Ok(resp) = res {
            let status = resp.status();
            match status {
                StatusCode::NOT_FOUND => {
                    return shared.disable_probing(format!(
                        "GET /api/v1/logs answered 404 (the endpoint is not there, or the key may not read model {})",
                        m.model
                    ));
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return shared.disable_probing(format!(
                        "GET /api/v1/logs answered {status}: the key needs the `read` scope (create it with `--scope ingest --scope read`, or pass --read-key)"
                    ));
                }
                _ => {}
            }
            if status.is_success()
                && let Ok(body) = resp.bytes().await
                && let Ok(a) = serde_json::from_slice::<LogsAnswer>(&body)
                && !a.logs.is_empty()
            {
                let seen = Instant::now();
                shared.stats.record_visible(seen - acked_at, seen - sent_at);
                return;
            }
        }
        if Instant::now() + PROBE_POLL >= give_up {
            shared.stats.probe_timeouts.fetch_add(1, Relaxed);
            return;
        }
        tokio::time::sleep(PROBE_POLL).await;
    }
}

/// `--dry-run`: encodes pool batches with fresh timestamps (and gzip) as fast as one thread
/// can, for `duration`, and reports the rate. Nothing is sent.
pub fn dry_run(
    pool: &[BatchTemplate],
    format: Format,
    gzip: bool,
    duration: Duration,
    pool_build: Duration,
    mut report: DryRunReport,
) -> DryRunReport {
    let start = Instant::now();
    let (mut generated, mut batches, mut body_bytes, mut raw_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut rng = rand::thread_rng();
    while start.elapsed() < duration {
        let tpl = &pool[batches as usize % pool.len()];
        let raw = tpl.encode(format, now_ms(), None);
        raw_bytes += raw.len() as u64;
        let sent = if gzip {
            records::gzip(&raw).len()
        } else {
            raw.len()
        };
        body_bytes += std::hint::black_box(sent) as u64;
        generated += tpl.len() as u64;
        batches += 1;
        // Keep the optimiser honest about the buffer.
        std::hint::black_box(raw.get(rng.gen_range(0..raw.len().max(1))));
    }
    let secs = start.elapsed().as_secs_f64();
    report.pool_batches = pool.len();
    report.pool_build_ms = (pool_build.as_secs_f64() * 1000.0).round();
    report.duration_secs = (secs * 100.0).round() / 100.0;
    report.records_generated = generated;
    report.generated_logs_per_sec = (generated as f64 / secs).round();
    report.batches_encoded = batches;
    report.body_mb_per_sec = ((body_bytes as f64 / secs / 1e6) * 10.0).round() / 10.0;
    report.avg_body_bytes = (body_bytes as f64 / batches.max(1) as f64).round();
    report.avg_record_bytes_uncompressed = (raw_bytes as f64 / generated.max(1) as f64).round();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_honoured_and_capped() {
        assert_eq!(retry_delay(None), Duration::from_millis(100));
        assert_eq!(retry_delay(Some("1")), Duration::from_secs(1));
        assert_eq!(retry_delay(Some(" 2 ")), Duration::from_secs(2));
        assert_eq!(retry_delay(Some("0")), Duration::ZERO);
        assert_eq!(retry_delay(Some("120")), Duration::from_secs(5));
        assert_eq!(
            retry_delay(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Duration::from_secs(1)
        );
    }

    /// A stand-in for the server over raw HTTP/1.1 keep-alive: every 4th POST gets 429, the
    /// rest 200 with the first record of each batch refused; probe markers become visible on
    /// the second GET for them; `get_404` makes the read endpoint answer 404.
    #[derive(Default)]
    struct Fake {
        posts: AtomicUsize,
        markers: Mutex<std::collections::HashMap<String, (u32, i64)>>,
        records_received: AtomicUsize,
        gzip_bodies: AtomicUsize,
        get_404: bool,
    }

    async fn fake_server(fake: Arc<Fake>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve_conn(sock, fake.clone()));
            }
        });
        format!("http://{addr}")
    }

    async fn serve_conn(mut sock: tokio::net::TcpStream, fake: Arc<Fake>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
                let mut chunk = [0u8; 65536];
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let header = |name: &str| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
            };
            let len: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 65536];
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Vec<u8> = buf[head_end..head_end + len].to_vec();
            buf.drain(..head_end + len);
            let (method, target) = {
                let mut parts = head.split_whitespace();
                (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                )
            };
            let authorized = header("authorization").as_deref() == Some("Bearer good");
            let (status, extra, answer) = handle(
                &fake,
                &method,
                &target,
                authorized,
                header("content-encoding"),
                body,
            );
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{answer}",
                answer.len()
            );
            if sock.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    fn handle(
        fake: &Fake,
        method: &str,
        target: &str,
        authorized: bool,
        encoding: Option<String>,
        body: Vec<u8>,
    ) -> (u16, String, String) {
        use std::io::Read;
        let path = target.split('?').next().unwrap_or("");
        match (method, path) {
            ("GET", "/healthz") => (200, String::new(), r#"{"status":"ok"}"#.into()),
            _ if !authorized => (
                401,
                String::new(),
                r#"{"error":{"code":"unauthenticated"}}"#.into(),
            ),
            ("POST", "/api/v1/logs") => {
                let body = if encoding.as_deref() == Some("gzip") {
                    fake.gzip_bodies.fetch_add(1, Relaxed);
                    let mut out = Vec::new();
                    flate2::read::MultiGzDecoder::new(&body[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                } else {
                    body
                };
                let recs: Vec<serde_json::Value> = if body.first() == Some(&b'[') {
                    serde_json::from_slice(&body).unwrap()
                } else {
                    body.split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| serde_json::from_slice(l).unwrap())
                        .collect()
                };
                if recs.is_empty() {
                    return (
                        422,
                        String::new(),
                        r#"{"error":{"code":"invalid_field"}}"#.into(),
                    );
                }
                if fake.posts.fetch_add(1, Relaxed) % 4 == 3 {
                    return (
                        429,
                        "retry-after: 0\r\n".into(),
                        r#"{"error":{"code":"too_many_requests"}}"#.into(),
                    );
                }
                fake.records_received.fetch_add(recs.len(), Relaxed);
                for r in &recs {
                    assert!(r["timestamp"].is_i64() && r["model"].is_string(), "{r}");
                    if r["metadata"]["loadgen_probe"] == true {
                        let t = r["trace_id"].as_str().unwrap().to_string();
                        let ts = r["timestamp"].as_i64().unwrap();
                        fake.markers.lock().unwrap().insert(t, (0, ts));
                    }
                }
                let answer = serde_json::json!({
                    "accepted": recs.len() - 1,
                    "rejected": [{"index": 0, "field": "logs[0].model", "code": "invalid_field", "message": "test"}],
                });
                (200, String::new(), answer.to_string())
            }
            ("GET", "/api/v1/logs") if fake.get_404 => (
                404,
                String::new(),
                r#"{"error":{"code":"not_found"}}"#.into(),
            ),
            ("GET", "/api/v1/logs") => {
                let param = |name: &str| {
                    target
                        .split(['?', '&'])
                        .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                        .unwrap_or("")
                        .to_string()
                };
                let trace = param("trace_id");
                let (from, to) = (param("from"), param("to"));
                let mut markers = fake.markers.lock().unwrap();
                let logs = match markers.get_mut(&trace) {
                    Some((polls, ts)) => {
                        // The probe asks for the marker's own millisecond.
                        assert_eq!((from, to), (ts.to_string(), (*ts + 1).to_string()), "{target}");
                        *polls += 1;
                        if *polls >= 2 {
                            vec![serde_json::json!({"trace_id": trace})]
                        } else {
                            vec![]
                        }
                    }
                    None => vec![],
                };
                (
                    200,
                    String::new(),
                    serde_json::json!({ "logs": logs }).to_string(),
                )
            }
            _ => (404, String::new(), "{}".into()),
        }
    }

    fn config(url: String, key: &str, format: Format, gzip: bool, batch: usize) -> LoadConfig {
        LoadConfig {
            url: url.clone(),
            key: key.into(),
            read_key: key.into(),
            rate: 0.0,
            duration: Duration::from_millis(1500),
            connections: 3,
            format,
            gzip,
            probe_interval: Some(Duration::from_millis(200)),
            progress: false,
            info: RunInfo {
                url,
                connections: 3,
                batch,
                rate: 0.0,
                format,
                gzip,
                payload_bytes: 100,
                models: 8,
                seed: 5,
            },
        }
    }

    fn pool(batch: usize) -> (Vec<BatchTemplate>, Generator) {
        let cfg = records::GenConfig {
            models: 8,
            error_rate: 0.02,
            payload_bytes: 100,
        };
        let mut g = Generator::new(cfg.clone(), 5);
        let mut rng = rand::thread_rng();
        (
            records::build_pool(&mut g, batch, 4, &mut rng),
            Generator::new(cfg, 6),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_counts_retries_and_probes_against_a_fake_server() {
        for (format, gzip) in [(Format::Ndjson, false), (Format::Json, true)] {
            let fake = Arc::new(Fake::default());
            let url = fake_server(fake.clone()).await;
            let cfg = config(url, "good", format, gzip, 50);
            let client = http_client(1);
            preflight(&client, &cfg).await.unwrap();
            let (pool, marker_gen) = pool(50);
            let (_tx, rx) = watch::channel(false);
            let r = run_load(cfg, pool, marker_gen, rx).await;
            assert_eq!(r.errors, 0, "{r:?}");
            assert!(r.requests > 10, "{r:?}");
            assert_eq!(
                r.rejected_records, r.requests,
                "one refusal per batch: {r:?}"
            );
            // Every acknowledged batch had 50 records (51 with a marker), one refused.
            assert!(
                r.records_acked >= r.requests * 49 && r.records_acked <= r.requests * 50,
                "{r:?}"
            );
            assert_eq!(
                r.records_acked + r.rejected_records,
                fake.records_received.load(Relaxed) as u64
            );
            assert!(r.backpressure_responses > 0, "{r:?}");
            assert!(
                r.probes >= 3 && r.probe_timeouts == 0 && r.probe_disabled.is_none(),
                "{r:?}"
            );
            assert!(r.visibility_lag_ms_p99.is_some() && r.send_visibility_lag_ms_max.is_some());
            assert!(r.send_visibility_lag_ms_max >= r.visibility_lag_ms_max);
            assert!(r.ack_latency_ms_p50.is_some() && r.acked_logs_per_sec > 0.0);
            assert_eq!(fake.gzip_bodies.load(Relaxed) > 0, gzip);
            assert!(r.duration_secs >= 1.4 && r.duration_secs < 5.0, "{r:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_404_on_the_read_endpoint_disables_probing() {
        let fake = Arc::new(Fake {
            get_404: true,
            ..Fake::default()
        });
        let url = fake_server(fake.clone()).await;
        let mut cfg = config(url, "good", Format::Ndjson, false, 20);
        cfg.duration = Duration::from_millis(700);
        let (pool, marker_gen) = pool(20);
        let (_tx, rx) = watch::channel(false);
        let r = run_load(cfg, pool, marker_gen, rx).await;
        assert_eq!(r.probes, 0);
        assert!(
            r.probe_disabled.as_deref().unwrap_or("").contains("404"),
            "{r:?}"
        );
        assert!(r.records_acked > 0 && r.errors == 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn preflight_reports_refused_connections_and_bad_keys() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = config(
            format!("http://127.0.0.1:{port}"),
            "good",
            Format::Ndjson,
            false,
            10,
        );
        let err = preflight(&http_client(1), &cfg).await.unwrap_err();
        assert!(err.0.contains("cannot reach Modelwatch"), "{}", err.0);

        let fake = Arc::new(Fake::default());
        let url = fake_server(fake).await;
        let err = preflight(
            &http_client(1),
            &config(url.clone(), "wrong", Format::Ndjson, false, 10),
        )
        .await
        .unwrap_err();
        assert!(err.0.contains("401"), "{}", err.0);
        let err = preflight(
            &http_client(1),
            &config(
                url.replace("http", "https"),
                "good",
                Format::Ndjson,
                false,
                10,
            ),
        )
        .await
        .unwrap_err();
        assert!(err.0.contains("http://"), "{}", err.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_goes_away_is_counted_not_fatal() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = config(
            format!("http://127.0.0.1:{port}"),
            "good",
            Format::Ndjson,
            false,
            10,
        );
        cfg.duration = Duration::from_millis(400);
        let (pool, marker_gen) = pool(10);
        let (_tx, rx) = watch::channel(false);
        let r = run_load(cfg, pool, marker_gen, rx).await;
        assert_eq!(r.records_acked, 0);
        assert!(r.errors > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_ends_the_run_early() {
        let fake = Arc::new(Fake::default());
        let url = fake_server(fake).await;
        let mut cfg = config(url, "good", Format::Ndjson, false, 10);
        cfg.duration = Duration::from_secs(60);
        cfg.rate = 100.0; // one 10-record batch every 100 ms
        let (pool, marker_gen) = pool(10);
        let (tx, rx) = watch::channel(false);
        let t = tokio::spawn(run_load(cfg, pool, marker_gen, rx));
        tokio::time::sleep(Duration::from_millis(500)).await;
        tx.send(true).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("stops promptly")
            .unwrap();
        assert!(r.duration_secs < 2.0, "{r:?}");
        // Paced: about 5 batches in 0.5 s, certainly not hundreds.
        assert!(r.requests >= 2 && r.requests <= 10, "{r:?}");
    }

    #[test]
    fn snippets_are_short() {
        assert_eq!(snippet(b"  {\"error\":1}\n"), "{\"error\":1}");
        assert!(snippet("é".repeat(400).as_bytes()).chars().count() <= 152);
    }
}
