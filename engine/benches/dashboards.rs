//! Dashboard query cost at 1M and 100M logs (20 models, 30 days), on SQLite.
//!
//! Run: `cargo bench -p engine --bench dashboards`. The first run builds the fixtures (the
//! rollup rows the writer would have produced for that many logs, through the same
//! `Store::write_batch`) under `target/bench-fixtures/`; later runs reuse them. Raw log rows are
//! not written: dashboard queries never read them (see docs/benchmarks.md). Set
//! `MODELWATCH_BENCH_LOGS=1000000` to build and measure only the small fixture.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use engine::dashboards::ResolvedRange;
use engine::ingest::rollup::{RecordFacts, RollupDelta};
use engine::kpi::{BreakdownBy, DAY_MS, MINUTE_MS, choose_step};
use engine::reads::Caller;
use engine::store::{SeriesKey, WriteBatch};
use engine::Principal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod fixtures;

use fixtures::{DAYS, END, MODELS, cached, open, sizes};

/// Writes the rollups of `logs` records spread over 30 days and 20 models, with four series per
/// model (2 providers × 2 versions), 2% errors of two types, and 50 users per model.
async fn build(path: &std::path::Path, logs: u64) {
    let engine = open(path).await;
    let store = engine::testing::store(&engine);
    let op = Principal::operator();
    let mut rng = StdRng::seed_from_u64(42);
    let per_model_minute = logs as f64 / (MODELS as f64 * (DAYS * 24 * 60) as f64);
    let started = Instant::now();
    for m in 0..MODELS {
        let name = format!("model-{m:02}");
        let model = engine.create_model(&op, engine::ModelInput { name: name.clone(), display_name: None, description: None }).await.unwrap();
        let mut series = Vec::new();
        for provider in ["openai", "azure"] {
            for version in ["v1", "v2"] {
                let key = SeriesKey {
                    provider: provider.into(),
                    model_version: version.into(),
                    environment: "production".into(),
                    operation: "chat".into(),
                };
                series.push(store.ensure_series(model.id, &key).await.unwrap());
            }
        }
        let start = END - DAYS * DAY_MS;
        for day in 0..DAYS {
            let mut delta = RollupDelta::default();
            for minute in 0..(24 * 60) {
                let ts = start + day * DAY_MS + minute * MINUTE_MS;
                // Poisson-ish count around the mean.
                let mean = per_model_minute;
                let n = if mean < 5.0 {
                    (0..((mean * 2.0).ceil() as usize)).filter(|_| rng.gen_bool((mean / (mean * 2.0).ceil()).min(1.0))).count()
                } else {
                    (mean + rng.gen_range(-1.0..1.0) * mean.sqrt()).round().max(0.0) as usize
                };
                for _ in 0..n {
                    let error = rng.gen_bool(0.02);
                    let facts = RecordFacts {
                        error,
                        latency_ms: Some(200.0 * (rng.gen_range(-1.0f64..1.0) * 0.6).exp()),
                        ttft_ms: Some(80.0 * (rng.gen_range(-1.0f64..1.0) * 0.5).exp()),
                        input_tokens: Some(rng.gen_range(100..2000)),
                        output_tokens: Some(rng.gen_range(10..500)),
                        cached_tokens: Some(0),
                        cost_usd: Some(0.002),
                        cache_hit: false,
                        stored: true,
                    };
                    let sid = series[rng.gen_range(0..series.len())];
                    let et = if error { if rng.gen_bool(0.5) { "timeout" } else { "rate_limited" } } else { "" };
                    delta.add_log(model.id, sid, et, ts + rng.gen_range(0..MINUTE_MS), &facts);
                    delta.add_dim(model.id, "user", &format!("user-{}", rng.gen_range(0..50)), ts, &facts);
                }
            }
            delta.finish();
            store.write_batch(&WriteBatch { rollups: delta, ..Default::default() }).await.unwrap();
        }
        eprintln!("fixture {logs}: model {m} done after {:.0?}", started.elapsed());
    }
    engine.shutdown().await;
}

fn range(span: i64) -> ResolvedRange {
    ResolvedRange { from: END - span, to: END, step_ms: choose_step(span) }
}

fn queries(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let op = Principal::operator();
    for logs in sizes() {
        let engine = rt.block_on(cached("dashboards", logs, |path, n| async move { build(&path, n).await }));
        let label = if logs >= 1_000_000 { format!("{}M_logs", logs / 1_000_000) } else { format!("{logs}_logs") };
        let mut g = c.benchmark_group(format!("dashboards_{label}"));
        g.sample_size(20);
        for (name, span) in [("kpis_30d", 30 * DAY_MS), ("kpis_7d", 7 * DAY_MS), ("kpis_24h", DAY_MS)] {
            let r = range(span);
            g.bench_function(name, |b| {
                b.iter(|| rt.block_on(engine.model_kpis(Caller::User(&op), "model-07", &r)).unwrap())
            });
        }
        let r30 = range(30 * DAY_MS);
        g.bench_function("breakdown_provider_30d", |b| {
            b.iter(|| rt.block_on(engine.breakdown(Caller::User(&op), "model-07", &BreakdownBy::Provider, &r30)).unwrap())
        });
        g.bench_function("breakdown_user_30d", |b| {
            b.iter(|| rt.block_on(engine.breakdown(Caller::User(&op), "model-07", &BreakdownBy::User, &r30)).unwrap())
        });
        for (name, span) in [("overview_30d", 30 * DAY_MS), ("overview_24h", DAY_MS)] {
            let r = range(span);
            g.bench_function(name, |b| b.iter(|| rt.block_on(engine.overview(Caller::User(&op), &r)).unwrap()));
        }
        g.finish();
        let k = rt.block_on(engine.model_kpis(Caller::User(&op), "model-07", &r30)).unwrap();
        eprintln!("{label}: model-07 has {} requests in 30 days ({} points)", k.total.requests, k.points.len());
        rt.block_on(engine.shutdown());
    }
}

criterion_group!(benches, queries);
criterion_main!(benches);
