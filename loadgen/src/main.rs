//! `modelwatch-loadgen`: a load generator for Modelwatch.
//!
//! It sends realistic AI-model log records (chat, embedding and classic-ML calls with tokens,
//! latencies, errors, users, traces and prompt/response text that sometimes holds an e-mail
//! address or a phone number) to `POST /api/v1/logs` over keep-alive HTTP connections, and
//! reports acknowledged logs per second, per-request acknowledgement latency, and how long a
//! record takes to become visible in `GET /api/v1/logs` (the visibility probe).
//!
//! Records are generated once at start into a pool of pre-serialised batches; sending only
//! splices fresh timestamps in, so one core produces millions of records per second and the
//! generator is not what gets measured (check with `--dry-run`).
//!
//! # Running it against `./dev.sh run`
//!
//! ```sh
//! ./dev.sh run                                   # terminal 1: the server on http://127.0.0.1:8080
//! # terminal 2: a key that may ingest and read (the probe reads the records back)
//! export MODELWATCH_API_KEY=$(target/release/modelwatch key create --name loadgen --scope ingest --scope read | grep -o 'mw_[A-Za-z0-9_-]*')
//! cargo build -p loadgen --release
//! target/release/modelwatch-loadgen --duration 30 --connections 8 --batch 1000
//! target/release/modelwatch-loadgen --rate 20000 --gzip --json     # paced, one JSON report
//! target/release/modelwatch-loadgen --dry-run --duration 5          # generator speed only
//! ```
//!
//! Exit status: 0 after a run, 1 when nothing was acknowledged and errors occurred, 2 for bad
//! options or when the server cannot be reached (or refuses the key) at start.

mod otlp;
mod pacer;
mod records;
mod report;
mod run;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::records::{Format, GenConfig, Generator, MODELS};
use crate::report::{DryRunReport, RunInfo};
use crate::run::LoadConfig;

