//! API keys, ingest rules, prices and payload capture: the admin side of the write path.
//!
//! API keys are long random strings (`mw_` + 40 base62 characters). Only their SHA-256 is
//! stored: unlike passwords they carry ~238 bits of entropy, so a slow hash would add request
//! latency without adding safety. The first 12 characters are kept in clear to find the row
//! and to let admins recognise a key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::engine::{Engine, now_ms};
use crate::error::{Error, Result};
use crate::ingest::KeyPrincipal;
use crate::rbac::{Action, Principal};
use crate::store::NewApiKey;
use crate::types::{ApiKey, IngestRule, Price, Scope};
use crate::validate;

const KEY_PREFIX_LEN: usize = 12;
/// Verified keys are remembered this long, so a busy client costs no database read per request.
/// Revocation through this process takes effect at once; through another process within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(10);
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct KeyCache {
    verified: Mutex<HashMap<[u8; 32], (KeyPrincipal, Instant)>>,
    touched: Mutex<HashMap<i64, Instant>>,
}

fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn generate_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..40).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("mw_{body}")
}

/// What an admin fills in to create a key.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ApiKeyInput {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Limit the key to these models; empty means every model.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default = "yes")]
    pub capture_payloads: bool,
}

fn yes() -> bool {
    true
}

impl Engine {
    /// Creates a key and returns it with its secret, which is shown this once and never again.
    pub async fn create_api_key(&self, p: &Principal, input: ApiKeyInput) -> Result<(ApiKey, String)> {
        p.authorize(Action::Administer)?;
        let name = input.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(Error::invalid("name", "a key needs a name of 1 to 100 characters"));
        }
        validate::text("name", name, 100)?;
        if input.scopes.is_empty() {
            return Err(Error::invalid("scopes", "choose at least one scope: ingest or read"));
        }
        let mut scopes = input.scopes.clone();
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        let mut models = Vec::new();
        for (i, m) in input.models.iter().enumerate() {
            let m = m.trim();
            if m.is_empty() {
                continue;
            }
            models.push(validate::model_name(&format!("models[{i}]"), m)?.to_string());
        }
        let models = (!models.is_empty()).then_some(models);
        let secret = generate_key();
        let prefix = &secret[..KEY_PREFIX_LEN];
        let hash = hex::encode(hash_key(&secret));
        let now = now_ms();
        let id = self
            .store()
            .create_api_key(NewApiKey {
                name,
                prefix,
                secret_hash: &hash,
                scopes: &scopes,
                models: models.as_deref(),
                capture_payloads: input.capture_payloads,
                created_by: p.user_id,
                now_ms: now,
            })
            .await?;
        let key = ApiKey {
            id,
            name: name.to_string(),
            prefix: prefix.to_string(),
            scopes,
            models,
            capture_payloads: input.capture_payloads,
            created_by: p.user_id.map(|_| p.username.clone()),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        Ok((key, secret))
    }

    pub async fn list_api_keys(&self, p: &Principal) -> Result<Vec<ApiKey>> {
        p.authorize(Action::Administer)?;
        self.store().list_api_keys().await
    }

