//! Test support, shared by the engine's and the server's test suites: a fresh database per test.
//! Postgres comes from `MODELWATCH_TEST_POSTGRES_URL` (the throwaway cluster `./dev.sh test`
//! starts); when it is unset the Postgres half skips itself, unless
//! `MODELWATCH_REQUIRE_POSTGRES` says it must run (as in CI).

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A URL for a new, empty database, or `None` when Postgres is unavailable and not required.
pub async fn fresh_database_url(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}", dir.join("modelwatch.db").display())),
        Backend::Postgres => {
            let Ok(admin_url) = std::env::var("MODELWATCH_TEST_POSTGRES_URL") else {
                if std::env::var("MODELWATCH_REQUIRE_POSTGRES").is_ok() {
                    panic!("MODELWATCH_REQUIRE_POSTGRES is set but MODELWATCH_TEST_POSTGRES_URL is not");
                }
                eprintln!("skipping the Postgres half: MODELWATCH_TEST_POSTGRES_URL is not set (./dev.sh test sets it)");
                return None;
            };
            let name = format!("mw_test_{}", rand::random::<u64>());
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test Postgres");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create a test database");
            let base = admin_url.rsplit_once('/').expect("the URL names a database").0;
            Some(format!("{base}/{name}"))
        }
    }
}

/// The engine's store, for tests that check what was written.
pub fn store(engine: &crate::Engine) -> &dyn crate::store::Store {
    engine.store()
}

/// `n` logs of one model shaped like the load generator's (random trace, span and session ids,
/// decimal latencies, shared metadata), 3 ms apart, `errors` of them (about) flagged as errors:
/// what a log block holds under load.
pub fn loadgen_shaped_logs(n: i64, seed: u64, errors: f64) -> Vec<crate::store::LogRow> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| crate::store::LogRow {
            ts: 1_796_169_724_211 + i * 3,
            model_id: 1,
            series_id: rng.gen_range(1..4),
            flags: if rng.gen_bool(errors) { 5 } else { 4 },
            level: 2,
            http_status: Some(200),
            latency_ms: Some((rng.gen_range(100.0..3000.0f64) * 10.0).round() / 10.0),
            ttft_ms: Some((rng.gen_range(10.0..300.0f64) * 10.0).round() / 10.0),
            input_tokens: Some(rng.gen_range(10..2000)),
            output_tokens: Some(rng.gen_range(10..1000)),
            cost_usd: Some(rng.gen_range(1..100_000) as f64 / 1e7),
            user_id: Some(format!("u-{:04}", rng.gen_range(0..500))),
            session_id: Some(format!("s-{:012x}", rng.r#gen::<u64>() >> 16)),
            trace_id: Some(format!("{:032x}", rng.r#gen::<u128>())),
            span_id: Some(format!("{:016x}", rng.r#gen::<u64>())),
            metadata: Some(r#"{"region":"eu-west-1","tenant":"acme"}"#.into()),
            ..Default::default()
        })
        .collect()
}
