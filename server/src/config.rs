//! Resolved configuration: where the data lives, which database, and the instance secret.
//! Anything invalid stops the start with a message that says what to fix.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use engine::SecretKey;

use crate::cli::GlobalArgs;

pub const SECRET_KEY_ENV: &str = "MODELWATCH_SECRET_KEY";
pub const ADMIN_PASSWORD_ENV: &str = "MODELWATCH_ADMIN_PASSWORD";
const SECRET_KEY_FILE: &str = "secret.key";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub secret: SecretKey,
    pub admin_password: Option<String>,
    pub ingest: engine::ingest::IngestSettings,
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: usize,
    /// `GET /metrics` without an API key.
    pub metrics_public: bool,
    /// Run the scraper of Prometheus scrape targets in this process.
    pub scrape: bool,
    /// Alert evaluation and delivery.
    pub alerts: crate::alerting::AlertSettings,
    /// Which addresses alert channels and scrape targets may reach.
    pub targets: engine::outbound::TargetPolicy,
}

impl Config {
    pub fn from_args(args: &GlobalArgs) -> Result<Config> {
        let data_dir = args.data_dir.clone();
        fs::create_dir_all(&data_dir).with_context(|| {
            format!("cannot create the data directory {} (set --data-dir or MODELWATCH_DATA_DIR)", data_dir.display())
        })?;
        let database_url = match &args.database {
            Some(url) => {
                let url = url.trim().to_string();
                if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    bail!("MODELWATCH_DATABASE_URL / --database must start with sqlite:// or postgres://");
                }
                url
            }
            None => format!("sqlite://{}", data_dir.join("modelwatch.db").display()),
        };
        let secret = load_secret(std::env::var(SECRET_KEY_ENV).ok(), &data_dir)?;
        let admin_password = std::env::var(ADMIN_PASSWORD_ENV).ok().filter(|s| !s.is_empty());
        if let Some(pw) = &admin_password {
            if pw.chars().count() < 8 {
                bail!("{ADMIN_PASSWORD_ENV} must be at least 8 characters long");
            }
        }
        let i = &args.ingest;
        if i.max_batch_records == 0 || i.ingest_queue_records < i.max_batch_records {
            bail!("MODELWATCH_INGEST_QUEUE_RECORDS must be at least MODELWATCH_MAX_BATCH_RECORDS (and both above 0)");
        }
        if i.max_body_bytes < 1024 || i.max_decompressed_bytes < i.max_body_bytes {
            bail!("MODELWATCH_MAX_BODY_BYTES must be at least 1024 and at most MODELWATCH_MAX_DECOMPRESSED_BYTES");
        }
        let mut ingest = engine::ingest::IngestSettings::default();
        ingest.limits.max_records = i.max_batch_records;
        ingest.writer.queue_records = i.ingest_queue_records;
        ingest.writer.breakdown_flush = std::time::Duration::from_millis(i.breakdown_flush_ms.min(60_000));
        ingest.payload_cap_bytes = i.payload_cap_bytes.max(1);
        ingest.full_text = i.full_text == "on";
        if i.otlp_model_attribute.trim().is_empty() {
            bail!("MODELWATCH_OTLP_MODEL_ATTRIBUTE / --otlp-model-attribute must name an attribute");
        }
        ingest.otlp.model_attribute = i.otlp_model_attribute.trim().to_string();
        ingest.otlp.plain_spans = i.otlp_plain_spans == "keep";
        ingest.model_limits =
            engine::ingest::admission::ModelLimits { max_models: i.max_models, new_per_key_per_minute: i.max_new_models_per_key_per_minute };
        let targets = engine::outbound::TargetPolicy::parse(i.allow_private_targets.as_deref().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("MODELWATCH_ALLOW_PRIVATE_TARGETS / --allow-private-targets: {e}"))?;
        Ok(Config {
            listen: args.listen,
            database_url,
            secret,
            admin_password,
            ingest,
            max_body_bytes: i.max_body_bytes,
            max_decompressed_bytes: i.max_decompressed_bytes,
            metrics_public: i.metrics_public,
            scrape: i.scrape == "on",
            alerts: crate::alerting::AlertSettings {
                interval: std::time::Duration::from_secs(i.alert_interval_secs),
                public_url: match &i.public_url {
                    Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.trim_end_matches('/').to_string(),
                    Some(_) => bail!("MODELWATCH_PUBLIC_URL / --public-url must start with http:// or https://"),
                    None => format!("http://{}", args.listen.to_string().replace("0.0.0.0", "127.0.0.1")),
                },
                smtp_url: i.smtp_url.clone().filter(|u| !u.is_empty()),
                smtp_from: i.smtp_from.clone(),
            },
            targets,
        })
    }
}

/// The key from the environment, else the one kept in the data dir, else a new one written there (mode 0600).
fn load_secret(from_env: Option<String>, data_dir: &Path) -> Result<SecretKey> {
    if let Some(key) = from_env.filter(|k| !k.is_empty()) {
        return SecretKey::new(key.into_bytes())
            .map_err(|_| anyhow::anyhow!("{SECRET_KEY_ENV} must be at least {} characters long", SecretKey::MIN_LEN));
    }
    let path = data_dir.join(SECRET_KEY_FILE);
    if path.exists() {
        let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "secret key file is readable by others; fixing to 0600");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        let key = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return SecretKey::new(key.trim().as_bytes().to_vec())
            .map_err(|_| anyhow::anyhow!("{} is too short; delete it to generate a new key (this logs everyone out)", path.display()));
    }
    let key = SecretKey::generate_hex();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write the secret key to {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new secret key");
    Ok(SecretKey::new(key.into_bytes()).expect("generated key is long enough"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        load_secret(None, dir.path()).unwrap();
        let path = dir.path().join(SECRET_KEY_FILE);
        let first = fs::read_to_string(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        load_secret(None, dir.path()).unwrap();
        assert_eq!(first, fs::read_to_string(&path).unwrap(), "key must be kept, not regenerated");
        assert!(load_secret(Some("short".into()), dir.path()).is_err());
    }
}
