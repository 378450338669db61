//! A campaign burst, end to end. Clicks a campaign's links at a steady rate from a mix a
//! campaign team would recognise (70 % humans tapping their link for the first time, 20 %
//! repeat taps inside the window, 10 % link previews), while ten subscribers receive the
//! events: eight healthy, one that answers after a second and one that always fails.
//! Prints one JSON object: the redirects' p50/p99 during the burst, click-to-webhook p50/p99
//! at the healthy subscribers, the slow subscriber's backlog when the burst ends and how
//! fast it drains, and the peak resident memory of the processes given.
//!
//! Usage: `campaign_burst <public-base> <admin-base> <token> <codes-file> <receiver-addr>
//! <clicks> <seconds> <service-pid>[,<store-pid>…]`

mod common;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HUMAN: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const PREVIEW: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0";
/// How long the healthy subscribers are waited for once the burst is over.
const SETTLE: Duration = Duration::from_secs(20);

/// What the receivers saw: when each healthy subscriber got each code's click, and how
/// many clicks reached the slow and the failing one.
#[derive(Default)]
struct Arrivals {
    healthy: Mutex<HashMap<(usize, String), Instant>>,
    slow: AtomicU64,
    failing: AtomicU64,
}

/// One tap of the burst: which code, with which agent, and whether it opens a window.
struct Tap {
    code: String,
    agent: &'static str,
    first: bool,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [
        public,
        admin,
        token,
        codes_file,
        receiver,
        clicks,
        seconds,
        pids,
    ] = &args[..]
    else {
        panic!(
            "usage: campaign_burst <public> <admin> <token> <codes-file> <receiver-addr> <clicks> <seconds> <pids>"
        );
    };
    let (clicks, seconds): (usize, u64) = (clicks.parse().unwrap(), seconds.parse().unwrap());
    let pids: Vec<u32> = pids.split(',').map(|p| p.parse().unwrap()).collect();
    let codes = std::fs::read_to_string(codes_file).unwrap();
    let taps = plan(codes.lines(), clicks);
    let healthy_subscribers: usize = (std::env::var("BURST_HEALTHY").ok())
        .map_or(8, |n| n.parse().expect("BURST_HEALTHY is a number"));

