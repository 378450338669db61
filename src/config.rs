//! Layered configuration: built-in defaults, then a TOML file (`config/default.toml` or the
//! file named by `AKTI_CONFIG`), then `AKTI_*` environment variables or the equivalent
//! command-line flags. Everything is validated here, once, into [`Config`]; the rest of the
//! crate only sees typed values.
//!
//! Every layer is read as text and parsed by the same functions, so `code_length = 8` in
//! the file and `AKTI_CODE_LENGTH=8` in the environment can never mean different things,
//! and a bad value in any layer fails with the same one-line message.

use clap::Parser;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Short links for SMS campaigns: redirects, click tracking and signed webhooks.
///
/// Every option can also be set in the environment (shown as [env: …]) or in the TOML
/// config file; flags win over the environment, which wins over the file.
#[derive(Debug, Default, Parser, Serialize)]
#[command(name = "akti-link", version)]
pub struct Cli {
    /// Path of a TOML config file [default: config/default.toml if present]
    #[arg(long, env = "AKTI_CONFIG", value_name = "PATH")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Listener for redirects (public) [default: 0.0.0.0:8080]
    #[arg(long, env = "AKTI_PUBLIC_ADDR", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<String>,
    /// Listener for the admin API and /metrics (keep it private) [default: 127.0.0.1:8081]
    #[arg(long, env = "AKTI_ADMIN_ADDR", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_addr: Option<String>,
    /// Origin of short URLs [default: https://link.akti.fyi]
    #[arg(long, env = "AKTI_BASE_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// redis:// or rediss:// URL of the shared store [default: unset, embedded store]
    #[arg(
        long,
        env = "AKTI_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Directory of the embedded store's files [default: ./data]
    #[arg(long, env = "AKTI_DATA_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Admin bearer token(s), comma-separated [default: unset, the admin API answers 401]
    #[arg(
        long,
        env = "AKTI_ADMIN_TOKEN",
        value_name = "TOKENS",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Click dedup window, e.g. 30s or 1500ms [default: 30s]
    #[arg(long, env = "AKTI_DEDUP_WINDOW", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_window: Option<String>,
    /// Timeout of one webhook delivery attempt [default: 15s]
    #[arg(long, env = "AKTI_WEBHOOK_TIMEOUT", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_timeout: Option<String>,
    /// Delays between webhook attempts [default: 5s,5m,30m,2h,5h,10h,10h]
    #[arg(long, env = "AKTI_WEBHOOK_RETRY_SCHEDULE", value_name = "DURATIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_retry_schedule: Option<String>,
    /// Allow webhook targets on loopback and private addresses [default: false]
    #[arg(long, env = "AKTI_WEBHOOK_ALLOW_PRIVATE", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_allow_private: Option<String>,
    /// Length of generated short codes, 4 to 64 [default: 8]
    #[arg(long, env = "AKTI_CODE_LENGTH", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_length: Option<String>,
    /// How long messages are kept for late status reports [default: 7d]
    #[arg(long, env = "AKTI_MESSAGE_TTL", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_ttl: Option<String>,
    /// Validates Twilio status callbacks [default: unset, the callback answers 403]
    #[arg(
        long,
        env = "AKTI_TWILIO_AUTH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_auth_token: Option<String>,
    /// Log filter, RUST_LOG syntax [default: info]
    #[arg(long, env = "AKTI_LOG", value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Redirect unknown, disabled and expired codes here instead of answering 404/410
    /// [default: unset]
    #[arg(long, env = "AKTI_FALLBACK_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_url: Option<String>,
    /// Run the webhook dispatcher in this instance; false for redirect-only instances
    /// [default: true]
    #[arg(long, env = "AKTI_DISPATCH", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<String>,
    /// Most links kept in each instance's redirect cache [default: 100000]
    #[arg(long, env = "AKTI_CACHE_CAPACITY", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_capacity: Option<String>,
    /// Longest time an unused link stays in the redirect cache (freshness comes from the
    /// change feed, confirmed several times a second, not from this) [default: 10m]
    #[arg(long, env = "AKTI_CACHE_TTL", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<String>,
    /// Most open connections on the public listener (lowered to what the open-file limit
    /// allows) [default: 10000]
    #[arg(long, env = "AKTI_MAX_CONNECTIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<String>,
    /// Time a client has to send a request's headers, from the connection's start or the
    /// request's first byte [default: 10s]
    #[arg(long, env = "AKTI_HEADER_TIMEOUT", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_timeout: Option<String>,
    /// Time a connection may stay open between requests [default: 75s]
    #[arg(long, env = "AKTI_IDLE_TIMEOUT", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// How long events and the delivery log are kept [default: 7d]
    #[arg(long, env = "AKTI_EVENT_RETENTION", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_retention: Option<String>,
}

