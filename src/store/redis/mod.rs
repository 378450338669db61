//! The Redis store: shared by every instance of the service. Key names and their layout
//! are in [`keys`]; scripts in `lua/`, called through [`scripts`].

mod campaigns;
mod clicks;
mod conn;
mod feed;
pub mod keys;
mod layout;
mod leads;
mod links;
mod messages;
mod outbox;
mod scripts;
mod series;
mod subscriptions;

use super::{Store, StoreError};
use async_trait::async_trait;
use conn::{Conn, RESPONSE_TIMEOUT, Servers};
use std::sync::Arc;
use std::time::Duration;

pub use layout::LayoutMismatch;

pub struct RedisStore {
    servers: Servers,
    /// Shared and multiplexed, for every command but the click writes that wait for
    /// replicas.
    conn: Conn,
    /// For click writes followed by `WAIT`: a `WAIT` holds up every reply queued behind it
    /// on its connection, so it has one of its own.
    durable: Conn,
    /// Replicas that must hold a batch of lead clicks before it counts as written.
    wait_replicas: u32,
    /// Wakes this instance's dispatcher when this instance queued deliveries; shared with
    /// the dispatcher's copy of the store ([`RedisStore::copy_on_own_connections`]).
    queued: Arc<tokio::sync::Notify>,
    timers: Arc<outbox::ClaimTimers>,
    /// How long events and delivery logs are kept, in ms.
    retention_ms: u64,
}

impl RedisStore {
    /// Prepares the connections without waiting for Redis: the service starts, and answers
    /// `/readyz` with `503`, while Redis is still down. Several comma-separated URLs are
    /// the nodes of a Redis Cluster.
    pub fn connect(
        urls: &str,
        retention: Duration,
        wait_replicas: u32,
    ) -> Result<Self, StoreError> {
        let servers = Servers::parse(urls)?;
        let conn = servers.connect(RESPONSE_TIMEOUT)?;
        let durable = servers.connect(RESPONSE_TIMEOUT + clicks::WAIT_FOR_REPLICAS)?;
        Ok(Self {
            servers,
            conn,
            durable,
            wait_replicas,
            queued: Arc::default(),
            timers: Arc::default(),
            retention_ms: retention.as_millis() as u64,
        })
    }

    /// This store with connections of its own, made on the calling runtime: their tasks
    /// run there, and a reconnect they need happens there too.
    pub(super) fn copy_on_own_connections(&self) -> Result<Self, StoreError> {
        let conn = self.servers.connect(RESPONSE_TIMEOUT)?;
        Ok(Self {
            servers: self.servers.clone(),
            // The dispatcher records no clicks, so it never waits for replicas.
            durable: conn.clone(),
            conn,
            wait_replicas: self.wait_replicas,
            queued: self.queued.clone(),
            timers: self.timers.clone(),
            retention_ms: self.retention_ms,
        })
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }
}

/// A reply read as `T`; one we cannot read was not written by us.
fn parse<T: redis::FromRedisValue>(reply: &redis::Value) -> Result<T, StoreError> {
    redis::from_redis_value_ref(reply).map_err(|e| StoreError::Corrupt(format!("a reply: {e}")))
}

/// Redis out of reach (or busy, loading, failing over) is `Unavailable`; Redis refusing a
/// command of ours (a wrong type, a script error, an answer we cannot read) is a bug.
fn unavailable(e: redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    let unreachable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed
                | ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::NoScript
                )
        );
    if unreachable {
        StoreError::unavailable(e)
    } else {
        StoreError::bug(e)
    }
}
