//! Payload bytes: the one module that turns request/response text into what is stored, and back.
//!
//! Payloads live in their own table, apart from log rows, zstd-compressed and capped in size.
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
        // A compression context is costly to set up (tables of several hundred KB); reuse one
        // per thread instead of paying that for every ~200-byte payload.
        thread_local! {
            static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
        }
        COMPRESSOR.with(|c| {
            let mut c = c.borrow_mut();
            if c.is_none() {
                *c = Some(zstd::bulk::Compressor::new(LEVEL).map_err(|e| Error::Internal(format!("zstd: {e}")))?);
            }
            let compressor = c.as_mut().ok_or_else(|| Error::Internal("zstd compressor missing".into()))?;
            let mut out = vec![FORMAT_ZSTD];
            out.extend(compressor.compress(&raw).map_err(|e| Error::Internal(format!("payload compression failed: {e}")))?);
            Ok(out)
        })
    }

    pub fn decode(bytes: &[u8], truncated: bool) -> Result<Payload> {
        let raw = match bytes.split_first() {
            Some((&FORMAT_RAW, rest)) => rest.to_vec(),
            // Decompressed size is bounded by two capped texts; allow generous headroom.
            Some((&FORMAT_ZSTD, rest)) => zstd::bulk::decompress(rest, 64 * 1024 * 1024)
                .map_err(|e| Error::Storage(format!("corrupt payload: {e}")))?,
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

#[cfg(test)]
mod tests {
    use super::*;

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
