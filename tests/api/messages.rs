//! Messages: URLs become the lead's short links; `sent` and `delivered` become
//! `lead.link_sent` and `lead.link_delivered`, once each; Twilio's callback does the same.

use crate::helpers::{Backend, Receiver, TestApp, WAIT, error_code, location, webhook_config};
use crate::on_every_store;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const TWILIO_TOKEN: &str = "twilio-auth-token";

on_every_store!(
    every_url_becomes_the_leads_short_link_and_nothing_else_changes,
    a_message_without_urls_is_kept_as_is_and_emits_nothing,
    a_retried_creation_returns_the_same_message,
    sent_and_delivered_emit_their_events_once_in_any_order,
    failed_and_undelivered_are_recorded_without_events,
    status_reports_are_validated,
    messages_expire_after_their_ttl,
    twilio_callbacks_act_as_status_reports_when_signed,
);

async fn post_message(app: &TestApp, body: Value) -> reqwest::Response {
    app.admin_send(Method::POST, "/v1/messages", &body).await
}

async fn create_message(app: &TestApp, body: Value) -> Value {
    let response = post_message(app, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn report(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.admin_send(Method::POST, &format!("/v1/messages/{id}/status"), &body)
        .await
}

/// Waits for `n` webhooks, then makes sure no more arrive.
async fn exactly(app: &TestApp, receiver: &Receiver, n: usize) -> Vec<crate::helpers::Received> {
    receiver.wait_for(n, WAIT).await;
    app.drain().await;
    let got = receiver.received();
    assert_eq!(
        got.len(),
        n,
        "{:#?}",
        got.iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    got
}

async fn every_url_becomes_the_leads_short_link_and_nothing_else_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = "Olá Ana! 🎉 Promoção: https://Shop.example.com/deal?id=7. Detalhes (https://shop.example.com/faq), \
                ou loja.example.com/ofertas — e de novo https://shop.example.com/deal?id=7!";
    let message = create_message(
        &app,
        json!({"campaignId": "promo", "phone": "+5511912345678", "externalLeadId": "lead-9", "body": body}),
    )
    .await;
    assert!(message["messageId"].as_str().unwrap().starts_with("msg_"));
    let links = message["links"].as_array().unwrap();
    let urls: Vec<&str> = links.iter().map(|l| l["url"].as_str().unwrap()).collect();
    assert_eq!(
        urls,
        [
            "https://shop.example.com/deal?id=7",
            "https://shop.example.com/faq",
            "https://loja.example.com/ofertas"
        ],
        "distinct destinations, in order of first appearance"
    );
    let short = |i: usize| links[i]["shortUrl"].as_str().unwrap().to_owned();
    for (i, link) in links.iter().enumerate() {
        assert_eq!(
            short(i),
            format!("https://link.test/{}", link["code"].as_str().unwrap())
        );
    }
    let expected = format!(
        "Olá Ana! 🎉 Promoção: {}. Detalhes ({}), ou loja.example.com/ofertas — e de novo {}!",
        short(0),
        short(1),
        short(0)
    )
    .replace("loja.example.com/ofertas", &short(2));
    assert_eq!(message["body"], expected);

    // The links are the lead's links, as POST /v1/links makes them, and they redirect.
    let again = app
        .post_link(json!({"campaignId": "promo", "phone": "+5511912345678", "url": "https://shop.example.com/faq"}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let link: Value = again.json().await.unwrap();
    assert_eq!(link["code"], links[1]["code"]);
    assert_eq!(link["externalLeadId"], "lead-9");
    let response = app.click(links[2]["code"].as_str().unwrap()).await;
    assert_eq!(
        location(&response).as_deref(),
        Some("https://loja.example.com/ofertas")
    );
}

async fn a_message_without_urls_is_kept_as_is_and_emits_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let body = "Your code is 4812. Reply STOP to opt out. Ça va? 你好";
    let message = create_message(
        &app,
        json!({"campaignId": "otp", "phone": "+155", "body": body}),
    )
    .await;
    assert_eq!(message["body"], body);
    assert_eq!(message["links"], json!([]));
    let id = message["messageId"].as_str().unwrap();
    for status in ["sent", "delivered"] {
        let response = report(&app, id, json!({"status": status})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["events"], 0);
        assert_eq!(answer["firstReport"], true);
    }
    app.drain().await;
    assert!(receiver.received().is_empty());
    let stats: Value = app
        .admin_get("/v1/campaigns/otp/stats")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["messagesSent"], 1);
    assert_eq!(stats["messagesDelivered"], 1);
}

async fn a_retried_creation_returns_the_same_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let request = json!({"campaignId": "c", "phone": "+155", "body": "See https://a.test/x", "messageId": "SM0123456789abcdef"});
    let first = create_message(&app, request.clone()).await;
    assert_eq!(first["messageId"], "SM0123456789abcdef");
    let again = post_message(&app, request).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let different = post_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "Other https://b.test/", "messageId": "SM0123456789abcdef"}),
    )
    .await;
    assert_eq!(different.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(different).await, "message_exists");
    // Without a messageId, each call is a new message (its links are the same ones).
    let a = create_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "See https://a.test/x"}),
    )
    .await;
    let b = create_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "See https://a.test/x"}),
    )
    .await;
    assert_ne!(a["messageId"], b["messageId"]);
    assert_eq!(a["links"], b["links"]);
    assert_eq!(a["links"], first["links"]);
}

