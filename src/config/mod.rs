//! Layered configuration: built-in defaults, then a TOML file (`config/default.toml` or the
//! file named by `AKTI_CONFIG`), then `AKTI_*` environment variables or the equivalent
//! command-line flags. Everything is validated here, once, into [`Config`]; the rest of the
//! crate only sees typed values, each component the part it uses.
//!
//! Each setting is declared once, in the [`settings!`] table below: its name, type,
//! environment variable, default, parser and help. That one line makes the flag, the file
//! key, the typed field and its row of [`SETTINGS`] (which a test holds the README's table
//! to).

mod parse;

use crate::dispatch;
use crate::domain::ShortUrls;
use crate::http::server::{ADMIN_MAX_CONNECTIONS, Limits};
use clap::Parser;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One setting, as `--help`, the README and the file know it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub env: &'static str,
    /// The built-in default; empty for "unset".
    pub default: &'static str,
}

/// Declares the settings. Each entry: `name: Type = "ENV", parser, "help", default "…"` or
/// `… unset "what unset means"`.
macro_rules! settings {
    ($(
        $name:ident : $ty:ty = $env:literal, $parse:path, $help:literal,
        $(default $default:literal)? $(unset $unset:literal)?;
    )*) => {
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
            $(
                #[arg(
                    long,
                    env = $env,
                    hide_env_values = true,
                    help = concat!($help, $(" [default: ", $default, "]")? $(" [default: unset, ", $unset, "]")?)
                )]
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<String>,
            )*
        }

        /// The file and flag layers before validation: every value as text.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawConfig {
            $(
                #[serde(default, deserialize_with = "text")]
                $name: Option<String>,
            )*
        }

        /// The validated configuration.
        #[derive(Clone)]
        pub struct Config {
            $(
                #[doc = $help]
                pub $name: $ty,
            )*
        }

        /// Every setting but `AKTI_CONFIG`, in the order of the README's table.
        pub const SETTINGS: &[Setting] = &[
            $(Setting { env: $env, default: concat!($($default)?) },)*
        ];

        impl Config {
            fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
                Ok(Self {
                    $(
                        $name: $parse($env, raw.$name.as_deref().unwrap_or(concat!($($default)?)))?,
                    )*
                })
            }
        }
    };
}

settings! {
    public_addr: SocketAddr = "AKTI_PUBLIC_ADDR", parse::addr,
        "Listener for redirects (public)", default "0.0.0.0:8080";
    admin_addr: SocketAddr = "AKTI_ADMIN_ADDR", parse::addr,
        "Listener for the admin API and /metrics (keep it private)", default "127.0.0.1:8081";
    base_url: String = "AKTI_BASE_URL", parse::origin,
        "Origin of short URLs", default "https://link.akti.fyi";
    redis_url: Option<String> = "AKTI_REDIS_URL", parse::redis_url,
        "redis:// or rediss:// URL of the shared store; several, comma-separated, for the nodes of a Redis Cluster",
        unset "the embedded store";
    data_dir: PathBuf = "AKTI_DATA_DIR", parse::path,
        "Directory of the embedded store's files", default "./data";
    admin_token: Vec<String> = "AKTI_ADMIN_TOKEN", parse::tokens,
        "Admin bearer token(s), comma-separated", unset "the admin API answers 401";
    dedup_window: Duration = "AKTI_DEDUP_WINDOW", parse::positive_duration,
        "Click dedup window, e.g. 30s or 1500ms", default "30s";
    webhook_timeout: Duration = "AKTI_WEBHOOK_TIMEOUT", parse::positive_duration,
        "Timeout of one webhook delivery attempt", default "15s";
    webhook_retry_schedule: Vec<Duration> = "AKTI_WEBHOOK_RETRY_SCHEDULE", parse::durations,
        "Delays between webhook attempts", default "5s,5m,30m,2h,5h,10h,10h";
    webhook_allow_private: bool = "AKTI_WEBHOOK_ALLOW_PRIVATE", parse::boolean,
        "Allow webhook targets on loopback and private addresses", default "false";
    code_length: usize = "AKTI_CODE_LENGTH", parse::code_length,
        "Length of generated short codes, 4 to 64", default "8";
    message_ttl: Duration = "AKTI_MESSAGE_TTL", parse::positive_duration,
        "How long messages are kept for late status reports", default "7d";
    twilio_auth_token: Option<String> = "AKTI_TWILIO_AUTH_TOKEN", parse::secret,
        "Validates Twilio status callbacks", unset "the callback answers 403";
    log: String = "AKTI_LOG", parse::log_filter,
        "Log filter, RUST_LOG syntax", default "info";
    event_retention: Duration = "AKTI_EVENT_RETENTION", parse::positive_duration,
        "How long events and the delivery log are kept", default "7d";
    fallback_url: Option<String> = "AKTI_FALLBACK_URL", parse::fallback,
        "Redirect unknown, disabled and expired codes here instead of answering 404/410",
        unset "the 404 and 410 pages";
    dispatch: bool = "AKTI_DISPATCH", parse::boolean,
        "Run the webhook dispatcher in this instance; false for redirect-only instances",
        default "true";
    cache_capacity: u64 = "AKTI_CACHE_CAPACITY", parse::positive,
        "Most links kept in each instance's redirect cache", default "100000";
    cache_ttl: Duration = "AKTI_CACHE_TTL", parse::positive_duration,
        "Longest time an unused link stays in the redirect cache", default "10m";
    max_connections: usize = "AKTI_MAX_CONNECTIONS", parse::positive,
        "Most open connections on the public listener (lowered to what the open-file limit allows)",
        default "10000";
    header_timeout: Duration = "AKTI_HEADER_TIMEOUT", parse::positive_duration,
        "Time a client has to send a request's headers, from the connection's start or the request's first byte",
        default "10s";
    idle_timeout: Duration = "AKTI_IDLE_TIMEOUT", parse::positive_duration,
        "Time a connection may stay open between requests", default "75s";
    redis_wait_replicas: u32 = "AKTI_REDIS_WAIT_REPLICAS", parse::count,
        "Replicas that must hold a human click's event before its redirect is answered (Redis WAIT, once per batch of clicks)",
        default "0";
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

/// A configuration that cannot be used; the message is one line naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// Where the service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite under this directory; one process.
    Embedded { data_dir: PathBuf },
    /// A Redis shared by every instance.
    Redis { url: String },
}

