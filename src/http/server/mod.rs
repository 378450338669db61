//! The HTTP/1.1 server both listeners run, built to survive clients that hold connections
//! open: a slow or stuck client costs one bounded connection for a bounded time, and a flood
//! of them cannot starve anyone else.
//!
//! - **Header size**: a request head larger than [`MAX_HEAD_BYTES`] is answered `431` and the
//!   connection closed, so a half-sent head holds at most that much memory.
//! - **Timeouts** (see [`connection`]): a request head must arrive within the header timeout
//!   of its first byte (or of the connection's start), its body within three header
//!   timeouts; a connection with no request in flight is closed after the idle timeout.
//! - **A cap on connections** per listener. When the cap is reached, a new connection takes
//!   the place of the connection that has been quiet longest (no request in flight, idle or
//!   still sending its head), as nginx reuses idle keep-alive connections; only when every
//!   connection is busy is the new one refused, and that is logged (at most every
//!   [`REFUSAL_LOG_EVERY`]) and counted. The admin listener has its own cap, so a flood of the
//!   public listener never reaches it.
//!
//! HTTP/2 is not spoken: a TLS terminator or load balancer in front speaks it to clients.

mod connection;
mod registry;

use connection::Activity;
use registry::Registry;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Most bytes of one request head (request line and headers). nginx allows 8 KiB per line;
/// real clients send well under 2 KiB to a link service, which sets no cookies.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Connections the admin listener takes: operators, scrapers and health checks.
pub const ADMIN_MAX_CONNECTIONS: usize = 256;
/// File descriptors kept free of both listeners: the dispatcher's outgoing connections (up
/// to its 2,048 attempts in flight), the store's connections and the embedded store's files.
const RESERVED_DESCRIPTORS: u64 = 2_560;
/// The fewest connections the public listener is given, whatever the descriptor limit.
const MIN_PUBLIC_CONNECTIONS: usize = 64;
/// How long a new connection at the cap waits for the connection it displaced to close.
const DISPLACE_WAIT: Duration = Duration::from_millis(50);
/// How often a listener at its cap may log that it refuses connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// How one listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// From a connection's start, or a request head's first byte, to the end of that head.
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight, between requests.
    pub idle_timeout: Duration,
}

impl Limits {
    /// How long a request's body may take to arrive: three header timeouts, since a body
    /// may be megabytes where a head is a few hundred bytes.
    pub fn body_timeout(&self) -> Duration {
        self.header_timeout * 3
    }
}

/// Raises the process's soft limit of open files to its hard limit, and answers the limit
/// now in force.
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The public listener's cap: the configured one, lowered to what the descriptor limit
/// leaves after the admin listener and [`RESERVED_DESCRIPTORS`].
pub fn public_cap(configured: usize, descriptor_limit: u64) -> usize {
    let room = descriptor_limit.saturating_sub(ADMIN_MAX_CONNECTIONS as u64 + RESERVED_DESCRIPTORS);
    let cap = configured.min(usize::try_from(room).unwrap_or(usize::MAX));
    if cap < configured {
        tracing::warn!(
            configured,
            descriptor_limit,
            "the open-file limit allows the public listener only {} connections",
            cap.max(MIN_PUBLIC_CONNECTIONS)
        );
    }
    cap.max(MIN_PUBLIC_CONNECTIONS)
}

/// The service a connection serves: an axum `Router`, or the public listener's service.
pub trait Handler:
    tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Handler for S where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// Serves `listener` until `shutdown`, then lets open connections finish their requests
/// and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    name: &'static str,
    handler: impl Handler,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(Registry::default());
    let refusals = Refusals::new(name, limits.max_connections);
    let connections = TaskTracker::new();
    let open = metrics::gauge!("akti_connections_open", "listener" => name);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (or a connection reset before it was taken): wait a
                // moment rather than spin, and let closing connections give some back.
                refusals.accept_failed(&e);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(permit) = admit(&permits, &registry).await else {
            refusals.refused();
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let slot = registry.insert(activity.clone());
        let (handler, registry, shutdown, open) = (
            handler.clone(),
            registry.clone(),
            shutdown.clone(),
            open.clone(),
        );
        connections.spawn(async move {
            open.increment(1.0);
            connection::run(stream, handler, &activity, limits, name, shutdown).await;
            registry.remove(slot);
            open.decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// A permit for one more connection: a free one, or the one the quietest connection gives
/// back when it is told to make room.
async fn admit(permits: &Arc<Semaphore>, registry: &Registry) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return Some(permit);
    }
    if !registry.displace_quietest() {
        return None;
    }
    let displaced = tokio::time::timeout(DISPLACE_WAIT, permits.clone().acquire_owned()).await;
    metrics::counter!("akti_connections_displaced_total").increment(1);
    displaced.ok()?.ok()
}

/// Counts refused connections and logs them, at most every [`REFUSAL_LOG_EVERY`].
struct Refusals {
    listener: &'static str,
    cap: usize,
    since_log: AtomicU64,
    last_log: std::sync::Mutex<Option<Instant>>,
    counter: metrics::Counter,
}

impl Refusals {
    fn new(listener: &'static str, cap: usize) -> Self {
        Self {
            listener,
            cap,
            since_log: AtomicU64::new(0),
            last_log: std::sync::Mutex::new(None),
            counter: metrics::counter!("akti_connections_refused_total", "listener" => listener),
        }
    }

    fn refused(&self) {
        self.counter.increment(1);
        let refused = self.since_log.fetch_add(1, Ordering::Relaxed) + 1;
        if self.may_log() {
            self.since_log.fetch_sub(refused, Ordering::Relaxed);
            tracing::warn!(
                listener = self.listener,
                refused,
                "refusing connections: all {} connections are busy",
                self.cap
            );
        }
    }

    fn accept_failed(&self, e: &std::io::Error) {
        if self.may_log() {
            tracing::warn!(listener = self.listener, error = %e, "cannot accept connections");
        }
    }

    /// Whether a log line is due. A std mutex, held only to read and set the time.
    fn may_log(&self) -> bool {
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_cap_leaves_room_for_the_admin_listener_and_the_dispatcher() {
        assert_eq!(public_cap(10_000, 1_048_576), 10_000);
        let limit = 8_192;
        let cap = public_cap(10_000, limit);
        assert_eq!(
            cap as u64,
            limit - ADMIN_MAX_CONNECTIONS as u64 - RESERVED_DESCRIPTORS
        );
        assert_eq!(public_cap(10_000, 1_024), MIN_PUBLIC_CONNECTIONS);
    }
}
