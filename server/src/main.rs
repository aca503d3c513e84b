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

/// `mi_option_purge_delay` and `mi_option_allow_thp` in mimalloc 3's `mi_option_e` (the
/// crate names no constants for them).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// How long mimalloc keeps freed memory before returning it to the system.
const PURGE_DELAY_MS: std::ffi::c_long = 250;

/// Allocator settings for the ingest load (docs/benchmarks.md, "150,000 logs/s: allocator
/// settings and less CPU per log"; docs/decisions.md):
///
/// - No transparent huge pages. mimalloc asks for them on its arenas; under ingest load the
///   kernel then zeroes 2 MiB pages on first touch and splits them again when freed memory is
///   returned, with a TLB flush on both cores each time (~13 % of server CPU in a profile).
///   Without them peak RSS also fell by a third.
/// - Freed memory kept for 250 ms instead of returned at once (mimalloc's default is a second,
///   which put RSS over the 200 MB target before huge pages were off): requests reuse it
///   instead of faulting fresh pages in.
///
/// `MIMALLOC_ALLOW_THP` and `MIMALLOC_PURGE_DELAY` in the environment still win.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: sets a process-wide option of the allocator linked above; mimalloc reads it
        // on each new mapping. prctl only sets a flag of this process (checked by the kernel
        // at each page fault, so it also covers what mimalloc mapped before `main`).
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: as above; mimalloc reads the delay on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
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
    fn the_allocator_is_tuned_for_ingest() {
        // SAFETY: reads options of the linked allocator and a flag of this process.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        let thp_disabled = || unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() && std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            // mimalloc 3's defaults: proves the indices name those options.
            assert_eq!(get(MI_OPTION_PURGE_DELAY), 1000);
            assert_eq!(get(MI_OPTION_ALLOW_THP), 1);
            tune_allocator();
            assert_eq!(get(MI_OPTION_PURGE_DELAY), PURGE_DELAY_MS);
            assert_eq!(get(MI_OPTION_ALLOW_THP), 0);
            assert_eq!(thp_disabled(), 1);
        }
    }
}