#[derive(Debug, Parser)]
#[command(
    name = "modelwatch-loadgen",
    version,
    about = "Load generator for Modelwatch: sends realistic AI-model logs and reports throughput, latency and visibility lag"
)]
struct Args {
    /// Base URL of the Modelwatch server.
    #[arg(long, env = "MODELWATCH_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key with the `ingest` scope (and `read` for the visibility probe). Required unless --dry-run.
    #[arg(long, env = "MODELWATCH_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Key for the visibility probe's GET, if --key lacks the `read` scope. Default: --key.
    #[arg(long, env = "MODELWATCH_READ_KEY", hide_env_values = true)]
    read_key: Option<String>,
    /// Target logs per second across all connections; 0 = as fast as the server takes them.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Concurrent in-flight requests (each on its own keep-alive connection).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    connections: u32,
    /// Records per request (the server's default limit is 10,000; a probe marker adds one).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,
    /// How many models to spread records over (from a fixed list of realistic models).
    #[arg(long, default_value_t = 8)]
    models: usize,
    /// Share of records that are failed calls (0..1).
    #[arg(long, default_value_t = 0.02)]
    error_rate: f64,
    /// Bytes of request + response text per record; 0 sends none.
    #[arg(long, default_value_t = 200)]
    payload_bytes: usize,
    /// Body encoding.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
    /// Compress request bodies with gzip (Content-Encoding: gzip).
    #[arg(long)]
    gzip: bool,
    /// Seed for the generated records (default: random; printed in the report).
    #[arg(long)]
    seed: Option<u64>,
    /// How often a batch carries a marker record whose visibility is probed, in ms; 0 disables.
    #[arg(long, default_value_t = 1000)]
    probe_interval_ms: u64,
    /// Print the final report as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Generate and encode only, on one thread, and report the generation rate. Sends nothing.
    #[arg(long)]
    dry_run: bool,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// `native` sends log records to `POST /api/v1/logs`; `otlp` sends GenAI spans as OTLP/HTTP
    /// protobuf to `POST /v1/traces` and measures until they are visible in queries.
    #[arg(long, value_enum, default_value_t = Protocol::Native)]
    protocol: Protocol,
    /// OTLP: how many spans to send in all.
    #[arg(long, default_value_t = 200_000)]
    spans: u64,
    /// OTLP: whose query API counts the visible spans (`phoenix` needs no --key).
    #[arg(long, value_enum, default_value_t = otlp::Target::Modelwatch)]
    target: otlp::Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Protocol {
    Native,
    Otlp,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("modelwatch-loadgen: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(1..=MODELS.len()).contains(&args.models) {
        return fail(format!("--models must be between 1 and {}", MODELS.len()));
    }
    if !(0.0..=1.0).contains(&args.error_rate) {
        return fail("--error-rate must be between 0 and 1");
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return fail("--duration must be a positive number of seconds");
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        return fail("--rate must be 0 (unlimited) or a positive number of logs per second");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let batch = args.batch as usize;
    let gen_cfg = GenConfig {
        models: args.models,
        error_rate: args.error_rate,
        payload_bytes: args.payload_bytes,
    };

    if args.protocol == Protocol::Otlp {
        return run_otlp(&args, gen_cfg, seed);
    }

    let key = match (&args.key, args.dry_run) {
        (Some(k), _) if !k.trim().is_empty() => k.trim().to_string(),
        (_, true) => String::new(),
        _ => {
            return fail(
                "an API key is required: pass --key or set MODELWATCH_API_KEY (or use --dry-run)",
            );
        }
    };

    // The pool: distinct pre-encoded batches, rotated through while sending.
    let pool_start = Instant::now();
    let mut generator = Generator::new(gen_cfg.clone(), seed);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let pool = records::build_pool(
        &mut generator,
        batch,
        records::pool_batches(batch),
        &mut rng,
    );
    let pool_build = pool_start.elapsed();
    let duration = Duration::from_secs_f64(args.duration);

    if args.dry_run {
        let template = DryRunReport {
            mode: "dry_run",
            batch,
            format: args.format,
            gzip: args.gzip,
            payload_bytes: args.payload_bytes,
            models: args.models,
            seed,
            pool_batches: 0,
            pool_build_ms: 0.0,
            duration_secs: 0.0,
            records_generated: 0,
            generated_logs_per_sec: 0.0,
            batches_encoded: 0,
            body_mb_per_sec: 0.0,
            avg_body_bytes: 0.0,
            avg_record_bytes_uncompressed: 0.0,
        };
        let r = run::dry_run(
            &pool,
            args.format,
            args.gzip,
            duration,
            pool_build,
            template,
        );
        if args.json {
            println!("{}", serde_json::to_string(&r).expect("report serialises"));
        } else {
            print!("{}", r.text());
        }
        return ExitCode::SUCCESS;
    }

    let url = args.url.trim().trim_end_matches('/').to_string();
    let connections = args.connections as usize;
    if args.rate > 0.0 && (batch as f64) > args.rate {
        eprintln!(
            "note: --batch {batch} is larger than --rate {}: requests will be {:.1} s apart",
            args.rate,
            batch as f64 / args.rate
        );
    }
    if batch >= 10_000 && args.probe_interval_ms > 0 {
        eprintln!(
            "note: batches that carry a probe marker have {} records; the server's default limit is 10,000",
            batch + 1
        );
    }
    let cfg = LoadConfig {
        read_key: args
            .read_key
            .clone()
            .filter(|k| !k.trim().is_empty())
            .unwrap_or_else(|| key.clone()),
        key,
        url: url.clone(),
        rate: args.rate,
        duration,
        connections,
        format: args.format,
        gzip: args.gzip,
        probe_interval: (args.probe_interval_ms > 0)
            .then(|| Duration::from_millis(args.probe_interval_ms)),
        progress: true,
        info: RunInfo {
            url,
            connections,
            batch,
            rate: args.rate,
            format: args.format,
            gzip: args.gzip,
            payload_bytes: args.payload_bytes,
            models: args.models,
            seed,
        },
    };

    let rt = match runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let marker_gen = Generator::new(gen_cfg, seed.wrapping_add(1));
    rt.block_on(async move {
        let client = run::http_client(1);
        if let Err(e) = run::preflight(&client, &cfg).await {
            return fail(e.0);
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing in-flight requests");
                let _ = stop_tx.send(true);
            }
        });
        eprintln!(
            "sending to {} for {:.0} s: {} connections, batch {}, {} pre-built batches ({} ms), seed {}",
            cfg.url,
            cfg.duration.as_secs_f64(),
            cfg.connections,
            batch,
            pool.len(),
            pool_build.as_millis(),
            seed
        );
        let report = run::run_load(cfg, pool, marker_gen, stop_rx).await;
        if args.json {
            println!("{}", serde_json::to_string(&report).expect("report serialises"));
        } else {
            print!("{}", report.text());
        }
        if report.records_acked == 0 && report.errors > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The async runtime: one worker per core unless `--threads` says otherwise.
fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = threads.filter(|&t| t > 0) {
        rt.worker_threads(t);
    }
    rt.build()
}

/// `--protocol otlp`: see `otlp.rs`.
fn run_otlp(args: &Args, gen_cfg: GenConfig, seed: u64) -> ExitCode {
    let key = args.key.as_ref().map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    if key.is_none() && args.target == otlp::Target::Modelwatch {
        return fail("an API key with the ingest and read scopes is required: pass --key or set MODELWATCH_API_KEY");
    }
    let run_id = format!("r{}", seed % 1_000_000);
    let cfg = otlp::OtlpConfig {
        url: args.url.trim().trim_end_matches('/').to_string(),
        key,
        target: args.target,
        spans: args.spans.max(1),
        batch: args.batch as usize,
        connections: args.connections as usize,
        run_id,
        visible_timeout: Duration::from_secs(600),
    };
    let models: Vec<String> = MODELS[..args.models].iter().map(|m| m.name.to_string()).collect();
    let mut generator = Generator::new(gen_cfg, seed);
    let pool = otlp::build_pool(&mut generator, &cfg);
    let rt = match runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    eprintln!("sending {} GenAI spans to {}/v1/traces: batch {}, {} connections, run {}", cfg.spans, cfg.url, cfg.batch, cfg.connections, cfg.run_id);
    let report = rt.block_on(otlp::run(cfg, pool, models));
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("report serialises"));
    } else {
        print!("{}", report.text());
    }
    if report.spans_acked == 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