/// The file and flag layers before validation: every value as text.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, deserialize_with = "text")]
    public_addr: Option<String>,
    #[serde(default, deserialize_with = "text")]
    admin_addr: Option<String>,
    #[serde(default, deserialize_with = "text")]
    base_url: Option<String>,
    #[serde(default, deserialize_with = "text")]
    redis_url: Option<String>,
    #[serde(default, deserialize_with = "text")]
    data_dir: Option<String>,
    #[serde(default, deserialize_with = "text")]
    admin_token: Option<String>,
    #[serde(default, deserialize_with = "text")]
    dedup_window: Option<String>,
    #[serde(default, deserialize_with = "text")]
    webhook_timeout: Option<String>,
    #[serde(default, deserialize_with = "text")]
    webhook_retry_schedule: Option<String>,
    #[serde(default, deserialize_with = "text")]
    webhook_allow_private: Option<String>,
    #[serde(default, deserialize_with = "text")]
    code_length: Option<String>,
    #[serde(default, deserialize_with = "text")]
    message_ttl: Option<String>,
    #[serde(default, deserialize_with = "text")]
    twilio_auth_token: Option<String>,
    #[serde(default, deserialize_with = "text")]
    log: Option<String>,
    #[serde(default, deserialize_with = "text")]
    fallback_url: Option<String>,
    #[serde(default, deserialize_with = "text")]
    dispatch: Option<String>,
    #[serde(default, deserialize_with = "text")]
    cache_capacity: Option<String>,
    #[serde(default, deserialize_with = "text")]
    cache_ttl: Option<String>,
    #[serde(default, deserialize_with = "text")]
    max_connections: Option<String>,
    #[serde(default, deserialize_with = "text")]
    header_timeout: Option<String>,
    #[serde(default, deserialize_with = "text")]
    idle_timeout: Option<String>,
    #[serde(default, deserialize_with = "text")]
    event_retention: Option<String>,
}

