//! Ingest rules, compiled: which records are stored, and what personal data is removed first.
//!
//! Rules run in the write path before the writer queue, after rollup accounting has seen the
//! record as sent (sampling never changes KPIs). This module decides; it does not store.

use std::sync::Arc;

use super::record::{Level, LogRecord, MetaValue};
use super::redact::{CustomPattern, PiiKind, Redactor};
use crate::error::{Error, Result};
use crate::types::{IngestRule, RuleAction};

/// What the rules decided for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Store,
    Dropped,
    SampledOut,
}

#[derive(Clone)]
struct ModelMatch(String);

impl ModelMatch {
    fn matches(&self, model: &str) -> bool {
        match self.0.strip_suffix('*') {
            _ if self.0.is_empty() => true,
            Some(prefix) => model.starts_with(prefix),
            None => self.0 == model,
        }
    }
}

enum Compiled {
    Drop { levels: Vec<Level>, error: Option<bool>, key: Option<String>, value: Option<String> },
    Sample { keep: f64, slow_ms: Option<f64> },
    Redact(Arc<Redactor>),
}

struct Rule {
    model: ModelMatch,
    compiled: Compiled,
}

/// The enabled rules in order, ready to apply.
#[derive(Default, Clone)]
pub struct RuleSet {
    rules: Arc<Vec<Rule>>,
}

/// Checks a rule's settings and names the bad field, for the admin UI and the API.
pub fn validate(rule: &IngestRule) -> Result<()> {
    compile(rule).map(|_| ())
}

fn compile(rule: &IngestRule) -> Result<Rule> {
    if rule.name.trim().is_empty() || rule.name.len() > 100 {
        return Err(Error::invalid("name", "a rule needs a name of 1 to 100 characters"));
    }
    let compiled = match &rule.action {
        RuleAction::Drop { levels, status, metadata_key, metadata_value } => {
            let levels = levels
                .iter()
                .map(|l| Level::parse(l).ok_or_else(|| Error::invalid("levels", format!("unknown level {l:?}"))))
                .collect::<Result<Vec<_>>>()?;
            let error = match status.as_deref().map(str::trim) {
                None | Some("") | Some("any") => None,
                Some("ok") => Some(false),
                Some("error") => Some(true),
                Some(other) => return Err(Error::invalid("status", format!("must be ok, error or empty, not {other:?}"))),
            };
            let key = metadata_key.clone().filter(|k| !k.trim().is_empty());
            let value = metadata_value.clone().filter(|v| !v.is_empty());
            if value.is_some() && key.is_none() {
                return Err(Error::invalid("metadata_key", "a metadata value needs a key"));
            }
            if levels.is_empty() && error.is_none() && key.is_none() && rule.model.is_empty() {
                return Err(Error::invalid("levels", "a drop rule needs at least one condition (model, level, status or metadata)"));
            }
            Compiled::Drop { levels, error, key, value }
        }
        RuleAction::Sample { keep_percent, slow_ms } => {
            if !(0.0..=100.0).contains(keep_percent) {
                return Err(Error::invalid("keep_percent", "must be between 0 and 100"));
            }
            if slow_ms.is_some_and(|s| !(s >= 0.0)) {
                return Err(Error::invalid("slow_ms", "must be zero or more"));
            }
            Compiled::Sample { keep: keep_percent / 100.0, slow_ms: *slow_ms }
        }
        RuleAction::Redact { kinds, custom } => {
            let kinds = kinds
                .iter()
                .map(|k| PiiKind::parse(k).ok_or_else(|| Error::invalid("kinds", format!("unknown kind {k:?}; use email, phone, credit_card, secret or ip_address"))))
                .collect::<Result<Vec<_>>>()?;
            let custom: Vec<CustomPattern> =
                custom.iter().map(|c| CustomPattern { name: c.name.clone(), regex: c.regex.clone() }).collect();
            let r = Redactor::new(&kinds, &custom)
                .map_err(|e| Error::invalid(format!("custom[{}]", e.index), e.message))?;
            if r.is_empty() {
                return Err(Error::invalid("kinds", "choose at least one kind of data to redact"));
            }
            Compiled::Redact(Arc::new(r))
        }
    };
    Ok(Rule { model: ModelMatch(rule.model.trim().to_string()), compiled })
}

