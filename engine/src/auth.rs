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

/// The numbers of login throttling; `Default` is what a fresh install runs with (docs/accounts.md).
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// Failures older than this are forgotten.
    pub window_ms: i64,
    /// Failures of one user from one address that lock that pair for the rest of the window.
    pub per_user_address: usize,
    /// Failures from one address, over all usernames, that lock the address (password spraying).
    pub per_address: usize,
    /// Failures of one user, over all addresses, from which on each attempt waits a back-off.
    pub backoff_after: usize,
    /// The back-off doubles from 1 s with every further failure, up to this.
    pub backoff_max_ms: i64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings { window_ms: 15 * 60_000, per_user_address: 5, per_address: 30, backoff_after: 50, backoff_max_ms: 60_000 }
    }
}

/// Counts recent failed logins in a sliding window, so that guessing is slow but nobody can
/// lock somebody else out:
///
/// - per (user, address): `per_user_address` failures lock the user *from that address* only;
///   an attacker who fails for `admin` locks out the attacker's own address;
/// - per address: `per_address` failures over any usernames lock that address (spraying);
/// - per user, over all addresses: from `backoff_after` failures on (a distributed guess), each
///   attempt must wait 1 s, 2 s, 4 s, … (at most `backoff_max_ms`) after the latest failure. It
///   never locks for long, and addresses the user has logged in from are exempt from it.
///
/// Only wrong passwords count; a correct one clears its (user, address) count. Failures before
/// the user's `unlocked_at` (set by `modelwatch user unlock`, another process, so it goes through
/// the database) are ignored. Kept in memory: a restart forgets, which only ever errs on the side
/// of letting a user in.
pub struct LoginThrottle {
    settings: ThrottleSettings,
    state: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    /// Failure times per key: "pair:USER\nADDR", "ip:ADDR", "user:USER"; the newest few only.
    failures: HashMap<String, VecDeque<i64>>,
    /// Per user, the addresses of their successful logins (the newest few).
    known: HashMap<String, VecDeque<String>>,
}

