//! The Redis store: shared by every instance of the service. Key names and their layout
//! are in [`keys`]; scripts in `lua/`, called through [`scripts`].

mod clicks;
mod feed;
pub mod keys;
mod links;
mod messages;
mod outbox;
mod scripts;
mod subscriptions;

use super::{Store, StoreError};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// How long one command may take before the store counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisStore {
    client: redis::Client,
    /// Shared, multiplexed and self-reconnecting; cheap to clone per call.
    conn: ConnectionManager,
    /// For `XREADGROUP … BLOCK` only: a blocked command would hold up every reply queued
    /// behind it on the shared multiplexed connection.
    blocking: ConnectionManager,
    /// When this instance last took over stale deliveries (unix ms).
    last_reclaim: std::sync::atomic::AtomicI64,
    /// How long events and delivery logs are kept, in ms.
    retention_ms: u64,
}

impl RedisStore {
    /// Prepares the connections without waiting for Redis: the service starts, and answers
    /// `/readyz` with `503`, while Redis is still down.
    pub fn connect(url: &str, retention: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::unavailable)?;
        let config = |response_timeout| {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500))
        };
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config(RESPONSE_TIMEOUT))
                .map_err(StoreError::unavailable)?;
        let blocking = ConnectionManager::new_lazy_with_config(
            client.clone(),
            config(Duration::from_secs(30)),
        )
        .map_err(StoreError::unavailable)?;
        Ok(Self {
            client,
            conn,
            blocking,
            last_reclaim: std::sync::atomic::AtomicI64::new(0),
            retention_ms: retention.as_millis() as u64,
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one plain command.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        cmd.query_async(&mut self.conn()).await.map_err(unavailable)
    }

    /// Runs a pipeline of plain commands.
    async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        pipe.query_async(&mut self.conn())
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }
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
