//! The Redis store: the production backend, shared by every instance of the service.
//!
//! # Key layout
//!
//! Every key starts with `akti:`. The part in braces is a Redis Cluster hash tag: keys that
//! one script touches together share it, so that a move to Cluster needs only these tags,
//! not a redesign.
//!
//! Links (`links.rs`); every command touches one key:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `akti:link:{<code>}` | hash | the link: `u` url, `c` campaign, `p` phone, `x` external lead id, `t` created (unix ms), `e` expires (unix ms), `d` disabled (`0`/`1`); absent fields are `null`. While its creation is under way it has `unfinished` and expires in 60 s |
//! | `akti:identity:{<campaign>}:<sha256(phone NUL url)>` | string | the code of the link with that identity: makes creation idempotent |
//! | `akti:index:all` | sorted set | every link, as members `<created ms, 13 digits>:<code>` (its list position, also the cursor) at score 0, so that `ZRANGE … BYLEX` pages in creation order |
//! | `akti:index:campaign:{<campaign>}` | sorted set | the same members, for one campaign |
//! | `akti:index:phone:{<phone>}` | sorted set | the same members, for one lead |
//! | channel `akti:link-changes` | pub/sub | codes of links that changed, so that every instance drops them from its cache |
//!
//! Clicks, events and deliveries (`events.rs`, `webhooks.rs`) all carry the tag `{q}`: a
//! lead click's script opens the window and fans the event out to deliveries atomically,
//! and a delivery's outcome moves it between the stream and the retry set, so these keys
//! must live in one slot. (Sharding them over several tags is
//! the step after Cluster, if one slot's throughput is ever the limit.)
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `akti:{q}:window:<code>` | string | the click time (ms) and event id, joined by a bar, of the click that opened the lead's dedup window; expires with it (kept at least 60 s, so that a retried write finds it) |
//! | `akti:{q}:applied:<batch>:<n>` | string | a counts call already added; kept 10 minutes, so that a retried flush adds nothing |
//! | `akti:{q}:stats:link:<code>` | hash | `clicks`, `clickEvents`, `botClicks`, `lastClickedAt` (ms); added to by each instance's counts flush |
//! | `akti:{q}:stats:campaign:<campaign>` | hash | the same, summed, and `messagesSent`, `messagesDelivered` |
//! | `akti:{q}:subs` | hash | subscription id → JSON record |
//! | `akti:{q}:sub-filters` | hash | subscription id → disabled flag, event types and campaign ids, bar-separated, lists comma-wrapped (empty: all); read by the fan-out |
//! | `akti:{q}:sub-order` | sorted set | `<created ms>:<id>` at score 0, for listing |
//! | `akti:{q}:event:<event id>` | hash | `t` type, `b` body, `at` created; kept for `AKTI_EVENT_RETENTION` |
//! | `akti:{q}:delivery:<sub id>:<event id>` | hash | `status`, `attempts` (JSON array), `next` (ms), `t`, `at`; kept as long |
//! | `akti:{q}:log:<sub id>` | sorted set | event ids by creation time: the delivery log |
//! | `akti:{q}:ready` | stream | deliveries due now (`s` sub, `e` event), read by the consumer group `dispatchers` |
//! | `akti:{q}:retry` | sorted set | sub id and event id, joined by a bar, by due time (ms) |
//! | `akti:{q}:message:<id>` | hash | a message: `c`, `p`, `x`, `o` original body, `b` rewritten body, `l` links (JSON), `at`, `exp`, and `s:<status>` (ms) once reported; expires after `AKTI_MESSAGE_TTL` |
//!
//! A delivery is in `ready` (due, or leased to a dispatcher until it acknowledges it) or in
//! `retry` (scheduled). Entries leased by a dispatcher that died are taken over with
//! `XAUTOCLAIM` once idle for longer than an attempt can last.

mod events;
mod links;
mod messages;
mod webhooks;

use super::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// How long one command may take before the store counts as unavailable. Short, because a
/// redirect waits on it.
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
}

/// `EVAL script 1 key …`, for scripts off the hot paths.
fn eval(script: &str, key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(1).arg(key);
    cmd
}

/// A script called by its SHA1 on the hot paths (clicks, outcomes): Redis neither
/// receives nor hashes its text per call.
pub(super) struct LuaScript {
    text: String,
    sha: String,
}

impl LuaScript {
    pub(super) fn new(text: String) -> Self {
        use sha1::Digest;
        let sha = sha1::Sha1::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { text, sha }
    }

    /// `EVALSHA sha 1 key …`
    pub(super) fn call(&self, key: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(1).arg(key);
        cmd
    }

    /// `EVALSHA sha 0 …`, for a script that names its keys itself (all under the `{q}`
    /// tag, so in one Cluster slot).
    pub(super) fn call_without_keys(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(0);
        cmd
    }
}

impl RedisStore {
    /// Runs a pipeline of `script` calls; when Redis does not know the script (it was
    /// restarted or flushed), loads it and runs the pipeline once more. Safe to repeat: a
    /// `NOSCRIPT` answer means no call of the script ran.
    async fn query_scripted<T: redis::FromRedisValue>(
        &self,
        script: &LuaScript,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        match pipe.query_async(&mut self.conn()).await {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(&script.text)
                    .query_async::<String>(&mut self.conn())
                    .await
                    .map_err(unavailable)?;
                pipe.query_async(&mut self.conn())
                    .await
                    .map_err(unavailable)
            }
            other => other.map_err(unavailable),
        }
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::unavailable(e)
}
