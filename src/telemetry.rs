//! Structured logs through `tracing`, filtered by `AKTI_LOG` (`RUST_LOG` syntax).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. An invalid filter is a configuration error.
pub fn init(filter: &str) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(filter).map_err(|e| format!("invalid configuration: AKTI_LOG: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only for a terminal; log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init()
        .map_err(|e| e.to_string())
}
