//! Payload bytes: the one module that turns request/response text into what is stored, and back.
//!
//! Payloads live apart from log rows, zstd-compressed and capped in size; on SQLite many are
//! stored together as a block (`encode_block`).
//! Encryption at rest will be added here and nowhere else.
//!
//! Stored form: a format byte, then `[u32 LE request length][request][response]`, either as is
//! (`0`, for texts under `COMPRESS_FROM` bytes, which zstd barely shrinks but costs ~4 µs each)
//! or as one zstd frame (`1`).

use crate::error::{Error, Result};

/// zstd level 1: several times faster than the default level, and prompt text still shrinks well.
const LEVEL: i32 = 1;
/// Below this size (both texts together) compression is skipped.
const COMPRESS_FROM: usize = 512;
const FORMAT_RAW: u8 = 0;
const FORMAT_ZSTD: u8 = 1;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Payload {
    pub request: String,
    pub response: String,
    /// One of the texts was cut to the cap before storing.
    pub truncated: bool,
}

/// Cuts `s` to at most `max` bytes on a character boundary. Returns whether it cut.
pub fn truncate(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

impl Payload {
    /// Builds the stored payload, truncating each side to `cap` bytes.
    pub fn new(request: Option<String>, response: Option<String>, cap: usize) -> Option<Payload> {
        if request.is_none() && response.is_none() {
            return None;
        }
        let mut request = request.unwrap_or_default();
        let mut response = response.unwrap_or_default();
        let truncated = truncate(&mut request, cap) | truncate(&mut response, cap);
        Some(Payload { request, response, truncated })
    }

    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut raw = Vec::with_capacity(4 + self.request.len() + self.response.len());
        raw.extend_from_slice(&(self.request.len() as u32).to_le_bytes());
        raw.extend_from_slice(self.request.as_bytes());
        raw.extend_from_slice(self.response.as_bytes());
        if raw.len() < COMPRESS_FROM {
            raw.insert(0, FORMAT_RAW);
            return Ok(raw);
        }
        let mut out = vec![FORMAT_ZSTD];
        out.extend(with_compressor(LEVEL, |c| c.compress(&raw))?);
        Ok(out)
    }

    pub fn decode(bytes: &[u8], truncated: bool) -> Result<Payload> {
        let raw = match bytes.split_first() {
            Some((&FORMAT_RAW, rest)) => rest.to_vec(),
            // Decompressed size is bounded by two capped texts; allow generous headroom.
            Some((&FORMAT_ZSTD, rest)) => {
                decompress_bounded(rest, MAX_DECODED_BYTES).map_err(|e| Error::Storage(format!("corrupt payload: {e}")))?
            }
            _ => return Err(Error::Storage("corrupt payload: unknown format".into())),
        };
        if raw.len() < 4 {
            return Err(Error::Storage("corrupt payload: too short".into()));
        }
        let n = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        if 4 + n > raw.len() {
            return Err(Error::Storage("corrupt payload: bad length".into()));
        }
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| Error::Storage("corrupt payload: not UTF-8".into()));
        Ok(Payload { request: text(&raw[4..4 + n])?, response: text(&raw[4 + n..])?, truncated })
    }
}

/// Most bytes one stored payload or block may decode to. Both are bounded by what we write
/// (two capped texts; `BLOCK_BYTES` plus one payload), so more means a corrupt value, which
/// must not take the server's memory with it.
const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

/// Decompresses one zstd frame, failing once the output would pass `limit` bytes. Memory grows
/// with the output instead of being reserved for the limit up front.
pub(crate) fn decompress_bounded(frame: &[u8], limit: usize) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(frame.len().saturating_mul(4).min(limit));
    decoder.take(limit as u64 + 1).read_to_end(&mut out).map_err(|e| e.to_string())?;
    if out.len() > limit {
        return Err(format!("decodes to more than {limit} bytes"));
    }
    Ok(out)
}

/// Runs `f` with this thread's compressor for `level`: a context holds tables of several
/// hundred KB, too costly to set up per payload or per block.
fn with_compressor<T>(level: i32, f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> std::io::Result<T>) -> Result<T> {
    thread_local! {
        static COMPRESSORS: std::cell::RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    COMPRESSORS.with(|c| {
        let mut c = c.borrow_mut();
        let i = match c.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                c.push((level, zstd::bulk::Compressor::new(level).map_err(|e| Error::Internal(format!("zstd: {e}")))?));
                c.len() - 1
            }
        };
        f(&mut c[i].1).map_err(|e| Error::Internal(format!("payload compression failed: {e}")))
    })
}

