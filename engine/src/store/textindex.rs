//! The full-text index of logs stored in blocks (`store::blocks`): one Bloom filter of words
//! per block, written with the block in the ingest commit.
//!
//! FTS5 cost about 12 µs of CPU per log on this project's 2-core host (a third of all ingest
//! CPU; `docs/benchmarks.md`). A filter of the block's words costs the words' hashes, taken by
//! the HTTP workers while they build each row (`hashes`), and a few bit sets per word in the
//! commit. A search tests each block's filter for every word asked for; a block that cannot
//! hold them all is skipped without being read, and the logs of a block that may are checked
//! word by word (`Phrases::matches`), so the filter's false positives (about 1 %) cost
//! reading a block and never a wrong answer. This is how ClickHouse's `tokenbf_v1` skip index
//! and Loki's chunk scans answer text queries without an inverted index.
//!
//! Words are what `for_each_word` cuts, as FTS5's `unicode61 remove_diacritics 2` tokenizer
//! does for the rows it still indexes (logs stored one per row, `store::fulltext`): runs of
//! letters, digits and combining marks, lowercased, with the diacritics of Latin letters
//! removed (`Café`, `cafe` and `cafe` + U+0301 are one word; `й` and `и` stay two, as in FTS5).
//! Which characters are letters comes from Unicode tables that grow with new Unicode versions;
//! a filter records the versions it was written with, and one written with others is not
//! trusted (its blocks' logs are all checked).
//!
//! The filter is sized after the fact: it is filled at 16 bits per word written (an upper
//! bound of the distinct words), the distinct words are estimated from the bits set, and the
//! bit array is folded in halves (bit `i` ORed into bit `i mod m/2`) down to 10–20 bits per
//! distinct word. Folding keeps every word: bit positions are hashes reduced modulo a power of
//! two, so a position modulo `m/2` is the folded position. Crates that offer Bloom filters
//! (`bloomfilter`, `fastbloom`) fix their size up front and do not promise a byte format, which
//! a stored index needs; this is the one place such a filter is built and read.

use aho_corasick::AhoCorasick;
use unicode_normalization::char::is_combining_mark;
use xxhash_rust::xxh3::xxh3_64;

/// Byte format of a stored filter: `[FORMAT, PROBES, log2 of the bit count]`, the Unicode
/// versions of the word cutting (`unicode_versions`, 4 bytes), then the bit array as
/// little-endian 64-bit words.
const FORMAT: u8 = 2;
const HEADER: usize = 7;
/// Bits set per word.
const PROBES: u64 = 4;
/// Bits per word written while filling (before folding).
const FILL_BITS_PER_WORD: usize = 16;
/// Bits per distinct word at least, after folding: about 1.2 % false positives at 10 with 4
/// probes, 0.2 % at 20.
const BITS_PER_DISTINCT_WORD: f64 = 10.0;
/// The smallest filter: 512 bits (64 bytes).
const MIN_LOG2_BITS: u32 = 9;
/// The largest: 2^26 bits (8 MiB), far above a block's words (`MAX_BLOCK_TEXT`).
const MAX_LOG2_BITS: u32 = 26;

/// The Unicode versions of the tables behind `for_each_word` (the standard library's letters
/// and case, `unicode-normalization`'s decompositions), major and minor.
fn unicode_versions() -> [u8; 4] {
    let (a, b, _) = char::UNICODE_VERSION;
    let (c, d, _) = unicode_normalization::UNICODE_VERSION;
    [a, b, c, d]
}

/// A character that belongs to a word: letters, digits and combining marks (`is_combining_mark`:
/// an accent written as a character of its own continues the word it follows).
pub(crate) fn is_word_char(c: char) -> bool {
    // Every combining mark is outside ASCII: the separators of ASCII text (most of what is
    // cut, once per log at ingest) skip the table lookup.
    c.is_alphanumeric() || (!c.is_ascii() && is_combining_mark(c))
}

