//! Latency and metric distributions as mergeable DDSketches (1% relative error).
//!
//! Owns the sketch type and its byte encoding in the rollup tables. The encoding is a version
//! byte followed by the postcard form of `sketches_ddsketch::DDSketch`; the crate is pinned to
//! an exact version because that form follows its private struct layout.

use sketches_ddsketch::{Config, DDSketch};

use crate::error::{Error, Result};

const FORMAT_V1: u8 = 1;

#[derive(Clone)]
pub struct Sketch(DDSketch);

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch(count={})", self.count())
    }
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new()
    }
}

impl Sketch {
    pub fn new() -> Self {
        // alpha 1%, up to 2048 bins (far more than a latency range of 1 µs .. 1 day needs).
        Sketch(DDSketch::new(Config::new(0.01, 2048, 1.0e-9)))
    }
    pub fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.0.add(v);
        }
    }
    pub fn merge(&mut self, other: &Sketch) {
        // Both sides use the same config, the only case in which merge fails.
        let _ = self.0.merge(&other.0);
    }
    pub fn count(&self) -> u64 {
        self.0.count() as u64
    }
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V1];
        // Serialising plain numbers and vectors into memory cannot fail.
        out.extend(postcard::to_allocvec(&self.0).unwrap_or_default());
        out
    }
    pub fn decode(bytes: &[u8]) -> Result<Sketch> {
        match bytes.split_first() {
            Some((&FORMAT_V1, rest)) => postcard::from_bytes(rest)
                .map(Sketch)
                .map_err(|e| Error::Storage(format!("corrupt sketch: {e}"))),
            _ => Err(Error::Storage("sketch with unknown format".into())),
        }
    }
    /// Decodes an optional stored sketch; None and empty blobs are an empty sketch.
    pub fn decode_opt(bytes: Option<&[u8]>) -> Result<Sketch> {
        match bytes {
            Some(b) if !b.is_empty() => Sketch::decode(b),
            _ => Ok(Sketch::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_merge_and_accuracy() {
        let mut a = Sketch::new();
        let mut b = Sketch::new();
        let mut all = Vec::new();
        for i in 1..=20_000u32 {
            let v = (i as f64).powf(1.3) / 10.0;
            all.push(v);
            if i % 2 == 0 { a.add(v) } else { b.add(v) }
        }
        let mut merged = Sketch::decode(&a.encode()).unwrap();
        merged.merge(&Sketch::decode(&b.encode()).unwrap());
        assert_eq!(merged.count(), 20_000);
        all.sort_by(f64::total_cmp);
        for q in [0.5, 0.9, 0.95, 0.99] {
            let exact = all[((q * all.len() as f64).ceil() as usize).saturating_sub(1)];
            let est = merged.quantile(q).unwrap();
            assert!((est - exact).abs() / exact <= 0.01, "q{q}: {est} vs {exact}");
        }
        assert!(Sketch::decode(&[9, 1, 2]).is_err());
        assert!(Sketch::decode(&[]).is_err());
        assert_eq!(Sketch::decode_opt(None).unwrap().count(), 0);
        // A typical latency sketch stays small.
        assert!(a.encode().len() < 2048, "{}", a.encode().len());
    }
}
