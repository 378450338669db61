//! The benchmark's in-process baseline: the least an axum service can do for a redirect,
//! a `302` from an in-memory map, no tracking. `bench/run.py` runs it beside nginx and
//! akti-link so that every figure is a ratio measured in the same run.
//!
//! Usage: `baseline <addr> <codes-file>` (one code per line).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::sync::Arc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9300".into());
    let codes = std::fs::read_to_string(args.next().unwrap_or_else(|| "codes.txt".into()))?;
    let map: HashMap<String, HeaderValue> = codes
        .lines()
        .map(|c| {
            (
                c.to_owned(),
                HeaderValue::from_static("https://example.com/landing"),
            )
        })
        .collect();
    let app = Router::new()
        .route("/{code}", get(redirect))
        .with_state(Arc::new(map));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

async fn redirect(
    State(map): State<Arc<HashMap<String, HeaderValue>>>,
    Path(code): Path<String>,
) -> Response {
    match map.get(&code) {
        Some(location) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, location.clone()),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-store"),
                ),
            ],
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