impl Config {
    /// Loads the layers for `cli` (which clap has already filled from flags and `AKTI_*`).
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        let file = match &cli.config {
            Some(path) if !path.is_file() => {
                return Err(parse::bad(
                    "AKTI_CONFIG",
                    format!("no such file: {}", path.display()),
                ));
            }
            Some(path) => Some(path.clone()),
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

    /// Every default, with the given store: where a test or an embedding program starts.
    pub fn defaults(store: StoreConfig) -> Self {
        let mut config =
            Self::from_raw(RawConfig::default()).expect("the built-in defaults are valid");
        config.set_store(store);
        config
    }

    pub fn store(&self) -> StoreConfig {
        match &self.redis_url {
            Some(url) => StoreConfig::Redis { url: url.clone() },
            None => StoreConfig::Embedded {
                data_dir: self.data_dir.clone(),
            },
        }
    }

    pub fn set_store(&mut self, store: StoreConfig) {
        match store {
            StoreConfig::Redis { url } => self.redis_url = Some(url),
            StoreConfig::Embedded { data_dir } => {
                self.redis_url = None;
                self.data_dir = data_dir;
            }
        }
    }

    /// The name start-up logs for the store in use.
    pub fn store_name(&self) -> &'static str {
        match &self.redis_url {
            None => "embedded (SQLite)",
            Some(url) if url.contains(',') => "redis cluster",
            Some(_) => "redis",
        }
    }

    pub fn short_urls(&self) -> ShortUrls {
        ShortUrls::new(&self.base_url)
    }

    pub fn webhooks(&self) -> dispatch::Settings {
        dispatch::Settings {
            timeout: self.webhook_timeout,
            retry_schedule: self.webhook_retry_schedule.clone(),
            allow_private: self.webhook_allow_private,
        }
    }

    /// The limits of the public listener (its cap lowered to what `descriptors` allow) and
    /// of the admin listener.
    pub fn listener_limits(&self, descriptors: u64) -> (Limits, Limits) {
        let public = Limits {
            max_connections: crate::http::server::public_cap(self.max_connections, descriptors),
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
        };
        let admin = Limits {
            max_connections: ADMIN_MAX_CONNECTIONS,
            ..public
        };
        (public, admin)
    }
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
                "admin_token",
                &format_args!("[{} redacted]", self.admin_token.len()),
            )
            .field("dedup_window", &self.dedup_window)
            .field("code_length", &self.code_length)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
