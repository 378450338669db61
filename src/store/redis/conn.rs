//! The connections to Redis: one standalone server (one URL) or a Redis Cluster (several),
//! behind one type, so that every operation has one code path.
//!
//! On a cluster a pipeline must stay in one slot (the client refuses it otherwise):
//! [`RedisStore::spread`] runs commands of many slots, each on its own node, at once.

use super::{RedisStore, unavailable};
use crate::store::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::time::Duration;

/// How long one command may take before the store counts as unavailable.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the cluster client may itself re-send a request (after MOVED, ASK, TRYAGAIN or
/// a reconnect). A re-sent request may already have run: every write of ours can run twice
/// (batch ids, event ids in windows, acknowledged stream entries).
const CLUSTER_RETRIES: u32 = 3;

/// Most commands of one [`RedisStore::spread`] in flight at once on a cluster.
const SPREAD_IN_FLIGHT: usize = 256;

/// A shared, multiplexed connection that reconnects by itself; cheap to clone per call.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where the store is.
#[derive(Clone)]
pub(super) enum Servers {
    Single(Box<redis::Client>),
    /// The URLs given: any node hears every `PUBLISH` of the cluster.
    Cluster(Vec<String>),
}

impl Servers {
    /// One URL is a standalone server; several, comma-separated, the nodes of a cluster.
    pub fn parse(urls: &str) -> Result<Self, StoreError> {
        let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
        match urls.as_slice() {
            [one] => Ok(Self::Single(Box::new(
                redis::Client::open(one.as_str()).map_err(StoreError::unavailable)?,
            ))),
            _ => Ok(Self::Cluster(urls)),
        }
    }

    /// A connection whose commands time out after `response_timeout`, made in the
    /// background: the service starts, and answers `/readyz` with `503`, while Redis is
    /// still down.
    pub fn connect(&self, response_timeout: Duration) -> Result<Conn, StoreError> {
        match self {
            Servers::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config((**client).clone(), config)
                    .map(Conn::Single)
                    .map_err(StoreError::unavailable)
            }
            Servers::Cluster(urls) => {
                let client = ClusterClient::builder(urls.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(response_timeout)
                    .retries(CLUSTER_RETRIES)
                    .max_retry_wait(200)
                    .build()
                    .map_err(StoreError::unavailable)?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(response_timeout);
                Ok(Conn::Cluster(
                    client.get_pending_async_connection_with_config(config),
                ))
            }
        }
    }

    /// The clients a pub/sub subscription may use, in the order to try them.
    pub fn pubsub_clients(&self) -> Result<Vec<redis::Client>, StoreError> {
        match self {
            Servers::Single(client) => Ok(vec![(**client).clone()]),
            Servers::Cluster(urls) => urls
                .iter()
                .map(|u| redis::Client::open(u.as_str()).map_err(StoreError::unavailable))
                .collect(),
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Servers::Cluster(_))
    }
}

impl RedisStore {
    pub(super) fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Runs one plain command.
    pub(super) async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        cmd.query_async(&mut self.conn()).await.map_err(unavailable)
    }

    /// Runs a pipeline of plain commands whose keys share one slot.
    pub(super) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &Pipeline,
    ) -> Result<T, StoreError> {
        pipe.query_async(&mut self.conn())
            .await
            .map_err(unavailable)
    }

    /// Runs commands whose keys may be in different slots, and answers their replies in
    /// order: one pipeline on a standalone server, each command to its own node at once on
    /// a cluster (the client pipelines the commands bound for one node).
    pub(super) async fn spread<T: redis::FromRedisValue>(
        &self,
        cmds: Vec<Cmd>,
    ) -> Result<Vec<T>, StoreError> {
        self.spread_raw(cmds).await.map_err(unavailable)
    }

    pub(super) async fn spread_raw<T: redis::FromRedisValue>(
        &self,
        cmds: Vec<Cmd>,
    ) -> redis::RedisResult<Vec<T>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self.conn() {
            Conn::Single(mut conn) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd);
                }
                pipe.query_async(&mut conn).await
            }
            Conn::Cluster(conn) => {
                use futures::{StreamExt, TryStreamExt};
                let calls = cmds.into_iter().map(move |cmd| {
                    let mut conn = conn.clone();
                    async move { cmd.query_async::<T>(&mut conn).await }
                });
                // A bound on what is in flight: each command's response timeout runs from
                // when it is handed to the client, so ten thousand at once would time out
                // waiting in its queue.
                futures::stream::iter(calls)
                    .buffered(SPREAD_IN_FLIGHT)
                    .try_collect()
                    .await
            }
        }
    }

    /// One line for the start-up log: which Redis this is.
    pub async fn describe(&self) -> Result<String, StoreError> {
        if !self.servers.is_cluster() {
            return Ok("redis (standalone)".to_owned());
        }
        let nodes: String = self.query(redis::cmd("CLUSTER").arg("NODES")).await?;
        let primaries = nodes
            .lines()
            .filter(|l| {
                let flags = l.split(' ').nth(2).unwrap_or("");
                flags.split(',').any(|f| f == "master") && !flags.contains("fail")
            })
            .count();
        Ok(format!("redis cluster ({primaries} primaries)"))
    }
}
