//! PII detection and replacement in text: finds e-mail addresses, phone numbers, card numbers,
//! secrets, IP addresses and admin-defined patterns in one string and replaces each with a
//! placeholder such as `[EMAIL]`. It never decides which fields of a record are redacted, when a
//! rule applies, or stores anything: the ingest rules do that and call [`Redactor::redact`] on
//! each text they choose.
//!
//! Detection is tuned to remove what is plainly personal or secret while leaving the numbers that
//! fill LLM logs (latencies, token counts, timestamps, ids, versions) intact. What each kind
//! catches, and what it deliberately or knowingly misses:
//!
//! - **Email** (`[EMAIL]`): ASCII addresses, with plus-tags, dots and subdomains
//!   (`alice.smith+test@mail.example.co.uk`); the top-level domain must be 2+ letters.
//!   Misses internationalised addresses (non-ASCII local part or domain), dotless domains
//!   (`root@localhost`) and obfuscated ones (`alice at example dot com`).
//! - **Phone** (`[PHONE]`): a `+` country code followed by 8–15 digits in all, in groups
//!   separated by a space, dot or dash, or a parenthesised group (`+1 415-555-0132`,
//!   `+1 (415) 555-0132`, `+44 20 7946 0958`, `+49 30 123456789`); a bare `+` number only with
//!   10+ digits (`+14155550132`). `+1` numbers are cut to their 11 digits. Without a `+`, North
//!   American numbers written `(415) 555-0132`, `415-555-0132` or `415.555.0132`, optionally
//!   after `1-`. Misses national formats without `+` outside North America (`020 7946 0958`),
//!   space-only groups (`415 555 0132`, which looks like a list of numbers) and unseparated
//!   digit runs (`4155550132`). May over-redact: a short number separated only by a space
//!   from a non-`+1` number (`+44 20 7946 0958 12`) is taken as part of it while the total
//!   stays within 15 digits. Never matches years, `12345`, `1234.5 ms`, dates, ISO timestamps,
//!   UUIDs or version strings.
//! - **CreditCard** (`[CARD]`): 13–19 digits that pass the Luhn checksum and start with 2–6
//!   (the major networks: Mastercard, Amex, Diners, JCB, Visa, Discover, UnionPay), either one
//!   unbroken run or groups separated by one kind of single separator (space or dash) where the
//!   first group has 4 digits and the others 3–6 (`4111 1111 1111 1111`, `3782 822463 10005`).
//!   The leading-digit rule keeps 13-digit millisecond timestamps (`1700000000000`) out.
//!   Misses cards starting with 1, 7, 8 or 9 (e.g. UATP) and other groupings.
//! - **Secret** (`[SECRET]`): `Bearer <token>` (the word is kept, the token replaced; a token
//!   must have 6+ characters and a digit or symbol, or 16+ characters, so prose such as
//!   "a bearer token" survives); `sk-`/`sk-proj-`/`sk-ant-` keys (20+ characters after
//!   `sk-`); AWS key ids (`AKIA`/`ASIA` + 16); GitHub `ghp_/gho_/ghs_/ghu_/ghr_` and
//!   `github_pat_` tokens; Slack `xox?-` tokens; JWTs (`eyJ….eyJ….…`); Modelwatch `mw_` keys (20+
//!   url-safe characters); and the value of an assignment `key: value`, `key=value`,
//!   `"key": "value"` or `key := value` whose key (any case, any prefix) ends in `password`,
//!   `passwd`, `passphrase`, `secret`, `secret_key`, `api_key`/`apikey`/`api-key`, `token`,
//!   `private_key`, `access_key` or `credential(s)`. An unquoted value ends at whitespace or
//!   one of `" ' , ; & [ ] } ) < > \`. Values that start with `[` or `{`, and `null`, `true`,
//!   `false`, `none`, `undefined`, are left alone (so placeholders and nested objects are not
//!   re-redacted). Misses secrets in prose ("my password is hunter2"), unknown vendor key
//!   formats without an assignment, and `Basic` auth. May over-redact the word after
//!   `Password:` in prose.
//! - **IpAddress** (`[IP]`): dotted-quad IPv4 with every octet 0–255 and no leading zeros, not
//!   part of a longer dotted number (so not `999.1.1.1`, `1.2.3` or `1.2.3.4.5`); IPv6 in full,
//!   compressed (`2001:db8::1`, `fe80::1ff:fe23:4567:890a`, `::1`) and IPv4-mapped forms, as
//!   accepted by [`std::net::Ipv6Addr`]. Times (`10:30:00`), MAC addresses and `std::io`-style
//!   paths are not matched. Misses IPv6 zone ids (the `%eth0` is left) and IPv4 with leading
//!   zeros; a four-part version (`1.2.3.4`) is indistinguishable from an address and is
//!   redacted.
//! - **Custom** (`[NAME]`): any [`regex`] an admin adds, compiled with a size limit so a hostile
//!   pattern is refused rather than allowed to use huge memory. Empty matches are ignored.
//!
//! When matches overlap, the one starting first wins, then the longest, then the order secret,
//! card, email, phone, IP, custom. Redacting is idempotent for the built-in kinds: the output
//! holds no built-in match, so redacting it again changes nothing. (A placeholder can make its
//! neighbour look like PII, e.g. `12::` once the hex after it is gone; the text is then
//! scanned again, which real text almost never needs.)
//!
//! Speed: most texts hold no PII, so one vectorised pass over the bytes first counts what each
//! kind needs (`@`, digits, `:`/`=`, `.`) and skips every detector that cannot match; the
//! secret patterns share one regex whose literal prefixes let the regex engine skip text
//! quickly; nothing is allocated until something matches.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

/// A built-in kind of personal or secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    CreditCard,
    Secret,
    IpAddress,
}

impl PiiKind {
    pub const ALL: [PiiKind; 5] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Secret,
        PiiKind::IpAddress,
    ];

    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::CreditCard => "[CARD]",
            PiiKind::Secret => "[SECRET]",
            PiiKind::IpAddress => "[IP]",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Secret => "secret",
            PiiKind::IpAddress => "ip_address",
        }
    }

    pub fn parse(s: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A custom pattern an admin adds: name "employee_id" gives the placeholder "[EMPLOYEE_ID]".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomPattern {
    pub name: String,
    pub regex: String,
}

/// Why a custom pattern was refused; `index` is its position in the list given to
/// [`Redactor::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactError {
    pub index: usize,
    pub message: String,
}

impl fmt::Display for RedactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "custom pattern {}: {}", self.index, self.message)
    }
}

impl std::error::Error for RedactError {}

