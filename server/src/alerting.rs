//! The alert evaluator and the notification dispatcher, run in the background of `serve`.
//!
//! Only the process holding the database lease (`alert_lease`, renewed every cycle, expiring
//! after three missed cycles) evaluates and delivers, so several server processes on one
//! Postgres neither double-alert nor double-send; another takes over if the holder dies.
//!
//! - Evaluator: every `--alert-interval-secs` (10 s) `Engine::evaluate_alerts(now)`.
//! - Dispatcher: every second, due outbox rows are sent: a signed webhook (Standard Webhooks:
//!   `webhook-id`, `webhook-timestamp`, `webhook-signature`), a Slack incoming webhook, a
//!   PagerDuty Events API v2 event (trigger / resolve with a dedup key), or an e-mail over SMTP.
//!   A failure is recorded and retried with backoff (5 s doubling to 10 min) for a day; a
//!   restart picks up where it stopped, since the outbox is in the database.
//!
//! Webhook, Slack and PagerDuty URLs are admin input, so they are sent to under the engine's
//! target policy (`crate::outbound`): a URL whose host is, or resolves to, a refused address
//! fails with the reason. Redirects are not followed: a signed POST is meant for the URL it was
//! configured with, and Slack and PagerDuty never redirect; a 3xx answer is a failed delivery.

use std::time::Duration;

use engine::Engine;
use engine::alerts::{Message, NotifiedAlert};
use engine::store::alerts::DueNotification;
use engine::types::AlertChannel;
use tokio::sync::watch;

/// What the dispatcher needs besides the engine.
#[derive(Clone)]
pub struct AlertSettings {
    pub interval: Duration,
    /// Absolute base of links in notifications, e.g. `https://modelwatch.example.com`.
    pub public_url: String,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://…`; None: e-mail channels fail with a
    /// clear error.
    pub smtp_url: Option<String>,
    pub smtp_from: String,
}

impl std::fmt::Debug for AlertSettings {
    // The SMTP URL may hold a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSettings")
            .field("interval", &self.interval)
            .field("public_url", &self.public_url)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "…"))
            .field("smtp_from", &self.smtp_from)
            .finish()
    }
}

/// Starts the evaluator and dispatcher; an interval of zero leaves alerting off (tests that
/// drive evaluation themselves).
pub fn spawn(engine: Engine, settings: AlertSettings, mut stopping: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if settings.interval.is_zero() {
            return;
        }
        let holder = format!("{}-{}", std::process::id(), rand::random::<u32>());
        let lease_ttl = (settings.interval * 3).max(Duration::from_secs(15)).as_millis() as i64;
        let client = match client(engine.target_policy().clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "alerting cannot start");
                return;
            }
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_eval: Option<tokio::time::Instant> = None;
        let mut leader = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => return,
            }
            if *stopping.borrow() {
                return;
            }
            let now = tokio::time::Instant::now();
            if last_eval.is_none_or(|t| now - t >= settings.interval) {
                last_eval = Some(now);
                leader = match engine.acquire_alert_lease(&holder, engine::now_ms(), lease_ttl).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot take the alert lease");
                        false
                    }
                };
                if leader {
                    match engine.evaluate_alerts(engine::now_ms()).await {
                        Ok(n) if n > 0 => tracing::info!(queued = n, "alert notifications queued"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
                    }
                }
            }
            if leader {
                dispatch(&engine, &client, &settings).await;
            }
        }
    })
}

/// The client deliveries use: the target policy applied to every address it connects to, and
/// redirects not followed.
pub fn client(policy: std::sync::Arc<engine::outbound::TargetPolicy>) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder().user_agent(concat!("modelwatch/", env!("CARGO_PKG_VERSION"))).timeout(Duration::from_secs(10));
    crate::outbound::client(policy, builder, crate::outbound::Redirects::None)
}

/// Sends every due notification once. `client` should be one from `client`: only it checks the
/// addresses names resolve to (literal addresses are checked here either way).
pub async fn dispatch(engine: &Engine, client: &reqwest::Client, settings: &AlertSettings) {
    dispatch_at(engine, client, settings, engine::now_ms()).await
}