/// Accepts a TOML string, integer, float or boolean as its text, so the file may say
/// `code_length = 8` or `code_length = "8"`.
fn text<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Scalar>::deserialize(de)?.map(|s| match s {
        Scalar::Text(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

/// Where the service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite under this directory; one process.
    Embedded { data_dir: PathBuf },
    /// A Redis shared by every instance.
    Redis { url: String },
}

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    pub public_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Without a trailing slash: a short URL is `{base_url}/{code}`.
    pub base_url: String,
    pub store: StoreConfig,
    /// Never logged; compared in constant time.
    pub admin_tokens: Vec<String>,
    pub dedup_window: Duration,
    pub webhook_timeout: Duration,
    pub webhook_retry_schedule: Vec<Duration>,
    pub webhook_allow_private: bool,
    /// Whether this instance runs a webhook dispatcher.
    pub dispatch: bool,
    pub code_length: usize,
    pub message_ttl: Duration,
    pub twilio_auth_token: Option<String>,
    pub log: String,
    pub fallback_url: Option<String>,
    pub cache_capacity: u64,
    pub cache_ttl: Duration,
    /// Most open connections on the public listener.
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long events and delivery logs are kept.
    pub event_retention: Duration,
}

// Secrets stay out of `{:?}`, so a config dumped into a log leaks nothing.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("public_addr", &self.public_addr)
            .field("admin_addr", &self.admin_addr)
            .field("base_url", &self.base_url)
            .field("store", &self.store_name())
            .field(
                "admin_tokens",
                &format_args!("[{} redacted]", self.admin_tokens.len()),
            )
            .field("dedup_window", &self.dedup_window)
            .field("code_length", &self.code_length)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot be used; the message is one line naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

fn bad(var: &str, msg: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{var}: {msg}"))
}

impl Config {
    /// Loads the layers for `cli` (which clap has already filled from flags and `AKTI_*`).
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        let file = match &cli.config {
            Some(path) => {
                if !path.is_file() {
                    return Err(bad(
                        "AKTI_CONFIG",
                        format!("no such file: {}", path.display()),
                    ));
                }
                Some(path.clone())
            }
            None => Some(PathBuf::from("config/default.toml")).filter(|p| p.is_file()),
        };
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        let raw: RawConfig = figment
            .merge(Serialized::defaults(cli))
            .extract()
            .map_err(|e| ConfigError(e.to_string().replace('\n', " ")))?;
        Self::from_raw(raw)
    }

    /// The configuration a test or embedding program starts from: every default, with the
    /// given store.
    pub fn defaults(store: StoreConfig) -> Self {
        let mut config =
            Self::from_raw(RawConfig::default()).expect("the built-in defaults are valid");
        config.store = store;
        config
    }

    fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let get = |v: &Option<String>, default: &str| -> String {
            v.clone().unwrap_or_else(|| default.to_owned())
        };
        let addr = |var: &str, v: String| {
            v.parse::<SocketAddr>()
                .map_err(|_| bad(var, format!("expected host:port, got {v:?}")))
        };
        let store = match raw.redis_url.filter(|s| !s.trim().is_empty()) {
            Some(url) => StoreConfig::Redis {
                url: parse_redis_url(&url)?,
            },
            None => StoreConfig::Embedded {
                data_dir: PathBuf::from(get(&raw.data_dir, "./data")),
            },
        };
        let code_length = get(&raw.code_length, "8");
        let code_length = code_length
            .parse::<usize>()
            .ok()
            .filter(|n| (4..=64).contains(n))
            .ok_or_else(|| {
                bad(
                    "AKTI_CODE_LENGTH",
                    format!("expected 4 to 64, got {code_length:?}"),
                )
            })?;
        let webhook_allow_private = boolean(
            "AKTI_WEBHOOK_ALLOW_PRIVATE",
            &get(&raw.webhook_allow_private, "false"),
        )?;
        let dispatch = boolean("AKTI_DISPATCH", &get(&raw.dispatch, "true"))?;
        let cache_capacity = get(&raw.cache_capacity, "100000");
        let cache_capacity = cache_capacity
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                bad(
                    "AKTI_CACHE_CAPACITY",
                    format!("expected a positive number, got {cache_capacity:?}"),
                )
            })?;
        let max_connections = get(&raw.max_connections, "10000");
        let max_connections = max_connections
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                bad(
                    "AKTI_MAX_CONNECTIONS",
                    format!("expected a positive number, got {max_connections:?}"),
                )
            })?;
        let webhook_retry_schedule = get(&raw.webhook_retry_schedule, "5s,5m,30m,2h,5h,10h,10h");
        let webhook_retry_schedule = if webhook_retry_schedule.trim().is_empty() {
            Vec::new()
        } else {
            webhook_retry_schedule
                .split(',')
                .map(|d| duration("AKTI_WEBHOOK_RETRY_SCHEDULE", d.trim()))
                .collect::<Result<_, _>>()?
        };
        Ok(Self {
            public_addr: addr("AKTI_PUBLIC_ADDR", get(&raw.public_addr, "0.0.0.0:8080"))?,
            admin_addr: addr("AKTI_ADMIN_ADDR", get(&raw.admin_addr, "127.0.0.1:8081"))?,
            base_url: origin(
                "AKTI_BASE_URL",
                &get(&raw.base_url, "https://link.akti.fyi"),
            )?,
            store,
            admin_tokens: raw
                .admin_token
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            dedup_window: positive_duration("AKTI_DEDUP_WINDOW", &get(&raw.dedup_window, "30s"))?,
            webhook_timeout: positive_duration(
                "AKTI_WEBHOOK_TIMEOUT",
                &get(&raw.webhook_timeout, "15s"),
            )?,
            webhook_retry_schedule,
            webhook_allow_private,
            dispatch,
            code_length,
            message_ttl: positive_duration("AKTI_MESSAGE_TTL", &get(&raw.message_ttl, "7d"))?,
            twilio_auth_token: raw.twilio_auth_token.filter(|t| !t.is_empty()),
            log: get(&raw.log, "info"),
            fallback_url: raw
                .fallback_url
                .filter(|u| !u.is_empty())
                .map(|u| {
                    crate::domain::Destination::parse(&u)
                        .map(|d| d.as_str().to_owned())
                        .map_err(|e| bad("AKTI_FALLBACK_URL", e.message))
                })
                .transpose()?,
            cache_capacity,
            cache_ttl: positive_duration("AKTI_CACHE_TTL", &get(&raw.cache_ttl, "10m"))?,
            max_connections,
            header_timeout: positive_duration(
                "AKTI_HEADER_TIMEOUT",
                &get(&raw.header_timeout, "10s"),
            )?,
            idle_timeout: positive_duration("AKTI_IDLE_TIMEOUT", &get(&raw.idle_timeout, "75s"))?,
            event_retention: positive_duration(
                "AKTI_EVENT_RETENTION",
                &get(&raw.event_retention, "7d"),
            )?,
        })
    }

    /// The name start-up logs for the store in use.
    pub fn store_name(&self) -> &'static str {
        match self.store {
            StoreConfig::Embedded { .. } => "embedded (SQLite)",
            StoreConfig::Redis { .. } => "redis",
        }
    }
}

