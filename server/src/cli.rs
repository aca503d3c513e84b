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
}
