//! The Postgres store, for installs that outgrow one machine. Several server processes may share it.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::error::{Error, Result};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| Error::Storage(format!("cannot connect to Postgres: {e}")))?;
        // Migrations take an advisory lock, so concurrent starts of several servers are safe.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Storage(format!("Postgres migrations failed: {e}")))?;
        Ok(Self { pool })
    }

    pub(crate) fn migrator() -> &'static Migrator {
        &MIGRATOR
    }
}

super::impl_common_store!(PostgresStore, "postgres");