/// Compiled size cap for admin patterns: large enough for any sensible pattern, small enough
/// that `\w{1000}{1000}`-style patterns fail to compile instead of taking the process's memory.
const CUSTOM_SIZE_LIMIT: usize = 1 << 20;
const CUSTOM_NAME_MAX: usize = 40;

// Detectors, in tie-break priority order (a lower number wins when two matches start at the
// same byte and have the same length). Secret and IP each have two detectors.
const SRC_SECRET_TOKEN: usize = 0;
const SRC_SECRET_ASSIGN: usize = 1;
const SRC_CARD: usize = 2;
const SRC_EMAIL: usize = 3;
const SRC_PHONE: usize = 4;
const SRC_IPV4: usize = 5;
const SRC_IPV6: usize = 6;
const BUILTIN: usize = 7;

const fn source_kind(src: usize) -> PiiKind {
    match src {
        SRC_SECRET_TOKEN | SRC_SECRET_ASSIGN => PiiKind::Secret,
        SRC_CARD => PiiKind::CreditCard,
        SRC_EMAIL => PiiKind::Email,
        SRC_PHONE => PiiKind::Phone,
        _ => PiiKind::IpAddress,
    }
}

static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    // The trailing ASCII word boundary makes the engine back off to a shorter TLD rather than
    // cut a word in half ("bob@x.community" is one address, "bob@x.com2" is none).
    Regex::new(
        r"[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}(?-u:\b)",
    )
    .unwrap()
});

static PHONE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // International: digit totals and trimming are checked in code, the regex only finds a
        // plausible run of groups.
        r"\+[0-9]{1,3}(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}",
        // North American with separators; space-only groups are left out on purpose.
        r"|(?:1[ .\-])?(?:\([0-9]{3}\) ?[0-9]{3}[ .\-][0-9]{4}|[0-9]{3}-[0-9]{3}-[0-9]{4}|[0-9]{3}\.[0-9]{3}\.[0-9]{4})",
    ))
    .unwrap()
});

static IPV4_RE: LazyLock<Regex> = LazyLock::new(|| {
    // Longest octet alternatives first, so leftmost-first matching never stops at "25" of "255".
    Regex::new(
        r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}",
    )
    .unwrap()
});

static SECRET_RE: LazyLock<Regex> = LazyLock::new(|| {
    // One regex for every token shape: each branch starts with a literal, so the engine's
    // literal prefilter skips text without any of them at memchr-like speed. "Bearer" is spelled
    // out in three cases instead of (?i) because 64 case variants would defeat that prefilter.
    Regex::new(concat!(
        r"sk-[A-Za-z0-9_\-]{20,}",
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}",
        r"|gh[opsur]_[A-Za-z0-9]{20,}",
        r"|github_pat_[A-Za-z0-9_]{20,}",
        r"|xox[abprse]-[A-Za-z0-9\-]{10,}",
        r"|eyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*",
        r"|mw_[A-Za-z0-9_\-]{20,}",
        r"|(?:Bearer|bearer|BEARER)[ \t]+[A-Za-z0-9._~+/=\-]+",
    ))
    .unwrap()
});

/// Key suffixes whose assignment values are secrets; compared ASCII-case-insensitively against
/// the end of the key, so `OPENAI_API_KEY`, `clientSecret` and `x-api-key` all count.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secret_key",
    "secretkey",
    "secret-key",
    "api_key",
    "apikey",
    "api-key",
    "token",
    "private_key",
    "privatekey",
    "private-key",
    "access_key",
    "accesskey",
    "access-key",
    "credential",
    "credentials",
];

/// Assignment values that carry no secret; redacting them would only add noise.
const NON_SECRET_VALUES: &[&str] = &["null", "true", "false", "none", "undefined"];

#[derive(Debug, Clone)]
struct Custom {
    regex: Regex,
    placeholder: String,
}

/// A compiled set of kinds and custom patterns. Immutable after [`Redactor::new`], so it is
/// `Send + Sync` and meant to be shared behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Redactor {
    enabled: [bool; BUILTIN],
    custom: Vec<Custom>,
}

/// What one cheap pass over the bytes found; each detector needs some of it to possibly match.
#[derive(Debug, Clone, Copy)]
struct Features {
    at: bool,
    dot: bool,
    eq: bool,
    digits: u32,
    colons: u32,
}

impl Features {
    fn scan(b: &[u8]) -> Features {
        // Branch-free byte-wide accumulators over chunks short enough not to overflow a u8, so
        // the compiler vectorises the loop 16 bytes at a time even on baseline SSE2.
        let (mut digits, mut colons, mut flags) = (0u32, 0u32, 0u8);
        for chunk in b.chunks(255) {
            let (mut d, mut c, mut f) = (0u8, 0u8, 0u8);
            for &x in chunk {
                d += (x.wrapping_sub(b'0') < 10) as u8;
                c += (x == b':') as u8;
                f |= (x == b'@') as u8 | ((x == b'.') as u8) << 1 | ((x == b'=') as u8) << 2;
            }
            digits += u32::from(d);
            colons += u32::from(c);
            flags |= f;
        }
        Features {
            at: flags & 1 != 0,
            dot: flags & 2 != 0,
            eq: flags & 4 != 0,
            digits,
            colons,
        }
    }

    fn may_match(&self, src: usize, len: usize) -> bool {
        match src {
            // The shortest accepted token is "Bearer abc123" (13 bytes).
            SRC_SECRET_TOKEN => len >= 13,
            SRC_SECRET_ASSIGN => self.colons > 0 || self.eq,
            SRC_CARD => self.digits >= 13,
            SRC_EMAIL => self.at,
            SRC_PHONE => self.digits >= 8,
            SRC_IPV4 => self.digits >= 4 && self.dot,
            SRC_IPV6 => self.colons >= 2,
            _ => true,
        }
    }
}

type Span = (usize, usize);

/// The result of one scan that replaced something.
struct Pass {
    text: String,
    count: u32,
    /// Some placeholder touches a character that a pattern or boundary check could use.
    sticky: bool,
}

/// Re-scans after the first; each one only runs when a placeholder landed next to a
/// character that could join a new match, and in practice the first re-scan finds nothing.
const MAX_EXTRA_PASSES: usize = 3;

/// Characters next to which a placeholder cannot create a new match: no built-in pattern can
/// both use them and reach across them into the placeholder. The two-character context checks
/// (see [`continues_left`]) treat a placeholder's brackets like the digits they replaced, which
/// is what lets `,` be inert. The fuzz tests below guard these lists.
fn is_inert(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'"' | b'\'' | b'<' | b'>' | b'{' | b'}' | b'|' | b';' | b',' | b'=' | b')'
        )
}

