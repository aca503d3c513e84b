//! Input rules for names and secrets. Each check names the field it refused.

use crate::error::{Error, Result};

pub fn username<'a>(field: &str, s: &'a str) -> Result<&'a str> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return Err(Error::invalid(field, "username must be 1 to 64 characters"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)) {
        return Err(Error::invalid(field, "username may contain letters, digits and . _ - @ only"));
    }
    Ok(s)
}

pub fn password(field: &str, s: &str) -> Result<()> {
    let n = s.chars().count();
    if n < 8 {
        return Err(Error::invalid(field, "password must be at least 8 characters"));
    }
    if s.len() > 1024 {
        return Err(Error::invalid(field, "password must be at most 1024 bytes"));
    }
    Ok(())
}

/// Model names are what clients send in `model`: e.g. `gpt-4o`, `meta-llama/Llama-3.1-8B`.
pub fn model_name<'a>(field: &str, s: &'a str) -> Result<&'a str> {
    let s = s.trim();
    if s.is_empty() || s.len() > 128 {
        return Err(Error::invalid(field, "model name must be 1 to 128 characters"));
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || "._-:/@+".contains(c)) {
        return Err(Error::invalid(field, "model name may contain letters, digits and . _ - : / @ + only"));
    }
    // `.` and `..` are path segments to browsers and proxies: `/models/..` is `/`, so such a
    // model's pages could never be opened. Names of dots only are refused as a whole.
    if s.bytes().all(|b| b == b'.') {
        return Err(Error::invalid(field, "model name must not consist of dots only"));
    }
    Ok(s)
}

pub fn text(field: &str, s: &str, max: usize) -> Result<()> {
    if s.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An http(s) URL that Modelwatch is to call on an admin's behalf (alert channel, scrape
/// target): it must parse, and its host must not be an address the target policy refuses.
/// `bad` is the message for a URL that is not http(s) at all.
pub fn outbound_url(field: &str, url: &str, policy: &crate::outbound::TargetPolicy, bad: &str) -> Result<()> {
    let parsed = url::Url::parse(url).map_err(|_| Error::invalid(field, bad))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(Error::invalid(field, bad));
    }
    policy.check_url(&parsed).map_err(|refused| Error::invalid(field, format!("cannot send requests to this URL: {refused}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        for ok in ["gpt-4o", "meta-llama/Llama-3.1-8B", "a.b", ".hidden", "..x", "x..", "a/../b", "v1.0"] {
            assert_eq!(model_name("name", ok).unwrap(), ok);
        }
        assert_eq!(model_name("name", "  gpt-4o ").unwrap(), "gpt-4o");
        for bad in [".", "..", "...", " .. ", "", "a b", "a?b", "a#b", "a%2e"] {
            let err = model_name("logs[0].model", bad).unwrap_err();
            assert_eq!(err.field(), Some("logs[0].model"), "{bad:?}");
        }
    }
}