/// `raw` as one zstd frame at `level`, with this thread's compressor.
pub(crate) fn compress(level: i32, raw: &[u8]) -> Result<Vec<u8>> {
    with_compressor(level, |c| c.compress(raw))
}

/// Many payloads stored as one value: the stored form of each (`Payload::encode`) with its
/// log id, compressed together as one zstd frame. Prompt and response texts of one model share
/// a great deal (system prompts, templates, JSON keys), which compression only finds across
/// records; one row per block is also far cheaper to insert than one row per log.
///
/// Layout: `FORMAT_BLOCK`, then a zstd frame of repeated
/// `[u32 LE log id − first id][u32 LE length][stored payload]`, ids ascending.
const FORMAT_BLOCK: u8 = 2;
/// zstd level for blocks: a block is written once per commit, so a little more effort than
/// for single payloads pays for itself in disk.
const BLOCK_LEVEL: i32 = 3;
/// Uncompressed bytes after which a writer starts a new block, so that reading one payload
/// never decompresses more than about this much.
pub const BLOCK_BYTES: usize = 256 * 1024;

/// Encodes `entries` (log id, stored payload; ids ascending, all ≥ `first_id`) as a block.
pub fn encode_block(first_id: i64, entries: &[(i64, &[u8])]) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(entries.iter().map(|(_, p)| p.len() + 8).sum());
    for (id, p) in entries {
        let offset = u32::try_from(id - first_id).map_err(|_| Error::Internal(format!("log {id} is too far from block start {first_id}")))?;
        let len = u32::try_from(p.len()).map_err(|_| Error::Internal("payload over 4 GB".into()))?;
        raw.extend_from_slice(&offset.to_le_bytes());
        raw.extend_from_slice(&len.to_le_bytes());
        raw.extend_from_slice(p);
    }
    let mut out = vec![FORMAT_BLOCK];
    out.extend(with_compressor(BLOCK_LEVEL, |c| c.compress(&raw))?);
    Ok(out)
}

/// Every (log id, stored payload) in a block.
pub fn decode_block(block: &[u8], first_id: i64) -> Result<Vec<(i64, Vec<u8>)>> {
    let corrupt = |what: &str| Error::Storage(format!("corrupt payload block {first_id}: {what}"));
    let raw = match block.split_first() {
        Some((&FORMAT_BLOCK, rest)) => decompress_bounded(rest, MAX_DECODED_BYTES).map_err(|e| corrupt(&e))?,
        _ => return Err(corrupt("unknown format")),
    };
    let mut out = Vec::new();
    let mut rest = raw.as_slice();
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(corrupt("truncated entry"));
        }
        let offset = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as i64;
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        if rest.len() < 8 + len {
            return Err(corrupt("bad length"));
        }
        out.push((first_id + offset, rest[8..8 + len].to_vec()));
        rest = &rest[8 + len..];
    }
    Ok(out)
}