async fn sent_and_delivered_emit_their_events_once_in_any_order(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let message = create_message(
        &app,
        json!({"campaignId": "abc456xyz", "phone": "+1234567890", "externalLeadId": "abc123",
               "body": "Hey John, check out https://a.test/1 and https://b.test/2 and https://a.test/1 ..."}),
    )
    .await;
    let id = message["messageId"].as_str().unwrap();
    let shorts: Vec<&str> = message["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["shortUrl"].as_str().unwrap())
        .collect();
    assert_eq!(shorts.len(), 2);

    // Delivered arrives first.
    let response = report(
        &app,
        id,
        json!({"status": "delivered", "at": "2024-01-28T12:00:05Z"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["events"], 1);
    let got = exactly(&app, &receiver, 1).await;
    assert_eq!(
        got[0].json(),
        json!({
            "metadata": {"apiVersion": "2026-02-09", "eventType": "lead.link_delivered", "campaignId": "abc456xyz", "eventTime": "2024-01-28T12:00:05.000Z"},
            "data": {"phone": "+1234567890", "externalLeadId": "abc123", "message": message["body"]}
        })
    );

    // Each of its links knows when it was delivered.
    for link in message["links"].as_array().unwrap() {
        let stats = app.stats(link["code"].as_str().unwrap()).await;
        assert_eq!(stats["deliveredAt"], "2024-01-28T12:00:05.000Z");
        assert_eq!(stats["firstClickedAt"], Value::Null);
    }

    let response = report(
        &app,
        id,
        json!({"status": "sent", "at": "2024-01-28T12:00:00.000Z"}),
    )
    .await;
    assert_eq!(response.json::<Value>().await.unwrap()["events"], 2);
    let got = exactly(&app, &receiver, 3).await;
    let mut sent: Vec<Value> = got[1..].iter().map(|r| r.json()).collect();
    sent.sort_by_key(|e| shorts.iter().position(|s| e["data"]["url"] == *s));
    for (event, short) in sent.iter().zip(&shorts) {
        assert_eq!(
            *event,
            json!({
                "metadata": {"apiVersion": "2026-02-09", "eventType": "lead.link_sent", "campaignId": "abc456xyz", "eventTime": "2024-01-28T12:00:00.000Z"},
                "data": {"phone": "+1234567890", "externalLeadId": "abc123", "url": short}
            })
        );
    }

    // Repeats do nothing.
    for status in ["sent", "delivered", "sent"] {
        let response = report(&app, id, json!({"status": status})).await;
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["firstReport"], false);
        assert_eq!(answer["events"], 0);
    }
    exactly(&app, &receiver, 3).await;
    let stats: Value = app
        .admin_get("/v1/campaigns/abc456xyz/stats")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["messagesSent"], 1);
    assert_eq!(stats["messagesDelivered"], 1);
    assert_eq!(stats["links"], 2);
    let code = message["links"][0]["code"].as_str().unwrap();
    assert_eq!(
        app.stats(code).await["deliveredAt"],
        "2024-01-28T12:00:05.000Z",
        "a repeated report changes nothing"
    );
}

async fn failed_and_undelivered_are_recorded_without_events(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let message = create_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "https://a.test/"}),
    )
    .await;
    let id = message["messageId"].as_str().unwrap();
    for status in ["failed", "undelivered"] {
        let answer: Value = report(&app, id, json!({"status": status}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(answer["firstReport"], true);
        assert_eq!(answer["events"], 0);
        let again: Value = report(&app, id, json!({"status": status}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["firstReport"], false);
    }
    app.drain().await;
    assert!(receiver.received().is_empty());
}

async fn status_reports_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let message = create_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "hi"}),
    )
    .await;
    let id = message["messageId"].as_str().unwrap();
    for (body, code) in [
        (json!({"status": "read"}), "invalid_status"),
        (json!({"status": "sent", "at": "yesterday"}), "invalid_at"),
        (json!({}), "invalid_body"),
    ] {
        let response = report(&app, id, body.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(error_code(response).await, code);
    }
    let unknown = report(&app, "SMnope", json!({"status": "sent"})).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    for (body, code) in [
        (
            json!({"campaignId": "c", "phone": "+155", "body": ""}),
            "invalid_body",
        ),
        (
            json!({"campaignId": "c", "phone": "+155", "body": "a".repeat(1601)}),
            "invalid_body",
        ),
        (
            json!({"campaignId": "c", "phone": "155", "body": "hi"}),
            "invalid_phone",
        ),
        (
            json!({"campaignId": "c", "phone": "+155", "body": "hi", "messageId": "a/b"}),
            "invalid_message_id",
        ),
    ] {
        let response = post_message(&app, body.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(error_code(response).await, code, "{body}");
    }
}

async fn messages_expire_after_their_ttl(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.message_ttl = Duration::from_millis(300)).await;
    let message = create_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "hi", "messageId": "short-lived"}),
    )
    .await;
    assert_eq!(message["messageId"], "short-lived");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = report(&app, "short-lived", json!({"status": "sent"})).await;
    assert_eq!(late.status(), StatusCode::NOT_FOUND);
    // The id is free again.
    create_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "again", "messageId": "short-lived"}),
    )
    .await;
}

