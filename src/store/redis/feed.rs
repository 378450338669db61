//! The change feed on Redis pub/sub: `PUBLISH` a changed code, and on every instance a
//! subscription that hears it. On a cluster every node hears every `PUBLISH`, so the
//! subscription may be on any node given; it moves to the next when its node fails.
//!
//! To keep the contract's "within one second" even when the subscription hangs silently,
//! the feed publishes a marker of its own every [`MARK_EVERY`] on the connection that
//! announces changes: every change announced before the marker was sent reached the same
//! node first and is heard before it, so hearing it confirms the feed is caught up.

use super::conn::Conn;
use super::{RedisStore, keys};
use crate::store::{ChangeFeed, FeedListener, LinkChange, StoreError};
use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionLike;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the feed confirms that it is caught up: well inside the one second in which a
/// change must reach every instance.
const MARK_EVERY: Duration = Duration::from_millis(200);
/// A feed that does not hear its marker within this is treated as lost and reconnected.
const MARK_TIMEOUT: Duration = Duration::from_secs(2);
/// Markers start with a byte no code has.
const MARKER: char = '\u{1}';

#[async_trait]
impl ChangeFeed for RedisStore {
    async fn announce(&self, change: &LinkChange) -> Result<(), StoreError> {
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(keys::CHANGES).arg(change.payload());
        self.query(&publish).await
    }

    fn watch(&self, listener: Arc<dyn FeedListener>, shutdown: CancellationToken) {
        // Where the subscription may go, in the order to try them.
        let clients = match self.servers.pubsub_clients() {
            Ok(clients) => clients,
            Err(e) => {
                tracing::error!(error = %e, "no server for the link change feed");
                return;
            }
        };
        let conn = self.conn();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            for attempt in 0.. {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = listen(&clients[attempt % clients.len()], conn.clone(), listener.as_ref()) => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "link change feed lost; reconnecting");
                        } else {
                            backoff = Duration::from_millis(100);
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        });
    }
}

fn lost(why: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, why))
}

/// One subscription on `client`, until it fails or ends.
async fn listen(
    client: &redis::Client,
    mut conn: Conn,
    listener: &dyn FeedListener,
) -> redis::RedisResult<()> {
    let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
    sink.subscribe(keys::CHANGES).await?;
    // Whatever changed while we were not subscribed is unknown: start over.
    listener.changed(LinkChange::All);
    let ours = format!("{MARKER}{}:", crate::domain::random_id("", 12));
    let mut sent: Option<(String, Instant)> = None;
    let mut marks = 0u64;
    let mut tick = tokio::time::interval(MARK_EVERY);
    loop {
        tokio::select! {
            msg = messages.next() => {
                let Some(msg) = msg else { return Ok(()) };
                let Ok(payload) = msg.get_payload::<String>() else { continue };
                if !payload.starts_with(MARKER) {
                    listener.changed(LinkChange::from_payload(&payload));
                } else if let Some((marker, at)) = &sent
                    && *marker == payload
                {
                    listener.caught_up(*at);
                    sent = None;
                }
            }
            _ = tick.tick() => match &sent {
                Some((_, at)) if at.elapsed() > MARK_TIMEOUT => {
                    return Err(lost("the change feed did not hear its own marker"));
                }
                Some(_) => {}
                None => {
                    marks += 1;
                    let marker = format!("{ours}{marks}");
                    let at = Instant::now();
                    let mut publish = redis::cmd("PUBLISH");
                    publish.arg(keys::CHANGES).arg(&marker);
                    tokio::time::timeout(MARK_TIMEOUT, conn.req_packed_command(&publish))
                        .await
                        .map_err(|_| lost("the change feed could not publish its marker"))??;
                    sent = Some((marker, at));
                }
            },
        }
    }
}
