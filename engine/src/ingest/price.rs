//! The price table: cost of a record computed from its tokens when the client sent none.
//!
//! Lookup is by the record's model name, then its model version: an exact pattern wins, then
//! the longest prefix pattern (`claude-sonnet-4*`). Cached input tokens are part of the input
//! tokens (as OpenAI and the GenAI conventions count them) and are billed at the cached price.

use crate::types::Price;

#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    exact: std::collections::HashMap<String, Price>,
    /// Prefix patterns, longest first.
    prefixes: Vec<(String, Price)>,
}

impl PriceTable {
    pub fn new(prices: Vec<Price>) -> Self {
        let mut t = PriceTable::default();
        for p in prices {
            match p.pattern.strip_suffix('*') {
                Some(prefix) => t.prefixes.push((prefix.to_string(), p)),
                None => {
                    t.exact.insert(p.pattern.clone(), p);
                }
            }
        }
        t.prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
        t
    }

    pub fn lookup(&self, name: &str) -> Option<&Price> {
        if name.is_empty() {
            return None;
        }
        self.exact
            .get(name)
            .or_else(|| self.prefixes.iter().find(|(p, _)| name.starts_with(p.as_str())).map(|(_, p)| p))
    }

    /// Cost in USD, or None when no price is known or the record has no token counts.
    pub fn cost(&self, model: &str, model_version: &str, input: Option<i64>, output: Option<i64>, cached: Option<i64>) -> Option<f64> {
        if input.is_none() && output.is_none() {
            return None;
        }
        let p = self.lookup(model).or_else(|| self.lookup(model_version))?;
        let input = input.unwrap_or(0).max(0) as f64;
        let cached = (cached.unwrap_or(0).max(0) as f64).min(input);
        let output = output.unwrap_or(0).max(0) as f64;
        Some(((input - cached) * p.input_per_mtok + cached * p.cached_input_per_mtok + output * p.output_per_mtok) / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(pattern: &str, i: f64, o: f64, c: f64) -> Price {
        Price { pattern: pattern.into(), input_per_mtok: i, output_per_mtok: o, cached_input_per_mtok: c }
    }

    #[test]
    fn lookup_and_cost() {
        let t = PriceTable::new(vec![
            price("gpt-4o", 2.5, 10.0, 1.25),
            price("gpt-4o-mini*", 0.15, 0.6, 0.075),
            price("claude-*", 1.0, 1.0, 1.0),
            price("claude-sonnet-4*", 3.0, 15.0, 0.3),
        ]);
        assert_eq!(t.lookup("gpt-4o").unwrap().pattern, "gpt-4o");
        assert_eq!(t.lookup("gpt-4o-mini-2024-07-18").unwrap().pattern, "gpt-4o-mini*");
        assert_eq!(t.lookup("claude-sonnet-4-5").unwrap().pattern, "claude-sonnet-4*");
        assert_eq!(t.lookup("claude-opus").unwrap().pattern, "claude-*");
        assert!(t.lookup("llama").is_none());
        // 1000 input of which 200 cached, 500 output.
        let c = t.cost("gpt-4o", "", Some(1000), Some(500), Some(200)).unwrap();
        assert!((c - (800.0 * 2.5 + 200.0 * 1.25 + 500.0 * 10.0) / 1e6).abs() < 1e-12);
        // Falls back to the model version.
        assert!(t.cost("my-chatbot", "gpt-4o", Some(1), None, None).is_some());
        assert!(t.cost("gpt-4o", "", None, None, None).is_none());
        assert!(t.cost("unknown", "", Some(5), Some(5), None).is_none());
    }
}
