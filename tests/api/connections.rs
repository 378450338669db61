//! Hostile and unlucky connections against the released binary: half-sent heads, oversized
//! heads, idle floods and busy floods. Each listener must stay bounded in memory and time,
//! and the admin listener must keep answering whatever happens to the public one.

use crate::helpers::{Binary, TOKEN, client, eventually};
use reqwest::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's limit of one request head (`src/http/server`).
const MAX_HEAD_BYTES: u64 = 16 * 1024;

async fn connect(url: &str) -> TcpStream {
    TcpStream::connect(Binary::addr(url))
        .await
        .expect("the listener accepts")
}

/// Reads until the server closes the connection (end of stream or reset), and answers what
/// it sent; `None` if it is still open after `deadline`.
async fn read_until_closed(stream: &mut TcpStream, deadline: Duration) -> Option<String> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(deadline, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&received).into_owned())
}

/// Sends one health check on `stream` and expects its `200`, keeping the connection open.
async fn check_health(stream: &mut TcpStream) {
    let mut answer = [0u8; 512];
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = stream.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
}

async fn get(url: &str) -> reqwest::Result<reqwest::Response> {
    client()
        .get(url)
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
}

#[tokio::test]
async fn a_half_sent_request_is_closed_by_the_server_on_both_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("AKTI_HEADER_TIMEOUT", "1s"), ("AKTI_IDLE_TIMEOUT", "3s")];
    let binary = Binary::start(&env, dir.path()).await;
    for listener in [&binary.public, &binary.admin] {
        let mut half = connect(listener).await;
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let mut silent = connect(listener).await;
        let closed = read_until_closed(&mut half, Duration::from_secs(15)).await;
        assert!(closed.is_some(), "{listener}: a half-sent head stays open");
        let closed = read_until_closed(&mut silent, Duration::from_secs(15)).await;
        assert!(
            closed.is_some(),
            "{listener}: a silent connection stays open"
        );
    }
}

#[tokio::test]
async fn an_idle_connection_outlives_the_header_timeout_but_not_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("AKTI_HEADER_TIMEOUT", "1s"), ("AKTI_IDLE_TIMEOUT", "3s")];
    let binary = Binary::start(&env, dir.path()).await;
    let mut stream = connect(&binary.public).await;
    check_health(&mut stream).await;

    // Longer than the header timeout: a keep-alive connection between requests is idle,
    // not slow, and a load balancer's pooled connection must survive it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    check_health(&mut stream).await;

    let closed = read_until_closed(&mut stream, Duration::from_secs(15)).await;
    assert_eq!(closed.as_deref(), Some(""), "closed by the idle timeout");
}

#[tokio::test]
async fn a_head_begun_on_a_kept_alive_connection_gets_the_header_timeout_not_the_idle_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("AKTI_HEADER_TIMEOUT", "1s"), ("AKTI_IDLE_TIMEOUT", "120s")];
    let binary = Binary::start(&env, dir.path()).await;
    let mut stream = connect(&binary.public).await;
    check_health(&mut stream).await;

    // Past the header timeout, the connection's task sleeps towards the idle deadline; a
    // head begun then must still be held to its own, far shorter one.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let closed = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    assert!(
        closed.is_some(),
        "a stalled head on a served connection waits for the 120 s idle timeout"
    );
}