/// A stable per-record number in [0, 1): the trace id when there is one, so a trace is kept or
/// sampled out as a whole; otherwise a fresh random number.
fn sample_point(r: &LogRecord) -> f64 {
    match &r.trace_id {
        Some(t) => {
            // FNV-1a: tiny, fast, and good enough to spread ids.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in t.as_bytes() {
                h ^= *b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            // FNV leaves strings that differ only at the end close together in the high bits;
            // the murmur3 finaliser spreads them over the whole range.
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^= h >> 33;
            (h >> 11) as f64 / (1u64 << 53) as f64
        }
        None => rand::random::<f64>(),
    }
}

impl RuleSet {
    /// Compiles the enabled rules. A rule that no longer compiles is skipped and logged.
    pub fn new(rules: &[IngestRule]) -> RuleSet {
        let mut sorted: Vec<&IngestRule> = rules.iter().filter(|r| r.enabled).collect();
        sorted.sort_by_key(|r| (r.position, r.id));
        let compiled = sorted
            .into_iter()
            .filter_map(|r| match compile(r) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(rule = r.id, error = %e, "ingest rule skipped");
                    None
                }
            })
            .collect();
        RuleSet { rules: Arc::new(compiled) }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Decides whether the record is stored; if so, redacts it in place and returns how many
    /// values were replaced.
    pub fn apply(&self, r: &mut LogRecord) -> (Verdict, u32) {
        let mut sampled = false;
        for rule in self.rules.iter().filter(|x| x.model.matches(&r.model)) {
            match &rule.compiled {
                Compiled::Drop { levels, error, key, value } => {
                    let level_ok = levels.is_empty() || levels.contains(&r.level);
                    let status_ok = error.is_none_or(|e| e == r.error);
                    let meta_ok = match key {
                        None => true,
                        Some(k) => match r.metadata_get(k) {
                            None => false,
                            Some(v) => value.as_ref().is_none_or(|want| &v.as_text() == want),
                        },
                    };
                    if level_ok && status_ok && meta_ok {
                        return (Verdict::Dropped, 0);
                    }
                }
                Compiled::Sample { keep, slow_ms } => {
                    if sampled {
                        continue;
                    }
                    sampled = true;
                    let always = r.error || slow_ms.is_some_and(|s| r.latency_ms.is_some_and(|l| l >= s));
                    if !always && sample_point(r) >= *keep {
                        return (Verdict::SampledOut, 0);
                    }
                }
                Compiled::Redact(_) => {}
            }
        }
        (Verdict::Store, self.redact(r))
    }

    /// Applies the redaction rules of the record's model; returns how many values were replaced.
    pub fn redact(&self, r: &mut LogRecord) -> u32 {
        let mut count = 0;
        let model = r.model.clone();
        for rule in self.rules.iter().filter(|x| x.model.matches(&model)) {
            if let Compiled::Redact(red) = &rule.compiled {
                count += redact_record(red, r);
            }
        }
        count
    }
}

fn redact_field(red: &Redactor, field: &mut Option<String>) -> u32 {
    if let Some(text) = field {
        let (out, n) = red.redact(text);
        if n > 0 {
            *field = Some(out.into_owned());
        }
        return n;
    }
    0
}

