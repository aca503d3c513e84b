//! The `Engine`: every operation of the domain, each authorised before it touches data.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{self, LoginThrottle, SecretKey, TokenSigner};
use crate::error::{Error, Result};
use crate::rbac::{Action, Principal};
use crate::store::{self, NewModel, NewUser, Store};
use crate::types::*;
use crate::validate;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Tunables of the account system; the defaults are what a fresh install runs with.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub session_ttl_ms: i64,
    /// Login throttling (see `auth::LoginThrottle`).
    pub throttle: auth::ThrottleSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { session_ttl_ms: 7 * 24 * 3_600_000, throttle: auth::ThrottleSettings::default() }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginSession {
    pub token: String,
    pub expires_at_ms: i64,
    pub user: User,
}

/// A model as a caller may edit it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ModelInput {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    /// Which addresses admin-configured URLs may reach (public only unless configured).
    targets: Arc<crate::outbound::TargetPolicy>,
}

struct Inner {
    keys: crate::keys::KeyCache,
    store: Arc<dyn Store>,
    ingest: crate::ingest::Ingest,
    signer: TokenSigner,
    throttle: LoginThrottle,
    settings: AuthSettings,
}

impl Engine {
    /// Opens (and migrates) the database at `database_url`.
    pub async fn open(database_url: &str, secret: &SecretKey, settings: AuthSettings) -> Result<Engine> {
        Engine::open_with(database_url, secret, settings, crate::ingest::IngestSettings::default()).await
    }

    /// Opens the database and starts the ingest writer with the given settings.
    pub async fn open_with(
        database_url: &str,
        secret: &SecretKey,
        settings: AuthSettings,
        ingest: crate::ingest::IngestSettings,
    ) -> Result<Engine> {
        let store: Arc<dyn Store> = Arc::from(store::open(database_url).await?);
        let ingest = crate::ingest::Ingest::start(store.clone(), ingest).await?;
        Ok(Engine {
            inner: Arc::new(Inner {
                keys: Default::default(),
                store,
                ingest,
                signer: TokenSigner::new(secret),
                throttle: LoginThrottle::new(settings.throttle.clone()),
                settings,
            }),
            targets: Arc::default(),
        })
    }

    /// The engine with `policy` for the URLs of alert channels and scrape targets (checked when
    /// saved, and by the server when it connects). Set it before sharing the engine: clones
    /// made earlier keep the policy they had.
    pub fn with_target_policy(mut self, policy: crate::outbound::TargetPolicy) -> Engine {
        self.targets = Arc::new(policy);
        self
    }

    pub fn target_policy(&self) -> &Arc<crate::outbound::TargetPolicy> {
        &self.targets
    }