/// Sends the notifications due at `now` (tests pass a later time to skip a retry delay).
pub async fn dispatch_at(engine: &Engine, client: &reqwest::Client, settings: &AlertSettings, now: i64) {
    let due = match engine.due_notifications(now, 50).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the notification outbox");
            return;
        }
    };
    // After a failure, the channel's later notifications wait (they keep their order).
    let mut failed_channels = std::collections::HashSet::new();
    for (n, channel, msg) in due {
        if failed_channels.contains(&channel.id) {
            if let Err(e) = engine.release_notification(&n, now).await {
                tracing::warn!(notification = n.id, error = %e, "cannot release a notification");
            }
            continue;
        }
        let outcome = deliver(client, settings, engine.target_policy(), &n, &channel, &msg).await;
        if outcome.is_err() {
            failed_channels.insert(channel.id);
        }
        if let Err(e) = &outcome {
            tracing::warn!(notification = n.id, channel = %channel.name, error = %e, "notification not delivered");
        }
        if let Err(e) = engine.record_delivery(&n, outcome, now.max(engine::now_ms())).await {
            tracing::warn!(notification = n.id, error = %e, "cannot record a delivery");
        }
    }
}

fn absolute(settings: &AlertSettings, path: &str) -> String {
    format!("{}{path}", settings.public_url.trim_end_matches('/'))
}

/// The message with absolute links, as webhook receivers get it.
fn webhook_body(settings: &AlertSettings, n: &DueNotification, msg: &Message) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = msg
        .alerts
        .iter()
        .map(|a| {
            serde_json::json!({
                "model": a.model, "status": a.status, "severity": a.severity, "value": a.value,
                "since": a.since_ms, "dashboard_url": absolute(settings, &a.dashboard),
            })
        })
        .collect();
    serde_json::json!({
        "type": format!("alert.{}", msg.event),
        "id": n.id,
        "summary": msg.summary,
        "rule": {"id": msg.rule_id, "name": msg.rule, "description": msg.description, "runbook_url": msg.runbook_url,
                 "labels": msg.labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
                 "metric": msg.metric, "unit": msg.unit, "condition": msg.condition},
        "alerts": alerts,
        "url": absolute(settings, &msg.alerts_page),
        "created_at": msg.created_ms,
    })
}

fn alert_lines(settings: &AlertSettings, msg: &Message) -> Vec<String> {
    msg.alerts
        .iter()
        .map(|a: &NotifiedAlert| {
            let value = a.value.map(|v| format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string()).unwrap_or("no data".into());
            format!("{} — {} {} ({} {}) since {} — {}", a.model, a.status, a.severity, value, msg.unit, engine::utc_minute_text(a.since_ms), absolute(settings, &a.dashboard))
        })
        .collect()
}

