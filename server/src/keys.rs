//! `modelwatch key create|list|revoke`: API key administration from the machine's shell, through
//! the same engine operations as the admin page.

use anyhow::{Context, Result};
use engine::{ApiKeyInput, AuthSettings, Engine, Principal, Scope};

use crate::cli::KeyCommand;
use crate::config::Config;

fn when(ms: Option<i64>) -> String {
    ms.map(engine::utc_minute_text).unwrap_or_else(|| "never".to_string())
}

pub async fn run(config: &Config, cmd: KeyCommand) -> Result<()> {
    let engine = Engine::open(&config.database_url, &config.secret, AuthSettings::default())
        .await
        .with_context(|| format!("cannot open the database ({})", crate::startup::redact_url(&config.database_url)))?;
    let op = Principal::operator();
    let result = match cmd {
        KeyCommand::Create { name, scopes, models, no_payloads } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s).ok_or_else(|| anyhow::anyhow!("unknown scope {s:?}; use ingest or read")))
                .collect::<Result<Vec<_>>>()?;
            let input = ApiKeyInput { name, scopes, models, capture_payloads: !no_payloads };
            let (key, secret) = engine.create_api_key(&op, input).await.map_err(crate::users::explain)?;
            println!("created API key {} (id {}, scopes {})", key.name, key.id, scope_text(&key.scopes));
            println!("key: {secret}");
            println!("This is the only time the key is shown. Send it as: Authorization: Bearer <key>");
            Ok(())
        }
        KeyCommand::List => {
            println!("{:<5} {:<24} {:<14} {:<13} {:<10} {:<20} {}", "id", "name", "prefix", "scopes", "created by", "last used", "models");
            for k in engine.list_api_keys(&op).await.map_err(crate::users::explain)? {
                let models = k.models.as_ref().map(|m| m.join(",")).unwrap_or_else(|| "(all)".into());
                let name = if k.revoked_at.is_some() { format!("{} (revoked)", k.name) } else { k.name.clone() };
                println!(
                    "{:<5} {:<24} {:<14} {:<13} {:<10} {:<20} {}",
                    k.id,
                    name,
                    k.prefix,
                    scope_text(&k.scopes),
                    k.created_by.as_deref().unwrap_or("operator"),
                    when(k.last_used_at),
                    models
                );
            }
            Ok(())
        }
        KeyCommand::Revoke { id } => {
            engine.revoke_api_key(&op, id).await.map_err(crate::users::explain)?;
            println!("revoked API key {id}");
            Ok(())
        }
    };
    engine.shutdown().await;
    result
}

fn scope_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}
