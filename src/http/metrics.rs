//! Prometheus metrics: the recorder, the request middleware and the `/metrics` handler.
//!
//! Metric names:
//! - `akti_http_requests_total{listener, route, method, status}`
//! - `akti_http_request_duration_seconds{listener, route, method, status}` (histogram)
//! - `akti_link_cache_total{result="hit"|"miss"|"unconfirmed"}`, `akti_link_cache_entries`

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// The process-wide recorder. `metrics` has one global recorder per process, so every app
/// in a test process shares it; installed on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, which this crate never does.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// `GET /metrics` in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operators", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn render(State(state): State<super::AppState>) -> Response {
    metrics::gauge!("akti_link_cache_entries").set(state.cache.entries() as f64);
    let handle = handle();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// The counter and histogram of one (listener, route, method, status).
#[derive(Clone)]
struct RequestMetrics {
    count: metrics::Counter,
    duration: metrics::Histogram,
}

thread_local! {
    /// Handles by `listener|route|method|status`, so that a request costs a map lookup,
    /// not a registry lookup with four freshly allocated labels. Per thread: no lock on the
    /// redirect path; the handles themselves are shared atomics.
    static HANDLES: std::cell::RefCell<(String, std::collections::HashMap<String, RequestMetrics>)> =
        std::cell::RefCell::default();
}

fn request_metrics(
    listener: &'static str,
    route: &str,
    method: &str,
    status: u16,
) -> RequestMetrics {
    HANDLES.with_borrow_mut(|(key, handles)| {
        use std::fmt::Write;
        key.clear();
        let _ = write!(key, "{listener}|{route}|{method}|{status}");
        if let Some(found) = handles.get(key.as_str()) {
            return found.clone();
        }
        let labels = [
            ("listener", listener.to_owned()),
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        let made = RequestMetrics {
            count: metrics::counter!("akti_http_requests_total", &labels),
            duration: metrics::histogram!("akti_http_request_duration_seconds", &labels),
        };
        handles.insert(key.clone(), made.clone());
        made
    })
}

/// Counts and times every request by route template (never the raw path, so that the
/// number of series stays bounded whatever codes are requested).
pub async fn track(listener: &'static str, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    observe(listener, route, &method, response.status(), start);
    response
}

/// Counts and times one request that started at `start`.
pub fn observe(
    listener: &'static str,
    route: &str,
    method: &Method,
    status: StatusCode,
    start: Instant,
) {
    request_metrics(listener, route, method.as_str(), status.as_u16()).observe(start);
}

impl RequestMetrics {
    fn observe(&self, start: Instant) {
        self.count.increment(1);
        self.duration.record(start.elapsed().as_secs_f64());
    }
}

/// The statuses a redirect answers, in [`RouteMetrics`]' table.
const ROUTE_STATUSES: [StatusCode; 5] = [
    StatusCode::FOUND,
    StatusCode::NOT_FOUND,
    StatusCode::GONE,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::INTERNAL_SERVER_ERROR,
];

/// The handles of one `GET`/`HEAD` route, by method and status, found by indexing rather
/// than by building a key: for the redirect path, which answers few statuses very often.
pub struct RouteMetrics {
    listener: &'static str,
    route: &'static str,
    /// `[GET: 0, HEAD: 1][index in ROUTE_STATUSES]`
    table: [[OnceLock<RequestMetrics>; ROUTE_STATUSES.len()]; 2],
}

impl RouteMetrics {
    pub fn new(listener: &'static str, route: &'static str) -> Self {
        Self {
            listener,
            route,
            table: Default::default(),
        }
    }

    pub fn observe(&self, method: &Method, status: StatusCode, start: Instant) {
        let row = match *method {
            Method::GET => Some(0),
            Method::HEAD => Some(1),
            _ => None,
        };
        let column = ROUTE_STATUSES.iter().position(|s| *s == status);
        match row.zip(column) {
            Some((row, column)) => self.table[row][column]
                .get_or_init(|| {
                    request_metrics(self.listener, self.route, method.as_str(), status.as_u16())
                })
                .observe(start),
            None => observe(self.listener, self.route, method, status, start),
        }
    }
}

/// Histograms keep their samples until drained; without a scrape they would grow without
/// bound. Drains them every second until `shutdown`.
pub async fn run_upkeep(shutdown: tokio_util::sync::CancellationToken) {
    let handle = handle();
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}

/// How often histogram samples are folded into their buckets. Samples take about 8 bytes
/// each until then: at 100,000 redirects a second, every second held costs 0.8 MB.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
