//! The `akti-link` binary: read the configuration, build the app, serve until SIGTERM or
//! Ctrl-C.

use akti_link::app::App;
use akti_link::config::{Cli, Config};
use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: a redirect makes some forty short-lived
/// allocations (hyper, axum, the cache), where glibc's malloc costs a good part of the
/// redirect path (`bench/NOTES.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("akti-link: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = akti_link::telemetry::init(&config.log) {
        eprintln!("akti-link: {e}");
        return ExitCode::from(2);
    }
    if config.admin_token.is_empty() {
        tracing::warn!("AKTI_ADMIN_TOKEN is not set: the admin API answers 401 to every request");
    }
    tracing::info!(
        store = config.store_name(),
        "using the {} store",
        config.store_name()
    );
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("akti-link: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        public = %app.public_addr(),
        admin = %app.admin_addr(),
        "listening"
    );
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        shutdown.cancel();
    });
    app.run().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
