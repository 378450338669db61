//! One delivery attempt: a signed `POST` of the event body to the subscriber.

use super::signing::sign;
use super::ssrf;
use crate::domain::{Attempt, DeliveryTask};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use std::time::{Duration, Instant};

/// How much of a response body we read (and drop): enough to reuse the connection, never
/// enough for a subscriber to make us buffer much.
const MAX_RESPONSE_BODY: usize = 16 * 1024;

/// What the subscriber's answer means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Any 2xx within the timeout.
    Delivered,
    /// 410 Gone: do not retry, disable the subscription.
    Gone,
    /// Anything else: retry on the schedule, no earlier than `retry_after`.
    Failed { retry_after: Option<Duration> },
}

/// The shared client of every delivery: no redirects followed, DNS answers filtered unless
/// private targets are allowed. Fails rather than fall back to a client without those
/// guards.
pub fn client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    // reqwest is built without a bundled crypto provider; ring is the one rustls uses here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "akti-link/",
            env!("CARGO_PKG_VERSION"),
            " (webhooks)"
        ))
        .pool_idle_timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    if !allow_private {
        builder = builder.dns_resolver(std::sync::Arc::new(ssrf::GuardedResolver));
    }
    builder.build()
}

/// Sends `task` once and reports the attempt as the delivery log shows it.
pub async fn deliver(
    client: &reqwest::Client,
    task: &DeliveryTask,
    timeout: Duration,
    allow_private: bool,
) -> (Attempt, Verdict) {
    let started_at = crate::domain::now_millis();
    let started = Instant::now();
    let result = send(client, task, timeout, allow_private).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let (status_code, error, verdict) = match result {
        Ok((status, retry_after)) => {
            let verdict = if (200..300).contains(&status) {
                Verdict::Delivered
            } else if status == 410 {
                Verdict::Gone
            } else {
                Verdict::Failed { retry_after }
            };
            let error = (verdict != Verdict::Delivered).then(|| format!("HTTP {status}"));
            (Some(status), error, verdict)
        }
        Err(error) => (None, Some(error), Verdict::Failed { retry_after: None }),
    };
    let attempt = Attempt {
        at: started_at,
        status_code,
        error,
        duration_ms,
    };
    (attempt, verdict)
}

async fn send(
    client: &reqwest::Client,
    task: &DeliveryTask,
    timeout: Duration,
    allow_private: bool,
) -> Result<(u16, Option<Duration>), String> {
    let url = parsed(&task.subscription.url).ok_or_else(|| "invalid URL".to_owned())?;
    if !allow_private {
        // Literal addresses skip DNS, so the resolver cannot check them.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !ssrf::is_public(ip)) {
            return Err("blocked: private or reserved address".into());
        }
    }
    let timestamp = chrono::Utc::now().timestamp();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let id =
        HeaderValue::from_str(task.event_id.as_str()).map_err(|_| "invalid event id".to_owned())?;
    headers.insert("webhook-id", id);
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    let signature = sign(
        &task.subscription.secret,
        task.event_id.as_str(),
        timestamp,
        &task.body,
    );
    let signature =
        HeaderValue::from_str(&signature).map_err(|_| "invalid signature".to_owned())?;
    headers.insert("webhook-signature", signature);

    let request = client
        .post(url)
        .headers(headers)
        .body(task.body.clone())
        .timeout(timeout)
        .send();
    let mut response = request.await.map_err(|e| describe(&e, timeout))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(parse_retry_after);
    let mut read = 0;
    while read < MAX_RESPONSE_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) => break,
            // The status is what counts; a body cut short changes nothing.
            Err(_) => break,
        }
    }
    Ok((status, retry_after))
}

/// Subscription URLs parsed, per thread: a parse (IDNA mapping of the host included) costs
/// more than the rest of preparing an attempt, and attempts go to the same few URLs. Keyed
/// by the URL text, so a changed URL is another key.
fn parsed(url: &str) -> Option<url::Url> {
    const REMEMBERED: usize = 1024;
    thread_local! {
        static PARSED: std::cell::RefCell<std::collections::HashMap<String, url::Url, ahash::RandomState>> =
            std::cell::RefCell::default();
    }
    if let Some(known) = PARSED.with_borrow(|parsed| parsed.get(url).cloned()) {
        return Some(known);
    }
    let fresh = url::Url::parse(url).ok()?;
    PARSED.with_borrow_mut(|parsed| {
        if parsed.len() >= REMEMBERED {
            parsed.clear();
        }
        parsed.insert(url.to_owned(), fresh.clone());
    });
    Some(fresh)
}

/// A short reason for the delivery log, without the URL (it may carry a token).
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<ssrf::Blocked>() {
            return format!("blocked: {blocked}");
        }
        source = err.source();
    }
    if e.is_timeout() {
        format!("timed out after {}ms", timeout.as_millis())
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("120")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }
}
