//! What the load programs share: the webhook receiver they run, the client that taps
//! short links, and how they summarise latencies.

use axum::Router;

/// Serves `app` on `addr` in the background (the program's webhook receiver).
pub async fn serve(addr: &str, app: Router) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// A client that stops at the redirect, as a phone's first request does.
pub fn tapping_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `p`-th quantile of `values` (sorted in place); NaN when there are none.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 * p) as usize).min(values.len().saturating_sub(1));
    values.get(at).copied().unwrap_or(f64::NAN)
}