    let arrivals = Arc::new(Arrivals::default());
    let app = Router::new()
        .route("/hook/{who}", post(receive))
        .with_state(arrivals.clone());
    common::serve(receiver, app).await;
    let client = common::tapping_client();
    // BURST_HEALTHY_ONLY=1 leaves out the slow and the failing subscriber, to see what
    // they cost the others; BURST_HEALTHY sets how many healthy ones there are.
    let unhealthy = match std::env::var("BURST_HEALTHY_ONLY").as_deref() {
        Ok("1") => vec![],
        _ => vec!["slow".to_owned(), "failing".to_owned()],
    };
    let subscribers = (0..healthy_subscribers)
        .map(|i| i.to_string())
        .chain(unhealthy);
    for who in subscribers {
        let answer = (client.post(format!("{admin}/v1/webhooks")))
            .bearer_auth(token)
            .json(&serde_json::json!({"url": format!("http://{receiver}/hook/{who}")}))
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_success(),
            "subscribing: {}",
            answer.status()
        );
    }

    let cpu_before: Vec<f64> = pids.iter().map(|p| cpu_seconds(*p)).collect();
    let peaks = Arc::new(Mutex::new(vec![0u64; pids.len()]));
    tokio::spawn(sample_memory(pids.clone(), peaks.clone()));
    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_secs(seconds) / clicks as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clicks);
    for tap in taps {
        tick.tick().await;
        let (client, url) = (client.clone(), format!("{public}/{}", tap.code));
        let (answered, latencies, failed) = (answered.clone(), latencies.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = client.get(url).header("user-agent", tap.agent).send().await;
            let now = Instant::now();
            if !response.is_ok_and(|r| r.status() == StatusCode::FOUND) {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            latencies.lock().unwrap().push(ms(now - sent));
            if tap.first {
                answered.lock().unwrap().insert(tap.code, now);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let burst = started.elapsed();
    let expected = answered.lock().unwrap().len();
    let slow_at_end = arrivals.slow.load(Ordering::Relaxed);
    let waited = Instant::now();
    while waited.elapsed() < SETTLE
        && arrivals.healthy.lock().unwrap().len() < expected * healthy_subscribers
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The slow subscriber's pace, over at least five seconds after the burst.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(waited.elapsed())).await;
    let drain_rate = (arrivals.slow.load(Ordering::Relaxed) - slow_at_end) as f64
        / waited.elapsed().as_secs_f64();
    let backlog = (expected as u64).saturating_sub(slow_at_end);

    let mut redirects = std::mem::take(&mut *latencies.lock().unwrap());
    let answered = answered.lock().unwrap();
    let healthy = arrivals.healthy.lock().unwrap();
    let mut to_webhook: Vec<f64> = (healthy.iter())
        .filter_map(|((_, code), at)| Some(ms(at.saturating_duration_since(*answered.get(code)?))))
        .collect();
    let peaks = peaks.lock().unwrap();
    let cpu: Vec<f64> = (pids.iter().zip(cpu_before))
        .map(|(p, before)| cpu_seconds(*p) - before)
        .collect();
    let report = serde_json::json!({
        "clicks": clicks,
        "burst_s": burst.as_secs_f64(),
        "redirect_failures": failed.load(Ordering::Relaxed),
        "redirect_p50_ms": common::percentile(&mut redirects, 0.50),
        "redirect_p99_ms": common::percentile(&mut redirects, 0.99),
        "events_expected": expected,
        "healthy_received": healthy.len(),
        "healthy_expected": expected * healthy_subscribers,
        "webhook_p50_ms": common::percentile(&mut to_webhook, 0.50),
        "webhook_p99_ms": common::percentile(&mut to_webhook, 0.99),
        "slow_backlog_at_end": backlog,
        "slow_drain_per_s": drain_rate,
        "slow_drain_projected_s": backlog as f64 / drain_rate,
        "failing_attempts": arrivals.failing.load(Ordering::Relaxed),
        "peak_rss_service_bytes": peaks[0],
        "peak_rss_store_bytes": peaks[1..].iter().sum::<u64>(),
        "cpu_service_s": cpu[0],
        "cpu_store_s": cpu[1..].iter().sum::<f64>(),
    });
    println!("{report}");
}

/// The burst's taps in order. Repeats tap one of the last thousand first taps (well inside
/// the 30-second window at these rates); previews fetch a link no one has tapped yet.
fn plan<'a>(mut codes: impl Iterator<Item = &'a str>, clicks: usize) -> Vec<Tap> {
    let mut recent: VecDeque<String> = VecDeque::with_capacity(1_000);
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut taps = Vec::with_capacity(clicks);
    for _ in 0..clicks {
        // xorshift64: the same burst every run.
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let roll = random % 100;
        let tap = if (70..90).contains(&roll) && !recent.is_empty() {
            let code = recent[(random >> 32) as usize % recent.len()].clone();
            Tap {
                code,
                agent: HUMAN,
                first: false,
            }
        } else {
            let code = codes.next().expect("a link for every first tap").to_owned();
            if roll >= 90 {
                Tap {
                    code,
                    agent: PREVIEW,
                    first: false,
                }
            } else {
                if recent.len() == 1_000 {
                    recent.pop_front();
                }
                recent.push_back(code.clone());
                Tap {
                    code,
                    agent: HUMAN,
                    first: true,
                }
            }
        };
        taps.push(tap);
    }
    taps
}

/// A subscriber: healthy ones answer at once, `slow` after a second, `failing` with 500.
async fn receive(
    State(arrivals): State<Arc<Arrivals>>,
    Path(who): Path<String>,
    body: String,
) -> StatusCode {
    let now = Instant::now();
    let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if event["metadata"]["eventType"] != "lead.link_clicked" {
        return StatusCode::OK;
    }
    match who.as_str() {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            arrivals.slow.fetch_add(1, Ordering::Relaxed);
            StatusCode::OK
        }
        "failing" => {
            arrivals.failing.fetch_add(1, Ordering::Relaxed);
            StatusCode::INTERNAL_SERVER_ERROR
        }
        healthy => {
            let short = event["data"]["shortUrl"].as_str().unwrap_or_default();
            let code = short.rsplit('/').next().unwrap_or_default().to_owned();
            let key = (healthy.parse().unwrap_or(usize::MAX), code);
            arrivals.healthy.lock().unwrap().entry(key).or_insert(now);
            StatusCode::OK
        }
    }
}

/// The highest resident memory of each process, sampled every half second.
async fn sample_memory(pids: Vec<u32>, peaks: Arc<Mutex<Vec<u64>>>) {
    loop {
        for (i, pid) in pids.iter().enumerate() {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let kib = (status.lines())
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
            let mut peaks = peaks.lock().unwrap();
            peaks[i] = peaks[i].max(kib * 1024);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The CPU time a process has used, user and system, from `/proc/<pid>/stat` (in clock
/// ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, f)| f)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
