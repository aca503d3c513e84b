//! The scraper: fetches each enabled scrape target's Prometheus page on its interval and hands
//! it to the engine (`Engine::ingest_scrape`), which keeps the chosen series and records the
//! target's health. HTTP lives here; what is kept and how is the engine's (`engine::scrape`).
//!
//! The target list is re-read every few seconds, so targets added, changed or removed in the UI
//! take effect without a restart. One fetch per target runs at a time; a slow target never holds
//! up the others. With several server processes on one database, run the scraper in one of them
//! (`--scrape off` in the others), or each scrapes every target.
//!
//! Target URLs are admin input: fetches obey the engine's target policy (`crate::outbound`:
//! refused addresses, literal or resolved, fail with the reason; up to 5 redirects, each
//! checked). A failed scrape's error shows the status and content type, never the page's text:
//! otherwise any page the server can reach could be read through the error column.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::Engine;
use engine::scrape::Page;
use engine::types::ScrapeTarget;
use futures_util::StreamExt;
use tokio::sync::watch;

const TICK: Duration = Duration::from_millis(500);
const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// A fetch may take at most this long (or the target's interval, if shorter).
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

pub fn spawn(engine: Engine, mut stopping: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match client(engine.target_policy().clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "scraper cannot start");
                return;
            }
        };
        let running: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let mut next_due: HashMap<i64, tokio::time::Instant> = HashMap::new();
        let mut targets: Vec<ScrapeTarget> = Vec::new();
        let mut loaded_at: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => return,
            }
            if *stopping.borrow() {
                return;
            }
            let now = tokio::time::Instant::now();
            if loaded_at.is_none_or(|t| now - t >= RELOAD_EVERY) {
                match engine.scrape_schedule().await {
                    Ok(list) => {
                        targets = list;
                        loaded_at = Some(now);
                        let ids: HashSet<i64> = targets.iter().map(|t| t.id).collect();
                        next_due.retain(|id, _| ids.contains(id));
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read scrape targets"),
                }
            }
            for t in targets.iter().filter(|t| t.enabled) {
                let due = next_due.entry(t.id).or_insert(now);
                if *due > now || running.lock().unwrap_or_else(|e| e.into_inner()).contains(&t.id) {
                    continue;
                }
                *due = now + Duration::from_secs(t.interval_secs.max(1) as u64);
                running.lock().unwrap_or_else(|e| e.into_inner()).insert(t.id);
                let (engine, client, running, target) = (engine.clone(), client.clone(), running.clone(), t.clone());
                let policy = engine.target_policy().clone();
                tokio::spawn(async move {
                    let started = engine::now_ms();
                    let timeout = MAX_TIMEOUT.min(Duration::from_secs(target.interval_secs.max(1) as u64));
                    let fetched = fetch(&client, &policy, &target.url, timeout).await;
                    if let Err(e) = &fetched {
                        tracing::debug!(url = %target.url, error = %e, "scrape failed");
                    }
                    if let Err(e) = engine.ingest_scrape(&target, fetched, started).await {
                        tracing::warn!(url = %target.url, error = %e, "cannot store a scrape");
                    }
                    running.lock().unwrap_or_else(|e| e.into_inner()).remove(&target.id);
                });
            }
        }
    })
}

/// The client scrapes use: the target policy applied to every address it connects to and to
/// every redirect.
pub fn client(policy: std::sync::Arc<engine::outbound::TargetPolicy>) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder().user_agent(concat!("modelwatch/", env!("CARGO_PKG_VERSION")));
    crate::outbound::client(policy, builder, crate::outbound::Redirects::Checked)
}

/// The page at `url`, or why there is none. Errors never quote the answer's body.
pub async fn fetch(client: &reqwest::Client, policy: &engine::outbound::TargetPolicy, url: &str, timeout: Duration) -> Result<Page, String> {
    let url = crate::outbound::check(policy, url)?;
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "text/plain;version=0.0.4;q=1,*/*;q=0.1")
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| if e.is_timeout() { format!("no answer within {} s", timeout.as_secs()) } else { crate::outbound::error_text(e) })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let content_type = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the page failed: {e}"))?;
        if body.len() + chunk.len() > engine::scrape::MAX_PAGE_BYTES {
            return Err(format!("the page is larger than {} bytes", engine::scrape::MAX_PAGE_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    let page = Page { status: status.as_u16(), content_type, text: String::new() };
    match String::from_utf8(body) {
        Ok(text) => Ok(Page { text, ..page }),
        Err(_) => Err(format!("the page is not UTF-8 text ({})", page.describe())),
    }
}
