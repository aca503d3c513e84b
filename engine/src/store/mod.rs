//! Storage: one `Store` trait, implemented for SQLite (embedded default) and Postgres.
//!
//! This module owns SQL and nothing else: it never decides who may do what (that is
//! `rbac`) and never hashes passwords (that is `auth`). Both backends run the same SQL
//! wherever the dialects agree; the shared statements are written once in
//! `impl_common_store!` so the two implementations cannot drift apart.

mod postgres;
mod sqlite;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::types::{Grant, Model, Role, User, UserGrant};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A user row including the secret columns that never leave the engine.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// What a valid session resolves to.
#[derive(Debug, Clone)]
pub struct SessionOwner {
    pub user: User,
}

#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub name: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
    pub now_ms: i64,
}

/// The storage interface. Every method is a single statement or a single transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Database reachable and every embedded migration applied.
    async fn ready(&self) -> Result<()>;

    async fn count_users(&self) -> Result<i64>;
    async fn create_user(&self, new: NewUser<'_>) -> Result<User>;
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn set_user_role(&self, id: i64, role: Role) -> Result<()>;
    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<()>;
    async fn set_password_hash(&self, id: i64, hash: &str, now_ms: i64) -> Result<()>;

    async fn create_session(&self, id: &str, user_id: i64, now_ms: i64, expires_ms: i64) -> Result<()>;
    /// The owner of a session that is neither revoked nor expired, and whose user is enabled.
    async fn session_owner(&self, id: &str, now_ms: i64) -> Result<Option<SessionOwner>>;
    async fn revoke_session(&self, id: &str, now_ms: i64) -> Result<()>;
    async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> Result<()>;

    async fn create_model(&self, new: NewModel<'_>) -> Result<Model>;
    async fn model_by_name(&self, name: &str) -> Result<Option<Model>>;
    async fn list_models(&self) -> Result<Vec<Model>>;
    async fn update_model(&self, id: i64, display_name: &str, description: &str) -> Result<()>;

    async fn grants_of_user(&self, user_id: i64) -> Result<Vec<Grant>>;
    async fn grants_on_model(&self, model_id: i64) -> Result<Vec<UserGrant>>;
    /// Grants a model to a user, or updates the payload permission of an existing grant.
    async fn upsert_grant(&self, user_id: i64, model_id: i64, view_payloads: bool) -> Result<()>;
    async fn delete_grant(&self, user_id: i64, model_id: i64) -> Result<()>;
}

/// Opens the store named by a database URL and applies its migrations.
pub async fn open(url: &str) -> Result<Box<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::open(url).await?))
    } else {
        Err(Error::invalid(
            "database",
            "database URL must start with sqlite:// or postgres://",
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: i64,
}

impl UserRow {
    pub(crate) fn into_record(self) -> Result<UserRecord> {
        let role = self
            .role
            .parse::<Role>()
            .map_err(|_| Error::Storage(format!("user {} has unknown role {:?}", self.id, self.role)))?;
        Ok(UserRecord {
            user: User {
                id: self.id,
                username: self.username,
                role,
                disabled: self.disabled,
                created_at: self.created_at,
            },
            password_hash: self.password_hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ModelRow {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created_at: i64,
}

impl From<ModelRow> for Model {
    fn from(r: ModelRow) -> Self {
        Model {
            id: r.id,
            name: r.name,
            display_name: r.display_name,
            description: r.description,
            created_at: r.created_at,
        }
    }
}

/// Maps a unique-constraint violation to a 422 that names the field; anything else is a storage error.
pub(crate) fn map_unique(field: &'static str, what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::invalid(field, format!("{what} already exists"))
        }
        _ => Error::from(e),
    }
}

/// The statements both backends share. `$n` placeholders work on SQLite and Postgres alike.
macro_rules! impl_common_store {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ready(&self) -> $crate::error::Result<()> {
                let applied: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE",
                )
                .fetch_one(&self.pool)
                .await?;
                let expected = Self::migrator().iter().count() as i64;
                if applied < expected {
                    return Err($crate::error::Error::Storage(format!(
                        "{applied} of {expected} migrations applied"
                    )));
                }
                Ok(())
            }

            async fn count_users(&self) -> $crate::error::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
            }

            async fn create_user(&self, new: $crate::store::NewUser<'_>) -> $crate::error::Result<$crate::types::User> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO users (username, password_hash, role, disabled, created_at, password_changed_at) \
                     VALUES ($1, $2, $3, FALSE, $4, $4) RETURNING id",
                )
                .bind(new.username)
                .bind(new.password_hash)
                .bind(new.role.as_str())
                .bind(new.now_ms)
                .fetch_one(&self.pool)
                .await
                .map_err($crate::store::map_unique("username", "a user with this name"))?;
                Ok($crate::types::User {
                    id,
                    username: new.username.to_string(),
                    role: new.role,
                    disabled: false,
                    created_at: new.now_ms,
                })
            }

            async fn user_by_name(&self, username: &str) -> $crate::error::Result<Option<$crate::store::UserRecord>> {
                sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT id, username, password_hash, role, disabled, created_at FROM users \
                     WHERE lower(username) = lower($1)",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await?
                .map($crate::store::UserRow::into_record)
                .transpose()
            }

            async fn user_by_id(&self, id: i64) -> $crate::error::Result<Option<$crate::store::UserRecord>> {
                sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT id, username, password_hash, role, disabled, created_at FROM users WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map($crate::store::UserRow::into_record)
                .transpose()
            }

            async fn list_users(&self) -> $crate::error::Result<Vec<$crate::types::User>> {
                sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT id, username, password_hash, role, disabled, created_at FROM users ORDER BY username",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| r.into_record().map(|r| r.user))
                .collect()
            }

            async fn set_user_role(&self, id: i64, role: $crate::types::Role) -> $crate::error::Result<()> {
                sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                    .bind(role.as_str())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_user_disabled(&self, id: i64, disabled: bool) -> $crate::error::Result<()> {
                sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                    .bind(disabled)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_password_hash(&self, id: i64, hash: &str, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_session(&self, id: &str, user_id: i64, now_ms: i64, expires_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(user_id)
                    .bind(now_ms)
                    .bind(expires_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn session_owner(&self, id: &str, now_ms: i64) -> $crate::error::Result<Option<$crate::store::SessionOwner>> {
                let row = sqlx::query_as::<_, $crate::store::UserRow>(
                    "SELECT u.id, u.username, u.password_hash, u.role, u.disabled, u.created_at \
                     FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.disabled = FALSE",
                )
                .bind(id)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.into_record().map(|r| $crate::store::SessionOwner { user: r.user }))
                    .transpose()
            }

            async fn revoke_session(&self, id: &str, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> $crate::error::Result<()> {
                sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind(now_ms)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_model(&self, new: $crate::store::NewModel<'_>) -> $crate::error::Result<$crate::types::Model> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO models (name, display_name, description, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(new.name)
                .bind(new.display_name)
                .bind(new.description)
                .bind(new.now_ms)
                .fetch_one(&self.pool)
                .await
                .map_err($crate::store::map_unique("name", "a model with this name"))?;
                Ok($crate::types::Model {
                    id,
                    name: new.name.to_string(),
                    display_name: new.display_name.to_string(),
                    description: new.description.to_string(),
                    created_at: new.now_ms,
                })
            }

            async fn model_by_name(&self, name: &str) -> $crate::error::Result<Option<$crate::types::Model>> {
                Ok(sqlx::query_as::<_, $crate::store::ModelRow>(
                    "SELECT id, name, display_name, description, created_at FROM models WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .map(Into::into))
            }

            async fn list_models(&self) -> $crate::error::Result<Vec<$crate::types::Model>> {
                Ok(sqlx::query_as::<_, $crate::store::ModelRow>(
                    "SELECT id, name, display_name, description, created_at FROM models ORDER BY name",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Into::into)
                .collect())
            }

            async fn update_model(&self, id: i64, display_name: &str, description: &str) -> $crate::error::Result<()> {
                sqlx::query("UPDATE models SET display_name = $1, description = $2 WHERE id = $3")
                    .bind(display_name)
                    .bind(description)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn grants_of_user(&self, user_id: i64) -> $crate::error::Result<Vec<$crate::types::Grant>> {
                let rows: Vec<(i64, String, bool)> = sqlx::query_as(
                    "SELECT g.model_id, m.name, g.view_payloads FROM grants g JOIN models m ON m.id = g.model_id \
                     WHERE g.user_id = $1 ORDER BY m.name",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(model_id, model, view_payloads)| $crate::types::Grant { model_id, model, view_payloads })
                    .collect())
            }

            async fn grants_on_model(&self, model_id: i64) -> $crate::error::Result<Vec<$crate::types::UserGrant>> {
                let rows: Vec<(i64, String, bool)> = sqlx::query_as(
                    "SELECT g.user_id, u.username, g.view_payloads FROM grants g JOIN users u ON u.id = g.user_id \
                     WHERE g.model_id = $1 ORDER BY u.username",
                )
                .bind(model_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(user_id, username, view_payloads)| $crate::types::UserGrant { user_id, username, view_payloads })
                    .collect())
            }

            async fn upsert_grant(&self, user_id: i64, model_id: i64, view_payloads: bool) -> $crate::error::Result<()> {
                sqlx::query(
                    "INSERT INTO grants (user_id, model_id, view_payloads) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, model_id) DO UPDATE SET view_payloads = excluded.view_payloads",
                )
                .bind(user_id)
                .bind(model_id)
                .bind(view_payloads)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_grant(&self, user_id: i64, model_id: i64) -> $crate::error::Result<()> {
                sqlx::query("DELETE FROM grants WHERE user_id = $1 AND model_id = $2")
                    .bind(user_id)
                    .bind(model_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_common_store;
