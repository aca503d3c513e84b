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
