//! Credentials: argon2id password hashes, signed session tokens, and login throttling.
//!
//! A session token is a JWT (HS256, signed with the instance secret) naming a session row.
//! The signature makes forgery impossible; the row makes revocation immediate (logout,
//! password change and disabling a user mark rows revoked). This module never decides
//! what a user may do; that is `rbac`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The instance secret. Never printed: `Debug` shows a placeholder.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    pub const MIN_LEN: usize = 32;

    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < Self::MIN_LEN {
            return Err(Error::invalid(
                "MODELWATCH_SECRET_KEY",
                format!("the secret key must be at least {} bytes long", Self::MIN_LEN),
            ));
        }
        Ok(SecretKey(bytes))
    }

    /// A fresh random key, hex-encoded (64 characters).
    pub fn generate_hex() -> String {
        let bytes: [u8; 32] = rand::thread_rng().r#gen();
        hex::encode(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default() // argon2id, OWASP-recommended parameters
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing in particular, verified against when the user does not exist so that
/// unknown users and wrong passwords take the same time.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("modelwatch-timing-equaliser").expect("argon2 with defaults"))
}

pub fn generate_password() -> String {
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

pub(crate) fn generate_session_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    hex::encode(bytes)
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// User id.
    sub: String,
    /// Session id (row in `sessions`).
    sid: String,
    iat: i64,
    exp: i64,
}

/// Issues and checks session tokens.
pub(crate) struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenSigner {
    pub(crate) fn new(key: &SecretKey) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenSigner {
            encoding: EncodingKey::from_secret(key.bytes()),
            decoding: DecodingKey::from_secret(key.bytes()),
            validation,
        }
    }

    pub(crate) fn issue(&self, user_id: i64, session_id: &str, now_ms: i64, expires_ms: i64) -> Result<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            iat: now_ms / 1000,
            exp: expires_ms / 1000,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("cannot sign session token: {e}")))
    }

    /// The (user id, session id) of a token with a valid signature that has not expired.
    /// Only HS256 is accepted, so `alg: none` and algorithm-confusion tokens are refused.
    pub(crate) fn verify(&self, token: &str) -> Result<(i64, String)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::Unauthenticated)?;
        let user_id = data.claims.sub.parse().map_err(|_| Error::Unauthenticated)?;
        Ok((user_id, data.claims.sid))
    }
}

/// Counts recent failed logins per key ("user:NAME", "ip:ADDR") in a sliding window.
/// Kept in memory: a restart forgets, which only ever errs on the side of letting a user in.
pub struct LoginThrottle {
    window_ms: i64,
    per_user: usize,
    per_ip: usize,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl LoginThrottle {
    pub fn new(window_ms: i64, per_user: usize, per_ip: usize) -> Self {
        LoginThrottle { window_ms, per_user, per_ip, failures: Mutex::new(HashMap::new()) }
    }

    fn limit_for(&self, key: &str) -> usize {
        if key.starts_with("ip:") { self.per_ip } else { self.per_user }
    }

    /// Refuses when any key has reached its limit; says how long until the oldest failure expires.
    pub fn check(&self, keys: &[String], now_ms: i64) -> Result<()> {
        let mut map = self.failures.lock().expect("throttle lock");
        let mut wait_ms = 0;
        for key in keys {
            if let Some(times) = map.get_mut(key) {
                while times.front().is_some_and(|t| *t <= now_ms - self.window_ms) {
                    times.pop_front();
                }
                if times.len() >= self.limit_for(key) {
                    let oldest = *times.front().expect("non-empty");
                    wait_ms = wait_ms.max(oldest + self.window_ms - now_ms);
                }
            }
        }
        if wait_ms > 0 {
            return Err(Error::TooManyRequests { retry_after_secs: (wait_ms as u64).div_ceil(1000) });
        }
        Ok(())
    }

    pub fn record_failure(&self, keys: &[String], now_ms: i64) {
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() > 50_000 {
            // Bound memory under a spray of random usernames/addresses: forget expired entries.
            let horizon = now_ms - self.window_ms;
            map.retain(|_, times| times.back().is_some_and(|t| *t > horizon));
        }
        for key in keys {
            let times = map.entry(key.clone()).or_default();
            times.push_back(now_ms);
            let limit = self.limit_for(key);
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures.lock().expect("throttle lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_roundtrip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_signed_and_expire() {
        let key = SecretKey::new(vec![7; 32]).unwrap();
        let signer = TokenSigner::new(&key);
        let now = 1_700_000_000_000;
        let far = now + 3_600_000_000_000; // the validator checks against the real clock
        let t = signer.issue(42, "abc", now, far).unwrap();
        assert_eq!(signer.verify(&t).unwrap(), (42, "abc".to_string()));

        let other = TokenSigner::new(&SecretKey::new(vec![8; 32]).unwrap());
        assert!(other.verify(&t).is_err(), "wrong key must fail");

        let expired = signer.issue(42, "abc", now, now + 1000).unwrap();
        assert!(signer.verify(&expired).is_err(), "expired token must fail");
    }

    #[test]
    fn throttle_limits_then_releases() {
        let t = LoginThrottle::new(60_000, 3, 10);
        let keys = vec!["user:bob".to_string(), "ip:1.2.3.4".to_string()];
        for i in 0..3 {
            t.check(&keys, 1000 + i).unwrap();
            t.record_failure(&keys, 1000 + i);
        }
        match t.check(&keys, 2000) {
            Err(Error::TooManyRequests { retry_after_secs }) => assert!(retry_after_secs > 0 && retry_after_secs <= 60),
            other => panic!("expected throttle, got {other:?}"),
        }
        // Another user from another address is not affected.
        t.check(&["user:alice".into(), "ip:5.6.7.8".into()], 2000).unwrap();
        // After the window the user may try again.
        t.check(&keys, 1000 + 60_001 + 2).unwrap();
    }

    #[test]
    fn secret_key_is_never_printed() {
        let key = SecretKey::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
        assert!(!format!("{key:?}").contains("0123"));
        assert!(SecretKey::new(vec![1; 8]).is_err());
    }
}