    pub fn backend(&self) -> &'static str {
        self.inner.store.backend()
    }

    pub async fn ready(&self) -> Result<()> {
        self.inner.store.ready().await
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub(crate) fn key_cache(&self) -> &crate::keys::KeyCache {
        &self.inner.keys
    }

    /// The write path: parsing, rules and the group-commit writer.
    pub fn ingest(&self) -> &crate::ingest::Ingest {
        &self.inner.ingest
    }

    /// Stops ingest and waits until every acknowledged record is committed.
    pub async fn shutdown(&self) {
        self.inner.ingest.shutdown().await;
    }

    // ----- first start -------------------------------------------------------------------------

    /// When there are no users, creates `admin` with the given password or a generated one.
    /// Returns the password when it was generated, so the caller can print it once.
    pub async fn bootstrap_admin(&self, password: Option<&str>) -> Result<Option<String>> {
        if self.store().count_users().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.to_string(), false),
            None => (auth::generate_password(), true),
        };
        validate::password("MODELWATCH_ADMIN_PASSWORD", &password)?;
        let hash = hash_blocking(password.clone()).await?;
        self.store()
            .create_user(NewUser { username: "admin", password_hash: &hash, role: Role::Admin, now_ms: now_ms() })
            .await?;
        Ok(generated.then_some(password))
    }

    // ----- sessions ----------------------------------------------------------------------------

    /// Checks a username and password. Unknown users, wrong passwords and disabled users all
    /// get `BadCredentials`, after the same amount of work (a lookup and a hash).
    pub async fn login(&self, username: &str, password: &str, client_addr: &str) -> Result<LoginSession> {
        let now = now_ms();
        let name = username.trim().to_lowercase();
        // The user is read before the throttle is asked: failures before a break-glass unlock
        // (`modelwatch user unlock`, written to the database by another process) do not count.
        let record = self.store().user_by_name(username.trim()).await?;
        let unlocked_at = record.as_ref().and_then(|r| r.unlocked_at);
        self.inner.throttle.check(&name, client_addr, unlocked_at, now)?;

        let hash = record.as_ref().map(|r| r.password_hash.clone()).unwrap_or_else(|| auth::dummy_hash().to_string());
        let password_ok = verify_blocking(password.to_string(), hash).await?;
        let user = match record {
            Some(r) if password_ok && !r.user.disabled => r.user,
            _ => {
                self.inner.throttle.record_failure(&name, client_addr, now);
                tracing::warn!(username, client_addr, "failed login");
                return Err(Error::BadCredentials);
            }
        };
        self.inner.throttle.record_success(&name, client_addr);

        let session_id = auth::generate_session_id();
        let expires = now + self.inner.settings.session_ttl_ms;
        self.store().create_session(&session_id, user.id, now, expires).await?;
        let token = self.inner.signer.issue(user.id, &session_id, now, expires)?;
        tracing::info!(username = %user.username, "login");
        Ok(LoginSession { token, expires_at_ms: expires, user })
    }

    /// Resolves a session token to a principal, or `Unauthenticated`.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let (user_id, session_id) = self.inner.signer.verify(token)?;
        let owner = self.store().session_owner(&session_id, now_ms()).await?.ok_or(Error::Unauthenticated)?;
        if owner.user.id != user_id {
            return Err(Error::Unauthenticated);
        }
        let grants = self.store().grants_of_user(user_id).await?;
        Ok(Principal::user(owner.user.id, owner.user.username, owner.user.role, &grants))
    }

    /// Ends the session the token names. A bad or already-ended token is not an error.
    pub async fn logout(&self, token: &str) -> Result<()> {
        if let Ok((_, session_id)) = self.inner.signer.verify(token) {
            self.store().revoke_session(&session_id, now_ms()).await?;
        }
        Ok(())
    }

    pub fn me(&self, p: &Principal) -> Result<Me> {
        let id = p.user_id.ok_or(Error::Unauthenticated)?;
        Ok(Me { id, username: p.username.clone(), role: p.role })
    }

    /// Changes the caller's own password and ends all of their sessions.
    pub async fn change_own_password(&self, p: &Principal, current: &str, new: &str) -> Result<()> {
        let id = p.user_id.ok_or(Error::Unauthenticated)?;
        let record = self.store().user_by_id(id).await?.ok_or(Error::Unauthenticated)?;
        if !verify_blocking(current.to_string(), record.password_hash).await? {
            return Err(Error::invalid("current_password", "the current password is wrong"));
        }
        self.set_password(id, "new_password", new).await
    }

    async fn set_password(&self, user_id: i64, field: &str, password: &str) -> Result<()> {
        validate::password(field, password)?;
        let hash = hash_blocking(password.to_string()).await?;
        let now = now_ms();
        self.store().set_password_hash(user_id, &hash, now).await?;
        self.store().revoke_user_sessions(user_id, now).await
    }

    // ----- models ------------------------------------------------------------------------------

    /// The models the principal may see, by name.
    pub async fn list_models(&self, p: &Principal) -> Result<Vec<Model>> {
        let all = self.store().list_models().await?;
        Ok(all.into_iter().filter(|m| p.allows(Action::ViewModel(m.id))).collect())
    }

    /// Admins: one page of the registry (by name; `filter` matches name or display name), the
    /// number of models that match, and the model limits with what ingest refused under them.
    pub async fn models_page(&self, p: &Principal, filter: &str, page: usize, per_page: usize) -> Result<ModelsPage> {
        p.authorize(Action::Administer)?;
        let needle = filter.trim().to_lowercase();
        let matching: Vec<Model> = self
            .store()
            .list_models()
            .await?
            .into_iter()
            .filter(|m| needle.is_empty() || m.name.to_lowercase().contains(&needle) || m.display_name.to_lowercase().contains(&needle))
            .collect();
        let per_page = per_page.clamp(1, 500);
        let total = matching.len();
        let pages = total.div_ceil(per_page).max(1);
        let page = page.clamp(1, pages);
        let models = matching.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        let limits = self.ingest().model_limit_status().await?;
        Ok(ModelsPage { models, total, page, pages, per_page, limits })
    }

    /// One model by name; `NotFound` when it does not exist *or* the principal may not see it.
    pub async fn get_model(&self, p: &Principal, name: &str) -> Result<Model> {
        let model = self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))?;
        p.authorize(Action::ViewModel(model.id))?;
        Ok(model)
    }

    pub async fn create_model(&self, p: &Principal, input: ModelInput) -> Result<Model> {
        p.authorize(Action::Administer)?;
        let name = validate::model_name("name", &input.name)?;
        let display = input.display_name.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or(name);
        validate::text("display_name", display, 200)?;
        let description = input.description.as_deref().unwrap_or("").trim();
        validate::text("description", description, 2000)?;
        self.store()
            .create_model(NewModel { name, display_name: display, description, now_ms: now_ms() })
            .await
    }

    pub async fn update_model(&self, p: &Principal, name: &str, display_name: &str, description: &str) -> Result<Model> {
        p.authorize(Action::Administer)?;
        let model = self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))?;
        let display_name = display_name.trim();
        if display_name.is_empty() {
            return Err(Error::invalid("display_name", "display name must not be empty"));
        }
        validate::text("display_name", display_name, 200)?;
        let description = description.trim();
        validate::text("description", description, 2000)?;
        self.store().update_model(model.id, display_name, description).await?;
        Ok(Model { display_name: display_name.into(), description: description.into(), ..model })
    }

    pub async fn model_grants(&self, p: &Principal, name: &str) -> Result<Vec<UserGrant>> {
        p.authorize(Action::Administer)?;
        let model = self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))?;
        self.store().grants_on_model(model.id).await
    }

    // ----- users -------------------------------------------------------------------------------

    pub async fn list_users(&self, p: &Principal) -> Result<Vec<UserWithGrants>> {
        p.authorize(Action::Administer)?;
        let mut out = Vec::new();
        for user in self.store().list_users().await? {
            let grants = self.store().grants_of_user(user.id).await?;
            out.push(UserWithGrants { user, grants });
        }
        Ok(out)
    }

    pub async fn get_user(&self, p: &Principal, id: i64) -> Result<UserWithGrants> {
        p.authorize(Action::Administer)?;
        let user = self.store().user_by_id(id).await?.ok_or(Error::NotFound("user"))?.user;
        let grants = self.store().grants_of_user(id).await?;
        Ok(UserWithGrants { user, grants })
    }

    pub async fn user_by_name(&self, p: &Principal, username: &str) -> Result<User> {
        p.authorize(Action::Administer)?;
        Ok(self.store().user_by_name(username).await?.ok_or(Error::NotFound("user"))?.user)
    }

    /// Creates a user; with no password given, generates one and returns it.
    pub async fn create_user(&self, p: &Principal, username: &str, role: Role, password: Option<&str>) -> Result<(User, Option<String>)> {
        p.authorize(Action::Administer)?;
        let username = validate::username("username", username)?;
        let (password, generated) = match password.filter(|s| !s.is_empty()) {
            Some(pw) => (pw.to_string(), false),
            None => (auth::generate_password(), true),
        };
        validate::password("password", &password)?;
        let hash = hash_blocking(password.clone()).await?;
        let user = self
            .store()
            .create_user(NewUser { username, password_hash: &hash, role, now_ms: now_ms() })
            .await?;
        tracing::info!(by = %p.username, username, %role, "user created");
        Ok((user, generated.then_some(password)))
    }

    pub async fn set_user_role(&self, p: &Principal, id: i64, role: Role) -> Result<()> {
        p.authorize(Action::Administer)?;
        let target = self.store().user_by_id(id).await?.ok_or(Error::NotFound("user"))?.user;
        if Some(id) == p.user_id && role != Role::Admin {
            return Err(Error::invalid("role", "you cannot remove your own admin role"));
        }
        self.store().set_user_role(target.id, role).await
    }

    /// Disables or re-enables a user; disabling ends their sessions at once.
    pub async fn set_user_disabled(&self, p: &Principal, id: i64, disabled: bool) -> Result<()> {
        p.authorize(Action::Administer)?;
        self.store().user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        if disabled && Some(id) == p.user_id {
            return Err(Error::invalid("disabled", "you cannot disable yourself"));
        }
        self.store().set_user_disabled(id, disabled).await?;
        if disabled {
            self.store().revoke_user_sessions(id, now_ms()).await?;
        }
        Ok(())
    }

    /// Sets a user's password (admin reset); with none given, generates one and returns it.
    pub async fn reset_password(&self, p: &Principal, id: i64, password: Option<&str>) -> Result<Option<String>> {
        p.authorize(Action::Administer)?;
        self.store().user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        let (password, generated) = match password.filter(|s| !s.is_empty()) {
            Some(pw) => (pw.to_string(), false),
            None => (auth::generate_password(), true),
        };
        self.set_password(id, "password", &password).await?;
        Ok(generated.then_some(password))
    }

    /// Break-glass: failed logins of the user so far no longer count against them, from any
    /// address. Recorded in the database so that a running server (another process) obeys it.
    pub async fn unlock_user(&self, p: &Principal, username: &str) -> Result<User> {
        p.authorize(Action::Administer)?;
        let user = self.store().user_by_name(username.trim()).await?.ok_or(Error::NotFound("user"))?.user;
        self.store().set_user_unlocked(user.id, now_ms()).await?;
        tracing::info!(by = %p.username, username = %user.username, "user unlocked");
        Ok(user)
    }

    /// Lets a user see a model (and, with `view_payloads`, its prompts and responses).
    pub async fn grant(&self, p: &Principal, user_id: i64, model: &str, view_payloads: bool) -> Result<()> {
        p.authorize(Action::Administer)?;
        let (user, model) = self.user_and_model(user_id, model).await?;
        self.store().upsert_grant(user.id, model.id, view_payloads).await?;
        tracing::info!(by = %p.username, user = %user.username, model = %model.name, view_payloads, "grant");
        Ok(())
    }

    pub async fn revoke(&self, p: &Principal, user_id: i64, model: &str) -> Result<()> {
        p.authorize(Action::Administer)?;
        let (user, model) = self.user_and_model(user_id, model).await?;
        self.store().delete_grant(user.id, model.id).await?;
        tracing::info!(by = %p.username, user = %user.username, model = %model.name, "revoke");
        Ok(())
    }

    async fn user_and_model(&self, user_id: i64, model: &str) -> Result<(User, Model)> {
        let user = self.store().user_by_id(user_id).await?.ok_or(Error::NotFound("user"))?.user;
        let model = self
            .store()
            .model_by_name(model)
            .await?
            .ok_or_else(|| Error::invalid("model", format!("no model named {model:?}")))?;
        Ok((user, model))
    }
}

async fn hash_blocking(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

async fn verify_blocking(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}