#[tokio::test]
async fn a_head_over_the_limit_is_refused_with_431() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Binary::start(&[], dir.path()).await;
    let mut stream = connect(&binary.public).await;
    let mut head = b"GET /abc HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    head.resize(2 * MAX_HEAD_BYTES as usize, b'a');
    // The server may close before everything is written.
    let _ = stream.write_all(&head).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(15))
        .await
        .expect("the connection is closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // A head just under the limit is served.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ".to_vec();
    head.resize(MAX_HEAD_BYTES as usize - 1024, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    let mut stream = connect(&binary.public).await;
    stream.write_all(&head).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(15))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn a_thousand_half_sent_large_heads_hold_no_more_memory_than_the_limit_allows() {
    const CONNECTIONS: usize = 1_000;
    /// What each client tries to send: far over the head limit, never finished.
    const ATTEMPT: usize = 256 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let env = [("AKTI_HEADER_TIMEOUT", "60s")];
    let binary = Binary::start(&env, dir.path()).await;
    let before = binary.rss_bytes();
    let public = binary.public.clone();
    let floods = (0..CONNECTIONS).map(|_| {
        let public = public.clone();
        tokio::spawn(async move {
            let mut stream = connect(&public).await;
            let mut head = b"GET /abc HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
            head.resize(ATTEMPT, b'a');
            let _ = stream.write_all(&head).await;
            stream
        })
    });
    let streams = futures::future::join_all(floods).await;
    // Every one of them is cut off at the limit and closed, not held.
    for stream in streams {
        let mut stream = stream.unwrap();
        let answer = read_until_closed(&mut stream, Duration::from_secs(30)).await;
        assert!(answer.is_some(), "an oversized head is still open");
    }
    let grown = binary.rss_bytes().saturating_sub(before);
    // Each connection may hold one head's buffer and hyper's own state while it lasts.
    let allowed = CONNECTIONS as u64 * (2 * MAX_HEAD_BYTES + 16 * 1024);
    assert!(
        grown <= allowed,
        "grew {grown} bytes for {CONNECTIONS} heads (at most {allowed})"
    );
    assert!(get(&format!("{}/healthz", binary.public)).await.is_ok());
}

#[tokio::test]
async fn the_admin_listener_and_health_checks_answer_during_an_idle_flood() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AKTI_MAX_CONNECTIONS", "100"),
        ("AKTI_ADMIN_TOKEN", TOKEN),
        ("AKTI_HEADER_TIMEOUT", "60s"),
    ];
    let binary = Binary::start(&env, dir.path()).await;
    // Ten times the cap in connections that never send anything.
    let mut flood = Vec::new();
    for _ in 0..1_000 {
        flood.push(connect(&binary.public).await);
    }
    let admin = get(&format!("{}/v1/links", binary.admin)).await.unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    let health = get(&format!("{}/healthz", binary.admin)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // A new public connection takes the place of one that has been quiet for a while.
    let public = format!("{}/healthz", binary.public);
    eventually(
        "the public health check answers during the flood",
        Duration::from_secs(15),
        || async {
            get(&public)
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        },
    )
    .await;
    let metrics = get(&format!("{}/metrics", binary.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("akti_connections_displaced_total"),
        "{metrics}"
    );
    drop(flood);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_and_logged_once_in_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("AKTI_MAX_CONNECTIONS", "64")];
    let binary = Binary::start(&env, dir.path()).await;
    // Sixty-four requests in flight: each sent its head and waits to send its body.
    let mut busy = Vec::new();
    for _ in 0..64 {
        let mut stream = connect(&binary.public).await;
        stream
            .write_all(
                b"POST /callbacks/twilio/status HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nMessage",
            )
            .await
            .unwrap();
        busy.push(stream);
    }
    let mut refused = 0;
    for _ in 0..200 {
        let mut stream = connect(&binary.public).await;
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        refused += usize::from(answer.as_deref() == Some(""));
    }
    assert_eq!(refused, 200, "every connection beyond the cap is refused");
    let log = binary.log();
    let lines = log.matches("refusing connections").count();
    assert_eq!(lines, 1, "one line per ten seconds: {log}");
    drop(busy);
}

#[tokio::test]
async fn the_open_file_limit_is_raised_to_the_hard_limit_at_start() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = Binary::start_with(&[], dir.path(), |command| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe, as a pre_exec hook must be.
        unsafe {
            command
                .pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, 256.min(hard), hard));
        }
    })
    .await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", binary.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit raised to the hard one: {line}"
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("AKTI_HEADER_TIMEOUT", "1s"), ("AKTI_ADMIN_TOKEN", TOKEN)];
    let binary = Binary::start(&env, dir.path()).await;
    let mut stream = connect(&binary.admin).await;
    let head = format!(
        "POST /v1/links HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"campaignId\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(30))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}
