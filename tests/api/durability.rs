//! Guarantees under faults: several instances on one Redis, a Redis outage in the middle
//! of clicks, and the service killed with SIGKILL in a click burst.

use crate::helpers::{
    Backend, Binary, Receiver, RedisServer, Reply, SharedRedis, TestApp, client, eventually,
    webhook_config,
};
use crate::on_shared_redis;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Restarts and takeovers get longer than the usual wait.
const RESTART_WAIT: Duration = Duration::from_secs(20);

on_shared_redis!(
    two_instances_share_the_window_and_deliver_each_event_once,
    deliveries_wait_for_an_instance_that_dispatches,
);

async fn two_instances_share_the_window_and_deliver_each_event_once(backend: Backend) {
    let redis = SharedRedis::start(backend).await;
    let store = redis.store();
    let a = TestApp::spawn_on(store.clone(), webhook_config).await;
    let b = TestApp::spawn_on(store, webhook_config).await;
    let receiver = Receiver::start().await;
    a.subscribe(&receiver.url, json!({})).await;

    // Repeated clicks on one lead link, alternating instances: one event.
    let link = a
        .create_link(json!({"campaignId": "c", "url": "https://a.test/", "phone": "+155"}))
        .await;
    let code = link["code"].as_str().unwrap();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(app.click(code).await.status(), StatusCode::FOUND);
    }
    receiver.wait_for(1, RESTART_WAIT).await;

    // Many events, clicked through both instances: each delivered once, by one of them.
    let leads: Vec<Value> = (0..40)
        .map(|i| json!({"phone": format!("+1777{i:04}")}))
        .collect();
    let links: Value = a
        .admin_send(
            reqwest::Method::POST,
            "/v1/links/bulk",
            &json!({"campaignId": "c", "url": "https://b.test/", "leads": leads}),
        )
        .await
        .json()
        .await
        .unwrap();
    for (i, link) in links["links"].as_array().unwrap().iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        app.click(link["code"].as_str().unwrap()).await;
    }
    let got = receiver.wait_for(41, RESTART_WAIT).await;
    a.drain().await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), got.len());
    assert_eq!(
        got_after.len(),
        41,
        "one event for the repeated clicks, one per bulk link"
    );
    let ids: HashSet<&str> = got_after.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 41, "no event delivered twice");
}

#[tokio::test]
async fn clicks_during_a_redis_outage_are_buffered_and_delivered_when_it_returns() {
    let redis = RedisServer::start_persistent();
    let app = TestApp::spawn_on_redis(redis, |c| {
        webhook_config(c);
        c.cache_ttl = Duration::from_secs(3600);
    })
    .await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/", "phone": "+155"}))
        .await;
    let code = link["code"].as_str().unwrap();
    // A preview puts the link in the cache without opening the window.
    app.click_as(code, Some("WhatsApp/2")).await;

    app.redis(|r| r.stop());
    let response = app.click(code).await;
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "cached links keep redirecting"
    );
    assert!(receiver.received().is_empty());

    app.redis(|r| r.restart());
    let got = receiver.wait_for(1, RESTART_WAIT).await;
    assert_eq!(
        got[0].json()["data"]["shortUrl"],
        format!("https://link.test/{code}")
    );
    eventually("the click is counted", RESTART_WAIT, || async {
        app.stats(code).await["clickEvents"] == 1
    })
    .await;
}