/// Twilio's signature, computed here independently of the service's code.
fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(TWILIO_TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn twilio_callbacks_act_as_status_reports_when_signed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        webhook_config(c);
        c.twilio_auth_token = Some(TWILIO_TOKEN.into());
    })
    .await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let sid = "SM7d8f2b0e4c1a4b3f9e6d5c4b3a291817";
    create_message(
        &app,
        json!({"campaignId": "c", "phone": "+155", "body": "Go https://a.test/", "messageId": sid}),
    )
    .await;

    let callback = |params: Vec<(&'static str, String)>, signature: Option<String>| {
        let mut request = app
            .client
            .post(format!("{}/callbacks/twilio/status", app.public))
            .form(&params);
        if let Some(signature) = signature {
            request = request.header("x-twilio-signature", signature);
        }
        request.send()
    };
    let params = |status: &'static str| {
        vec![
            ("MessageSid", sid.to_owned()),
            ("MessageStatus", status.to_owned()),
            ("AccountSid", "AC0000".to_owned()),
            ("To", "+155".to_owned()),
        ]
    };
    let sign = |p: &[(&'static str, String)]| {
        let pairs: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        twilio_signature("https://link.test/callbacks/twilio/status", &pairs)
    };

    let unsigned = callback(params("delivered"), None).await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);
    let forged = callback(params("delivered"), Some(sign(&params("sent"))))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    app.drain().await;
    assert!(
        receiver.received().is_empty(),
        "nothing acted on an unverified callback"
    );

    let queued = callback(params("queued"), Some(sign(&params("queued"))))
        .await
        .unwrap();
    assert!(queued.status().is_success());
    let sent = callback(params("sent"), Some(sign(&params("sent"))))
        .await
        .unwrap();
    assert!(sent.status().is_success());
    let delivered = callback(params("delivered"), Some(sign(&params("delivered"))))
        .await
        .unwrap();
    assert!(delivered.status().is_success());
    let again = callback(params("delivered"), Some(sign(&params("delivered"))))
        .await
        .unwrap();
    assert!(again.status().is_success());
    let got = exactly(&app, &receiver, 2).await;
    let mut types: Vec<String> = got
        .iter()
        .map(|r| {
            r.json()["metadata"]["eventType"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["lead.link_delivered", "lead.link_sent"]);

    // The callback URL may name our message id instead (Twilio signs the query too).
    let ours = create_message(
        &app,
        json!({"campaignId": "c", "phone": "+166", "body": "Go https://b.test/"}),
    )
    .await;
    let id = ours["messageId"].as_str().unwrap();
    let url = format!("https://link.test/callbacks/twilio/status?messageId={id}");
    let other_sid = vec![
        ("MessageSid", "SM99999".to_owned()),
        ("MessageStatus", "sent".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = other_sid.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = app
        .client
        .post(format!(
            "{}/callbacks/twilio/status?messageId={id}",
            app.public
        ))
        .header("x-twilio-signature", twilio_signature(&url, &pairs))
        .form(&other_sid)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let got = exactly(&app, &receiver, 3).await;
    assert_eq!(got[2].json()["data"]["phone"], "+166");

    let closed = TestApp::spawn(backend).await;
    let response = closed
        .client
        .post(format!("{}/callbacks/twilio/status", closed.public))
        .header("x-twilio-signature", sign(&params("sent")))
        .form(&params("sent"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "no token configured: nothing is accepted"
    );
}