fn redact_record(red: &Redactor, r: &mut LogRecord) -> u32 {
    let mut n = 0;
    for f in [&mut r.request, &mut r.response, &mut r.message, &mut r.error_message, &mut r.user_id] {
        n += redact_field(red, f);
    }
    for (_, v) in r.metadata.iter_mut() {
        if let MetaValue::Str(s) = v {
            let (out, k) = red.redact(s);
            if k > 0 {
                *s = out.into_owned();
                n += k;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::CustomRedaction;

    fn rule(id: i64, model: &str, action: RuleAction) -> IngestRule {
        IngestRule { id, position: id, name: format!("r{id}"), enabled: true, model: model.into(), action }
    }

    fn rec(model: &str, error: bool, level: Level) -> LogRecord {
        LogRecord { model: model.into(), error, level, ..Default::default() }
    }

    #[test]
    fn drop_rules() {
        let set = RuleSet::new(&[rule(
            1,
            "",
            RuleAction::Drop { levels: vec!["debug".into()], status: None, metadata_key: None, metadata_value: None },
        )]);
        assert_eq!(set.apply(&mut rec("m", false, Level::Debug)).0, Verdict::Dropped);
        assert_eq!(set.apply(&mut rec("m", false, Level::Info)).0, Verdict::Store);

        let set = RuleSet::new(&[rule(
            1,
            "test-*",
            RuleAction::Drop { levels: vec![], status: Some("ok".into()), metadata_key: Some("env".into()), metadata_value: Some("ci".into()) },
        )]);
        let mut r = rec("test-a", false, Level::Info);
        r.metadata.push(("env".into(), MetaValue::Str("ci".into())));
        assert_eq!(set.apply(&mut r.clone()).0, Verdict::Dropped);
        r.model = "prod".into();
        assert_eq!(set.apply(&mut r.clone()).0, Verdict::Store);
        r.model = "test-a".into();
        r.error = true;
        assert_eq!(set.apply(&mut r).0, Verdict::Store);
        // A disabled rule does nothing.
        let mut off = rule(1, "", RuleAction::Drop { levels: vec!["info".into()], status: None, metadata_key: None, metadata_value: None });
        off.enabled = false;
        assert_eq!(RuleSet::new(&[off]).apply(&mut rec("m", false, Level::Info)).0, Verdict::Store);
    }

    #[test]
    fn sampling_keeps_errors_and_slow_calls() {
        let set = RuleSet::new(&[rule(1, "", RuleAction::Sample { keep_percent: 10.0, slow_ms: Some(5000.0) })]);
        let mut kept = 0;
        for i in 0..10_000 {
            let mut r = rec("m", false, Level::Info);
            r.trace_id = Some(format!("tr-{i}"));
            if set.apply(&mut r).0 == Verdict::Store {
                kept += 1;
            }
        }
        assert!((800..1200).contains(&kept), "kept {kept}");
        for _ in 0..100 {
            assert_eq!(set.apply(&mut rec("m", true, Level::Error)).0, Verdict::Store);
            let mut slow = rec("m", false, Level::Info);
            slow.latency_ms = Some(6000.0);
            assert_eq!(set.apply(&mut slow).0, Verdict::Store);
        }
        // The same trace id gets the same decision.
        let mut a = rec("m", false, Level::Info);
        a.trace_id = Some("abc".into());
        let first = set.apply(&mut a.clone()).0;
        for _ in 0..10 {
            assert_eq!(set.apply(&mut a.clone()).0, first);
        }
    }

    #[test]
    fn redaction_covers_text_fields_and_metadata() {
        let set = RuleSet::new(&[rule(
            1,
            "",
            RuleAction::Redact {
                kinds: vec!["email".into()],
                custom: vec![CustomRedaction { name: "ticket".into(), regex: r"TCK-\d+".into() }],
            },
        )]);
        let mut r = rec("m", false, Level::Info);
        r.request = Some("mail bob@example.com about TCK-991".into());
        r.message = Some("from alice@example.org".into());
        r.metadata.push(("who".into(), MetaValue::Str("carol@example.net".into())));
        let (v, n) = set.apply(&mut r);
        assert_eq!(v, Verdict::Store);
        assert_eq!(n, 4);
        assert_eq!(r.request.as_deref(), Some("mail [EMAIL] about [TICKET]"));
        assert_eq!(r.message.as_deref(), Some("from [EMAIL]"));
        assert_eq!(r.metadata[0].1, MetaValue::Str("[EMAIL]".into()));
    }

    #[test]
    fn validation_names_fields() {
        let bad = |a: RuleAction| validate(&rule(1, "", a)).unwrap_err().field().unwrap().to_string();
        assert_eq!(bad(RuleAction::Sample { keep_percent: 120.0, slow_ms: None }), "keep_percent");
        assert_eq!(bad(RuleAction::Redact { kinds: vec!["dna".into()], custom: vec![] }), "kinds");
        assert_eq!(
            bad(RuleAction::Redact { kinds: vec![], custom: vec![CustomRedaction { name: "x".into(), regex: "(".into() }] }),
            "custom[0]"
        );
        assert_eq!(bad(RuleAction::Drop { levels: vec!["loud".into()], status: None, metadata_key: None, metadata_value: None }), "levels");
        assert_eq!(bad(RuleAction::Drop { levels: vec![], status: None, metadata_key: None, metadata_value: None }), "levels");
    }
}
