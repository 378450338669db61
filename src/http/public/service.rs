//! The public listener as one service, with a shortcut for redirects.
//!
//! A redirect is the hot path of the whole service, and through the router it pays for
//! route matching, two request extensions and a boxed clone of the route per layer.
//! [`PublicService`] recognises `GET|HEAD /{code}` itself and calls [`follow`] directly,
//! with the same metrics and panic guard; every other request goes through the router,
//! which has the same `/{code}` route calling the same function, so both ways give the
//! same answer.

use super::{follow, not_found};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::metrics::RouteMetrics;
use axum::Router;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::Service;

/// Single-segment paths the router answers itself (they win over `/{code}` there too).
const NAMED_ROUTES: [&str; 2] = ["healthz", "readyz"];

#[derive(Clone)]
pub struct PublicService {
    state: AppState,
    /// The public router with its layers, for everything but redirects.
    router: Router,
    metrics: Arc<RouteMetrics>,
}

impl PublicService {
    pub fn new(state: AppState, router: Router) -> Self {
        Self {
            state,
            router,
            metrics: Arc::new(RouteMetrics::new("public", "/{code}")),
        }
    }
}

/// The code segment of a redirect request, still percent-encoded, or `None` when the
/// request is for the router.
fn redirect_segment<'a>(method: &Method, uri: &'a Uri) -> Option<&'a str> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    let segment = uri.path().strip_prefix('/')?;
    let is_code = !segment.is_empty() && !segment.contains('/');
    (is_code && !NAMED_ROUTES.contains(&segment)).then_some(segment)
}

impl Service<Request> for PublicService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if redirect_segment(request.method(), request.uri()).is_none() {
            return self.router.call(request).boxed();
        }
        let state = self.state.clone();
        let metrics = self.metrics.clone();
        // The body is not read (and not `Sync`, which the future must be across awaits).
        let (request, _) = request.into_parts();
        async move {
            let start = Instant::now();
            let answer = AssertUnwindSafe(shortcut(&state, &request))
                .catch_unwind()
                .await;
            let response = answer.unwrap_or_else(|_| {
                ApiError::Internal("a handler panicked".into()).into_response()
            });
            metrics.observe(&request.method, response.status(), start);
            Ok(response)
        }
        .boxed()
    }
}

/// A redirect answered in front of the router.
async fn shortcut(state: &AppState, request: &Parts) -> Response {
    // As the router's `Path` extractor does: decoded, and undecodable means no such link.
    let code = redirect_segment(&request.method, &request.uri).and_then(|segment| {
        percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .ok()
    });
    match code {
        Some(code) => {
            let query = request.uri.query();
            follow(state, &code, query, &request.method, &request.headers).await
        }
        None => not_found(state),
    }
}