/// Cuts (log id, stored payload) pairs into runs for `encode_block`: each run holds about
/// `BLOCK_BYTES` of payload at most (a single larger payload gets a run of its own).
pub fn block_runs<'a>(entries: &'a [(i64, &'a [u8])]) -> Vec<&'a [(i64, &'a [u8])]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, p)) in entries.iter().enumerate() {
        if i > start && bytes + p.len() + 8 > BLOCK_BYTES {
            runs.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += p.len() + 8;
    }
    if start < entries.len() {
        runs.push(&entries[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_roundtrip_and_compress_across_records() {
        let payloads: Vec<Vec<u8>> = (0..500)
            .map(|i| {
                Payload::new(Some(format!("{{\"messages\":[{{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"}},{{\"role\":\"user\",\"content\":\"Question {i}\"}}]}}")), Some(format!("Answer {i}")), 1000)
                    .unwrap()
                    .encode()
                    .unwrap()
            })
            .collect();
        let entries: Vec<(i64, &[u8])> = payloads.iter().enumerate().map(|(i, p)| (1000 + 2 * i as i64, p.as_slice())).collect();
        let block = encode_block(1000, &entries).unwrap();
        let back = decode_block(&block, 1000).unwrap();
        assert_eq!(back.len(), 500);
        for ((id, p), (bid, bp)) in entries.iter().zip(&back) {
            assert_eq!((id, p.to_vec()), (bid, bp.clone()));
        }
        let (id, p) = &back[7];
        assert_eq!(*id, 1014);
        assert_eq!(Payload::decode(p, false).unwrap().response, "Answer 7");
        let raw: usize = payloads.iter().map(Vec::len).sum();
        assert!(block.len() * 5 < raw, "block {} bytes for {raw} bytes of payloads", block.len());
        assert!(decode_block(b"\x02garbage", 1).is_err());
        assert!(decode_block(&payloads[0], 1).is_err(), "a single payload is not a block");
    }

    #[test]
    fn decoding_stops_at_the_size_bound() {
        let frame = zstd::bulk::compress(&[7u8; 1000], 3).unwrap();
        assert_eq!(decompress_bounded(&frame, 1000).unwrap(), vec![7u8; 1000]);
        assert!(decompress_bounded(&frame, 999).unwrap_err().contains("more than 999 bytes"));
        // A tiny value that would decode past the bound (a "zip bomb") is refused, as a block
        // and as a single payload, instead of being decoded into memory.
        let bomb = zstd::bulk::compress(&vec![0u8; MAX_DECODED_BYTES + 1], 1).unwrap();
        assert!(bomb.len() < 64 * 1024);
        let mut block = vec![FORMAT_BLOCK];
        block.extend_from_slice(&bomb);
        let err = decode_block(&block, 1).unwrap_err().to_string();
        assert!(err.contains("corrupt payload block 1") && err.contains("more than"), "{err}");
        let mut single = vec![FORMAT_ZSTD];
        single.extend_from_slice(&bomb);
        assert!(Payload::decode(&single, false).unwrap_err().to_string().contains("more than"));
    }

    #[test]
    fn compressors_are_kept_per_level() {
        // Single payloads (level 1) and blocks (level 3) alternate on one thread; each must
        // get a context of its own level, and both must round-trip.
        let text = "assistant: the quarterly report shows growth in every region. ".repeat(40);
        let p = Payload::new(Some(text.clone()), Some(text), 1 << 20).unwrap();
        let one = p.encode().unwrap();
        let block = encode_block(5, &[(5, one.as_slice())]).unwrap();
        let again = p.encode().unwrap();
        assert_eq!(one, again, "level-1 output must not change after a block was compressed");
        assert_eq!(one[1..], zstd::bulk::compress(&{
            let mut raw = (p.request.len() as u32).to_le_bytes().to_vec();
            raw.extend_from_slice(p.request.as_bytes());
            raw.extend_from_slice(p.response.as_bytes());
            raw
        }, LEVEL).unwrap()[..]);
        let back = decode_block(&block, 5).unwrap();
        assert_eq!(Payload::decode(&back[0].1, false).unwrap(), p);
    }

    #[test]
    fn runs_are_bounded_in_size() {
        let small = vec![0u8; 1000];
        let big = vec![0u8; BLOCK_BYTES * 2];
        let mut entries: Vec<(i64, &[u8])> = (0..600).map(|i| (i, small.as_slice())).collect();
        entries.insert(300, (10_000, big.as_slice()));
        let runs = block_runs(&entries);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), entries.len());
        for r in &runs {
            let bytes: usize = r.iter().map(|(_, p)| p.len() + 8).sum();
            assert!(r.len() == 1 || bytes <= BLOCK_BYTES, "run of {} entries, {bytes} bytes", r.len());
        }
        assert!(runs.iter().any(|r| r.len() == 1 && r[0].0 == 10_000));
        assert!(block_runs(&[]).is_empty());
    }

    #[test]
    fn roundtrip_and_truncation() {
        let p = Payload::new(Some("héllo wörld ".repeat(10)), Some("ok".into()), 1000).unwrap();
        assert!(!p.truncated);
        let back = Payload::decode(&p.encode().unwrap(), false).unwrap();
        assert_eq!(back, p);

        let p = Payload::new(Some("é".repeat(100)), None, 11).unwrap();
        assert!(p.truncated);
        assert_eq!(p.request, "é".repeat(5));
        assert!(Payload::new(None, None, 10).is_none());
        assert!(Payload::decode(b"not zstd", false).is_err());
        assert!(Payload::decode(b"\x01not zstd", false).is_err());
        // Short texts are stored as they are; long ones compressed.
        let short = Payload::new(Some("hi".into()), Some("there".into()), 100).unwrap();
        assert_eq!(short.encode().unwrap()[0], 0);
        assert_eq!(Payload::decode(&short.encode().unwrap(), false).unwrap(), short);
    }

    #[test]
    fn text_compresses() {
        let text = "The quick brown fox asks the assistant to summarise the quarterly report. ".repeat(20);
        let p = Payload::new(Some(text.clone()), Some(text), 1 << 20).unwrap();
        let stored = p.encode().unwrap();
        assert_eq!(stored[0], 1);
        assert!(stored.len() * 5 < p.request.len() + p.response.len(), "{}", stored.len());
    }
}
