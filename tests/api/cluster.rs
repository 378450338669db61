//! On a Redis Cluster: the work spreads over every primary, a primary lost mid-burst loses
//! no answered click, a dead instance's deliveries are taken over within seconds, and
//! link changes reach every instance across a failover.

use crate::helpers::{
    Binary, Receiver, RedisCluster, Reply, TestApp, client, eventually, location,
    wait_for_change_feed, webhook_config,
};
use akti_link::config::StoreConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1";

/// Creates `n` links of one campaign, one lead each; answers their codes.
async fn bulk(app: &TestApp, campaign: &str, n: usize) -> Vec<String> {
    let leads: Vec<Value> = (0..n)
        .map(|i| json!({"phone": format!("+1777{i:07}")}))
        .collect();
    let body = json!({"campaignId": campaign, "url": "https://shop.test/", "leads": leads});
    let response = app
        .admin_send(reqwest::Method::POST, "/v1/links/bulk", &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let links: Value = response.json().await.unwrap();
    (links["links"].as_array().unwrap().iter())
        .map(|l| l["code"].as_str().unwrap().to_owned())
        .collect()
}

fn short_urls_received(receiver: &Receiver) -> HashSet<String> {
    (receiver.received().iter())
        .filter_map(|r| r.json()["data"]["shortUrl"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_burst_spreads_over_every_primary() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let app = TestApp::spawn_on_cluster(cluster, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let codes = bulk(&app, "spread", 400).await;
    let before = app.cluster(|c| c.commands_per_primary());
    for code in &codes {
        assert_eq!(app.click(code).await.status(), StatusCode::FOUND);
    }
    receiver
        .wait_for(codes.len(), Duration::from_secs(30))
        .await;
    app.drain().await;
    let after = app.cluster(|c| c.commands_per_primary());
    assert_eq!(before.len(), 3, "three primaries");
    let work: Vec<u64> = (before.iter().zip(&after))
        .map(|((p, b), (q, a))| {
            assert_eq!(p, q);
            a - b
        })
        .collect();
    let total: u64 = work.iter().sum();
    // A fair share is a third; each primary does at least half of one. The 16 partitions
    // split 5/5/6 over three primaries, and idle polling adds the same to each.
    for (primary, n) in before.iter().map(|(p, _)| p).zip(&work) {
        assert!(
            *n * 6 >= total,
            "primary {primary} ran {n} of {total} commands: {work:?}"
        );
    }
    // Every counter is where a reader finds it, summed over the partitions (counts are
    // written a moment after the clicks).
    let n = codes.len();
    eventually(
        "the campaign counts every click",
        Duration::from_secs(10),
        || async {
            let campaign: Value = app
                .admin_get("/v1/campaigns/spread/stats")
                .await
                .json()
                .await
                .unwrap();
            campaign["clicks"] == n && campaign["clickEvents"] == n && campaign["links"] == n
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_burst_loses_no_answered_click() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let app = TestApp::spawn_on_cluster(cluster, |config| {
        webhook_config(config);
        config.redis_wait_replicas = 1;
    })
    .await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let codes = bulk(&app, "failover", 600).await;
    // Half the links are clicked (and cached) before the failure, the rest during it.
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let public = app.public.clone();
    let click_all = |codes: Vec<String>| {
        let (answered, public) = (answered.clone(), public.clone());
        tokio::spawn(async move {
            let http = client();
            for code in codes {
                let response = http
                    .get(format!("{public}/{code}"))
                    .header("user-agent", PHONE_UA)
                    .send()
                    .await;
                if response.is_ok_and(|r| r.status() == StatusCode::FOUND) {
                    answered.lock().unwrap().push(code);
                }
            }
        })
    };
    let (first, second) = codes.split_at(300);
    let clickers: Vec<_> = (0..4)
        .map(|w| click_all(first.iter().skip(w).step_by(4).cloned().collect()))
        .collect();
    eventually("100 clicks answered", Duration::from_secs(20), || async {
        answered.lock().unwrap().len() >= 100
    })
    .await;
    let victim = app.cluster(|c| {
        let victim = c.primaries()[0];
        c.kill(victim);
        victim
    });
    for clicker in clickers {
        clicker.await.unwrap();
    }
    // The replica takes over within the node timeout; meanwhile and after, the rest.
    for code in second {
        let response = app.click(code).await;
        if response.status() == StatusCode::FOUND {
            answered.lock().unwrap().push(code.clone());
        }
    }
    let promoted = app.cluster(|c| c.wait_healthy());
    assert!(promoted, "the replica of {victim} took over");
    // Every code redirects again soon after.
    for code in &codes {
        let code = code.clone();
        eventually("the code redirects again", Duration::from_secs(20), || {
            let app = &app;
            let code = code.clone();
            async move { app.click(&code).await.status() == StatusCode::FOUND }
        })
        .await;
    }
    let answered: HashSet<String> = answered.lock().unwrap().iter().cloned().collect();
    let expected: HashSet<String> = (answered.iter())
        .map(|c| format!("https://link.test/{c}"))
        .collect();
    eventually(
        "every answered click's event arrives",
        Duration::from_secs(60),
        || async { expected.is_subset(&short_urls_received(&receiver)) },
    )
    .await;
    app.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_deliveries_are_taken_over_within_ten_seconds() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let urls = cluster.urls();
    let dir = tempfile::tempdir().unwrap();
    // The receiver holds every attempt open: the first instance dies with them in flight.
    let receiver = Receiver::start().await;
    receiver.answer(Reply::hang());
    let env = [
        ("AKTI_REDIS_URL", urls.as_str()),
        ("AKTI_ADMIN_TOKEN", "t"),
        ("AKTI_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("AKTI_BASE_URL", "https://link.test"),
    ];
    let mut first = Binary::start(&env, dir.path()).await;
    assert!(
        first.log().contains("redis cluster (3 primaries)"),
        "start-up names the store: {}",
        first.log()
    );
    first.subscribe("t", &receiver.url).await;
    let leads: Vec<Value> = (0..40)
        .map(|i| json!({"phone": format!("+1666{i:07}")}))
        .collect();
    let codes = first.bulk("t", "takeover", "https://a.test/", leads).await;
    for code in &codes {
        let response = client()
            .get(format!("{}/{code}", first.public))
            .header("user-agent", PHONE_UA)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    receiver
        .wait_for(codes.len(), Duration::from_secs(20))
        .await;

    // A second instance is running (with the default lease, far longer than ten
    // seconds) when the first dies.
    let second = TestApp::spawn_on(StoreConfig::Redis { url: urls }, |config| {
        config.webhook_allow_private = true;
    })
    .await;
    receiver.answer(Reply::status(204));
    let before = receiver.received().len();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    eventually(
        "the second instance delivers what the first held",
        Duration::from_secs(10),
        || async { receiver.received().len() >= before + codes.len() },
    )
    .await;
    second.drain().await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_every_instance_across_a_failover() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let urls = cluster.urls();
    let store = StoreConfig::Redis { url: urls.clone() };
    let a = TestApp::spawn_on(store.clone(), |_| {}).await;
    let b = TestApp::spawn_on_cluster(cluster, |_| {}).await;
    let link = a
        .create_link(json!({"campaignId": "c", "url": "https://one.test/"}))
        .await;
    let code = link["code"].as_str().unwrap().to_owned();
    // Both subscribe on the first node given, the one killed below.
    let first = urls.split(',').next().unwrap().to_owned();
    wait_for_change_feed(&first, 2).await;
    let redirects_to = |url: &'static str| {
        let (b, code) = (&b, code.clone());
        move || {
            let code = code.clone();
            async move { location(&b.click(&code).await).as_deref() == Some(url) }
        }
    };
    assert!(
        redirects_to("https://one.test/")().await,
        "B caches the link"
    );
    a.patch_link(&code, json!({"url": "https://two.test/"}))
        .await;
    eventually(
        "B follows the change",
        Duration::from_secs(5),
        redirects_to("https://two.test/"),
    )
    .await;

    let port: u16 = first.rsplit(':').next().unwrap().parse().unwrap();
    b.cluster(|c| c.kill(port));
    assert!(b.cluster(|c| c.wait_healthy()), "a replica took over");
    eventually(
        "A can change links again",
        Duration::from_secs(20),
        || async {
            a.patch_link(&code, json!({"url": "https://three.test/"}))
                .await
                .status()
                == StatusCode::OK
        },
    )
    .await;
    eventually(
        "B follows the change after the failover",
        Duration::from_secs(20),
        redirects_to("https://three.test/"),
    )
    .await;
}