    pub async fn revoke_api_key(&self, p: &Principal, id: i64) -> Result<()> {
        p.authorize(Action::Administer)?;
        if !self.store().revoke_api_key(id, now_ms()).await? {
            return Err(Error::NotFound("API key"));
        }
        self.key_cache().verified.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, (k, _)| k.key_id != id);
        Ok(())
    }

    /// Resolves a presented API key. Unknown, malformed and revoked keys are all `Unauthenticated`.
    pub async fn authenticate_key(&self, secret: &str) -> Result<KeyPrincipal> {
        let secret = secret.trim();
        if !secret.starts_with("mw_") || secret.len() < KEY_PREFIX_LEN || secret.len() > 200 {
            return Err(Error::Unauthenticated);
        }
        let hash = hash_key(secret);
        let cache = self.key_cache();
        if let Some((k, at)) = cache.verified.lock().unwrap_or_else(|e| e.into_inner()).get(&hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(k.clone());
        }
        let record = self.store().api_key_by_prefix(&secret[..KEY_PREFIX_LEN]).await?.ok_or(Error::Unauthenticated)?;
        let stored = hex::decode(&record.secret_hash).unwrap_or_default();
        if stored.ct_eq(&hash).unwrap_u8() != 1 || record.key.revoked_at.is_some() {
            return Err(Error::Unauthenticated);
        }
        let k = record.key;
        let principal = KeyPrincipal {
            key_id: k.id,
            name: k.name,
            scopes: k.scopes,
            models: k.models.map(|m| m.into_iter().collect()),
            capture_payloads: k.capture_payloads,
        };
        cache.verified.lock().unwrap_or_else(|e| e.into_inner()).insert(hash, (principal.clone(), Instant::now()));
        Ok(principal)
    }

    /// Records that a key was used, at most once a minute per key, without delaying the request.
    pub fn touch_api_key(&self, key_id: i64) {
        {
            let mut touched = self.key_cache().touched.lock().unwrap_or_else(|e| e.into_inner());
            if touched.get(&key_id).is_some_and(|t| t.elapsed() < TOUCH_EVERY) {
                return;
            }
            touched.insert(key_id, Instant::now());
        }
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.store().touch_api_key(key_id, now_ms()).await {
                tracing::warn!(error = %e, key_id, "could not record API key use");
            }
        });
    }

    // ----- ingest rules ---------------------------------------------------------------------------

    pub async fn list_rules(&self, p: &Principal) -> Result<Vec<IngestRule>> {
        p.authorize(Action::Administer)?;
        self.store().list_rules().await
    }

    /// Creates (id 0) or updates a rule; it applies to the next ingested batch.
    pub async fn save_rule(&self, p: &Principal, mut rule: IngestRule) -> Result<IngestRule> {
        p.authorize(Action::Administer)?;
        rule.name = rule.name.trim().to_string();
        rule.model = rule.model.trim().to_string();
        if !rule.model.is_empty() {
            validate::model_name("model", rule.model.trim_end_matches('*'))?;
        }
        crate::ingest::rules::validate(&rule)?;
        let now = now_ms();
        if rule.id == 0 {
            rule.id = self.store().create_rule(&rule, now).await?;
        } else if !self.store().update_rule(&rule, now).await? {
            return Err(Error::NotFound("rule"));
        }
        self.ingest().reload_rules().await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, p: &Principal, id: i64) -> Result<()> {
        p.authorize(Action::Administer)?;
        if !self.store().delete_rule(id).await? {
            return Err(Error::NotFound("rule"));
        }
        self.ingest().reload_rules().await
    }

    // ----- prices ---------------------------------------------------------------------------------

    /// Prices are not secret: every signed-in user may read them (costs shown on dashboards).
    pub async fn list_prices(&self, _p: &Principal) -> Result<Vec<Price>> {
        self.store().list_prices().await
    }

    pub async fn save_price(&self, p: &Principal, price: Price) -> Result<()> {
        p.authorize(Action::Administer)?;
        let pattern = price.pattern.trim();
        validate::model_name("pattern", pattern.trim_end_matches('*'))?;
        for (field, v) in
            [("input_per_mtok", price.input_per_mtok), ("output_per_mtok", price.output_per_mtok), ("cached_input_per_mtok", price.cached_input_per_mtok)]
        {
            if !(0.0..=1e6).contains(&v) {
                return Err(Error::invalid(field, "price must be between 0 and 1,000,000 USD per million tokens"));
            }
        }
        self.store().upsert_price(&Price { pattern: pattern.to_string(), ..price }, now_ms()).await?;
        self.ingest().reload_prices().await
    }

    pub async fn delete_price(&self, p: &Principal, pattern: &str) -> Result<()> {
        p.authorize(Action::Administer)?;
        if !self.store().delete_price(pattern).await? {
            return Err(Error::NotFound("price"));
        }
        self.ingest().reload_prices().await
    }

    // ----- payload capture ------------------------------------------------------------------------

    pub async fn set_model_capture(&self, p: &Principal, name: &str, capture: bool) -> Result<()> {
        p.authorize(Action::Administer)?;
        let model = self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))?;
        self.store().set_model_capture(model.id, capture).await?;
        self.ingest().forget_model(name);
        Ok(())
    }

    /// Chooses the metadata keys rolled up for this model's breakdowns (at most
    /// `MAX_BREAKDOWN_KEYS`). Records ingested from now on are counted under them.
    pub async fn set_model_breakdown_keys(&self, p: &Principal, name: &str, keys: &[String]) -> Result<Vec<String>> {
        p.authorize(Action::Administer)?;
        let model = self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))?;
        let mut clean: Vec<String> = Vec::new();
        for k in keys.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
            if k.len() > 128 || k.chars().any(char::is_control) {
                return Err(Error::invalid("breakdown_keys", format!("{k:?} is not a usable metadata key (at most 128 printable characters)")));
            }
            if !clean.iter().any(|c| c == k) {
                clean.push(k.to_string());
            }
        }
        if clean.len() > MAX_BREAKDOWN_KEYS {
            return Err(Error::invalid("breakdown_keys", format!("at most {MAX_BREAKDOWN_KEYS} metadata keys can be rolled up per model")));
        }
        self.store().set_model_breakdown_keys(model.id, &clean).await?;
        self.ingest().forget_model(name);
        Ok(clean)
    }
}

/// Each rolled-up metadata key adds up to `MAX_DIM_VALUES_PER_HOUR` rows per model and hour.
pub const MAX_BREAKDOWN_KEYS: usize = 5;