/// Inert just before a match: "(" cannot end a match ("(415)" needs a digit after it).
fn inert_before(c: u8) -> bool {
    is_inert(c) || c == b'('
}

/// Inert just after a match: a "." there ends a sentence; what follows it is judged by
/// two-character context checks that see "]" like the character it replaced.
fn inert_after(c: u8) -> bool {
    is_inert(c) || c == b'.'
}

impl Redactor {
    pub fn new(kinds: &[PiiKind], custom: &[CustomPattern]) -> Result<Redactor, RedactError> {
        let mut enabled = [false; BUILTIN];
        for (src, on) in enabled.iter_mut().enumerate() {
            *on = kinds.contains(&source_kind(src));
        }
        let custom = custom
            .iter()
            .enumerate()
            .map(|(index, c)| compile_custom(c).map_err(|message| RedactError { index, message }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Redactor { enabled, custom })
    }

    /// No kinds and no custom patterns: redacting would never change anything.
    pub fn is_empty(&self) -> bool {
        !self.enabled.iter().any(|&e| e) && self.custom.is_empty()
    }

    /// Returns the text with every match replaced by its placeholder, and how many replacements
    /// were made. When nothing matches, returns `Cow::Borrowed` without allocating.
    pub fn redact<'a>(&self, text: &'a str) -> (Cow<'a, str>, u32) {
        let Some(mut done) = self.pass(text, true) else {
            return (Cow::Borrowed(text), 0);
        };
        // A placeholder changes what its neighbours see: in "12::192.168.a@b.cox" the "12::"
        // is no address while followed by more hex, but "12::[EMAIL]" would be. Passing again
        // until nothing changes makes redaction idempotent; it is only needed when a
        // placeholder touches a character a pattern can use, which real PII rarely does.
        let mut rounds = 0;
        while done.sticky && rounds < MAX_EXTRA_PASSES {
            // Built-ins only: an admin pattern could match the text inside a placeholder.
            let Some(next) = self.pass(&done.text, false) else {
                break;
            };
            done = Pass {
                count: done.count.saturating_add(next.count),
                ..next
            };
            rounds += 1;
        }
        (Cow::Owned(done.text), done.count)
    }

    /// One leftmost-longest scan; `None` when nothing matched.
    fn pass(&self, text: &str, with_custom: bool) -> Option<Pass> {
        let feat = Features::scan(text.as_bytes());
        let mut heads: [Option<Span>; BUILTIN] = [None; BUILTIN];
        let mut any = false;
        for (src, head) in heads.iter_mut().enumerate() {
            if self.enabled[src] && feat.may_match(src, text.len()) {
                *head = self.find_builtin(src, text, 0);
                any |= head.is_some();
            }
        }
        let custom = if with_custom {
            self.custom.as_slice()
        } else {
            &[]
        };
        let mut custom_heads: Vec<Option<Span>> = Vec::new();
        if !custom.is_empty() {
            custom_heads = custom
                .iter()
                .map(|c| find_custom(&c.regex, text, 0))
                .collect();
            any |= custom_heads.iter().any(Option::is_some);
        }
        if !any {
            return None;
        }

        // Each detector keeps its next match; the earliest (then longest, then highest
        // priority) is taken, and detectors whose next match overlaps it search again from its
        // end. This equals one leftmost-longest scan over all patterns, without ever letting a
        // rejected overlap hide a later match of the same detector.
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len() + 32);
        let mut last = 0;
        let mut count: u32 = 0;
        let mut sticky = false;
        loop {
            let mut best: Option<(usize, usize, usize)> = None;
            let all = heads.iter().chain(custom_heads.iter()).enumerate();
            for (src, head) in all {
                if let Some((s, e)) = *head {
                    let better = match best {
                        None => true,
                        Some((bs, be, _)) => s < bs || (s == bs && e > be),
                    };
                    if better {
                        best = Some((s, e, src));
                    }
                }
            }
            let Some((s, e, src)) = best else { break };
            out.push_str(&text[last..s]);
            out.push_str(self.placeholder(src));
            sticky |= !before(b, s).is_none_or(inert_before)
                || !b.get(e).copied().is_none_or(inert_after);
            last = e;
            count = count.saturating_add(1);
            for (src, head) in heads.iter_mut().enumerate() {
                if head.is_some_and(|(hs, _)| hs < e) {
                    *head = self.find_builtin(src, text, e);
                }
            }
            for (c, head) in custom.iter().zip(custom_heads.iter_mut()) {
                if head.is_some_and(|(hs, _)| hs < e) {
                    *head = find_custom(&c.regex, text, e);
                }
            }
        }
        out.push_str(&text[last..]);
        Some(Pass {
            text: out,
            count,
            sticky,
        })
    }

    fn placeholder(&self, src: usize) -> &str {
        match src.checked_sub(BUILTIN) {
            None => source_kind(src).placeholder(),
            Some(i) => self
                .custom
                .get(i)
                .map_or("[REDACTED]", |c| c.placeholder.as_str()),
        }
    }

    /// The first match of one built-in detector starting at or after `from` (a char boundary).
    fn find_builtin(&self, src: usize, text: &str, from: usize) -> Option<Span> {
        match src {
            SRC_SECRET_TOKEN => find_validated(&SECRET_RE, text, from, check_secret_token),
            SRC_SECRET_ASSIGN => find_assignment(text.as_bytes(), from),
            SRC_CARD => find_card(text.as_bytes(), from),
            SRC_EMAIL => EMAIL_RE.find_at(text, from).map(|m| (m.start(), m.end())),
            SRC_PHONE => find_validated(&PHONE_RE, text, from, check_phone),
            SRC_IPV4 => find_validated(&IPV4_RE, text, from, check_ipv4),
            SRC_IPV6 => find_ipv6(text.as_bytes(), from),
            _ => None,
        }
    }
}

