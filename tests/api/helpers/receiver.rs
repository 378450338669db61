//! A real HTTP server that receives webhooks.

use super::eventually;
use serde_json::Value;
use std::time::Duration;

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: axum::http::HeaderMap,
    pub body: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// How a [`Receiver`] answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<&'static str>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }

    /// Never answers within any test.
    pub fn hang() -> Self {
        Self {
            status: 204,
            delay: Duration::from_secs(3600),
            retry_after: None,
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    received: std::sync::Mutex<Vec<Received>>,
    scripted: std::sync::Mutex<std::collections::VecDeque<Reply>>,
    default: std::sync::Mutex<Option<Reply>>,
}

/// A real HTTP server that records every webhook it receives and answers as told; the
/// answers can change mid-test.
pub struct Receiver {
    pub url: String,
    state: std::sync::Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = std::sync::Arc::new(ReceiverState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handler_state = state.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let state = handler_state.clone();
                async move {
                    state.received.lock().unwrap().push(Received {
                        headers,
                        body,
                        at: std::time::Instant::now(),
                    });
                    let reply = state
                        .scripted
                        .lock()
                        .unwrap()
                        .pop_front()
                        .or_else(|| state.default.lock().unwrap().clone())
                        .unwrap_or(Reply::status(204));
                    tokio::time::sleep(reply.delay).await;
                    let mut response = axum::http::Response::builder().status(reply.status);
                    if let Some(after) = reply.retry_after {
                        response = response.header("retry-after", after);
                    }
                    response.body(axum::body::Body::empty()).unwrap()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    /// How to answer once the scripted replies are used up.
    pub fn answer(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = Some(reply);
    }

    /// Replies for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.scripted.lock().unwrap().extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        eventually(
            &format!("{n} webhooks at {}", self.url),
            deadline,
            || async { self.received().len() >= n },
        )
        .await;
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
