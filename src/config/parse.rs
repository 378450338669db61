//! How each setting's text becomes its value. Every layer (file, environment, flag) is
//! read as text and parsed here, so the same value means the same thing in any layer, and
//! a bad value fails with the same one-line message naming the variable.

use super::ConfigError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn bad(var: &str, msg: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{var}: {msg}"))
}

pub(super) fn addr(var: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .map_err(|_| bad(var, format!("expected host:port, got {s:?}")))
}

pub(super) fn path(_: &str, s: &str) -> Result<PathBuf, ConfigError> {
    Ok(PathBuf::from(s))
}

/// Empty is unset.
pub(super) fn secret(_: &str, s: &str) -> Result<Option<String>, ConfigError> {
    Ok(Some(s.to_owned()).filter(|s| !s.is_empty()))
}

/// Comma-separated, blanks dropped.
pub(super) fn tokens(_: &str, s: &str) -> Result<Vec<String>, ConfigError> {
    Ok(s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect())
}

pub(super) fn boolean(var: &str, s: &str) -> Result<bool, ConfigError> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(bad(var, format!("expected true or false, got {s:?}"))),
    }
}

fn duration(var: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s).map_err(|_| {
        bad(
            var,
            format!("expected a duration such as 30s or 1500ms, got {s:?}"),
        )
    })
}

pub(super) fn positive_duration(var: &str, s: &str) -> Result<Duration, ConfigError> {
    let d = duration(var, s)?;
    if d.is_zero() {
        return Err(bad(var, "must be longer than zero"));
    }
    Ok(d)
}

/// Comma-separated durations; empty for none.
pub(super) fn durations(var: &str, s: &str) -> Result<Vec<Duration>, ConfigError> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(|d| duration(var, d.trim())).collect()
}

pub(super) fn positive<T: std::str::FromStr + PartialOrd + Default>(
    var: &str,
    s: &str,
) -> Result<T, ConfigError> {
    s.parse::<T>()
        .ok()
        .filter(|n| *n > T::default())
        .ok_or_else(|| bad(var, format!("expected a positive number, got {s:?}")))
}

/// A whole number, 0 included.
pub(super) fn count(var: &str, s: &str) -> Result<u32, ConfigError> {
    s.parse::<u32>()
        .map_err(|_| bad(var, format!("expected a whole number, got {s:?}")))
}

pub(super) fn code_length(var: &str, s: &str) -> Result<usize, ConfigError> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (4..=64).contains(n))
        .ok_or_else(|| bad(var, format!("expected 4 to 64, got {s:?}")))
}

/// An http(s) origin (optionally with a path prefix), without its trailing slash so that
/// `{base}/{code}` never doubles it.
pub(super) fn origin(var: &str, s: &str) -> Result<String, ConfigError> {
    let refused = || bad(var, format!("expected an http(s) URL, got {s:?}"));
    let url = url::Url::parse(s).map_err(|_| refused())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refused());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(var, "must not have a query or fragment"));
    }
    Ok(String::from(url).trim_end_matches('/').to_owned())
}

/// A destination the public listener redirects to; empty is unset.
pub(super) fn fallback(var: &str, s: &str) -> Result<Option<String>, ConfigError> {
    if s.is_empty() {
        return Ok(None);
    }
    crate::domain::Destination::parse(s)
        .map(|d| Some(d.as_str().to_owned()))
        .map_err(|e| bad(var, e.message))
}

/// One `redis://` or `rediss://` URL, or several, comma-separated (the nodes of a Redis
/// Cluster); empty is unset (the embedded store). Never echoed: it may carry a password.
pub(super) fn redis_url(var: &str, s: &str) -> Result<Option<String>, ConfigError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let urls: Vec<&str> = s.split(',').map(str::trim).collect();
    for (n, u) in urls.iter().enumerate() {
        match url::Url::parse(u) {
            Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some() => {}
            _ => {
                return Err(bad(
                    var,
                    format!(
                        "URL {} of {}: expected a redis:// or rediss:// URL with a host",
                        n + 1,
                        urls.len()
                    ),
                ));
            }
        }
    }
    Ok(Some(urls.join(",")))
}

/// A `RUST_LOG`-style filter.
pub(super) fn log_filter(var: &str, s: &str) -> Result<String, ConfigError> {
    tracing_subscriber::EnvFilter::try_new(s).map_err(|e| bad(var, e))?;
    Ok(s.to_owned())
}
