//! Click-to-webhook latency: clicks lead links at a steady rate and measures, for each,
//! the time from the redirect's response to the webhook's arrival at a receiver this
//! program runs itself. Prints `{"sent":…,"received":…,"p50_ms":…,"p99_ms":…}`.
//!
//! Usage: `click_latency <public-base> <codes-file> <receiver-addr> <rate/s> <seconds>`;
//! subscribe `http://<receiver-addr>/hook` first.

mod common;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Times = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, codes_file, receiver, rate, seconds) = (
        args[0].clone(),
        args[1].clone(),
        args[2].clone(),
        args[3].parse::<u64>().unwrap(),
        args[4].parse::<u64>().unwrap(),
    );
    let codes: Vec<String> = std::fs::read_to_string(codes_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let answered: Times = Arc::default();
    let arrived: Times = Arc::default();

    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrived.clone());
    common::serve(&receiver, app).await;
    let client = common::tapping_client();
    let total = (rate * seconds) as usize;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = Vec::with_capacity(total);
    for code in codes.iter().cycle().take(total) {
        tick.tick().await;
        let (client, answered) = (client.clone(), answered.clone());
        let url = format!("{base}/{code}");
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .get(url)
                .header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1")
                .send()
                .await;
            if response.is_ok_and(|r| r.status() == 302) {
                answered.lock().unwrap().insert(code, Instant::now());
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answered = answered.lock().unwrap();
    let arrived = arrived.lock().unwrap();
    let mut latencies: Vec<f64> = answered
        .iter()
        .filter_map(|(code, at)| {
            let got = arrived.get(code)?;
            Some(got.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    println!(
        "{{\"sent\":{},\"received\":{},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        answered.len(),
        latencies.len(),
        common::percentile(&mut latencies, 0.50),
        common::percentile(&mut latencies, 0.99)
    );
}

/// Records when the event of each short code arrived.
async fn receive(State(arrived): State<Times>, body: String) -> &'static str {
    let now = Instant::now();
    if let Ok(event) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(short) = event["data"]["shortUrl"].as_str()
        && let Some(code) = short.rsplit('/').next()
    {
        arrived
            .lock()
            .unwrap()
            .entry(code.to_owned())
            .or_insert(now);
    }
    ""
}