/// Latin letters (Basic Latin to Latin Extended-B, Latin Extended Additional, -C, -D): the
/// ones whose diacritics are removed, as FTS5's `remove_diacritics` does.
fn is_latin(c: char) -> bool {
    matches!(c, '\0'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' | '\u{2C60}'..='\u{2C7F}' | '\u{A720}'..='\u{A7FF}')
}

/// Calls `f` with each word of `text`: a run of `is_word_char`, lowercased, the diacritics of
/// Latin letters removed.
pub(crate) fn for_each_word(text: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    if text.is_ascii() {
        // Most text: bytes are characters, words are runs of ASCII letters and digits (what
        // `is_word_char` says of ASCII), and lowercasing is per byte.
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            while i < bytes.len() && !bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let start = i;
            let mut upper = false;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                upper |= bytes[i].is_ascii_uppercase();
                i += 1;
            }
            if start == i {
                break;
            }
            ascii_word(&text[start..i], upper, &mut buf, &mut f);
        }
        return;
    }
    for word in text.split(|c: char| !is_word_char(c)) {
        if word.is_empty() {
            continue;
        }
        if word.is_ascii() {
            ascii_word(word, word.bytes().any(|b| b.is_ascii_uppercase()), &mut buf, &mut f);
        } else {
            buf.clear();
            // Whether the last letter was Latin: its marks, composed or not, are dropped.
            let mut latin = false;
            for c in word.chars() {
                if is_combining_mark(c) {
                    if !latin {
                        buf.push(c);
                    }
                } else if is_latin(c) {
                    latin = true;
                    unicode_normalization::char::decompose_canonical(c, |d| {
                        if !is_combining_mark(d) {
                            buf.extend(d.to_lowercase());
                        }
                    });
                } else {
                    latin = false;
                    buf.extend(c.to_lowercase());
                }
            }
            if !buf.is_empty() {
                f(&buf);
            }
        }
    }
}

/// Calls `f` with an ASCII word, lowercased (in `buf`) when it has `upper` case letters.
fn ascii_word(word: &str, upper: bool, buf: &mut String, f: &mut impl FnMut(&str)) {
    if upper {
        buf.clear();
        buf.push_str(word);
        buf.make_ascii_lowercase();
        f(buf);
    } else {
        f(word);
    }
}

/// The hash of one word (of `for_each_word`), as filters and checks use it. XXH3 is a fixed,
/// published function: stored filters stay readable across versions.
pub(crate) fn word_hash(word: &str) -> u64 {
    xxh3_64(word.as_bytes())
}

/// The hashes of the words of `text`, in order (repeats kept).
pub(crate) fn hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 6 + 1);
    for_each_word(text, |w| out.push(word_hash(w)));
    out
}

/// Fills a block's filter.
pub(crate) struct FilterBuilder {
    words: Vec<u64>,
    log2: u32,
}

impl FilterBuilder {
    /// A filter for at most `words` distinct words (the words written is an upper bound).
    pub(crate) fn new(words: usize) -> FilterBuilder {
        let bits = words.saturating_mul(FILL_BITS_PER_WORD).max(1).next_power_of_two();
        let log2 = bits.trailing_zeros().clamp(MIN_LOG2_BITS, MAX_LOG2_BITS);
        FilterBuilder { words: vec![0; 1 << (log2 - 6)], log2 }
    }

    pub(crate) fn insert(&mut self, hash: u64) {
        let mask = (1u64 << self.log2) - 1;
        let step = (hash >> 32) | 1;
        for i in 0..PROBES {
            let pos = hash.wrapping_add(i.wrapping_mul(step)) & mask;
            self.words[(pos >> 6) as usize] |= 1 << (pos & 63);
        }
    }

