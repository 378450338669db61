//! Clicks become `lead.link_clicked` webhooks: the body, the signature, the dedup window,
//! bots, counters and subscription filters, on both stores.

use crate::helpers::{Backend, Receiver, TestApp, WAIT, webhook_config};
use crate::on_every_store;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const IMESSAGE_PREVIEW: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0";
const SAMSUNG_PREVIEW: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0";

on_every_store!(
    a_human_click_emits_the_seed_body_signed_per_standard_webhooks,
    clicks_inside_the_window_emit_nothing_and_the_next_window_emits_again,
    bots_and_previews_are_counted_but_never_open_the_window,
    head_records_nothing,
    a_link_without_a_phone_counts_clicks_and_emits_nothing,
    campaign_stats_sum_the_campaigns_links,
    subscriptions_receive_only_the_types_and_campaigns_they_ask_for,
);

/// Verifies a Standard Webhooks signature with its own HMAC, not the service's code.
fn verify(secret: &str, id: &str, timestamp: &str, body: &str, header: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header.split(' ').any(|sig| sig == format!("v1,{expected}"))
}

/// Polls `path` until `done` holds for its body (counts that need no event are written
/// behind the redirect, within a fraction of a second), and returns that body.
async fn settled(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    crate::helpers::eventually(&format!("{path} settles"), WAIT, || async {
        done(&app.admin_get(path).await.json::<Value>().await.unwrap())
    })
    .await;
    app.admin_get(path).await.json().await.unwrap()
}

async fn lead_link(app: &TestApp, campaign: &str, phone: &str) -> String {
    let link = app
        .create_link(json!({"campaignId": campaign, "url": "https://shop.test/offer", "phone": phone, "externalLeadId": "crm-7"}))
        .await;
    link["code"].as_str().unwrap().to_owned()
}

async fn a_human_click_emits_the_seed_body_signed_per_standard_webhooks(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    let sub = app.subscribe(&receiver.url, json!({})).await;
    let code = lead_link(&app, "spring", "+14155550123").await;

    let before = chrono::Utc::now();
    let response = app.click(&code).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let hook = &got[0];

    let body = hook.json();
    let event_time = body["metadata"]["eventTime"].as_str().unwrap().to_owned();
    assert_eq!(
        body,
        json!({
            "metadata": {
                "apiVersion": "2026-02-09",
                "eventType": "lead.link_clicked",
                "campaignId": "spring",
                "eventTime": event_time,
            },
            "data": {
                "phone": "+14155550123",
                "externalLeadId": "crm-7",
                "url": "https://shop.test/offer",
                "shortUrl": format!("https://link.test/{code}"),
            }
        })
    );
    let at = chrono::DateTime::parse_from_rfc3339(&event_time).unwrap();
    assert!(
        event_time.ends_with('Z') && event_time.len() == 24,
        "{event_time}"
    );
    assert!((at.timestamp_millis() - before.timestamp_millis()).abs() < 60_000);

    assert_eq!(hook.header("content-type"), "application/json");
    let id = hook.header("webhook-id");
    assert!(id.starts_with("evt_"), "{id}");
    let timestamp = hook.header("webhook-timestamp");
    let ts: i64 = timestamp.parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 60);
    let secret = sub["secret"].as_str().unwrap();
    assert!(verify(
        secret,
        id,
        timestamp,
        &hook.body,
        hook.header("webhook-signature")
    ));
    assert!(!verify(
        secret,
        id,
        timestamp,
        &format!("{} ", hook.body),
        hook.header("webhook-signature")
    ));

    let stats = settled(&app, &format!("/v1/links/{code}/stats"), |s| {
        s["clicks"] == 1
    })
    .await;
    assert_eq!(stats["clickEvents"], 1);
    assert_eq!(stats["botClicks"], 0);
    assert!(stats["lastClickedAt"].as_str().unwrap().ends_with('Z'));
}

async fn clicks_inside_the_window_emit_nothing_and_the_next_window_emits_again(backend: Backend) {
    // A window far longer than the test: every repeat falls inside it.
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let code = lead_link(&app, "c", "+155").await;
    let other = lead_link(&app, "c", "+166").await;
    for _ in 0..5 {
        assert_eq!(app.click(&code).await.status(), StatusCode::FOUND);
    }
    // Another lead's link has its own window.
    app.click(&other).await;
    receiver.wait_for(2, WAIT).await;
    // Everything queued has been delivered: a wrongly emitted extra event would be here.
    app.drain().await;
    let got = receiver.received();
    assert_eq!(got.len(), 2, "one event per lead link");
    let stats = settled(&app, &format!("/v1/links/{code}/stats"), |s| {
        s["clicks"] == 5
    })
    .await;
    assert_eq!(stats["clickEvents"], 1);

    // A short window: once it has passed, the next click opens a new one.
    let window = Duration::from_millis(300);
    let app = TestApp::spawn_with(backend, |c| {
        webhook_config(c);
        c.dedup_window = window;
    })
    .await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let code = lead_link(&app, "c", "+155").await;
    app.click(&code).await;
    receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    app.click(&code).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let stats = settled(&app, &format!("/v1/links/{code}/stats"), |s| {
        s["clickEvents"] == 2
    })
    .await;
    // Written by two flushes: the first click stays the first.
    let time = |r: &crate::helpers::Received| r.json()["metadata"]["eventTime"].clone();
    assert_eq!(stats["firstClickedAt"], time(&got[0]));
    assert_eq!(stats["lastClickedAt"], time(&got[1]));
    assert_ne!(stats["firstClickedAt"], stats["lastClickedAt"]);
}