fn compile_custom(c: &CustomPattern) -> Result<Custom, String> {
    let name_ok = !c.name.is_empty()
        && c.name.len() <= CUSTOM_NAME_MAX
        && c.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !name_ok {
        return Err(format!(
            "name {:?} must be 1-{CUSTOM_NAME_MAX} characters of A-Z, a-z, 0-9 and _",
            c.name
        ));
    }
    if c.regex.is_empty() {
        return Err("the pattern is empty".to_string());
    }
    let regex = RegexBuilder::new(&c.regex)
        .size_limit(CUSTOM_SIZE_LIMIT)
        .dfa_size_limit(CUSTOM_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid pattern: {e}"))?;
    Ok(Custom {
        regex,
        placeholder: format!("[{}]", c.name.to_ascii_uppercase()),
    })
}

fn find_custom(re: &Regex, text: &str, mut from: usize) -> Option<Span> {
    // An empty match would be replaced by a placeholder between every character; skip it.
    while from <= text.len() {
        let m = re.find_at(text, from)?;
        if m.start() < m.end() {
            return Some((m.start(), m.end()));
        }
        from = next_char(text, m.start());
    }
    None
}

/// Runs `re` from `from`, letting `check` accept (possibly narrowing) or reject each match; a
/// rejected match is retried one character later because a valid match may start inside it.
fn find_validated(
    re: &Regex,
    text: &str,
    mut from: usize,
    check: fn(&[u8], usize, usize) -> Option<Span>,
) -> Option<Span> {
    let b = text.as_bytes();
    while from < text.len() {
        let m = re.find_at(text, from)?;
        if let Some(span) = check(b, m.start(), m.end()) {
            return Some(span);
        }
        from = next_char(text, m.start());
    }
    None
}

/// The first byte at or after `from` that satisfies `pred`. Tests 16 bytes at a time with a
/// branch-free fold, which the compiler vectorises; `Iterator::position` goes byte by byte and
/// was the hottest loop in this module on number-heavy text.
#[inline(always)]
fn find_byte(b: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> Option<usize> {
    let rest = b.get(from..)?;
    let mut chunks = rest.chunks_exact(16);
    let mut base = from;
    for chunk in chunks.by_ref() {
        if chunk.iter().fold(false, |hit, &c| hit | pred(c)) {
            return chunk.iter().position(|&c| pred(c)).map(|i| base + i);
        }
        base += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| pred(c))
        .map(|i| base + i)
}

fn next_char(text: &str, i: usize) -> usize {
    i + text
        .get(i..)
        .and_then(|t| t.chars().next())
        .map_or(1, char::len_utf8)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn before(b: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).map(|j| b[j])
}

/// Whether the number starting at `s` continues something to its left: a word (`v1.2`, `id42`),
/// or a dotted / comma-grouped number (`0.4111…`, `1.192.168.0.1`).
fn continues_left(b: &[u8], s: usize) -> bool {
    match before(b, s) {
        None => false,
        Some(p) if is_word(p) => true,
        // A placeholder's "]" stands for what it replaced, so a second pass judges alike.
        Some(b'.') | Some(b',') => {
            before(b, s - 1).is_some_and(|q| q.is_ascii_alphanumeric() || q == b']')
        }
        Some(_) => false,
    }
}

/// Whether the number ending at `e` continues to its right: into a word or a decimal part.
fn continues_right(b: &[u8], e: usize) -> bool {
    match b.get(e) {
        None => false,
        Some(&n) if is_word(n) => true,
        Some(b'.') | Some(b',') => b
            .get(e + 1)
            .is_some_and(|&q| q.is_ascii_digit() || q == b'['),
        Some(_) => false,
    }
}

fn check_secret_token(b: &[u8], s: usize, e: usize) -> Option<Span> {
    if before(b, s).is_some_and(is_word) {
        return None;
    }
    match b[s] {
        b'B' | b'b' => {
            // Keep "Bearer" and the whitespace: only the credential is secret.
            let mut ts = s + "bearer".len();
            while ts < e && (b[ts] == b' ' || b[ts] == b'\t') {
                ts += 1;
            }
            let mut te = e;
            while te > ts && b[te - 1] == b'.' {
                te -= 1;
            }
            let token = &b[ts..te];
            let symbolic = token.iter().any(|c| !c.is_ascii_alphabetic());
            (token.len() >= 16 || (token.len() >= 6 && symbolic)).then_some((ts, te))
        }
        // The AWS id has a fixed length: a longer word is something else.
        b'A' => (!b.get(e).is_some_and(u8::is_ascii_alphanumeric)).then_some((s, e)),
        _ => Some((s, e)),
    }
}

fn check_phone(b: &[u8], s: usize, e: usize) -> Option<Span> {
    if b[s] != b'+' {
        let prev_ok = match before(b, s) {
            None => true,
            Some(p) => !(is_word(p) || matches!(p, b'.' | b'-' | b'+' | b'/')),
        };
        let next_ok = match b.get(e) {
            None => true,
            Some(&n) if is_word(n) => false,
            Some(b'.') | Some(b'-') => !b.get(e + 1).is_some_and(u8::is_ascii_digit),
            Some(_) => true,
        };
        return (prev_ok && next_ok).then_some((s, e));
    }
    if before(b, s).is_some_and(|p| is_word(p) || p == b'+') {
        return None;
    }
    // Digit runs inside the match: (end of run, digits so far). At most 6 groups after the
    // country code, and parentheses add none, so 8 slots suffice.
    let mut runs = [(0usize, 0u32); 8];
    let mut n = 0;
    let mut digits = 0u32;
    let mut i = s + 1;
    while i < e {
        if b[i].is_ascii_digit() {
            while i < e && b[i].is_ascii_digit() {
                digits += 1;
                i += 1;
            }
            if n < runs.len() {
                runs[n] = (i, digits);
                n += 1;
            }
        } else {
            i += 1;
        }
    }
    let runs = &runs[..n];
    // Cut short on purpose, a number ends at a separator; at the regex's own end it must not run
    // on into a word, a longer digit run (the regex's repetition limit) or a decimal.
    let ends_cleanly = |end: usize| end < e || !continues_right(b, e);
    let end = if runs.len() == 1 {
        (runs[0].1 >= 10 && runs[0].1 <= 15).then_some(runs[0].0)
    } else if runs.first().is_some_and(|r| r.1 == 1 && b[s + 1] == b'1') {
        // NANP: exactly 11 digits with the country code; anything after is not the number.
        runs.iter().find(|r| r.1 == 11).map(|r| r.0)
    } else {
        // The longest plausible number: a trailing group that runs into a word is dropped
        // rather than the whole number.
        runs.iter()
            .rev()
            .filter(|r| r.1 <= 15 && ends_cleanly(r.0))
            .map(|r| (r.0, r.1))
            .next()
            .filter(|r| r.1 >= 8)
            .map(|r| r.0)
    }?;
    ends_cleanly(end).then_some((s, end))
}

fn check_ipv4(b: &[u8], s: usize, e: usize) -> Option<Span> {
    (!continues_left(b, s) && !continues_right(b, e)).then_some((s, e))
}

fn find_card(b: &[u8], from: usize) -> Option<Span> {
    let mut i = from;
    while i < b.len() {
        let s = find_byte(b, i, |c| c.is_ascii_digit())?;
        let mut run_end = s;
        while run_end < b.len() && b[run_end].is_ascii_digit() {
            run_end += 1;
        }
        // A run that began before `from` is the tail of something already handled.
        let inside_run = before(b, s).is_some_and(|p| p.is_ascii_digit());
        let start_ok = !inside_run && !continues_left(b, s) && before(b, s) != Some(b'+');
        if start_ok && let Some(e) = card_at(b, s) {
            return Some((s, e));
        }
        i = run_end;
    }
    None
}

/// The longest card number starting at `s`, if any.
fn card_at(b: &[u8], s: usize) -> Option<usize> {
    // Groups: (start, end). A card has at most 6 groups (4 + 5 × 3 = 19 digits).
    let mut groups = [(0usize, 0usize); 7];
    let mut n = 0;
    let mut sep = 0u8;
    let mut i = s;
    let mut total = 0;
    loop {
        let gs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        groups[n] = (gs, i);
        n += 1;
        total += i - gs;
        if n == groups.len() || total > 19 {
            break;
        }
        match (b.get(i), b.get(i + 1)) {
            (Some(&c @ (b' ' | b'-')), Some(d)) if d.is_ascii_digit() && (sep == 0 || sep == c) => {
                sep = c;
                i += 1;
            }
            _ => break,
        }
    }
    let groups = &groups[..n];
    let first_len = groups[0].1 - groups[0].0;
    for last in (0..n).rev() {
        let digits: usize = groups[..=last].iter().map(|g| g.1 - g.0).sum();
        if !(13..=19).contains(&digits) {
            continue;
        }
        let shaped = last == 0
            || (first_len == 4
                && groups[1..=last]
                    .iter()
                    .all(|g| (3..=6).contains(&(g.1 - g.0))));
        let end = groups[last].1;
        // A following group is fine (we stopped early on purpose); a letter or decimal is not.
        let followed_by_group = last + 1 < n;
        if shaped
            && (followed_by_group || !continues_right(b, end))
            && matches!(b[s], b'2'..=b'6')
            && luhn(&b[s..end])
        {
            return Some(end);
        }
    }
    None
}

/// Luhn checksum over the digits of `s`, ignoring separators.
fn luhn(s: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &c in s.iter().rev() {
        if !c.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(c - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

fn is_v6_byte(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

fn find_ipv6(b: &[u8], from: usize) -> Option<Span> {
    let mut i = from;
    while i < b.len() {
        let colon = find_byte(b, i, |c| c == b':')?;
        let mut s = colon;
        while s > 0 && is_v6_byte(b[s - 1]) {
            s -= 1;
        }
        let mut e = colon + 1;
        while e < b.len() && is_v6_byte(b[e]) {
            e += 1;
        }
        i = e;
        // `from` is 0 or the end of a match about to become a placeholder, whose "]" cannot
        // join an address: the part of the run before it is not ours to judge.
        s = s.max(from);
        // Trim punctuation the run picked up from the sentence around it ("at fe80::1." or
        // "host:2001:db8::1"), but never half of a "::". Dots belong only to an embedded IPv4
        // tail; before the first colon they join a word ("cafe.fe80::1"), and the address starts
        // after the last of them. Repeat until stable: each cut can expose another.
        while e > s && b[e - 1] == b'.' {
            e -= 1;
        }
        if e - s >= 2 && b[e - 1] == b':' && b[e - 2] != b':' {
            e -= 1;
        }
        loop {
            let start = s;
            while s < e && b[s] == b'.' {
                s += 1;
            }
            if e - s >= 2 && b[s] == b':' && b[s + 1] != b':' {
                s += 1;
            }
            if let Some(first_colon) = b[s..e].iter().position(|&c| c == b':')
                && let Some(dot) = b[s..s + first_colon].iter().rposition(|&c| c == b'.')
            {
                s += dot + 1;
            }
            if s == start {
                break;
            }
        }
        let cand = &b[s..e];
        let colons = cand.iter().filter(|&&c| c == b':').count();
        if colons < 2
            || cand.len() > 45
            || !cand.iter().any(u8::is_ascii_hexdigit)
            || (!(from > 0 && s == from) && before(b, s).is_some_and(is_word))
            || b.get(e).copied().is_some_and(is_word)
        {
            continue;
        }
        let parsed = std::str::from_utf8(cand)
            .ok()
            .and_then(|t| t.parse::<Ipv6Addr>().ok());
        if parsed.is_some() {
            return Some((s, e));
        }
    }
    None
}

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

fn is_secret_key(key: &[u8]) -> bool {
    SECRET_KEYS.iter().any(|k| {
        key.len() >= k.len() && key[key.len() - k.len()..].eq_ignore_ascii_case(k.as_bytes())
    })
}

fn ends_bare_value(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'"' | b'\'' | b',' | b';' | b'&' | b'}' | b'[' | b']' | b')' | b'<' | b'>' | b'\\'
        )
}

fn bare_end(b: &[u8], from: usize) -> usize {
    from + b[from..]
        .iter()
        .position(|&c| ends_bare_value(c))
        .unwrap_or(b.len() - from)
}

/// The value of the next `secret_key: value` / `secret_key=value` assignment at or after `from`.
fn find_assignment(b: &[u8], from: usize) -> Option<Span> {
    let mut i = from;
    while i < b.len() {
        let op = find_byte(b, i, |c| c == b':' || c == b'=')?;
        i = op + 1;
        let next = b.get(op + 1).copied();
        let prev = before(b, op);
        let mut k = op;
        if b[op] == b':' {
            // "a::b" paths and "scheme://" URLs are not assignments.
            if matches!(next, Some(b':') | Some(b'/')) || prev == Some(b':') {
                continue;
            }
            // Go's ":=" is one: step past it.
            if next == Some(b'=') {
                i = op + 2;
            }
        } else {
            // Comparisons ("==", "!=", "<=", ">=") are not assignments; ":=" is.
            if next == Some(b'=') || matches!(prev, Some(b'=' | b'!' | b'<' | b'>')) {
                continue;
            }
            if prev == Some(b':') {
                k -= 1;
            }
        }
        while k > 0 && (b[k - 1] == b' ' || b[k - 1] == b'\t') {
            k -= 1;
        }
        if k > 0 && (b[k - 1] == b'"' || b[k - 1] == b'\'') {
            k -= 1;
            // JSON text escaped inside another string: \"api_key\": \"…\"
            if k > 0 && b[k - 1] == b'\\' {
                k -= 1;
            }
        }
        // Only the key's ending decides, so looking back a bounded distance keeps the cost
        // linear without making the answer depend on how long the key is.
        let key_end = k;
        let lookback_limit = key_end.saturating_sub(32);
        while k > lookback_limit && is_key_byte(b[k - 1]) {
            k -= 1;
        }
        if key_end == k || !is_secret_key(&b[k..key_end]) {
            continue;
        }
        let mut v = i;
        while v < b.len() && (b[v] == b' ' || b[v] == b'\t') {
            v += 1;
        }
        let (vs, ve) = match b.get(v) {
            None => continue,
            Some(&q @ (b'"' | b'\'')) => {
                let vs = v + 1;
                (
                    vs,
                    closing_quote(b, vs, q).unwrap_or_else(|| bare_end(b, vs)),
                )
            }
            Some(b'\\') if b.get(v + 1) == Some(&b'"') => (v + 2, bare_end(b, v + 2)),
            Some(_) => (v, bare_end(b, v)),
        };
        if vs >= ve || matches!(b[vs], b'[' | b'{') {
            continue;
        }
        let value = &b[vs..ve];
        if NON_SECRET_VALUES
            .iter()
            .any(|n| value.eq_ignore_ascii_case(n.as_bytes()))
        {
            continue;
        }
        return Some((vs, ve));
    }
    None
}

/// The closing quote of a quoted value on the same line, honouring backslash escapes.
fn closing_quote(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut j = from;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'\n' | b'\r' => return None,
            c if c == q => return Some(j),
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Redactor {
        Redactor::new(&PiiKind::ALL, &[]).unwrap()
    }

    fn only(kind: PiiKind) -> Redactor {
        Redactor::new(&[kind], &[]).unwrap()
    }

    fn red(r: &Redactor, s: &str) -> String {
        r.redact(s).0.into_owned()
    }

    fn unchanged(r: &Redactor, s: &str) {
        let (out, n) = r.redact(s);
        assert_eq!(n, 0, "unexpected match in {s:?}: {out:?}");
        assert_eq!(out, s);
    }

    #[test]
    fn kind_names_round_trip() {
        for k in PiiKind::ALL {
            assert_eq!(PiiKind::parse(k.as_str()), Some(k));
            assert!(k.placeholder().starts_with('[') && k.placeholder().ends_with(']'));
        }
        assert_eq!(PiiKind::parse("dna"), None);
        assert_eq!(PiiKind::CreditCard.as_str(), "credit_card");
        assert_eq!(PiiKind::IpAddress.placeholder(), "[IP]");
    }

    #[test]
    fn redactor_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Redactor>();
        assert_send_sync::<std::sync::Arc<Redactor>>();
    }

    #[test]
    fn email_positive() {
        let r = only(PiiKind::Email);
        assert_eq!(
            red(&r, "mail alice.smith+test@mail.example.co.uk now"),
            "mail [EMAIL] now"
        );
        assert_eq!(
            red(&r, "<bob@example.com>, carol_99@sub.example.org."),
            "<[EMAIL]>, [EMAIL]."
        );
        assert_eq!(red(&r, "mailto:x.y-z@example-mail.io"), "mailto:[EMAIL]");
    }

    #[test]
    fn email_negative() {
        let r = only(PiiKind::Email);
        for s in [
            "@handle on twitter",
            "user@localhost",
            "a @ b.com",
            "git@",
            "x@y.c",
            "bob@x.com2",
        ] {
            unchanged(&r, s);
        }
    }

    #[test]
    fn phone_positive() {
        let r = only(PiiKind::Phone);
        let cases = [
            ("call +1 415-555-0132 now", "call [PHONE] now"),
            ("call +1 (415) 555-0132", "call [PHONE]"),
            ("(415) 555-0132", "[PHONE]"),
            ("tel: 415.555.0132.", "tel: [PHONE]."),
            ("415-555-0132", "[PHONE]"),
            ("1-800-555-0199", "[PHONE]"),
            (
                "uk +44 20 7946 0958, de +49 30 123456789",
                "uk [PHONE], de [PHONE]",
            ),
            ("+14155550132", "[PHONE]"),
            ("+33 1 23 45 67 89", "[PHONE]"),
            // A +1 number is 11 digits; the year after it is not part of it.
            ("+1 415 555 0132 2026", "[PHONE] 2026"),
        ];
        for (input, want) in cases {
            assert_eq!(red(&r, input), want, "{input}");
        }
    }

    #[test]
    fn phone_negative() {
        let r = only(PiiKind::Phone);
        for s in [
            "in 2026 we had 12345 users",
            "latency 1234.5 ms, p99 98765.4 ms",
            "at 2026-11-22T10:00:00Z",
            "on 2026-11-22 and 2026-11-23",
            "id 550e8400-e29b-41d4-a716-446655440000",
            "version 1.2.3 and 10.20.30",
            "tokens: 4155550132",
            "sizes 128 256 1024",
            "+12345 bytes",
            "ratio +1.5",
            "ip 192.168.100.200",
            "x415-555-0132",
            "415-555-01329",
        ] {
            unchanged(&r, s);
        }
    }

    #[test]
    fn luhn_checksum() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(luhn(b"4111 1111 1111 1111"));
        assert!(luhn(b"378282246310005"));
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
    }

    #[test]
    fn card_positive() {
        let r = only(PiiKind::CreditCard);
        let cases = [
            ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
            ("4111-1111-1111-1111", "[CARD]"),
            ("4111111111111111", "[CARD]"),
            ("amex 3782 822463 10005.", "amex [CARD]."),
            (
                "mc 5555555555554444, visa13 4222222222222",
                "mc [CARD], visa13 [CARD]",
            ),
            ("4111 1111 1111 1111 2026", "[CARD] 2026"),
            ("order 12 4111 1111 1111 1111", "order 12 [CARD]"),
        ];
        for (input, want) in cases {
            assert_eq!(red(&r, input), want, "{input}");
        }
    }

    #[test]
    fn card_negative() {
        let r = only(PiiKind::CreditCard);
        for s in [
            "4111 1111 1111 1112",
            "4111111111111112",
            "4111  1111 1111 1111",
            "ts 1700000000000",
            "0.4111111111111111",
            "id a4111111111111111",
            "41111111111111111111111",
            "4111-1111 1111-1111",
            "+4111111111111111",
        ] {
            unchanged(&r, s);
        }
    }

    #[test]
    fn secret_tokens() {
        let r = only(PiiKind::Secret);
        let cases = [
            (
                "Authorization: Bearer abc123.def-456_ghi",
                "Authorization: Bearer [SECRET]",
            ),
            (
                "authorization: bearer abc123",
                "authorization: bearer [SECRET]",
            ),
            (
                "key sk-abcdefghijklmnopqrstuvwxyz0123 end",
                "key [SECRET] end",
            ),
            ("sk-proj-AbCdEfGhIjKlMnOpQrStUvWx_yz-0123456789", "[SECRET]"),
            ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345", "[SECRET]"),
            ("aws AKIAIOSFODNN7EXAMPLE", "aws [SECRET]"),
            ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [SECRET]"),
            (
                "github_pat_11ABCDEFG0abcdefghij_klmnopqrstuvwxyz",
                "[SECRET]",
            ),
            ("slack xoxb-123456789012-abcdefABCDEF", "slack [SECRET]"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt [SECRET]",
            ),
            ("key mw_AbCdEfGhIjKlMnOpQrStUv01", "key [SECRET]"),
        ];
        for (input, want) in cases {
            assert_eq!(red(&r, input), want, "{input}");
        }
    }

    #[test]
    fn secret_assignments() {
        let r = only(PiiKind::Secret);
        let cases = [
            ("GET /v1?api_key=abc123&x=1", "GET /v1?api_key=[SECRET]&x=1"),
            (
                r#"{"apiKey": "s3cr3t value", "n": 1}"#,
                r#"{"apiKey": "[SECRET]", "n": 1}"#,
            ),
            ("password: hunter2", "password: [SECRET]"),
            ("DB_PASSWORD='p@ss w0rd'", "DB_PASSWORD='[SECRET]'"),
            ("OPENAI_API_KEY=xyz; next", "OPENAI_API_KEY=[SECRET]; next"),
            ("clientSecret := abc", "clientSecret := [SECRET]"),
            (
                r#"{\"access_token\": \"abc.def\"}"#,
                r#"{\"access_token\": \"[SECRET]\"}"#,
            ),
            ("x-api-key: Zm9vYmFy", "x-api-key: [SECRET]"),
        ];
        for (input, want) in cases {
            assert_eq!(red(&r, input), want, "{input}");
        }
    }

    #[test]
    fn secret_negative() {
        let r = only(PiiKind::Secret);
        for s in [
            "use a Bearer token to authenticate",
            "The bearer authentication scheme",
            "max_tokens: 256, prompt_tokens=12",
            r#"{"password": null, "token": true}"#,
            "if password == other { }",
            "pad_token: [PAD], eos_token = </s>",
            "risk-assessment-framework-v2-final-draft",
            "std::token::Token",
            "AKIAIOSFODNN7EXAMPLEXX",
            "task-abcdefghijklmnopqrstuvwxyz",
            "mw_short",
        ] {
            unchanged(&r, s);
        }
    }

    #[test]
    fn ip_positive() {
        let r = only(PiiKind::IpAddress);
        let cases = [
            ("from 192.168.1.10 to 10.0.0.255.", "from [IP] to [IP]."),
            ("0.0.0.0:8080", "[IP]:8080"),
            (
                "v6 2001:db8::1 and fe80::1ff:fe23:4567:890a",
                "v6 [IP] and [IP]",
            ),
            ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "full [IP]"),
            ("[::1]:443", "[[IP]]:443"),
            ("mapped ::ffff:192.0.2.128 ok", "mapped [IP] ok"),
            ("host:2001:db8::2", "host:[IP]"),
        ];
        for (input, want) in cases {
            assert_eq!(red(&r, input), want, "{input}");
        }
    }

    #[test]
    fn ip_negative() {
        let r = only(PiiKind::IpAddress);
        for s in [
            "999.1.1.1",
            "version 1.2.3",
            "1.2.3.4.5",
            "256.1.1.1 and 1.1.1.256",
            "at 10:30:00 and 2026-11-22T10:00:00Z",
            "mac 00:1A:2B:3C:4D:5E",
            "std::io::Error and Foo::bar",
            "v1.2.3.4",
            "Note: see :: here",
        ] {
            unchanged(&r, s);
        }
    }

    #[test]
    fn custom_patterns() {
        let c = [
            CustomPattern {
                name: "employee_id".into(),
                regex: r"EMP-\d{6}".into(),
            },
            CustomPattern {
                name: "Ticket".into(),
                regex: r"TCK-\d+".into(),
            },
        ];
        let r = Redactor::new(&[], &c).unwrap();
        assert!(!r.is_empty());
        let (out, n) = r.redact("EMP-123456 filed TCK-9 and TCK-10");
        assert_eq!(out, "[EMPLOYEE_ID] filed [TICKET] and [TICKET]");
        assert_eq!(n, 3);
        // A pattern that can match the empty string only replaces non-empty matches.
        let r = Redactor::new(
            &[],
            &[CustomPattern {
                name: "a".into(),
                regex: "x*".into(),
            }],
        )
        .unwrap();
        assert_eq!(r.redact("abxxc"), (Cow::Borrowed("ab[A]c"), 1));
    }

    #[test]
    fn custom_pattern_errors() {
        let good = CustomPattern {
            name: "ok".into(),
            regex: "a".into(),
        };
        let err = Redactor::new(
            &[],
            &[
                good.clone(),
                CustomPattern {
                    name: "x".into(),
                    regex: "(".into(),
                },
            ],
        )
        .err()
        .unwrap();
        assert_eq!(err.index, 1);
        assert!(err.message.contains("invalid pattern"), "{}", err.message);

        for name in ["", "has space", "ünï", "a-b", &"x".repeat(41)] {
            let err = Redactor::new(
                &[],
                &[CustomPattern {
                    name: name.into(),
                    regex: "a".into(),
                }],
            )
            .err()
            .unwrap();
            assert_eq!(err.index, 0);
            assert!(err.message.contains("must be 1-40"), "{}", err.message);
        }
        assert!(
            Redactor::new(
                &[],
                &[CustomPattern {
                    name: "x".repeat(40),
                    regex: "a".into()
                }]
            )
            .is_ok()
        );

        // Too big for the size limit: refused, not compiled.
        let hostile = CustomPattern {
            name: "big".into(),
            regex: r"\w{1000}{1000}".into(),
        };
        let err = Redactor::new(&[PiiKind::Email], &[good, hostile])
            .err()
            .unwrap();
        assert_eq!(err.index, 1);
    }

    #[test]
    fn empty_redactor() {
        let r = Redactor::new(&[], &[]).unwrap();
        assert!(r.is_empty());
        unchanged(&r, "alice@example.com 4111 1111 1111 1111");
        assert!(!all().is_empty());
    }

    #[test]
    fn overlapping_matches() {
        let r = all();
        let (out, n) =
            r.redact("Authorization: Bearer sk-abcdefghijklmnopqrstuvwx01 user=alice@example.com");
        assert_eq!(out, "Authorization: Bearer [SECRET] user=[EMAIL]");
        assert_eq!(n, 2);
        // Same span found by two detectors: counted once, the higher priority wins.
        assert_eq!(
            r.redact("password=bob@example.com"),
            (Cow::Borrowed("password=[SECRET]"), 1)
        );
        // The earlier-starting match wins and the other detector searches again after it.
        assert_eq!(
            red(&r, "bob.415-555-0132@example.com 415-555-0132"),
            "[EMAIL] [PHONE]"
        );
        // A phone number inside an email's local part belongs to the email.
        assert_eq!(red(&r, "4155550132@example.com"), "[EMAIL]");
        // Custom patterns lose ties to built-ins but win when they start first.
        let c = [CustomPattern {
            name: "host".into(),
            regex: r"host-[0-9.]+".into(),
        }];
        let r = Redactor::new(&PiiKind::ALL, &c).unwrap();
        assert_eq!(red(&r, "host-10.0.0.1 and 10.0.0.2"), "[HOST] and [IP]");
    }

    #[test]
    fn multibyte_text_passes_through() {
        let r = all();
        let s = "東京のお客様 alice@example.jp に連絡、Größe: 4111 1111 1111 1111 🎉 ok";
        let (out, n) = r.redact(s);
        assert_eq!(out, "東京のお客様 [EMAIL] に連絡、Größe: [CARD] 🎉 ok");
        assert_eq!(n, 2);
        unchanged(&r, "Grüße aus München! 日本語のテキスト 😀👍🏽 ½ ① ²³");
        assert_eq!(
            red(&r, "Tel. für München:+49 30 123456789ü"),
            "Tel. für München:[PHONE]ü"
        );
        assert_eq!(red(&r, "IP：192.168.0.1です"), "IP：[IP]です");
    }

    #[test]
    fn borrowed_when_nothing_matches() {
        let r = all();
        for s in [
            "",
            "Summarize the following conversation in three bullet points.",
            "2026-11-22 took 1234.5 ms",
        ] {
            let (out, n) = r.redact(s);
            assert!(matches!(out, Cow::Borrowed(_)), "{s:?}");
            assert_eq!(n, 0);
        }
        let (out, _) = r.redact("mail bob@example.com");
        assert!(matches!(out, Cow::Owned(_)));
        let c = [CustomPattern {
            name: "ticket".into(),
            regex: r"TCK-\d+".into(),
        }];
        let r = Redactor::new(&PiiKind::ALL, &c).unwrap();
        assert!(matches!(r.redact("no tickets here").0, Cow::Borrowed(_)));
    }

    #[test]
    fn counts_every_replacement() {
        let r = all();
        let s = "a@b.io c@d.io 10.0.0.1 +1 415-555-0132 4111111111111111 AKIAIOSFODNN7EXAMPLE password=x";
        let (out, n) = r.redact(s);
        assert_eq!(
            out,
            "[EMAIL] [EMAIL] [IP] [PHONE] [CARD] [SECRET] password=[SECRET]"
        );
        assert_eq!(n, 7);
        // Only the enabled kinds count.
        assert_eq!(only(PiiKind::Email).redact(s).1, 2);
    }

    #[test]
    fn placeholders_do_not_create_new_matches() {
        // Inputs where a placeholder changed what a neighbour looked like (found by fuzzing).
        let r = all();
        for s in [
            "12::192.168.a@b.cox&",
            "+1415-555-0132 12bob@x.com",
            "&Bearer abc123'10.0.0.1.:.fe80::1",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sigpasswordexample.comapi_key:.fe80::11.1",
            "10.0.0.1,415-555-0132",
            "bob@x.cafe.fe80::1",
            "fe80::1.bob@x.com",
        ] {
            assert_idempotent(&r, s);
        }
    }

    /// Tiny xorshift64* so the fuzz test needs no dependency and is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn assert_idempotent(r: &Redactor, input: &str) {
        let (once, _) = r.redact(input);
        let (twice, n) = r.redact(&once);
        assert_eq!(n, 0, "second pass matched in {once:?} (input {input:?})");
        assert_eq!(twice, once, "input {input:?}");
    }

    #[test]
    fn fuzz_random_bytes_never_panic_and_are_idempotent() {
        let r = all();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3000 {
            let len = rng.below(120);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            assert_idempotent(&r, &text);
        }
    }

    #[test]
    fn fuzz_pii_fragments_never_panic_and_are_idempotent() {
        // Random bytes rarely form PII; gluing fragments of it together with separators and
        // multibyte text exercises the boundary and overlap logic far harder.
        const PARTS: &[&str] = &[
            "4111",
            "1111",
            "0132",
            "415",
            "555",
            "+1",
            "+44",
            "(415)",
            "192.168.",
            "1.1",
            "255",
            "10.0.0.1",
            "::",
            ":",
            "fe80",
            "db8",
            "2001",
            "@",
            "a@b.co",
            "example.com",
            ".",
            "-",
            " ",
            "  ",
            "(",
            ")",
            "/",
            "%",
            "+",
            "_",
            "=",
            ": ",
            "\"",
            "'",
            "\\",
            "[",
            "]",
            "{",
            "}",
            "<",
            ">",
            "|",
            ";",
            "sk-",
            "AKIA",
            "IOSFODNN7EXAMPLE",
            "ghp_",
            "xoxb-",
            "eyJ",
            "mw_",
            "Bearer ",
            "abcdefghijklmnopqrstuvwxyz",
            "0123456789",
            "4111111111111111",
            "password",
            "api_key",
            "token",
            "null",
            "ü",
            "東京",
            "🎉",
            "\n",
            "\t",
            ",",
            "&",
            "x",
            "A",
            "f",
            "1",
            "2",
            "9",
            "0",
            "12",
            "1-",
            "T10:00:00Z",
            "[EMAIL]",
            "[SECRET]",
            "[IP]",
            "415-555-0132",
            "+1 415-555-0132",
            "2001:db8::1",
            "cafe",
            ".fe80::1",
            "a.b",
            "x.",
            "(415) 555-0132",
            ").",
            "-0132",
            "ab12",
            "AKIAIOSFODNN7EXAMPLE",
            "bob@x.com",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "sk-abcdefghijklmnopqrstuvwxyz",
            "Bearer abc123",
        ];
        let r = all();
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..5000 {
            let n = rng.below(20);
            let text: String = (0..n).map(|_| PARTS[rng.below(PARTS.len())]).collect();
            assert_idempotent(&r, &text);
        }
    }
}
