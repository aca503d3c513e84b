//! Command line: `modelwatch [serve]`, `modelwatch user …`. Every flag has a matching
//! environment variable; precedence is flag > environment > default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "modelwatch", version, about = "Self-hosted monitoring and logging for AI models")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Address to listen on.
    #[arg(long, env = "MODELWATCH_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// Database URL: sqlite://PATH (default: <data-dir>/modelwatch.db) or postgres://USER:PASS@HOST/DB.
    #[arg(long, env = "MODELWATCH_DATABASE_URL", global = true, hide_env_values = true)]
    pub database: Option<String>,
    /// Directory for the embedded database and the generated secret key.
    #[arg(long, env = "MODELWATCH_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Log format on stderr.
    #[arg(long, env = "MODELWATCH_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub ingest: IngestArgs,
}

/// Limits of the ingest API (see docs/ingest.md).
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Largest request body accepted by the ingest endpoints, in bytes (compressed size); larger gets 413.
    #[arg(long, env = "MODELWATCH_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Largest body after gzip decompression, in bytes.
    #[arg(long, env = "MODELWATCH_MAX_DECOMPRESSED_BYTES", default_value_t = 64 * 1024 * 1024, global = true)]
    pub max_decompressed_bytes: usize,
    /// Most records (or metric points) in one request.
    #[arg(long, env = "MODELWATCH_MAX_BATCH_RECORDS", default_value_t = 10_000, global = true)]
    pub max_batch_records: usize,
    /// Records that may wait for the database writer before ingest answers 429.
    #[arg(long, env = "MODELWATCH_INGEST_QUEUE_RECORDS", default_value_t = 200_000, global = true)]
    pub ingest_queue_records: usize,
    /// SQLite only: how long user and metadata breakdown deltas may be held in memory and merged
    /// together (fewer rollup writes); 0 merges them in every commit.
    #[arg(long, env = "MODELWATCH_BREAKDOWN_FLUSH_MS", default_value_t = 2_000, global = true)]
    pub breakdown_flush_ms: u64,
    /// Request and response text are each cut to this many bytes before storing (flagged as truncated).
    #[arg(long, env = "MODELWATCH_PAYLOAD_CAP_BYTES", default_value_t = 32 * 1024, global = true)]
    pub payload_cap_bytes: usize,
    /// Index message, error message and payload text for full-text search in the log explorer
    /// (`off` saves ingest time and disk on ingest-heavy installs).
    #[arg(long, env = "MODELWATCH_FULL_TEXT", default_value = "on", value_parser = ["on", "off"], global = true)]
    pub full_text: String,
    /// Serve `GET /metrics` without an API key (otherwise it needs a key with the `read` scope).
    #[arg(long, env = "MODELWATCH_METRICS_PUBLIC", default_value_t = false, global = true)]
    pub metrics_public: bool,
    /// Most models ingest may register (records naming a new model beyond it are refused;
    /// models an admin creates are not limited).
    #[arg(long, env = "MODELWATCH_MAX_MODELS", default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..), global = true)]
    pub max_models: i64,
    /// Most new models one API key may register in a minute.
    #[arg(long, env = "MODELWATCH_MAX_NEW_MODELS_PER_KEY_PER_MINUTE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_new_models_per_key_per_minute: u32,
    /// OTLP: the attribute (on the span, log record or data point, else the resource) that
    /// names the model of data without GenAI model attributes; otherwise `service.name` is used.
    #[arg(long, env = "MODELWATCH_OTLP_MODEL_ATTRIBUTE", default_value = "modelwatch.model", global = true)]
    pub otlp_model_attribute: String,
    /// OTLP: what to do with spans that have no GenAI attributes: `keep` them as event records
    /// of their model or service, or `drop` them.
    #[arg(long, env = "MODELWATCH_OTLP_PLAIN_SPANS", default_value = "keep", value_parser = ["keep", "drop"], global = true)]
    pub otlp_plain_spans: String,
    /// Scrape the Prometheus endpoints listed under Admin → Scrape targets (`off` in all but one
    /// process when several share a database).
    #[arg(long, env = "MODELWATCH_SCRAPE", default_value = "on", value_parser = ["on", "off"], global = true)]
    pub scrape: String,
    /// How often alert rules are evaluated, in seconds.
    #[arg(long, env = "MODELWATCH_ALERT_INTERVAL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub alert_interval_secs: u64,
    /// The address users reach Modelwatch at, for links in notifications (default: http://<listen>).
    #[arg(long, env = "MODELWATCH_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// SMTP server for e-mail channels: smtp://user:pass@host:587 (STARTTLS), smtps://… (TLS),
    /// or smtp://host:25?tls=none… see docs/alerts.md.
    #[arg(long, env = "MODELWATCH_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// Let alert channels and scrape targets reach internal addresses: `all` (or `true`) for
    /// loopback, private, CGNAT and other non-public ranges, or a comma-separated list of CIDRs,
    /// e.g. `10.0.0.0/8,127.0.0.1/32`. Default: public addresses only. Link-local and cloud
    /// metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, …) are refused always.
    #[arg(long, env = "MODELWATCH_ALLOW_PRIVATE_TARGETS", global = true)]
    pub allow_private_targets: Option<String>,
    /// Sender of alert e-mails.
    #[arg(long, env = "MODELWATCH_SMTP_FROM", default_value = "Modelwatch <modelwatch@localhost>", global = true)]
    pub smtp_from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys for ingest and the read API.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Serve with sample data: a week of history for five models, then live traffic.
    Demo {
        /// Days of history to write (once; skipped when the demo models already have data).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(0..=90))]
        days: i64,
        /// Write the history only, without live traffic.
        #[arg(long)]
        no_live: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it (shown once; only its hash is stored).
    Create {
        /// What the key is for, e.g. "litellm gateway".
        #[arg(long)]
        name: String,
        /// ingest, read, or both (repeat the flag).
        #[arg(long = "scope", default_values_t = vec!["ingest".to_string()])]
        scopes: Vec<String>,
        /// Limit the key to this model (repeat for several); default: every model.
        #[arg(long = "model")]
        models: Vec<String>,
        /// Do not store request/response payloads sent with this key.
        #[arg(long)]
        no_payloads: bool,
    },
    /// List keys: name, prefix, scopes, models, creator, last use.
    List,
    /// Revoke a key by id; clients using it get 401 at once.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input, or generated and printed.
    Add {
        name: String,
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (read from standard input, or generated and printed). Ends their sessions.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their role, state and grants.
    List,
    /// Lift login throttling for a user: failed logins so far stop counting, from every address.
    /// Works on a running server (it reads the unlock from the database at each login).
    Unlock { name: String },
}