    /// The filter folded to its size and encoded.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let m = (1u64 << self.log2) as f64;
        let set: u64 = self.words.iter().map(|w| w.count_ones() as u64).sum();
        // Distinct words from the share of bits set (Swamidass and Baldi); a full array gives
        // no estimate and stays as it is.
        if (set as f64) < m {
            let distinct = -(m / PROBES as f64) * (1.0 - set as f64 / m).ln();
            let want = (distinct * BITS_PER_DISTINCT_WORD).max(1.0);
            while self.log2 > MIN_LOG2_BITS && ((1u64 << (self.log2 - 1)) as f64) >= want {
                let half = self.words.len() / 2;
                let (low, high) = self.words.split_at_mut(half);
                for (l, h) in low.iter_mut().zip(high.iter()) {
                    *l |= *h;
                }
                self.words.truncate(half);
                self.log2 -= 1;
            }
        }
        let mut out = Vec::with_capacity(HEADER + self.words.len() * 8);
        out.extend_from_slice(&[FORMAT, PROBES as u8, self.log2 as u8]);
        out.extend_from_slice(&unicode_versions());
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// A stored filter, read in place.
pub(crate) struct Filter<'a> {
    bits: &'a [u8],
    mask: u64,
    probes: u64,
}

impl<'a> Filter<'a> {
    /// None when the bytes are not a filter this version reads, or were cut into words with
    /// other Unicode tables: the caller then treats every word as possibly present (the logs
    /// themselves are checked).
    pub(crate) fn open(bytes: &'a [u8]) -> Option<Filter<'a>> {
        let (&[format, probes, log2, a, b, c, d], bits) = bytes.split_first_chunk::<HEADER>()?;
        let log2 = u32::from(log2);
        if format != FORMAT
            || probes == 0
            || [a, b, c, d] != unicode_versions()
            || !(6..=MAX_LOG2_BITS).contains(&log2)
            || bits.len() as u64 * 8 != 1u64 << log2
        {
            return None;
        }
        Some(Filter { bits, mask: (1u64 << log2) - 1, probes: u64::from(probes) })
    }

    /// False only when no word with this hash was written.
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        let step = (hash >> 32) | 1;
        (0..self.probes).all(|i| {
            let pos = hash.wrapping_add(i.wrapping_mul(step)) & self.mask;
            self.bits[(pos >> 3) as usize] & (1 << (pos & 7)) != 0
        })
    }
}

/// The phrases of a text condition (`Cond::Text`) as word hashes: a log matches when each
/// phrase's words appear in its text, one after another.
#[derive(Debug, Clone)]
pub(crate) struct Phrases {
    phrases: Vec<Vec<u64>>,
    /// A phrase asked for has no words (FTS5 then finds nothing): nothing matches.
    none: bool,
    /// When every word asked for is ASCII (and there are at most 64): the words, found in an
    /// ASCII text without regard to case. An ASCII text lacking one of them cannot match, which
    /// spares cutting and hashing its words.
    ascii: Option<(AhoCorasick, u64)>,
}

impl Phrases {
    pub(crate) fn new(phrases: &[Vec<String>]) -> Phrases {
        let mut words: Vec<String> = Vec::new();
        for p in phrases {
            for_each_word(&p.join(" "), |w| words.push(w.to_string()));
        }
        words.sort_unstable();
        words.dedup();
        let ascii = (words.len() <= 64 && words.iter().all(|w| w.is_ascii()))
            .then(|| AhoCorasick::builder().ascii_case_insensitive(true).build(&words).ok())
            .flatten()
            .map(|ac| (ac, if words.len() == 64 { u64::MAX } else { (1u64 << words.len()) - 1 }));
        let phrases: Vec<Vec<u64>> = phrases.iter().map(|p| hashes(&p.join(" "))).collect();
        let none = phrases.iter().any(Vec::is_empty);
        Phrases { phrases, none, ascii }
    }

    /// False when the filter shows that a word asked for is in none of the block's logs.
    pub(crate) fn may_match(&self, filter: &Filter<'_>) -> bool {
        !self.none && self.phrases.iter().flatten().all(|&h| filter.may_contain(h))
    }

    /// Whether the words of a log's text (`hashes` of it) hold every phrase.
    pub(crate) fn matches(&self, words: &[u64]) -> bool {
        !self.none && self.phrases.iter().all(|p| words.windows(p.len()).any(|w| w == p.as_slice()))
    }

