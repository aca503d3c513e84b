//! TEMPORARY STUB — replaced by the real redaction module.
use std::borrow::Cow;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind { Email, Phone, CreditCard, Secret, IpAddress }
impl PiiKind {
    pub fn parse(s: &str) -> Option<PiiKind> { match s { "email" => Some(PiiKind::Email), "phone" => Some(PiiKind::Phone), "credit_card" => Some(PiiKind::CreditCard), "secret" => Some(PiiKind::Secret), "ip_address" => Some(PiiKind::IpAddress), _ => None } }
}
pub struct CustomPattern { pub name: String, pub regex: String }
#[derive(Debug)] pub struct RedactError { pub index: usize, pub message: String }
pub struct Redactor { res: Vec<(regex::Regex, String)> }
impl Redactor {
    pub fn new(kinds: &[PiiKind], custom: &[CustomPattern]) -> Result<Redactor, RedactError> {
        let mut res = Vec::new();
        if kinds.contains(&PiiKind::Email) { res.push((regex::Regex::new(r"[\w.+-]+@[\w-]+\.[\w.-]+").unwrap(), "[EMAIL]".to_string())); }
        for (i, c) in custom.iter().enumerate() { res.push((regex::Regex::new(&c.regex).map_err(|e| RedactError { index: i, message: e.to_string() })?, format!("[{}]", c.name.to_uppercase()))); }
        Ok(Redactor { res })
    }
    pub fn is_empty(&self) -> bool { self.res.is_empty() }
    pub fn redact<'a>(&self, text: &'a str) -> (Cow<'a, str>, u32) {
        let mut out: Cow<str> = Cow::Borrowed(text); let mut n = 0;
        for (re, ph) in &self.res { let c = re.find_iter(&out).count() as u32; if c > 0 { n += c; out = Cow::Owned(re.replace_all(&out, ph.as_str()).into_owned()); } }
        (out, n)
    }
}
