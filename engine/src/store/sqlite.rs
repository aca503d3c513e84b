//! The embedded SQLite store: one file in the data dir, WAL mode, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::error::{Error, Result};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database", format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we answer; group commit (ingest) amortises the fsync.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(|e| Error::Storage(format!("cannot open SQLite database {url}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Storage(format!("SQLite migrations failed: {e}")))?;
        Ok(Self { pool })
    }

    pub(crate) fn migrator() -> &'static Migrator {
        &MIGRATOR
    }
}

super::impl_common_store!(SqliteStore, "sqlite");