    /// Whether a log's text holds every phrase.
    pub(crate) fn matches_text(&self, text: &str) -> bool {
        if let Some((ac, all)) = &self.ascii
            && text.is_ascii()
        {
            // In ASCII text a word is its bytes lowercased: a word that is not even a part of
            // the text, whatever the case, is not one of its words.
            let mut seen = 0u64;
            for m in ac.find_overlapping_iter(text) {
                seen |= 1 << m.pattern().as_usize();
                if seen == *all {
                    break;
                }
            }
            if seen != *all {
                return false;
            }
        }
        self.matches(&hashes(text))
    }

    /// Whether a log's text holds every phrase, each phrase within one of its parts: as FTS5
    /// matches a phrase within one column, never from the end of one into the next.
    pub(crate) fn matches_within(&self, parts: &[&str]) -> bool {
        let parts: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            [] => false,
            [one] => self.matches_text(one),
            _ => {
                // Every phrase in the whole text is needed anyway, and rules most logs out.
                if !self.matches_text(&parts.join("\n")) {
                    return false;
                }
                let words: Vec<Vec<u64>> = parts.iter().map(|p| hashes(p)).collect();
                !self.none && self.phrases.iter().all(|p| words.iter().any(|w| w.windows(p.len()).any(|w| w == p.as_slice())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_word(text, |w| out.push(w.to_string()));
        out
    }

    #[test]
    fn a_phrase_is_matched_within_one_part() {
        let p = |q: &[&[&str]]| Phrases::new(&q.iter().map(|p| p.iter().map(|w| w.to_string()).collect()).collect::<Vec<_>>());
        let parts = ["call ended", "hello world"];
        assert!(p(&[&["ended"], &["hello"]]).matches_within(&parts), "words may be in different parts");
        assert!(p(&[&["hello", "world"]]).matches_within(&parts));
        assert!(!p(&[&["ended", "hello"]]).matches_within(&parts), "a phrase across two parts");
        assert!(p(&[&["ended", "hello"]]).matches_text(&parts.join("\n")), "but within one text");
        assert!(!p(&[&["absent"]]).matches_within(&parts));
        assert!(p(&[&["world"]]).matches_within(&["", "world"]));
    }

    #[test]
    fn words_are_lowercase_letters_and_digits_without_diacritics() {
        assert_eq!(words("Timeout after 30s: upstream_error (HTTP 504)!"), ["timeout", "after", "30s", "upstream", "error", "http", "504"]);
        assert_eq!(words("Café CRÈME naïve"), ["cafe", "creme", "naive"]);
        // A decomposed accent (e + U+0301) is the same word as the composed one, also inside
        // a word.
        assert_eq!(words("cafe\u{301} nai\u{308}ve"), ["cafe", "naive"]);
        // As in FTS5: only Latin letters lose their diacritics; marks of other scripts are
        // part of their words.
        assert_eq!(words("Straße 東京 δοκιμή Йод が हिंदी"), ["straße", "東京", "δοκιμή", "йод", "が", "हिंदी"]);
        assert_ne!(hashes("йод"), hashes("иод"));
        assert_eq!(words(" -- ... "), Vec::<String>::new());
        assert_eq!(hashes("Hello, WORLD"), hashes("hello world"));
    }

    #[test]
    fn ascii_text_is_cut_like_any_other_text() {
        // ASCII text takes a byte-wise path; one non-ASCII word at the end sends the same text
        // through the general one, which must give the same words before it.
        let mut seed = 7u64;
        let alphabet = b"aZ9 _-.,:;!?'\"/\\()[]{}<>@#$%^&*+=|~`\t\nQx0";
        for _ in 0..2_000 {
            let len = (seed % 40) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    alphabet[(seed >> 33) as usize % alphabet.len()] as char
                })
                .collect();
            let mut general = words(&format!("{text} \u{e9}"));
            assert_eq!(general.pop().as_deref(), Some("e"));
            assert_eq!(words(&text), general, "{text:?}");
        }
    }

    fn filter_of(words: impl IntoIterator<Item = String>, capacity: usize) -> Vec<u8> {
        let mut b = FilterBuilder::new(capacity);
        for w in words {
            b.insert(word_hash(&w));
        }
        b.finish()
    }

    #[test]
    fn a_filter_keeps_every_word_and_folds_to_its_distinct_words() {
        // 20,000 words written, 500 distinct: filled at 16 bits per word written, folded to
        // 10–20 bits per distinct word.
        let written: Vec<String> = (0..20_000).map(|i| format!("w{}", i % 500)).collect();
        let bytes = filter_of(written, 20_000);
        let f = Filter::open(&bytes).unwrap();
        let bits = (bytes.len() - HEADER) * 8;
        assert!((5_000..=10_000).contains(&bits), "{bits} bits for 500 words");
        for i in 0..500 {
            assert!(f.may_contain(word_hash(&format!("w{i}"))), "w{i} lost");
        }
        let false_hits = (0..100_000).filter(|i| f.may_contain(word_hash(&format!("absent{i}")))).count();
        assert!(false_hits < 2_500, "{false_hits} false positives in 100,000");
        // An empty block gets the smallest filter, which holds nothing.
        let empty = filter_of(Vec::new(), 0);
        assert_eq!(empty.len(), HEADER + 64);
        assert!(!Filter::open(&empty).unwrap().may_contain(word_hash("any")));
    }

    #[test]
    fn a_full_filter_is_not_folded_and_unknown_bytes_are_not_a_filter() {
        // Far more distinct words than the capacity given: nothing is lost, nothing folded.
        let bytes = filter_of((0..50_000).map(|i| format!("x{i}")), 10);
        let f = Filter::open(&bytes).unwrap();
        assert!((0..50_000).all(|i| f.may_contain(word_hash(&format!("x{i}")))));
        assert_eq!(bytes.len(), HEADER + 64);
        let v = unicode_versions();
        let with = |head: &[u8], bits: usize| [head, &v[..], &vec![0u8; bits][..]].concat();
        assert!(Filter::open(&with(&[FORMAT, 4, 6], 8)).is_some());
        for bad in [vec![], vec![FORMAT, 4], with(&[1, 4, 6], 8), with(&[FORMAT, 4, 9], 2), with(&[FORMAT, 0, 6], 8), with(&[FORMAT, 4, 99], 8)] {
            assert!(Filter::open(&bad).is_none(), "{bad:?}");
        }
        // Written with other Unicode tables: not trusted.
        let mut other = with(&[FORMAT, 4, 6], 8);
        other[3] = other[3].wrapping_add(1);
        assert!(Filter::open(&other).is_none());
    }

    #[test]
    fn phrases_match_consecutive_words_only() {
        let p = Phrases::new(&[vec!["rate".into(), "limit".into()], vec!["Exceeded".into()]]);
        assert!(p.matches(&hashes("The RATE-limit was exceeded")));
        assert!(!p.matches(&hashes("limit rate exceeded")));
        assert!(!p.matches(&hashes("rate limit")));
        let bytes = filter_of(words("the rate limit was exceeded"), 5);
        assert!(p.may_match(&Filter::open(&bytes).unwrap()));
        let other = filter_of(words("the rate limit"), 3);
        assert!(!p.may_match(&Filter::open(&other).unwrap()));
        // No condition: everything matches; a phrase without words (FTS5 finds nothing for
        // it): nothing does.
        assert!(Phrases::new(&[]).matches(&[]));
        let wordless = Phrases::new(&[vec!["--".into()], vec!["rate".into()]]);
        assert!(!wordless.matches(&hashes("rate")) && !wordless.may_match(&Filter::open(&bytes).unwrap()));
        // The same answers from the text, ASCII or not (the words found in an ASCII text
        // without regard to case only rule logs out).
        for (text, want) in [
            ("The RATE-limit was exceeded", true),
            ("limit rate exceeded", false),
            ("ratelimit exceeded", false),
            ("the rate limit was not EXCEEDED", true),
            ("Rate limit exceeded — Café", true),
            ("Rate limit excéeded", true),
            ("rate limit", false),
        ] {
            assert_eq!(p.matches_text(text), want, "{text}");
            assert_eq!(p.matches_text(text), p.matches(&hashes(text)), "{text}");
        }
        let accented = Phrases::new(&[vec!["café".into()]]);
        assert!(accented.matches_text("un CAFE noir") && accented.matches_text("un café noir") && !accented.matches_text("un cafard"));
    }
}
