//! One connection: hyper's HTTP/1.1 state machine, plus a watch over how the client uses it.
//!
//! hyper's own header timeout also ends idle keep-alive connections (it starts when hyper
//! begins waiting for the next head), so one value would have to serve both; a load
//! balancer's pooled connections need a long idle timeout, a half-sent head a short one.
//! So the connection's [`Activity`] is kept here instead: reads tell when a request head
//! starts, the service wrapper when a request is in flight, writes when the last response
//! went out. The task closes the connection (drops it) when its deadline passes, or when the
//! listener asks it to make room while it is quiet.
//!
//! Nothing on a request's way wakes the task: every deadline that activity can set is at
//! least the shorter of the two timeouts after it, so the task sleeps at most that long
//! and then looks again. A busy keep-alive connection costs a timer per that interval,
//! not one per request.

use super::{Handler, Limits, MAX_HEAD_BYTES};
use crate::http::extract::BodyTimeout;
use axum::http::Method;
use axum::response::Response;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The instant that activity times are counted from.
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Milliseconds since [`ORIGIN`], plus one, so that 0 can mean "never".
fn now_ms() -> u64 {
    ORIGIN.elapsed().as_millis() as u64 + 1
}

fn instant_of(ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::from_std(*ORIGIN + Duration::from_millis(ms.saturating_sub(1)))
}

/// What a connection is doing, in atomics written by its reads, writes and requests.
pub struct Activity {
    in_flight: AtomicU32,
    /// When the connection last became or stayed quiet: accepted, a request finished, a
    /// response was written.
    quiet_since: AtomicU64,
    /// When the first byte of a request head not yet dispatched arrived; 0 when none.
    head_since: AtomicU64,
    /// Whether a request has been dispatched on this connection.
    served: AtomicBool,
    displaced: AtomicBool,
    /// Woken when the listener wants room.
    wake: Notify,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            in_flight: AtomicU32::new(0),
            quiet_since: AtomicU64::new(now_ms()),
            head_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            displaced: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn is_busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    fn read(&self) {
        if !self.is_busy() && self.head_since.load(Ordering::Relaxed) == 0 {
            self.head_since.store(now_ms(), Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        if !self.is_busy() {
            self.quiet_since.store(now_ms(), Ordering::Relaxed);
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
    }

    fn end(&self) {
        self.quiet_since.store(now_ms(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// How long the connection has been quiet (no request in flight, nothing sent and no
    /// head begun); `None` while a request is in flight.
    pub fn quiet_for(&self) -> Option<Duration> {
        if self.is_busy() {
            return None;
        }
        let since =
            (self.quiet_since.load(Ordering::Relaxed)).max(self.head_since.load(Ordering::Relaxed));
        Some(Duration::from_millis(now_ms().saturating_sub(since)))
    }

    /// Asks the connection to close if it is still quiet.
    pub fn displace(&self) {
        self.displaced.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// When the connection must be closed unless something happens first, and why; `None`
    /// while a request is in flight (the handler's own timeouts bound it).
    fn deadline(&self, limits: &Limits) -> Option<(tokio::time::Instant, &'static str)> {
        if self.is_busy() {
            return None;
        }
        let head = self.head_since.load(Ordering::Relaxed);
        let quiet = self.quiet_since.load(Ordering::Relaxed);
        Some(if head != 0 {
            (instant_of(head) + limits.header_timeout, "header")
        } else if !self.served.load(Ordering::Relaxed) {
            (instant_of(quiet) + limits.header_timeout, "header")
        } else {
            (instant_of(quiet) + limits.idle_timeout, "idle")
        })
    }
}

/// Serves one connection until the client or hyper closes it, its deadline passes, it is
/// displaced while quiet, or (after `shutdown`) its last request is answered.
pub async fn run(
    stream: TcpStream,
    handler: impl Handler,
    activity: &Arc<Activity>,
    limits: Limits,
    listener: &'static str,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Tracked {
        stream,
        activity: activity.clone(),
    });
    let service = Dispatch {
        handler,
        activity: activity.clone(),
        body_timeout: limits.body_timeout(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The head's deadline is kept by `Activity` (see the module's text).
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut connection = std::pin::pin!(builder.serve_connection(io, service));
    let mut draining = false;
    // Whatever happens while the task sleeps sets a deadline at least this far from then.
    let look_again = limits.header_timeout.min(limits.idle_timeout);
    loop {
        let look_at = tokio::time::Instant::now() + look_again;
        let wake_at = (activity.deadline(&limits)).map_or(look_at, |(at, _)| at.min(look_at));
        tokio::select! {
            // In order: the connection's own progress is by far the most frequent.
            biased;
            _ = connection.as_mut() => return,
            () = activity.wake.notified() => {
                if activity.displaced.swap(false, Ordering::AcqRel) && activity.quiet_for().is_some() {
                    return;
                }
            }
            () = tokio::time::sleep_until(wake_at) => {
                if let Some((at, reason)) = activity.deadline(&limits)
                    && tokio::time::Instant::now() >= at
                {
                    metrics::counter!("akti_connections_timed_out_total", "listener" => listener, "reason" => reason)
                        .increment(1);
                    return;
                }
            }
            () = shutdown.cancelled(), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// The handler, counting the requests in flight on its connection.
struct Dispatch<H> {
    handler: H,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

/// Marks a request in flight until dropped: when its response is ready, or when the
/// connection goes away in the middle.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl<H: Handler> hyper::service::Service<hyper::Request<Incoming>> for Dispatch<H> {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        self.activity.begin();
        // Only a request that may carry a body pays for the extension (redirects do not).
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            (request.extensions_mut()).insert(BodyTimeout(self.body_timeout));
        }
        let in_flight = InFlight(self.activity.clone());
        let answer = self
            .handler
            .clone()
            .oneshot(request.map(axum::body::Body::new));
        Box::pin(async move {
            let response = answer.await;
            drop(in_flight);
            response
        })
    }
}

/// The socket, reporting reads and writes to the connection's [`Activity`].
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 1,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_fresh_connection_gets_the_header_timeout_then_each_pause_the_idle_one() {
        let activity = Activity::new();
        let (at, reason) = activity.deadline(&limits()).unwrap();
        assert_eq!(reason, "header");
        assert!(at <= tokio::time::Instant::now() + Duration::from_secs(10));

        activity.begin();
        assert!(
            activity.deadline(&limits()).is_none(),
            "no deadline in flight"
        );
        assert!(activity.quiet_for().is_none());
        activity.end();
        let (at, reason) = activity.deadline(&limits()).unwrap();
        assert_eq!(reason, "idle");
        assert!(at > tokio::time::Instant::now() + Duration::from_secs(50));

        activity.read();
        let (_, reason) = activity.deadline(&limits()).unwrap();
        assert_eq!(
            reason, "header",
            "a head begun must finish in the header timeout"
        );
        assert!(activity.quiet_for().unwrap() < Duration::from_secs(1));
    }
}
