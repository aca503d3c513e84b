//! HTTP to URLs that admins configure (alert channels, scrape targets), under the engine's
//! `TargetPolicy` (see `engine::outbound` for which addresses it refuses and why).
//!
//! The engine checks a URL's literal host when it is saved; that is not enough, since a name
//! may resolve (or be re-pointed later: DNS rebinding) to 127.0.0.1 or to the metadata
//! endpoint. So the clients built here check what Modelwatch actually connects to:
//!
//! - names go through `PolicyResolver`, which drops refused addresses from the answer and
//!   fails when none is left;
//! - literal addresses never reach a resolver: callers run `check` on the URL before sending;
//! - redirects are checked hop by hop (`Redirects::Checked`: the target's literal host, at most
//!   `MAX_REDIRECTS` hops; names are caught by the resolver), or not followed at all.
//!
//! With an HTTP proxy configured (`HTTP_PROXY`/`HTTPS_PROXY`), the proxy resolves the target's
//! name: the resolver then sees only the proxy's own name, and the proxy's egress rules apply.

use std::net::SocketAddr;
use std::sync::Arc;

use engine::outbound::{Refused, TargetPolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Most redirects a checked client follows.
pub const MAX_REDIRECTS: usize = 5;

/// What a client does with redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Not followed: the 3xx answer is the answer.
    None,
    /// Followed up to `MAX_REDIRECTS` hops, each checked against the policy.
    Checked,
}

/// A client whose connections obey `policy`. `builder` carries the caller's other settings
/// (user agent, timeouts).
pub fn client(policy: Arc<TargetPolicy>, builder: reqwest::ClientBuilder, redirects: Redirects) -> reqwest::Result<reqwest::Client> {
    let redirect = match redirects {
        Redirects::None => reqwest::redirect::Policy::none(),
        Redirects::Checked => {
            let policy = policy.clone();
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                if !matches!(attempt.url().scheme(), "http" | "https") {
                    return attempt.error("a redirect to a URL that is not http(s)");
                }
                match policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refused) => attempt.error(refused),
                }
            })
        }
    };
    builder.dns_resolver(Arc::new(PolicyResolver { policy })).redirect(redirect).build()
}

/// The URL, if the policy lets a request to it start: it parses and its literal host (which no
/// resolver sees) is allowed. The error is the text to record.
pub fn check(policy: &TargetPolicy, url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    policy.check_url(&parsed).map_err(|refused| format!("refused: {refused}"))?;
    Ok(parsed)
}

/// The text of a failed request: why the policy refused it, if it did; otherwise what went
/// wrong, without the URL (a Slack webhook URL is a credential, and errors are shown).
pub fn error_text(e: reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return format!("refused: {refused}");
        }
        source = s.source();
    }
    if e.is_redirect() {
        // Too many hops or a non-http(s) target; the message is ours.
        let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        return format!("redirect not followed: {why}");
    }
    // The innermost cause says what happened (connection refused, no such name, bad certificate).
    let mut cause = None;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    match cause {
        Some(cause) => format!("cannot connect: {}: {cause}", e.without_url()),
        None => format!("cannot connect: {}", e.without_url()),
    }
}

/// Resolves names with the system resolver and keeps only the addresses the policy allows.
struct PolicyResolver {
    policy: Arc<TargetPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_ip(a.ip(), Some(&host)) {
                    Ok(()) => true,
                    Err(r) => {
                        refused.get_or_insert(r);
                        false
                    }
                })
                .collect();
            match (kept.is_empty(), refused) {
                (false, _) => Ok(Box::new(kept.into_iter()) as Addrs),
                (true, Some(refused)) => Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>),
                (true, None) => Err(format!("{host} has no address").into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let strict = PolicyResolver { policy: Arc::default() };
        let e = strict.resolve(Name::from_str("localhost").unwrap()).await.err().expect("localhost is loopback");
        let refused = e.downcast_ref::<Refused>().expect("the policy's refusal");
        assert!(refused.target.starts_with("localhost ("), "{refused}");
        assert!(refused.to_string().contains("--allow-private-targets"), "{refused}");

        let all = PolicyResolver { policy: Arc::new(TargetPolicy::allow_all()) };
        let addrs: Vec<SocketAddr> = all.resolve(Name::from_str("localhost").unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");

        // Allowing 127.0.0.0/8 only keeps localhost's IPv4 address and drops ::1.
        let v4 = PolicyResolver { policy: Arc::new(TargetPolicy::parse("127.0.0.0/8").unwrap()) };
        let addrs: Vec<SocketAddr> = v4.resolve(Name::from_str("localhost").unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.is_ipv4()), "{addrs:?}");
    }

    #[test]
    fn literal_hosts_are_checked_before_sending() {
        let strict = TargetPolicy::default();
        for url in ["http://127.0.0.1:9/", "http://2130706433/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/"] {
            assert!(check(&strict, url).unwrap_err().starts_with("refused: "), "{url}");
        }
        assert!(check(&strict, "https://hooks.example.com/x").is_ok());
        assert!(check(&TargetPolicy::allow_all(), "http://127.0.0.1:9/").is_ok());
        assert!(check(&TargetPolicy::allow_all(), "http://169.254.169.254/").is_err());
    }
}
