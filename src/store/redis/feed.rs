//! The change feed on Redis pub/sub: `PUBLISH` a changed code, and on every instance a
//! subscription that hears it.
//!
//! To keep the contract's "within one second" even when the subscription hangs silently,
//! the feed PINGs Redis on it every [`PING_EVERY`]: the answer comes after every message
//! published before it, so each one confirms the feed is caught up.

use super::{RedisStore, keys};
use crate::domain::ShortCode;
use crate::store::{ChangeFeed, FeedListener, LinkChange, StoreError};
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the feed confirms that it is caught up: well inside the one second in which a
/// change must reach every instance.
const PING_EVERY: Duration = Duration::from_millis(200);
/// A feed that does not answer its PING within this is treated as lost and reconnected.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[async_trait]
impl ChangeFeed for RedisStore {
    async fn announce(&self, code: &ShortCode) -> Result<(), StoreError> {
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(keys::CHANGES).arg(code.as_str());
        self.query(&publish).await
    }

    fn watch(&self, listener: Arc<dyn FeedListener>, shutdown: CancellationToken) {
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = listen(&client, listener.as_ref()) => {
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

/// One subscription, until it fails or ends.
async fn listen(client: &redis::Client, listener: &dyn FeedListener) -> redis::RedisResult<()> {
    let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
    sink.subscribe(keys::CHANGES).await?;
    // Whatever changed while we were not subscribed is unknown: start over.
    listener.changed(LinkChange::All);
    let hear = |msg: redis::Msg| {
        if let Ok(code) = msg.get_payload::<String>() {
            listener.changed(LinkChange::One(ShortCode::from_trusted(&code)));
        }
    };
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            msg = messages.next() => match msg {
                Some(msg) => hear(msg),
                None => return Ok(()),
            },
            _ = ping.tick() => {
                let sent = Instant::now();
                tokio::time::timeout(PING_TIMEOUT, sink.ping::<()>())
                    .await
                    .map_err(|_| {
                        redis::RedisError::from((redis::ErrorKind::Io, "the change feed did not answer its PING"))
                    })??;
                // The messages published before the PING are in the stream by now.
                while let Some(Some(msg)) = messages.next().now_or_never() {
                    hear(msg);
                }
                listener.caught_up(sent);
            }
        }
    }
}