/// Starts the binary, bursts clicks at it, SIGKILLs it mid-burst, restarts it, and checks
/// that every click answered with a redirect has its event delivered.
async fn sigkill_in_a_click_burst_loses_no_answered_click(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let redis = match backend {
        Backend::Embedded => None,
        shared => Some(SharedRedis::start(shared).await),
    };
    let store_env: Vec<(&str, String)> = match &redis {
        Some(redis) => vec![("AKTI_REDIS_URL", redis.url())],
        None => vec![(
            "AKTI_DATA_DIR",
            dir.path().join("store").display().to_string(),
        )],
    };
    let mut env: Vec<(&str, &str)> = vec![
        ("AKTI_ADMIN_TOKEN", "t"),
        ("AKTI_WEBHOOK_ALLOW_PRIVATE", "true"),
        // The default webhook timeout: the lease it implies (55 s) is not what brings the
        // deliveries back.
        ("AKTI_WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,100ms"),
        ("AKTI_BASE_URL", "https://link.test"),
    ];
    env.extend(store_env.iter().map(|(k, v)| (*k, v.as_str())));

    // A slow receiver keeps deliveries pending when the process dies.
    let receiver = Receiver::start().await;
    receiver.answer(Reply {
        status: 204,
        delay: Duration::from_millis(50),
        retry_after: None,
    });
    let first = Binary::start(&env, dir.path()).await;
    first.subscribe("t", &receiver.url).await;
    let leads: Vec<Value> = (0..400)
        .map(|i| json!({"phone": format!("+1888{i:04}")}))
        .collect();
    let codes = first.bulk("t", "burst", "https://a.test/", leads).await;

    // Eight clients click through the links; the process is killed once 120 have been
    // answered, while the others are in flight.
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let public = first.public.clone();
    let mut clickers = Vec::new();
    for worker in 0..8 {
        let codes: Vec<String> = codes.iter().skip(worker).step_by(8).cloned().collect();
        let (answered, public) = (answered.clone(), public.clone());
        clickers.push(tokio::spawn(async move {
            let http = client();
            for code in codes {
                let response = http
                    .get(format!("{public}/{code}"))
                    .header(
                        "user-agent",
                        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1",
                    )
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::FOUND => answered.lock().unwrap().push(code),
                    _ => return,
                }
            }
        }));
    }
    eventually("120 clicks answered", RESTART_WAIT, || async {
        answered.lock().unwrap().len() >= 120
    })
    .await;
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    for clicker in clickers {
        let _ = clicker.await;
    }
    let answered: HashSet<String> = answered.lock().unwrap().iter().cloned().collect();
    assert!(answered.len() < codes.len(), "the kill came mid-burst");

    let _second = Binary::start(&env, dir.path()).await;
    let short = |code: &str| format!("https://link.test/{code}");
    let expected: HashSet<String> = answered.iter().map(|c| short(c)).collect();
    // Deliveries leased by the dead process come back once its heartbeat has expired
    // (Redis), or at once (the embedded store, which one process owns).
    eventually(
        "every answered click's event arrives within 30 s of the restart",
        Duration::from_secs(30),
        || async {
            let delivered: HashSet<String> = receiver
                .received()
                .iter()
                .filter_map(|r| r.json()["data"]["shortUrl"].as_str().map(str::to_owned))
                .collect();
            expected.is_subset(&delivered)
        },
    )
    .await;
    // At least once: a repeat is allowed, a different event for the same click is not.
    let mut ids_by_url: HashMap<String, HashSet<String>> = HashMap::new();
    for r in receiver.received() {
        let url = r.json()["data"]["shortUrl"].as_str().unwrap().to_owned();
        ids_by_url
            .entry(url)
            .or_default()
            .insert(r.header("webhook-id").to_owned());
    }
    assert!(
        ids_by_url.values().all(|ids| ids.len() == 1),
        "one event per click"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_click_burst_loses_no_answered_click_on_the_embedded_store() {
    sigkill_in_a_click_burst_loses_no_answered_click(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_click_burst_loses_no_answered_click_on_redis() {
    sigkill_in_a_click_burst_loses_no_answered_click(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_click_burst_loses_no_answered_click_on_a_cluster() {
    sigkill_in_a_click_burst_loses_no_answered_click(Backend::Cluster).await;
}

async fn deliveries_wait_for_an_instance_that_dispatches(backend: Backend) {
    let redis = SharedRedis::start(backend).await;
    let store = redis.store();
    let redirects_only = TestApp::spawn_on(store.clone(), |c| {
        webhook_config(c);
        c.dispatch = false;
    })
    .await;
    let receiver = Receiver::start().await;
    redirects_only.subscribe(&receiver.url, json!({})).await;
    let link = redirects_only
        .create_link(json!({"campaignId": "c", "url": "https://a.test/", "phone": "+155"}))
        .await;
    redirects_only.click(link["code"].as_str().unwrap()).await;
    // The event is queued, and no attempt of it was made.
    let subs: serde_json::Value = redirects_only
        .admin_get("/v1/webhooks")
        .await
        .json()
        .await
        .unwrap();
    let sub = subs["webhooks"][0]["id"].as_str().unwrap();
    let log: serde_json::Value = (redirects_only
        .admin_get(&format!("/v1/webhooks/{sub}/deliveries"))
        .await)
        .json()
        .await
        .unwrap();
    assert_eq!(log["deliveries"][0]["status"], "pending");
    assert_eq!(
        log["deliveries"][0]["attempts"],
        serde_json::json!([]),
        "AKTI_DISPATCH=false sends nothing"
    );
    assert!(receiver.received().is_empty());
    let _dispatcher = TestApp::spawn_on(store, webhook_config).await;
    receiver.wait_for(1, RESTART_WAIT).await;
}