async fn bots_and_previews_are_counted_but_never_open_the_window(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let code = lead_link(&app, "c", "+155").await;

    for agent in [
        Some(IMESSAGE_PREVIEW),
        Some(SAMSUNG_PREVIEW),
        Some("WhatsApp/2.23.20.0 A"),
        Some("curl/8.5.0"),
        Some(""),
        None,
    ] {
        let response = app.click_as(&code, agent).await;
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "{agent:?} still gets the redirect"
        );
    }
    // The lead's real tap, seconds after the previews, is the one that counts.
    app.click(&code).await;
    let got = receiver.wait_for(1, WAIT).await;
    app.drain().await;
    assert_eq!(receiver.received().len(), 1, "{got:?}");
    let stats = settled(&app, &format!("/v1/links/{code}/stats"), |s| {
        s["botClicks"] == 6
    })
    .await;
    assert_eq!(stats["clicks"], 1);
    assert_eq!(stats["clickEvents"], 1);
}

async fn head_records_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let code = lead_link(&app, "c", "+155").await;
    let response = app
        .client
        .head(format!("{}/{code}", app.public))
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    // A later GET is the first click: had HEAD opened the window, this would emit nothing.
    app.click(&code).await;
    receiver.wait_for(1, WAIT).await;
    // The GET's click and event are counted together, in the flush that takes them or a
    // later one; a HEAD counted before the GET would be in the same flush or an earlier one.
    let stats = settled(&app, &format!("/v1/links/{code}/stats"), |s| {
        s["clickEvents"] == 1
    })
    .await;
    assert_eq!(
        stats,
        json!({"clicks": 1, "clickEvents": 1, "botClicks": 0, "lastClickedAt": stats["lastClickedAt"],
               "firstClickedAt": stats["lastClickedAt"], "deliveredAt": null})
    );
}

async fn a_link_without_a_phone_counts_clicks_and_emits_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/"}))
        .await;
    let code = link["code"].as_str().unwrap();
    app.click(code).await;
    app.click_as(code, Some("curl/8")).await;
    // Counting happens behind the redirect: poll for it.
    crate::helpers::eventually("clicks are counted", WAIT, || async {
        let s = app.stats(code).await;
        s["clicks"] == 1 && s["botClicks"] == 1
    })
    .await;
    assert_eq!(app.stats(code).await["clickEvents"], 0);
    assert!(receiver.received().is_empty());
}

async fn campaign_stats_sum_the_campaigns_links(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let a = lead_link(&app, "summer", "+155").await;
    let b = lead_link(&app, "summer", "+166").await;
    lead_link(&app, "winter", "+155").await;
    app.click(&a).await;
    app.click(&b).await;
    app.click(&b).await;
    app.click_as(&a, Some(IMESSAGE_PREVIEW)).await;
    // Counts that need no event are written behind their redirects: poll until they land.
    let stats = settled(&app, "/v1/campaigns/summer/stats", |s| {
        s["botClicks"] == 1 && s["clicks"] == 3
    })
    .await;
    assert_eq!(stats["links"], 2);
    assert_eq!(stats["clicks"], 3);
    assert_eq!(stats["clickEvents"], 2);
    assert_eq!(stats["messagesSent"], 0);
    assert_eq!(stats["messagesDelivered"], 0);
    assert!(stats["lastClickedAt"].is_string());
    let empty: Value = app
        .admin_get("/v1/campaigns/nothing-here/stats")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        empty,
        json!({"links": 0, "clicks": 0, "clickEvents": 0, "botClicks": 0, "lastClickedAt": null, "messagesSent": 0, "messagesDelivered": 0})
    );
    let missing = app.admin_get("/v1/links/nope/stats").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn subscriptions_receive_only_the_types_and_campaigns_they_ask_for(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let all = Receiver::start().await;
    let clicks_of_a = Receiver::start().await;
    let sent_only = Receiver::start().await;
    let campaign_b = Receiver::start().await;
    let disabled = Receiver::start().await;
    app.subscribe(&all.url, json!({})).await;
    app.subscribe(
        &clicks_of_a.url,
        json!({"eventTypes": ["lead.link_clicked"], "campaignIds": ["a"]}),
    )
    .await;
    app.subscribe(&sent_only.url, json!({"eventTypes": ["lead.link_sent"]}))
        .await;
    app.subscribe(&campaign_b.url, json!({"campaignIds": ["b"]}))
        .await;
    let off = app.subscribe(&disabled.url, json!({})).await;
    let patched = app
        .admin_send(
            reqwest::Method::PATCH,
            &format!("/v1/webhooks/{}", off["id"].as_str().unwrap()),
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);

    let code = lead_link(&app, "a", "+155").await;
    app.click(&code).await;
    all.wait_for(1, WAIT).await;
    clicks_of_a.wait_for(1, WAIT).await;
    app.drain().await;
    assert!(sent_only.received().is_empty());
    assert!(campaign_b.received().is_empty());
    assert!(disabled.received().is_empty());
    assert_eq!(all.received()[0].body, clicks_of_a.received()[0].body);
    assert_eq!(
        all.received()[0].header("webhook-id"),
        clicks_of_a.received()[0].header("webhook-id")
    );
}
