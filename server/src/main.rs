//! `modelwatch`: the server and its administration commands.

use std::process::ExitCode;

use clap::Parser;
use modelwatch::cli::{Cli, Command};
use modelwatch::config::Config;
use modelwatch::startup::Application;
use modelwatch::{demo, keys, telemetry, users};

// glibc's malloc took about a fifth of the server's CPU under ingest load (many small,
// short-lived allocations across threads); mimalloc is built for exactly that
// (docs/benchmarks.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc 3 keeps freed memory for a second before returning it to the system, which put
/// the server at ~235 MB under full ingest load; returning it at once keeps it under 200 MB
/// for a few per cent of throughput. `MIMALLOC_PURGE_DELAY` in the environment still wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide option of the allocator linked above; mimalloc allows
        // options to be changed at any time and reads them on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> ExitCode {
    tune_allocator();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_set_to_zero() {
        // SAFETY: reads options of the linked allocator.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc 3's default for purge_delay: proves the index names that option.
            assert_eq!(get(), 1000);
            tune_allocator();
            assert_eq!(get(), 0);
        }
    }
}
