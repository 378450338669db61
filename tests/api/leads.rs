//! `DELETE /v1/leads/{phone}`: a lead erased from every campaign, then looked for in the
//! whole store.

use crate::helpers::{Backend, Receiver, TestApp, WAIT, error_code, eventually, webhook_config};
use crate::on_every_store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_every_store!(
    an_erased_lead_is_left_only_in_the_events_emitted_before,
    an_erasure_is_validated,
);

const PHONE: &str = "+15550001234";
/// How the phone would show in any stored text: its digits (the `+` may be encoded).
const DIGITS: &str = "15550001234";

async fn erase(app: &TestApp, phone: &str) -> reqwest::Response {
    app.admin_send(Method::DELETE, &format!("/v1/leads/{phone}"), &json!(null))
        .await
}

/// A status report for the erased lead's message.
async fn report(app: &TestApp, status: &str) -> reqwest::Response {
    let body = json!({"status": status});
    app.admin_send(Method::POST, "/v1/messages/SM-erase-1/status", &body)
        .await
}

async fn an_erased_lead_is_left_only_in_the_events_emitted_before(backend: Backend) {
    let app = TestApp::spawn_with(backend, webhook_config).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url, json!({})).await;
    // The lead in two campaigns: a message with two links, and a link of its own.
    let body = json!({"campaignId": "spring", "phone": PHONE, "externalLeadId": "crm-1",
        "body": "Hi! https://shop.test/a and https://shop.test/b", "messageId": "SM-erase-1"});
    let response = app.admin_send(Method::POST, "/v1/messages", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let message: Value = response.json().await.unwrap();
    let own = app
        .create_link(json!({"campaignId": "autumn", "url": "https://shop.test/c",
            "phone": PHONE, "iosUrl": "https://apps.apple.com/app/id1"}))
        .await;
    let other = app
        .create_link(json!({"campaignId": "spring", "url": "https://shop.test/a",
            "phone": "+15559998888"}))
        .await;
    let mut codes: Vec<String> = (message["links"].as_array().unwrap().iter())
        .map(|l| l["code"].as_str().unwrap().to_owned())
        .collect();
    codes.push(own["code"].as_str().unwrap().to_owned());
    // Clicked (a window, counters, an event) and reported sent and delivered (two events).
    for code in &codes {
        assert_eq!(app.click(code).await.status(), StatusCode::FOUND);
    }
    for status in ["sent", "delivered"] {
        assert_eq!(report(&app, status).await.status(), StatusCode::OK);
    }
    // 3 clicks, 2 link_sent, 1 link_delivered.
    receiver.wait_for(6, WAIT).await;
    app.drain().await;
    eventually("the clicks are counted", WAIT, || async {
        let stats: Value = app.admin_json("/v1/campaigns/spring/stats").await;
        stats["clicks"] == 2
    })
    .await;

    let response = erase(&app, "%2B15550001234").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"links": 3, "messages": 1})
    );
    for code in &codes {
        assert_eq!(
            app.click(code).await.status(),
            StatusCode::NOT_FOUND,
            "{code}"
        );
        let read = app.admin_get(&format!("/v1/links/{code}")).await;
        assert_eq!(read.status(), StatusCode::NOT_FOUND);
    }
    let listed: Value = app.admin_json("/v1/links?phone=%2B15550001234").await;
    assert_eq!(listed["links"], json!([]));
    let late = report(&app, "delivered").await;
    assert_eq!(late.status(), StatusCode::NOT_FOUND);
    // Another lead's link of the same campaign and URL is untouched; the campaign keeps
    // its counts.
    let other = other["code"].as_str().unwrap();
    assert_eq!(app.click(other).await.status(), StatusCode::FOUND);
    let stats: Value = app.admin_json("/v1/campaigns/spring/stats").await;
    assert_eq!(
        (stats["clicks"].as_u64(), stats["messagesSent"].as_u64()),
        (Some(2), Some(1)),
        "{stats}"
    );
    // The same link can be made for the lead again, as new.
    let again = app
        .post_link(json!({"campaignId": "autumn", "url": "https://shop.test/c", "phone": PHONE}))
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = again.json().await.unwrap();
    erase(&app, PHONE).await;

    let found = stored_texts(&app).await;
    let holding: Vec<&(String, String)> = (found.iter())
        .filter(|(place, text)| place.contains(DIGITS) || text.contains(DIGITS))
        .collect();
    assert!(!holding.is_empty(), "the events still name the lead");
    for (place, text) in holding {
        assert!(is_event(place), "{place} holds the erased phone: {text}");
    }
    // Nothing is left of the links either, not even under their codes (but in the record
    // of a counts write, kept 10 minutes so that a retried write is not added twice).
    let mut erased = codes.clone();
    erased.push(again["code"].as_str().unwrap().to_owned());
    for code in &erased {
        let left: Vec<&String> = (found.iter())
            .filter(|(place, text)| {
                let names = place.contains(code.as_str()) || text.contains(code.as_str());
                names && !is_event(place) && !place.contains(":applied:")
            })
            .map(|(place, _)| place)
            .collect();
        assert!(left.is_empty(), "{code} is still in {left:?}");
    }
}

/// Events (and their bodies) are what the erasure leaves, until they expire.
fn is_event(place: &str) -> bool {
    place.starts_with("table events") || place.contains(":event:")
}

async fn an_erasure_is_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for phone in ["15550001234", "%2B0123", "abc"] {
        let response = erase(&app, phone).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{phone}"
        );
        assert_eq!(error_code(response).await, "invalid_phone");
    }
    let response = erase(&app, "%2B15550001234").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"links": 0, "messages": 0})
    );
}

/// Every piece of text the store holds, with where it is: each Redis key with its value,
/// or each SQLite row with its table.
async fn stored_texts(app: &TestApp) -> Vec<(String, String)> {
    if let Some(dir) = app.data_dir() {
        return sqlite_texts(&dir.join("akti-link.sqlite3"));
    }
    let urls = app.redis_urls().expect("a store of either kind");
    tokio::task::spawn_blocking(move || urls.split(',').flat_map(redis_texts).collect())
        .await
        .unwrap()
}

fn sqlite_texts(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut texts = Vec::new();
    for table in tables {
        let mut select = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = select.column_count();
        let mut rows = select.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let text: Vec<String> = (0..columns)
                .map(|i| match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                    other => format!("{other:?}"),
                })
                .collect();
            texts.push((format!("table {table}"), text.join(" | ")));
        }
    }
    texts
}

fn redis_texts(url: &str) -> Vec<(String, String)> {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    keys.into_iter()
        .map(|key| {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
            let read = match kind.as_str() {
                "string" => redis::cmd("GET").arg(&key).clone(),
                "hash" => redis::cmd("HGETALL").arg(&key).clone(),
                "set" => redis::cmd("SMEMBERS").arg(&key).clone(),
                "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).clone(),
                "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).clone(),
                "stream" => redis::cmd("XRANGE").arg(&key).arg("-").arg("+").clone(),
                // A key that expired between KEYS and TYPE.
                _ => return (key, String::new()),
            };
            let value: redis::Value = read.query(&mut conn).unwrap();
            (key, text_of(&value))
        })
        .collect()
}

/// The strings of a Redis reply, joined.
fn text_of(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(text_of).collect::<Vec<_>>().join(" | ")
        }
        redis::Value::Map(pairs) => (pairs.iter())
            .map(|(k, v)| format!("{} {}", text_of(k), text_of(v)))
            .collect::<Vec<_>>()
            .join(" | "),
        other => format!("{other:?}"),
    }
}