/// Addresses remembered per user for the back-off exemption.
const KNOWN_ADDRESSES: usize = 16;
/// Failures kept per user beyond `backoff_after`: enough for the back-off to reach its cap.
const BACKOFF_STEPS: usize = 16;

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        LoginThrottle { settings, state: Mutex::new(ThrottleState::default()) }
    }

    fn keys(user: &str, addr: &str) -> [String; 3] {
        [format!("pair:{user}\n{addr}"), format!("ip:{addr}"), format!("user:{user}")]
    }

    /// Refuses an attempt of `user` (normalised) from `addr` while a limit holds, saying how long
    /// it will hold. Failures at or before `since_ms` (the user's unlock) do not count.
    pub fn check(&self, user: &str, addr: &str, since_ms: Option<i64>, now_ms: i64) -> Result<()> {
        let s = &self.settings;
        let horizon = (now_ms - s.window_ms).max(since_ms.unwrap_or(i64::MIN));
        let state = self.state.lock().expect("throttle lock");
        let recent = |key: &str| -> Vec<i64> {
            state.failures.get(key).map(|t| t.iter().copied().filter(|t| *t > horizon).collect()).unwrap_or_default()
        };
        let [pair, ip, per_user] = Self::keys(user, addr);
        let mut wait_ms = 0;
        for (key, limit) in [(pair, s.per_user_address), (ip, s.per_address)] {
            let times = recent(&key);
            if times.len() >= limit {
                // Free again when the oldest counted failure leaves the window.
                wait_ms = wait_ms.max(times[times.len() - limit] + s.window_ms - now_ms);
            }
        }
        let times = recent(&per_user);
        let known = state.known.get(user).is_some_and(|k| k.iter().any(|a| a == addr));
        if times.len() >= s.backoff_after && !known {
            let doublings = (times.len() - s.backoff_after).min(30) as u32;
            let backoff = 1000i64.saturating_mul(1 << doublings).min(s.backoff_max_ms);
            wait_ms = wait_ms.max(times[times.len() - 1] + backoff - now_ms);
        }
        if wait_ms > 0 {
            return Err(Error::TooManyRequests { retry_after_secs: (wait_ms as u64).div_ceil(1000) });
        }
        Ok(())
    }

    /// Counts a wrong password (or an unknown or disabled user).
    pub fn record_failure(&self, user: &str, addr: &str, now_ms: i64) {
        let s = &self.settings;
        let mut state = self.state.lock().expect("throttle lock");
        if state.failures.len() > 50_000 {
            // Bound memory under a spray of random usernames/addresses: forget expired entries.
            let horizon = now_ms - s.window_ms;
            state.failures.retain(|_, times| times.back().is_some_and(|t| *t > horizon));
        }
        let limits = [s.per_user_address, s.per_address, s.backoff_after + BACKOFF_STEPS];
        for (key, limit) in Self::keys(user, addr).into_iter().zip(limits) {
            let times = state.failures.entry(key).or_default();
            times.push_back(now_ms);
            while times.len() > limit.max(1) {
                times.pop_front();
            }
        }
    }

    /// A correct password: the pair's failures are forgiven and the address is known to be the
    /// user's. The address and user counts stay, or logging in to an own account between guesses
    /// would reset them.
    pub fn record_success(&self, user: &str, addr: &str) {
        let mut state = self.state.lock().expect("throttle lock");
        let [pair, _, _] = Self::keys(user, addr);
        state.failures.remove(&pair);
        let known = state.known.entry(user.to_string()).or_default();
        known.retain(|a| a != addr);
        known.push_back(addr.to_string());
        if known.len() > KNOWN_ADDRESSES {
            known.pop_front();
        }
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

    fn throttled(r: Result<()>) -> u64 {
        match r {
            Err(Error::TooManyRequests { retry_after_secs }) => retry_after_secs,
            other => panic!("expected throttle, got {other:?}"),
        }
    }

    const ATTACKER: &str = "203.0.113.9";
    const ADMIN_ADDR: &str = "198.51.100.7";

    #[test]
    fn failures_lock_the_pair_not_the_user() {
        let t = LoginThrottle::new(ThrottleSettings::default());
        for i in 0..5 {
            t.check("admin", ATTACKER, None, 1000 + i).unwrap();
            t.record_failure("admin", ATTACKER, 1000 + i);
        }
        // The attacker's address is locked for the rest of the window ...
        let retry = throttled(t.check("admin", ATTACKER, None, 2000));
        assert!(retry > 14 * 60 && retry <= 15 * 60, "{retry}");
        // ... the admin's is not, and other users from the attacker's address are not either.
        t.check("admin", ADMIN_ADDR, None, 2000).unwrap();
        t.check("alice", ATTACKER, None, 2000).unwrap();
        // After the window the attacker may try again.
        t.check("admin", ATTACKER, None, 1004 + 15 * 60_000).unwrap();
    }

    #[test]
    fn spraying_locks_the_address_only() {
        let t = LoginThrottle::new(ThrottleSettings::default());
        for i in 0..30 {
            let user = format!("user{i}");
            t.check(&user, ATTACKER, None, 1000 + i).unwrap();
            t.record_failure(&user, ATTACKER, 1000 + i);
        }
        assert!(throttled(t.check("admin", ATTACKER, None, 2000)) > 14 * 60);
        t.check("admin", ADMIN_ADDR, None, 2000).unwrap();
    }

    #[test]
    fn a_distributed_guess_meets_a_short_growing_backoff() {
        let t = LoginThrottle::new(ThrottleSettings::default());
        t.record_success("admin", ADMIN_ADDR);
        let mut now = 1_000_000;
        // 50 failures from 10 addresses (5 each, the most each may make).
        for i in 0..50 {
            let addr = format!("10.0.0.{}", i / 5);
            t.check("admin", &addr, None, now).unwrap();
            t.record_failure("admin", &addr, now);
            now += 100;
        }
        // A fresh address must wait 1 s after the latest failure, then 2 s, 4 s, ...
        let last = now - 100;
        assert_eq!(throttled(t.check("admin", "10.0.1.1", None, last + 1)), 1);
        t.check("admin", "10.0.1.1", None, last + 1000).unwrap();
        let mut waits = Vec::new();
        for i in 0..10 {
            let addr = format!("10.0.2.{i}");
            // Wait as long as told, then fail again.
            let wait = throttled(t.check("admin", &addr, None, now));
            throttled(t.check("admin", &addr, None, now + wait as i64 * 1000 - 1000));
            now += wait as i64 * 1000;
            t.check("admin", &addr, None, now).unwrap();
            t.record_failure("admin", &addr, now);
            waits.push(wait);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert!(throttled(t.check("admin", "10.0.3.1", None, now)) <= 60);
        // Never a lockout for everyone: the admin's known address is exempt, ...
        t.check("admin", ADMIN_ADDR, None, now).unwrap();
        // ... and a minute after the latest failure anyone may try again.
        t.check("admin", "10.0.3.1", None, now + 60_000).unwrap();
    }

    #[test]
    fn unlock_and_success_clear() {
        let t = LoginThrottle::new(ThrottleSettings::default());
        for i in 0..5 {
            t.record_failure("admin", ADMIN_ADDR, 1000 + i);
        }
        throttled(t.check("admin", ADMIN_ADDR, None, 2000));
        // `modelwatch user unlock` at 1500: failures up to then no longer count.
        t.check("admin", ADMIN_ADDR, Some(1500), 2000).unwrap();
        t.record_failure("admin", ADMIN_ADDR, 2000);
        t.check("admin", ADMIN_ADDR, Some(1500), 2001).unwrap();
        // The unlock holds for every limit of the user, the address's spray count included.
        for i in 0..30 {
            t.record_failure(&format!("user{i}"), ADMIN_ADDR, 3000);
        }
        throttled(t.check("admin", ADMIN_ADDR, None, 4000));
        t.check("admin", ADMIN_ADDR, Some(3000), 4000).unwrap();
        throttled(t.check("user1", ADMIN_ADDR, None, 4000));

        // A correct password forgives its pair's failures, not the address's.
        let t = LoginThrottle::new(ThrottleSettings::default());
        for i in 0..4 {
            t.record_failure("bob", ADMIN_ADDR, 1000 + i);
        }
        t.record_success("bob", ADMIN_ADDR);
        for i in 0..4 {
            t.record_failure("bob", ADMIN_ADDR, 2000 + i);
        }
        t.check("bob", ADMIN_ADDR, None, 3000).unwrap();
    }

    #[test]
    fn secret_key_is_never_printed() {
        let key = SecretKey::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
        assert!(!format!("{key:?}").contains("0123"));
        assert!(SecretKey::new(vec![1; 8]).is_err());
    }
}
