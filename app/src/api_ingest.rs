//! Server functions for the write path's admin side: API keys, ingest rules, prices and payload
//! capture. Thin like the rest: the engine authorises (admins only) and validates.

use engine::{ApiKey, IngestRule, Price};
use leptos::prelude::*;

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::session::caller;

#[server(prefix = "/fn", endpoint = "list_api_keys")]
pub async fn list_api_keys() -> Result<Vec<ApiKey>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_api_keys(&p).await?)
}

/// Creates a key and returns its secret, shown once. Checkboxes: absent means off.
#[server(prefix = "/fn", endpoint = "create_api_key")]
pub async fn create_api_key(
    name: String,
    scope_ingest: Option<String>,
    scope_read: Option<String>,
    models: Option<String>,
    no_payloads: Option<String>,
) -> Result<String, AppError> {
    let (engine, p) = caller().await?;
    let mut scopes = Vec::new();
    if scope_ingest.is_some() {
        scopes.push(engine::Scope::Ingest);
    }
    if scope_read.is_some() {
        scopes.push(engine::Scope::Read);
    }
    let models = models.unwrap_or_default().split([',', ' ', '\n']).filter(|m| !m.is_empty()).map(str::to_string).collect();
    let input = engine::ApiKeyInput { name, scopes, models, capture_payloads: no_payloads.is_none() };
    let (_, secret) = engine.create_api_key(&p, input).await?;
    Ok(secret)
}

#[server(prefix = "/fn", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: i64) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.revoke_api_key(&p, id).await?)
}

#[server(prefix = "/fn", endpoint = "list_rules")]
pub async fn list_rules() -> Result<Vec<IngestRule>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_rules(&p).await?)
}

/// Creates (id 0 or absent) or updates an ingest rule from the rule form.
#[server(prefix = "/fn", endpoint = "save_rule")]
#[allow(clippy::too_many_arguments)]
pub async fn save_rule(
    id: Option<i64>,
    position: Option<i64>,
    name: String,
    enabled: Option<String>,
    model: Option<String>,
    kind: String,
    levels: Option<String>,
    status: Option<String>,
    metadata_key: Option<String>,
    metadata_value: Option<String>,
    keep_percent: Option<f64>,
    slow_ms: Option<f64>,
    pii_email: Option<String>,
    pii_phone: Option<String>,
    pii_credit_card: Option<String>,
    pii_secret: Option<String>,
    pii_ip_address: Option<String>,
    custom_name: Option<String>,
    custom_regex: Option<String>,
) -> Result<IngestRule, AppError> {
    use engine::{CustomRedaction, RuleAction};
    let (engine, p) = caller().await?;
    let text = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let action = match kind.as_str() {
        "drop" => RuleAction::Drop {
            levels: levels.unwrap_or_default().split([',', ' ']).filter(|l| !l.is_empty()).map(str::to_string).collect(),
            status: text(status),
            metadata_key: text(metadata_key),
            metadata_value: text(metadata_value),
        },
        "sample" => RuleAction::Sample {
            keep_percent: keep_percent.ok_or_else(|| engine::Error::invalid("keep_percent", "how many percent to keep?"))?,
            slow_ms,
        },
        "redact" => {
            let mut kinds = Vec::new();
            for (on, kind) in [
                (pii_email, "email"),
                (pii_phone, "phone"),
                (pii_credit_card, "credit_card"),
                (pii_secret, "secret"),
                (pii_ip_address, "ip_address"),
            ] {
                if on.is_some() {
                    kinds.push(kind.to_string());
                }
            }
            let custom = match (text(custom_name), text(custom_regex)) {
                (Some(name), Some(regex)) => vec![CustomRedaction { name, regex }],
                (None, None) => vec![],
                _ => return Err(engine::Error::invalid("custom_regex", "a custom pattern needs both a name and a regex").into()),
            };
            RuleAction::Redact { kinds, custom }
        }
        other => return Err(engine::Error::invalid("kind", format!("unknown rule kind {other:?}")).into()),
    };
    let rule = IngestRule {
        id: id.unwrap_or(0),
        position: position.unwrap_or(100),
        name,
        enabled: enabled.is_some(),
        model: model.unwrap_or_default(),
        action,
    };
    Ok(engine.save_rule(&p, rule).await?)
}

#[server(prefix = "/fn", endpoint = "delete_rule")]
pub async fn delete_rule(id: i64) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.delete_rule(&p, id).await?)
}

#[server(prefix = "/fn", endpoint = "list_prices")]
pub async fn list_prices() -> Result<Vec<Price>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_prices(&p).await?)
}

#[server(prefix = "/fn", endpoint = "save_price")]
pub async fn save_price(pattern: String, input_per_mtok: f64, output_per_mtok: f64, cached_input_per_mtok: Option<f64>) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    let price = Price { pattern, input_per_mtok, output_per_mtok, cached_input_per_mtok: cached_input_per_mtok.unwrap_or(input_per_mtok) };
    Ok(engine.save_price(&p, price).await?)
}

#[server(prefix = "/fn", endpoint = "delete_price")]
pub async fn delete_price(pattern: String) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.delete_price(&p, &pattern).await?)
}

/// Turns payload capture on or off for a model (checkbox: absent means off).
#[server(prefix = "/fn", endpoint = "set_model_capture")]
pub async fn set_model_capture(name: String, capture: Option<String>) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.set_model_capture(&p, &name, capture.is_some()).await?)
}

#[server(prefix = "/fn", endpoint = "list_scrape_targets")]
pub async fn list_scrape_targets() -> Result<Vec<engine::types::ScrapeTarget>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_scrape_targets(&p).await?)
}

/// Creates (id 0 or absent) or changes a scrape target from the target form. `keep` holds one
/// series name or pattern per line (or separated by commas).
#[server(prefix = "/fn", endpoint = "save_scrape_target")]
pub async fn save_scrape_target(
    id: Option<i64>,
    model: String,
    url: String,
    interval_secs: i64,
    preset: String,
    keep: Option<String>,
    enabled: Option<String>,
) -> Result<engine::types::ScrapeTarget, AppError> {
    let (engine, p) = caller().await?;
    let keep = keep.unwrap_or_default().split(['\n', ',']).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let target = engine::types::ScrapeTarget {
        id: id.unwrap_or(0),
        model,
        url,
        interval_secs,
        preset,
        keep,
        enabled: enabled.is_some(),
        last_scrape_ms: None,
        last_duration_ms: None,
        last_error: None,
        last_points: None,
        last_success_ms: None,
    };
    Ok(engine.save_scrape_target(&p, target).await?)
}

#[server(prefix = "/fn", endpoint = "delete_scrape_target")]
pub async fn delete_scrape_target(id: i64) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.delete_scrape_target(&p, id).await?)
}
