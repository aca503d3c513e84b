//! Log explorer query cost at 1M and 100M raw logs (20 models, 30 days), on SQLite.
//!
//! Run: `cargo bench -p engine --bench logsearch`. The first run builds the fixtures under
//! `target/bench-fixtures/` (raw logs, written hour by hour for all models through
//! `Store::write_batch`, so ids interleave models as live ingest does; errors and 1 in 1000
//! logs carry text for the full-text index); later runs reuse them.
//! `MODELWATCH_BENCH_LOGS=1000000` builds and measures only the small one.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use engine::ingest::{FLAG_CACHE_HIT, FLAG_ERROR};
use engine::kpi::{DAY_MS, HOUR_MS};
use engine::reads::Caller;
use engine::search::{LogSearch, Match};
use engine::store::{LogRow, SeriesKey, WriteBatch};
use engine::Principal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod fixtures;

use fixtures::{DAYS, END, MODELS, cached, open, sizes};

/// `logs` raw rows over 30 days and 20 models: four series per model, 2% errors of two
/// types, 50 users per model, a metadata key, messages on errors.
async fn build(path: &std::path::Path, logs: u64) {
    let engine = open(path).await;
    let store = engine::testing::store(&engine);
    let op = Principal::operator();
    let mut rng = StdRng::seed_from_u64(42);
    let mut models = Vec::new();
    for m in 0..MODELS {
        let name = format!("model-{m:02}");
        let model = engine.create_model(&op, engine::ModelInput { name, display_name: None, description: None }).await.unwrap();
        let mut series = Vec::new();
        for provider in ["openai", "azure"] {
            for version in ["v1", "v2"] {
                let key = SeriesKey { provider: provider.into(), model_version: version.into(), environment: "production".into(), operation: "chat".into() };
                series.push(store.ensure_series(model.id, &key).await.unwrap());
            }
        }
        models.push((model.id, series));
    }
    let hours = DAYS * 24;
    let per_model_hour = logs as f64 / (MODELS as f64 * hours as f64);
    let start = END - DAYS * DAY_MS;
    let started = Instant::now();
    for h in 0..hours {
        let mut rows: Vec<LogRow> = Vec::new();
        for (model_id, series) in &models {
            let n = (per_model_hour + rng.gen_range(-1.0..1.0) * per_model_hour.sqrt()).round().max(0.0) as usize;
            let mut times: Vec<i64> = (0..n).map(|_| start + h * HOUR_MS + rng.gen_range(0..HOUR_MS)).collect();
            times.sort_unstable();
            for ts in times {
                let error = rng.gen_bool(0.02);
                let mut flags = if error { FLAG_ERROR } else { 0 };
                if rng.gen_bool(0.1) {
                    flags |= FLAG_CACHE_HIT;
                }
                let et = if error { Some(if rng.gen_bool(0.5) { "timeout" } else { "rate_limited" }.to_string()) } else { None };
                rows.push(LogRow {
                    ts,
                    model_id: *model_id,
                    series_id: series[rng.gen_range(0..series.len())],
                    flags,
                    level: if error { 4 } else { 2 },
                    http_status: Some(if error { 504 } else { 200 }),
                    latency_ms: Some((200.0 * (rng.gen_range(-1.0f64..1.0) * 0.6).exp()).round()),
                    ttft_ms: Some((80.0 * (rng.gen_range(-1.0f64..1.0) * 0.5).exp()).round()),
                    input_tokens: Some(rng.gen_range(100..2000)),
                    output_tokens: Some(rng.gen_range(10..500)),
                    cached_tokens: None,
                    cost_usd: Some(0.002),
                    feedback: None,
                    error_message: et.as_ref().map(|e| format!("upstream {e}")),
                    error_type: et,
                    message: None,
                    user_id: Some(format!("user-{}", rng.gen_range(0..50))),
                    session_id: None,
                    trace_id: None,
                    span_id: None,
                    metadata: Some(format!(r#"{{"team":"team-{}"}}"#, rng.gen_range(0..5))),
                    payload: None,
                    search_text: None,
                    text_hashes: Vec::new(),
                });
                let row = rows.last_mut().unwrap();
                // Searchable text: every error's message, and a rare word in 1 of 1000 logs.
                let rare = rng.gen_bool(0.001).then(|| format!("card declined for order {}", rng.gen_range(0..1_000_000)));
                row.message = rare;
                row.search_text = engine::ingest::SearchText::messages(row.message.as_deref(), row.error_message.as_deref());
            }
        }
        for chunk in rows.chunks(100_000) {
            store.write_batch(&WriteBatch { logs: chunk.to_vec(), ..Default::default() }).await.unwrap();
        }
        if h % 24 == 23 {
            eprintln!("fixture {logs}: day {} of {DAYS} after {:.0?}", h / 24 + 1, started.elapsed());
        }
    }
    // The full-text index of the last batches is written after their commits (SQLite).
    if let Some(indexed) = store.search_barrier() {
        indexed.await;
    }
    engine.shutdown().await;
}

fn search(span: i64) -> LogSearch {
    LogSearch { from: Some(END - span), to: Some(END), ..Default::default() }
}

fn queries(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let op = Principal::operator();
    for logs in sizes() {
        // v2: with the full-text index; v3: logs in blocks (SQLite's storage since 2026-12-02);
        // v4: blocks with a filter of their words (`store::textindex`).
        let engine = rt.block_on(cached("logs-v4", logs, |path, n| async move { build(&path, n).await }));
        let label = if logs >= 1_000_000 { format!("{}M_logs", logs / 1_000_000) } else { format!("{logs}_logs") };
        let mut g = c.benchmark_group(format!("logsearch_{label}"));
        g.sample_size(20);
        let run = |s: &LogSearch| rt.block_on(engine.search_logs(Caller::User(&op), "model-07", s)).unwrap();
        let cases: Vec<(&str, LogSearch)> = vec![
            ("1h_status_error", LogSearch { status: Some(true), ..search(HOUR_MS) }),
            ("1h_status_ok", LogSearch { status: Some(false), ..search(HOUR_MS) }),
            ("1h_all", search(HOUR_MS)),
            ("24h_user", LogSearch { user_id: Some(Match::Value("user-7".into())), ..search(DAY_MS) }),
            ("24h_error_type", LogSearch { error_type: Some(Match::Value("timeout".into())), ..search(DAY_MS) }),
            ("24h_meta_team", LogSearch { meta: vec![("team".into(), Match::Value("team-3".into()))], ..search(DAY_MS) }),
            ("24h_text_common", LogSearch { q: Some("upstream timeout".into()), ..search(DAY_MS) }),
            ("24h_text_rare", LogSearch { q: Some("declined".into()), ..search(DAY_MS) }),
            ("7d_provider_latency", LogSearch {
                provider: Some(Match::Value("azure".into())),
                latency_ms: engine::search::Range { min: Some(300.0), max: None },
                ..search(7 * DAY_MS)
            }),
            // Worst case: nothing matches, so the page reads every log of the range to say so.
            ("7d_no_match", LogSearch { latency_ms: engine::search::Range { min: Some(600.0), max: None }, ..search(7 * DAY_MS) }),
        ];
        for (name, s) in &cases {
            g.bench_function(*name, |b| b.iter(|| run(s)));
        }
        // Paging deeper: the 20th page of 1h_status_ok costs what the first does.
        let mut deep = LogSearch { status: Some(false), ..search(HOUR_MS) };
        for _ in 0..19 {
            let page = run(&deep);
            match page.next.as_deref().map(|c| LogSearch::from_params(&[("before".into(), c.into())], &[]).unwrap().before) {
                Some(b) => deep.before = b,
                None => break,
            }
        }
        g.bench_function("1h_status_ok_page20", |b| b.iter(|| run(&deep)));
        let id = run(&search(HOUR_MS)).logs[0].id;
        g.bench_function("detail", |b| b.iter(|| rt.block_on(engine.log_detail(Caller::User(&op), id)).unwrap()));
        g.finish();
        let p = run(&search(HOUR_MS));
        eprintln!("{label}: model-07 has {} logs in the last hour of the fixture (exact: {})", p.count, p.count_exact);
        let p = run(&search(DAY_MS));
        eprintln!("{label}: model-07 has {} logs in its last 24 h (exact: {})", p.count, p.count_exact);
        rt.block_on(engine.shutdown());
    }
}

criterion_group!(benches, queries);
criterion_main!(benches);