async fn deliver(
    client: &reqwest::Client,
    settings: &AlertSettings,
    targets: &engine::outbound::TargetPolicy,
    n: &DueNotification,
    c: &AlertChannel,
    msg: &Message,
) -> Result<(), String> {
    if matches!(c.kind.as_str(), "webhook" | "slack" | "pagerduty") {
        // Literal addresses reach no resolver: checked here (also catches channels saved
        // before the policy existed, or under a more permissive one).
        crate::outbound::check(targets, &c.url)?;
    }
    let post = |url: &str, body: Vec<u8>| client.post(url).header("content-type", "application/json").body(body);
    let check = |r: Result<reqwest::Response, reqwest::Error>| async move {
        match r {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) if resp.status().is_redirection() => {
                Err(format!("HTTP {} (redirects are not followed: give the channel the final URL)", resp.status().as_u16()))
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
                Err(format!("HTTP {status} {text}").trim().to_string())
            }
            Err(e) if e.is_timeout() => Err("no answer within 10 s".into()),
            // Without the URL: a Slack webhook URL is a credential, and errors are shown.
            Err(e) => Err(crate::outbound::error_text(e)),
        }
    };
    match c.kind.as_str() {
        "webhook" => {
            let body = serde_json::to_vec(&webhook_body(settings, n, msg)).map_err(|e| e.to_string())?;
            // The id stays the same across retries, so receivers can drop duplicates.
            let id = format!("msg_{}", n.id);
            let ts = engine::now_ms() / 1000;
            let signature = standardwebhooks::Webhook::new(&c.secret)
                .and_then(|w| w.sign(&id, ts, &body))
                .map_err(|e| format!("cannot sign: {e}"))?;
            let req = post(&c.url, body).header("webhook-id", id).header("webhook-timestamp", ts.to_string()).header("webhook-signature", signature);
            check(req.send().await).await
        }
        "slack" => {
            let mut text = format!("*{}*", msg.summary);
            if !msg.condition.is_empty() {
                text.push_str(&format!("\n{}", msg.condition));
            }
            for line in alert_lines(settings, msg) {
                text.push_str(&format!("\n• {line}"));
            }
            if !msg.runbook_url.is_empty() {
                text.push_str(&format!("\nRunbook: {}", msg.runbook_url));
            }
            text.push_str(&format!("\n<{}|Open in Modelwatch>", absolute(settings, &msg.alerts_page)));
            let body = serde_json::to_vec(&serde_json::json!({"text": text})).map_err(|e| e.to_string())?;
            check(post(&c.url, body).send().await).await
        }
        "pagerduty" => {
            let alert = msg.alerts.first();
            let model = alert.map(|a| a.model.clone()).unwrap_or_else(|| "modelwatch".into());
            let action = if msg.event == "resolved" { "resolve" } else { "trigger" };
            let severity = match alert.map(|a| a.severity.as_str()) {
                Some("critical") => "critical",
                Some("warning") => "warning",
                _ => "info",
            };
            let dedup = match msg.rule_id {
                Some(r) => format!("modelwatch-rule-{r}-{model}"),
                None => format!("modelwatch-test-{}", n.id),
            };
            let body = serde_json::json!({
                "routing_key": c.secret,
                "event_action": action,
                "dedup_key": dedup,
                "payload": {"summary": msg.summary, "source": model, "severity": severity, "component": model,
                            "group": msg.rule, "class": msg.metric,
                            "custom_details": {"condition": msg.condition, "description": msg.description, "value": alert.and_then(|a| a.value)}},
                "links": [{"href": absolute(settings, &msg.alerts_page), "text": "Modelwatch"}],
            });
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            check(post(&c.url, bytes).send().await).await?;
            if msg.event == "test" {
                // A test should not leave an open incident behind.
                let resolve = serde_json::json!({"routing_key": c.secret, "event_action": "resolve", "dedup_key": dedup});
                let bytes = serde_json::to_vec(&resolve).map_err(|e| e.to_string())?;
                check(post(&c.url, bytes).send().await).await?;
            }
            Ok(())
        }
        "email" => send_email(settings, c, msg).await,
        other => Err(format!("unknown channel kind {other}")),
    }
}

async fn send_email(settings: &AlertSettings, c: &AlertChannel, msg: &Message) -> Result<(), String> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let url = settings.smtp_url.as_deref().ok_or("no SMTP server configured (set MODELWATCH_SMTP_URL)")?;
    let mut body = format!("{}\n\n", msg.summary);
    if !msg.condition.is_empty() {
        body.push_str(&format!("Condition: {}\n", msg.condition));
    }
    for line in alert_lines(settings, msg) {
        body.push_str(&format!("- {line}\n"));
    }
    if !msg.description.is_empty() {
        body.push_str(&format!("\n{}\n", msg.description));
    }
    if !msg.runbook_url.is_empty() {
        body.push_str(&format!("\nRunbook: {}\n", msg.runbook_url));
    }
    body.push_str(&format!("\n{}\n", absolute(settings, &msg.alerts_page)));
    let from = settings.smtp_from.parse().map_err(|e| format!("bad sender address {}: {e}", settings.smtp_from))?;
    let mut builder = lettre::Message::builder().from(from).subject(msg.summary.clone());
    for to in &c.to {
        builder = builder.to(to.parse().map_err(|e| format!("bad recipient {to}: {e}"))?);
    }
    let email = builder.body(body).map_err(|e| e.to_string())?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| format!("bad SMTP URL: {e}"))?
        .timeout(Some(Duration::from_secs(10)))
        .build();
    transport.send(email).await.map(|_| ()).map_err(|e| format!("SMTP: {e}"))
}
