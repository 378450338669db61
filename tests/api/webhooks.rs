//! Webhook subscriptions and delivery: the API, retries, 410, a hanging subscriber and the
//! delivery log, on both stores.

use crate::helpers::{
    Backend, Receiver, Reply, TestApp, WAIT, error_code, eventually, webhook_config,
};
use crate::on_every_store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

on_every_store!(
    subscriptions_can_be_created_read_listed_changed_and_deleted,
    invalid_subscriptions_are_422,
    private_targets_are_refused_unless_allowed,
    rotating_the_secret_signs_later_deliveries_with_the_new_one,
    a_failing_receiver_is_retried_with_the_same_id_until_it_succeeds,
    after_the_last_attempt_the_delivery_fails_and_can_be_replayed,
    a_410_disables_the_subscription,
    a_hanging_subscriber_does_not_delay_the_others,
    the_delivery_log_pages_newest_first_and_filters_by_status,
    events_and_the_delivery_log_are_kept_for_the_configured_retention,
);

async fn link_for(app: &TestApp, phone: &str) -> String {
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://shop.test/", "phone": phone}))
        .await;
    link["code"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, sub: &str, query: &str) -> Value {
    let response = app
        .admin_get(&format!("/v1/webhooks/{sub}/deliveries{query}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn subscriptions_can_be_created_read_listed_changed_and_deleted(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let sub = app
        .subscribe("https://crm.test/hook", json!({"eventTypes": ["lead.link_clicked"], "campaignIds": ["a", "b"], "description": "CRM", "rateLimit": 50}))
        .await;
    let keys: HashSet<&str> = sub
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "id",
            "url",
            "eventTypes",
            "campaignIds",
            "description",
            "secret",
            "createdAt",
            "disabled",
            "rateLimit"
        ])
    );
    let id = sub["id"].as_str().unwrap();
    assert!(id.starts_with("sub_"));
    assert_eq!(sub["url"], "https://crm.test/hook");
    assert_eq!(sub["eventTypes"], json!(["lead.link_clicked"]));
    assert_eq!(sub["campaignIds"], json!(["a", "b"]));
    assert_eq!(sub["disabled"], false);
    assert_eq!(sub["rateLimit"], 50);
    let secret = sub["secret"].as_str().unwrap();
    let key = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        secret.strip_prefix("whsec_").unwrap(),
    )
    .unwrap();
    assert!(key.len() >= 24);

    let bare = app.subscribe("https://other.test/", json!({})).await;
    assert_eq!(bare["eventTypes"], Value::Null);
    assert_eq!(bare["campaignIds"], Value::Null);
    assert_eq!(bare["description"], Value::Null);
    assert_eq!(bare["rateLimit"], Value::Null);

    let got: Value = app
        .admin_get(&format!("/v1/webhooks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, sub);
    let first: Value = app
        .admin_get("/v1/webhooks?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["webhooks"], json!([sub]));
    let cursor = first["nextCursor"].as_str().unwrap();
    let second: Value = app
        .admin_get(&format!("/v1/webhooks?limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["webhooks"], json!([bare]));
    assert_eq!(second["nextCursor"], Value::Null);

    let patched: Value = app
        .admin_send(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &json!({"eventTypes": null, "description": null, "disabled": true, "rateLimit": null}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["eventTypes"], Value::Null);
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["rateLimit"], Value::Null);
    assert_eq!(patched["campaignIds"], json!(["a", "b"]));
    assert_eq!(patched["disabled"], true);
    assert_eq!(patched["secret"], sub["secret"]);

    let delete = app
        .admin_send(Method::DELETE, &format!("/v1/webhooks/{id}"), &json!(null))
        .await;
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    for response in [
        app.admin_get(&format!("/v1/webhooks/{id}")).await,
        app.admin_send(Method::DELETE, &format!("/v1/webhooks/{id}"), &json!(null))
            .await,
        app.admin_get(&format!("/v1/webhooks/{id}/deliveries"))
            .await,
        app.admin_send(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &json!(null),
        )
        .await,
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

async fn invalid_subscriptions_are_422(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    for (body, code) in [
        (json!({"url": "ftp://x.test/"}), "invalid_url"),
        (json!({"url": "https://u:p@x.test/"}), "invalid_url"),
        (
            json!({"url": "https://x.test/", "eventTypes": ["lead.clicked"]}),
            "invalid_event_types",
        ),
        (
            json!({"url": "https://x.test/", "eventTypes": []}),
            "invalid_event_types",
        ),
        (
            json!({"url": "https://x.test/", "campaignIds": ["a b"]}),
            "invalid_campaign_ids",
        ),
        (
            json!({"url": "https://x.test/", "description": "d".repeat(1025)}),
            "invalid_description",
        ),
        (
            json!({"url": "https://x.test/", "rateLimit": 0}),
            "invalid_rate_limit",
        ),
        (
            json!({"url": "https://x.test/", "rateLimit": 10_001}),
            "invalid_rate_limit",
        ),
        (
            json!({"url": "https://x.test/", "rateLimit": 2.5}),
            "invalid_rate_limit",
        ),
        (
            json!({"url": "https://x.test/", "rateLimit": "50"}),
            "invalid_body",
        ),
        (
            json!({"url": "https://x.test/", "secret": "mine"}),
            "invalid_body",
        ),
    ] {
        let response = app.admin_send(Method::POST, "/v1/webhooks", &body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(error_code(response).await, code, "{body}");
    }
}

async fn private_targets_are_refused_unless_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://localhost./hook",
        "http://foo.localhost/hook",
        "https://example.com:0/hook",
        "http://10.0.0.8/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let response = app
            .admin_send(Method::POST, "/v1/webhooks", &json!({"url": url}))
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(error_code(response).await, "invalid_url");
    }
    let allowed = TestApp::spawn_with(backend, webhook_config).await;
    allowed
        .subscribe("http://127.0.0.1:9/hook", json!({}))
        .await;
    let port_zero = allowed
        .admin_send(
            Method::POST,
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:0/"}),
        )
        .await;
    assert_eq!(port_zero.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn rotating_the_secret_signs_later_deliveries_with_the_new_one(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    let sub = app.subscribe(&receiver.url, json!({})).await;
    let id = sub["id"].as_str().unwrap();
    let response = app
        .admin_send(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &json!(null),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    assert_ne!(rotated["secret"], sub["secret"]);
    assert_eq!(rotated["id"], sub["id"]);
    let code = link_for(&app, "+155").await;
    app.click(&code).await;
    let hook = &receiver.wait_for(1, WAIT).await[0];
    let secret = rotated["secret"].as_str().unwrap();
    let expected = akti_link::dispatch::signing::sign(
        secret,
        hook.header("webhook-id"),
        hook.header("webhook-timestamp").parse().unwrap(),
        &hook.body,
    );
    assert_eq!(hook.header("webhook-signature"), expected);
}

async fn a_failing_receiver_is_retried_with_the_same_id_until_it_succeeds(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    receiver.script([
        Reply::status(500),
        Reply {
            status: 429,
            delay: Duration::ZERO,
            retry_after: Some("1"),
        },
    ]);
    let sub = app.subscribe(&receiver.url, json!({})).await;
    let code = link_for(&app, "+155").await;
    app.click(&code).await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    let ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "webhook-id is stable across retries");
    assert!(got.iter().all(|r| r.body == got[0].body));

    let id = sub["id"].as_str().unwrap();
    eventually("the delivery is logged as delivered", WAIT, || async {
        deliveries(&app, id, "").await["deliveries"][0]["status"] == "delivered"
    })
    .await;
    let log = deliveries(&app, id, "").await;
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["eventId"], got[0].header("webhook-id"));
    assert_eq!(delivery["eventType"], "lead.link_clicked");
    assert_eq!(delivery["nextAttemptAt"], Value::Null);
    let attempts = delivery["attempts"].as_array().unwrap();
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(codes, [&json!(500), &json!(429), &json!(204)]);
    assert_eq!(attempts[0]["error"], "HTTP 500");
    assert_eq!(attempts[2]["error"], Value::Null);
    assert!(
        attempts
            .iter()
            .all(|a| a["at"].as_str().unwrap().ends_with('Z') && a["durationMs"].is_u64())
    );
    // Retry-After: 1 is longer than the 50 ms schedule: the third attempt waited for it.
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(attempts[i]["at"].as_str().unwrap()).unwrap()
    };
    assert!(
        (at(2) - at(1)).num_milliseconds() >= 900,
        "Retry-After honoured"
    );

    let metrics = app
        .client
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"akti_webhook_deliveries_total{outcome="delivered"}"#,
        r#"akti_webhook_deliveries_total{outcome="retry"}"#,
        "akti_webhook_attempt_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(needle), "missing {needle}");
    }
}

async fn after_the_last_attempt_the_delivery_fails_and_can_be_replayed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        webhook_config(c);
        c.webhook_retry_schedule = vec![Duration::from_millis(20); 2];
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(503));
    let sub = app.subscribe(&receiver.url, json!({})).await;
    let id = sub["id"].as_str().unwrap();
    let code = link_for(&app, "+155").await;
    app.click(&code).await;
    eventually("the delivery fails", WAIT, || async {
        let log = deliveries(&app, id, "?status=failed").await;
        log["deliveries"].as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    let log = deliveries(&app, id, "?status=failed").await;
    assert_eq!(receiver.received().len(), 3, "two delays: three attempts");
    assert_eq!(
        log["deliveries"][0]["attempts"].as_array().unwrap().len(),
        3
    );
    assert_eq!(log["deliveries"][0]["nextAttemptAt"], Value::Null);

    receiver.answer(Reply::status(200));
    let event = log["deliveries"][0]["eventId"].as_str().unwrap();
    let retry = app
        .admin_send(
            Method::POST,
            &format!("/v1/webhooks/{id}/deliveries/{event}/retry"),
            &json!(null),
        )
        .await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    let got = receiver.wait_for(4, WAIT).await;
    assert_eq!(got[3].header("webhook-id"), event);
    eventually("the replay is logged", WAIT, || async {
        deliveries(&app, id, "").await["deliveries"][0]["status"] == "delivered"
    })
    .await;
    let unknown = app
        .admin_send(
            Method::POST,
            &format!("/v1/webhooks/{id}/deliveries/evt_nope/retry"),
            &json!(null),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn a_410_disables_the_subscription(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    receiver.answer(Reply::status(410));
    let sub = app.subscribe(&receiver.url, json!({})).await;
    let id = sub["id"].as_str().unwrap();
    app.click(&link_for(&app, "+155").await).await;
    receiver.wait_for(1, WAIT).await;
    eventually("the subscription is disabled", WAIT, || async {
        let s: Value = app
            .admin_get(&format!("/v1/webhooks/{id}"))
            .await
            .json()
            .await
            .unwrap();
        s["disabled"] == true
    })
    .await;
    let log = deliveries(&app, id, "").await;
    assert_eq!(log["deliveries"][0]["status"], "failed");
    assert_eq!(
        log["deliveries"][0]["attempts"].as_array().unwrap().len(),
        1
    );
    // Later events are not delivered to it.
    app.click(&link_for(&app, "+166").await).await;
    app.drain().await;
    assert_eq!(receiver.received().len(), 1);
}

async fn a_hanging_subscriber_does_not_delay_the_others(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        webhook_config(c);
        c.webhook_timeout = Duration::from_secs(30);
    })
    .await;
    // The hanging subscriber's deliveries are still in flight when the test ends.
    app.allow_pending();
    let hanging = Receiver::start().await;
    hanging.answer(Reply::hang());
    let healthy = Receiver::start().await;
    app.subscribe(&hanging.url, json!({})).await;
    app.subscribe(&healthy.url, json!({})).await;
    // More events than the hanging subscriber has slots.
    let leads = akti_link::dispatch::PER_SUBSCRIPTION + 8;
    for i in 0..leads {
        app.click(&link_for(&app, &format!("+1555{i:04}")).await)
            .await;
    }
    let got = healthy.wait_for(leads, WAIT).await;
    assert_eq!(got.len(), leads);
    // The hanging subscriber holds exactly its own slots, no more.
    assert!(hanging.received().len() <= akti_link::dispatch::PER_SUBSCRIPTION);
}

async fn the_delivery_log_pages_newest_first_and_filters_by_status(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    let sub = app.subscribe(&receiver.url, json!({})).await;
    let id = sub["id"].as_str().unwrap();
    for i in 0..5 {
        app.click(&link_for(&app, &format!("+1666{i:04}")).await)
            .await;
    }
    let got = receiver.wait_for(5, WAIT).await;
    eventually("all delivered", WAIT, || async {
        deliveries(&app, id, "?status=delivered&limit=100").await["deliveries"]
            .as_array()
            .unwrap()
            .len()
            == 5
    })
    .await;
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = deliveries(&app, id, &query).await;
        for d in page["deliveries"].as_array().unwrap() {
            seen.push(d["eventId"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => query = format!("?limit=2&cursor={c}"),
            None => break,
        }
    }
    // Deliveries run concurrently, so arrival order says nothing; the clicks (and so the
    // events) were made in the order of the phones.
    let mut sent: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            (
                r.json()["data"]["phone"].as_str().unwrap().to_owned(),
                r.header("webhook-id").to_owned(),
            )
        })
        .collect();
    sent.sort();
    let newest_first: Vec<String> = sent.into_iter().rev().map(|(_, id)| id).collect();
    assert_eq!(seen, newest_first, "newest first, each once");
    assert!(
        deliveries(&app, id, "?status=pending").await["deliveries"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let bad = app
        .admin_get(&format!("/v1/webhooks/{id}/deliveries?status=lost"))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn events_and_the_delivery_log_are_kept_for_the_configured_retention(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        webhook_config(config);
        config.event_retention = Duration::from_secs(2);
    })
    .await;
    let receiver = Receiver::start().await;
    let sub = app.subscribe(&receiver.url, json!({})).await;
    let sub = sub["id"].as_str().unwrap();
    let code = link_for(&app, "+14155550100").await;
    assert_eq!(app.click(&code).await.status(), StatusCode::FOUND);
    receiver.wait_for(1, WAIT).await;
    let log = deliveries(&app, sub, "").await;
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1);
    eventually("the delivery log forgets the event", WAIT, || async {
        let log = deliveries(&app, sub, "").await;
        log["deliveries"].as_array().unwrap().is_empty()
    })
    .await;
    let event_id = receiver.received()[0].header("webhook-id").to_owned();
    let retry = app
        .admin_send(
            Method::POST,
            &format!("/v1/webhooks/{sub}/deliveries/{event_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(
        retry.status(),
        StatusCode::NOT_FOUND,
        "nothing left to replay"
    );
}

/// The document's `webhooks` section describes what a receiver really gets: every field
/// of every event body and every signature header, with the document's names and types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_webhooks_describe_the_deliveries_receivers_get() {
    let app = TestApp::spawn_with(Backend::Embedded, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    let body = json!({"campaignId": "c", "phone": "+15550001111", "externalLeadId": "crm-1",
        "body": "See https://shop.test/a", "messageId": "SM-doc"});
    let message: Value = (app
        .admin_send(Method::POST, "/v1/messages", &body)
        .await
        .json()
        .await)
        .unwrap();
    for status in ["sent", "delivered"] {
        let report = json!({"status": status});
        app.admin_send(Method::POST, "/v1/messages/SM-doc/status", &report)
            .await;
    }
    app.click(message["links"][0]["code"].as_str().unwrap())
        .await;
    let received = receiver.wait_for(3, WAIT).await;
    let doc: Value = app.admin_json("/v1/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let schemas = &doc["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        let name = schema["$ref"].as_str().expect("a reference");
        schemas[name.trim_start_matches("#/components/schemas/")].clone()
    };
    let mut seen = Vec::new();
    for delivery in &received {
        let event = delivery.json();
        let event_type = event["metadata"]["eventType"].as_str().unwrap().to_owned();
        let operation = &doc["webhooks"][&event_type]["post"];
        assert!(operation.is_object(), "{event_type} is in webhooks");
        let envelope = &operation["requestBody"]["content"]["application/json"]["schema"];
        for part in ["metadata", "data"] {
            let schema = resolve(&envelope["properties"][part]);
            let fields = event[part].as_object().unwrap();
            let properties = schema["properties"].as_object().unwrap();
            for (field, value) in fields {
                let described = &properties[field.as_str()];
                assert!(
                    described.is_object(),
                    "{event_type} {part}.{field} is described"
                );
                assert!(value.is_string(), "{event_type} {part}.{field}");
                assert!(
                    described["type"] == "string" || described["type"][0] == "string",
                    "{event_type} {part}.{field}: {described}"
                );
            }
            for required in schema["required"].as_array().unwrap() {
                assert!(
                    fields.contains_key(required.as_str().unwrap()),
                    "{required}"
                );
            }
            // externalLeadId is given, so every described field is in the body.
            assert_eq!(
                fields.len(),
                properties.len(),
                "{event_type} {part}: {schema}"
            );
        }
        for header in operation["parameters"].as_array().unwrap() {
            assert_eq!(header["in"], "header");
            let name = header["name"].as_str().unwrap();
            assert!(!delivery.header(name).is_empty(), "{event_type}: {name}");
        }
        seen.push(event_type);
    }
    seen.sort();
    assert_eq!(
        seen,
        ["lead.link_clicked", "lead.link_delivered", "lead.link_sent"]
    );
    assert_eq!(doc["webhooks"].as_object().unwrap().len(), 3);
}

crate::on_shared_redis!(a_rate_limit_holds_over_two_dispatching_instances);
on_every_store!(a_changed_rate_limit_applies_to_what_waits);

/// Deliveries waiting for a limit of 1 a second go at once when the limit is lifted, and
/// the ones that waited used no attempt.
async fn a_changed_rate_limit_applies_to_what_waits(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    // JSON has one kind of number: 1.0 is the whole number 1.
    let sub = app
        .subscribe(&receiver.url, json!({"rateLimit": 1.0}))
        .await;
    assert_eq!(sub["rateLimit"], 1);
    let sub = sub["id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        let code = link_for(&app, &format!("+1777{i:07}")).await;
        app.click(&code).await;
    }
    receiver.wait_for(1, WAIT).await;
    let waiting = deliveries(&app, &sub, "?status=pending&limit=100").await;
    let waiting = waiting["deliveries"].as_array().unwrap().clone();
    assert!(waiting.len() >= 15, "{} pending", waiting.len());
    assert!(
        waiting.iter().all(|d| d["attempts"] == json!([])),
        "waiting used no attempt: {waiting:?}"
    );
    let patched = app
        .admin_send(
            Method::PATCH,
            &format!("/v1/webhooks/{sub}"),
            &json!({"rateLimit": null}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    // At 1 a second the other 19 would take 20 s more; without a limit they go now.
    receiver.wait_for(20, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_on_the_embedded_store() {
    let app = TestApp::spawn_with(Backend::Embedded, webhook_config).await;
    paced_deliveries(&app, &app).await;
}

async fn a_rate_limit_holds_over_two_dispatching_instances(backend: Backend) {
    let redis = crate::helpers::SharedRedis::start(backend).await;
    let a = TestApp::spawn_on(redis.store(), webhook_config).await;
    let b = TestApp::spawn_on(redis.store(), webhook_config).await;
    paced_deliveries(&a, &b).await;
}

/// 300 events to a subscription limited to 50 a second and to one without a limit:
/// the first gets them over about six seconds and never more than 50 within a second,
/// each delivered at its first attempt; the other is not held back by it.
async fn paced_deliveries(a: &TestApp, b: &TestApp) {
    let limited = Receiver::start().await;
    let free = Receiver::start().await;
    let sub = a.subscribe(&limited.url, json!({"rateLimit": 50})).await;
    assert_eq!(sub["rateLimit"], 50);
    let sub = sub["id"].as_str().unwrap().to_owned();
    a.subscribe(&free.url, json!({})).await;
    let leads: Vec<Value> = (0..300)
        .map(|i| json!({"phone": format!("+1666{i:07}")}))
        .collect();
    let body = json!({"campaignId": "burst", "url": "https://shop.test/", "leads": leads});
    let links: Value = (a
        .admin_send(Method::POST, "/v1/links/bulk", &body)
        .await
        .json()
        .await)
        .unwrap();
    let start = std::time::Instant::now();
    for (i, link) in links["links"].as_array().unwrap().iter().enumerate() {
        let app = if i % 2 == 0 { a } else { b };
        app.click(link["code"].as_str().unwrap()).await;
    }
    let unlimited = free.wait_for(300, Duration::from_secs(30)).await;
    let got = limited.wait_for(300, Duration::from_secs(30)).await;
    let times: Vec<Duration> = {
        let mut t: Vec<Duration> = got.iter().map(|r| r.at - start).collect();
        t.sort();
        t
    };
    for (i, first) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|t| **t < *first + Duration::from_secs(1))
            .count();
        assert!(
            within <= 50,
            "{within} deliveries in the second from {first:?}"
        );
    }
    // 300 at 50 a second cannot take less than five seconds (the first 50 at once).
    let spread = *times.last().unwrap() - times[0];
    assert!(
        spread >= Duration::from_millis(4_900),
        "all 300 within {spread:?}"
    );
    let free_last = unlimited.iter().map(|r| r.at).max().unwrap() - start;
    eprintln!(
        "paced: 300 deliveries over {spread:?} (the unlimited subscription's last at {free_last:?})"
    );
    assert!(
        free_last < *times.last().unwrap(),
        "the unlimited subscription was held back: its last at {free_last:?}"
    );
    // Waiting used no attempt.
    a.drain().await;
    let log = deliveries(a, &sub, "?status=delivered&limit=1000").await;
    let log = log["deliveries"].as_array().unwrap();
    assert_eq!(log.len(), 300);
    for delivery in log {
        assert_eq!(
            delivery["attempts"].as_array().unwrap().len(),
            1,
            "{delivery}"
        );
    }
}