fn boolean(var: &str, s: &str) -> Result<bool, ConfigError> {
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

fn positive_duration(var: &str, s: &str) -> Result<Duration, ConfigError> {
    let d = duration(var, s)?;
    if d.is_zero() {
        return Err(bad(var, "must be longer than zero"));
    }
    Ok(d)
}

/// `AKTI_BASE_URL` must be an http(s) origin (optionally with a path prefix); we drop a
/// trailing slash so that `{base}/{code}` never doubles it.
fn origin(var: &str, s: &str) -> Result<String, ConfigError> {
    let url =
        url::Url::parse(s).map_err(|_| bad(var, format!("expected an http(s) URL, got {s:?}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(var, format!("expected an http(s) URL, got {s:?}")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(var, "must not have a query or fragment"));
    }
    Ok(String::from(url).trim_end_matches('/').to_owned())
}

fn parse_redis_url(s: &str) -> Result<String, ConfigError> {
    let var = "AKTI_REDIS_URL";
    let urls: Vec<&str> = s.split(',').map(str::trim).collect();
    if urls.len() > 1 {
        return Err(bad(
            var,
            "Redis Cluster (several URLs) is not supported by this build yet; give one URL",
        ));
    }
    let url = urls[0];
    // Never echo the URL: it may carry a password.
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some() => {
            Ok(url.to_owned())
        }
        _ => Err(bad(var, "expected a redis:// or rediss:// URL with a host")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        for (k, v) in pairs {
            figment = figment.merge((*k, *v));
        }
        Config::from_raw(figment.extract().unwrap())
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = from(&[]).unwrap();
        assert_eq!(c.public_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.admin_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(c.base_url, "https://link.akti.fyi");
        assert_eq!(
            c.store,
            StoreConfig::Embedded {
                data_dir: "./data".into()
            }
        );
        assert!(c.admin_tokens.is_empty());
        assert_eq!(c.dedup_window, Duration::from_secs(30));
        assert_eq!(c.webhook_timeout, Duration::from_secs(15));
        assert_eq!(c.webhook_retry_schedule.len(), 7);
        assert_eq!(c.webhook_retry_schedule[6], Duration::from_secs(36_000));
        assert!(!c.webhook_allow_private);
        assert_eq!(c.code_length, 8);
        assert_eq!(c.message_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.log, "info");
    }

    #[test]
    fn values_are_parsed() {
        let c = from(&[
            ("dedup_window", "1500ms"),
            ("admin_token", " a , b,,"),
            ("base_url", "http://localhost:9000/"),
            ("redis_url", "redis://127.0.0.1:6390/0"),
            ("webhook_allow_private", "TRUE"),
            ("webhook_retry_schedule", "10ms, 1s"),
        ])
        .unwrap();
        assert_eq!(c.dedup_window, Duration::from_millis(1500));
        assert_eq!(c.admin_tokens, ["a", "b"]);
        assert_eq!(c.base_url, "http://localhost:9000");
        assert!(matches!(c.store, StoreConfig::Redis { .. }));
        assert!(c.webhook_allow_private);
        assert_eq!(
            c.webhook_retry_schedule,
            [Duration::from_millis(10), Duration::from_secs(1)]
        );
    }

    #[test]
    fn bad_values_name_the_variable_on_one_line() {
        for (key, value, var) in [
            ("code_length", "3", "AKTI_CODE_LENGTH"),
            ("dedup_window", "soon", "AKTI_DEDUP_WINDOW"),
            ("dedup_window", "0s", "AKTI_DEDUP_WINDOW"),
            ("public_addr", "8080", "AKTI_PUBLIC_ADDR"),
            ("redis_url", "http://x", "AKTI_REDIS_URL"),
            ("base_url", "link.akti.fyi", "AKTI_BASE_URL"),
            (
                "webhook_allow_private",
                "maybe",
                "AKTI_WEBHOOK_ALLOW_PRIVATE",
            ),
        ] {
            let err = from(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn redis_passwords_are_not_echoed() {
        let err = from(&[("redis_url", "foo://:hunter2@x")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
