//! `modelwatch`: the server and its administration commands.

use std::process::ExitCode;

use clap::Parser;
use modelwatch::cli::{Cli, Command};
use modelwatch::config::Config;
use modelwatch::startup::Application;
use modelwatch::{demo, keys, telemetry, users};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_args(&cli.global)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(&config).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::User(cmd) => users::run(&config, cmd).await,
        Command::Key(cmd) => keys::run(&config, cmd).await,
        Command::Demo { days, no_live } => {
            let app = Application::build(&config).await?;
            let engine = app.engine.clone();
            let filler = tokio::spawn(async move {
                tracing::info!(days, "writing demo history (runs once per database)");
                match demo::backfill(&engine, days).await {
                    Ok(0) => tracing::info!("demo history already present"),
                    Ok(n) => tracing::info!(records = n, "demo history written; open the overview"),
                    Err(e) => tracing::error!(error = %e, "demo history failed"),
                }
                if !no_live {
                    tracing::info!("sending live demo traffic every second");
                    demo::live(engine).await;
                }
            });
            let result = app.run_until(shutdown_signal()).await;
            filler.abort();
            result
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C; the server then stops accepting and finishes open requests.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing open requests");
}
