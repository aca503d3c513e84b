//! Which new models ingest may register. A model is created on the first record that names
//! it, so one ingest key sending distinct names could create models without end (a probe made
//! 150,000 in two minutes, and every page listing models then took a minute). Two limits stop
//! that: a cap on the number of models, and a cap on the models one API key registers per
//! minute. Records for a model refused here are refused one by one, with a message that says
//! which limit was met and how to raise it; the refusals are counted for the admin's warning.
//! Models created by an admin in the UI are not limited.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::types::ModelLimitStatus;

/// The limits, from the server's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLimits {
    /// Most models in the registry that ingest may still add to.
    pub max_models: i64,
    /// Most new models one API key may register in a minute.
    pub new_per_key_per_minute: u32,
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits { max_models: 1000, new_per_key_per_minute: 100 }
    }
}

/// How long a count of the models is trusted before it is read again (other processes on
/// the same database register models too).
const COUNT_TTL_MS: i64 = 5_000;

#[derive(Debug)]
pub(crate) struct Admission {
    limits: ModelLimits,
    /// (number of models, when counted).
    count: Mutex<(i64, i64)>,
    /// Per API key: when it registered models in the last minute (a sliding window: a
    /// batch that straddles a minute boundary gets no fresh allowance).
    per_key: Mutex<HashMap<i64, VecDeque<i64>>>,
    refused: AtomicU64,
    last_refused_ms: AtomicI64,
    last_reason: Mutex<Option<String>>,
}

impl Admission {
    pub(crate) fn new(limits: ModelLimits) -> Admission {
        Admission {
            limits,
            count: Mutex::new((0, i64::MIN)),
            per_key: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            last_refused_ms: AtomicI64::new(0),
            last_reason: Mutex::new(None),
        }
    }

    /// The number of models if the cached count is still fresh.
    fn cached_count(&self, now_ms: i64) -> Option<i64> {
        let (n, at) = *self.count.lock().unwrap_or_else(|e| e.into_inner());
        (now_ms.saturating_sub(at) < COUNT_TTL_MS).then_some(n)
    }

    fn set_count(&self, n: i64, now_ms: i64) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) = (n, now_ms);
    }

    /// May `key_id` register one more model now, with `count` models in the registry (read
    /// only when the cached count is stale)? On yes, the registration is counted against the
    /// key. `field` names the record's model field in the refusal.
    pub(crate) async fn admit<F, Fut>(&self, key_id: i64, field: &str, now_ms: i64, count: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<i64>>,
    {
        let models = match self.cached_count(now_ms) {
            Some(n) => n,
            None => {
                let n = count().await?;
                self.set_count(n, now_ms);
                n
            }
        };
        if models >= self.limits.max_models {
            return Err(self.refuse(
                field,
                now_ms,
                format!(
                    "the model registry is full ({} models, the limit of --max-models); new models are refused until an admin \
                     deletes models or raises the limit",
                    self.limits.max_models
                ),
            ));
        }
        let horizon = now_ms - 60_000;
        {
            let mut keys = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
            if keys.len() > 10_000 {
                keys.retain(|_, times| times.back().is_some_and(|t| *t > horizon));
            }
            let times = keys.entry(key_id).or_default();
            while times.front().is_some_and(|t| *t <= horizon) {
                times.pop_front();
            }
            if times.len() >= self.limits.new_per_key_per_minute as usize {
                drop(keys);
                return Err(self.refuse(
                    field,
                    now_ms,
                    format!(
                        "this API key registered {} new models in the last minute (the limit of --max-new-models-per-key-per-minute); \
                         send records for known models, or retry in a minute",
                        self.limits.new_per_key_per_minute
                    ),
                ));
            }
            times.push_back(now_ms);
        }
        self.set_count(models + 1, now_ms);
        Ok(())
    }

    fn refuse(&self, field: &str, now_ms: i64, why: String) -> Error {
        let first_in_a_minute = self.last_refused_ms.swap(now_ms, Ordering::AcqRel) < now_ms - 60_000;
        self.refused.fetch_add(1, Ordering::Relaxed);
        if first_in_a_minute {
            tracing::warn!(reason = %why, "ingest refused records for new models");
        }
        *self.last_reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        Error::ForbiddenField { field: field.to_string(), message: why }
    }

    pub(crate) fn status(&self, models: i64) -> ModelLimitStatus {
        let last = self.last_refused_ms.load(Ordering::Acquire);
        ModelLimitStatus {
            models,
            max_models: self.limits.max_models,
            new_per_key_per_minute: self.limits.new_per_key_per_minute,
            refused_records: self.refused.load(Ordering::Relaxed),
            last_refused_ms: (last > 0).then_some(last),
            last_reason: self.last_reason.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: Error) -> (String, String) {
        match e {
            Error::ForbiddenField { field, message } => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_registry_cap_and_the_per_key_rate_hold() {
        let a = Admission::new(ModelLimits { max_models: 5, new_per_key_per_minute: 2 });
        let t = 1_800_000_000_000;
        // Key 1: two new models a minute, then refused until the next minute.
        a.admit(1, "logs[0].model", t, || async { Ok(0) }).await.unwrap();
        a.admit(1, "logs[1].model", t + 1, || async { panic!("the count is cached") }).await.unwrap();
        let (field, message) = field_of(a.admit(1, "logs[2].model", t + 2, || async { Ok(2) }).await.unwrap_err());
        assert_eq!(field, "logs[2].model");
        assert!(message.contains("--max-new-models-per-key-per-minute"), "{message}");
        // The minute is a sliding one: later in it (whatever the clock's minute) still refused.
        assert!(a.admit(1, "logs[3].model", t + 59_000, || async { Ok(2) }).await.is_err());
        // Another key is not held back by the first.
        a.admit(2, "logs[0].model", t + 3, || async { Ok(2) }).await.unwrap();
        a.admit(1, "logs[0].model", t + 60_000, || async { Ok(3) }).await.unwrap();
        // The registry is full at 5: refused for every key, whatever its rate.
        a.admit(3, "logs[0].model", t + 60_001, || async { Ok(4) }).await.unwrap();
        let (_, message) = field_of(a.admit(4, "logs[0].model", t + 60_002, || async { Ok(5) }).await.unwrap_err());
        assert!(message.contains("--max-models"), "{message}");
        // A stale count is read again: models deleted meanwhile make room.
        a.admit(4, "logs[0].model", t + 70_000, || async { Ok(1) }).await.unwrap();
        let s = a.status(2);
        assert_eq!((s.refused_records, s.last_refused_ms, s.max_models), (3, Some(t + 60_002), 5));
        assert!(s.last_reason.unwrap().contains("--max-models"));
    }
}
