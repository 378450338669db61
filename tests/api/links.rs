//! The `/v1/links` API on both stores: creation, idempotency, validation, bulk, get,
//! patch, delete, list, auth and the OpenAPI document.

use crate::helpers::{Backend, TOKEN, TestApp, error_code};
use crate::on_every_store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

on_every_store!(
    a_created_link_carries_every_field,
    the_same_campaign_phone_and_url_returns_the_existing_link_with_200,
    a_custom_code_is_used_and_a_taken_one_is_409,
    the_same_identity_under_another_custom_code_is_409,
    generated_codes_follow_the_configured_length,
    invalid_fields_are_422_with_a_field_specific_code,
    bulk_creation_answers_in_order_and_is_idempotent,
    bulk_creation_takes_ten_thousand_leads_and_no_more,
    bulk_errors_name_the_lead_at_fault,
    get_patch_and_delete_a_link,
    a_patch_that_collides_with_another_link_is_409,
    listing_pages_with_a_cursor_and_filters,
    list_parameters_are_validated,
    every_v1_route_requires_a_configured_bearer_token,
    the_openapi_document_lists_every_route,
);

fn expect_link_shape(link: &Value) {
    let keys: HashSet<&str> = link
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "code",
        "shortUrl",
        "url",
        "campaignId",
        "phone",
        "externalLeadId",
        "createdAt",
        "expiresAt",
        "disabled",
        "iosUrl",
        "androidUrl",
        "forwardQuery",
    ]
    .into();
    assert_eq!(keys, expected);
}

async fn a_created_link_carries_every_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({
            "campaignId": "spring-sale",
            "url": "HTTPS://Shop.Example.COM:443/a/./b/../offer?x=1",
            "phone": "+14155550123",
            "externalLeadId": "crm-42",
            "expiresAt": "2030-01-01T00:00:00+02:00",
            "iosUrl": "HTTPS://Apps.Apple.com/app/id1",
            "androidUrl": "https://play.google.com/store/apps/details?id=a.b",
            "forwardQuery": true,
        }))
        .await;
    expect_link_shape(&link);
    assert_eq!(link["iosUrl"], "https://apps.apple.com/app/id1");
    assert_eq!(
        link["androidUrl"],
        "https://play.google.com/store/apps/details?id=a.b"
    );
    assert_eq!(link["forwardQuery"], true);
    let code = link["code"].as_str().unwrap();
    let read: Value = app.admin_json(&format!("/v1/links/{code}")).await;
    assert_eq!(read, link, "read back as created");
    let code = link["code"].as_str().unwrap();
    assert_eq!(link["shortUrl"], format!("https://link.test/{code}"));
    assert_eq!(link["url"], "https://shop.example.com/a/offer?x=1");
    assert_eq!(link["campaignId"], "spring-sale");
    assert_eq!(link["phone"], "+14155550123");
    assert_eq!(link["externalLeadId"], "crm-42");
    assert_eq!(link["expiresAt"], "2029-12-31T22:00:00.000Z");
    assert_eq!(link["disabled"], false);
    let created = link["createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");

    let bare = app
        .create_link(json!({"campaignId": "c", "url": "http://x.test"}))
        .await;
    expect_link_shape(&bare);
    assert_eq!(bare["url"], "http://x.test/");
    assert_eq!(bare["phone"], Value::Null);
    assert_eq!(bare["externalLeadId"], Value::Null);
    assert_eq!(bare["expiresAt"], Value::Null);
    assert_eq!(bare["iosUrl"], Value::Null);
    assert_eq!(bare["androidUrl"], Value::Null);
    assert_eq!(bare["forwardQuery"], false);
}

async fn the_same_campaign_phone_and_url_returns_the_existing_link_with_200(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"campaignId": "c", "url": "https://a.test/x", "phone": "+155"});
    let first = app.create_link(body.clone()).await;
    let again = app.post_link(body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    // The identity is the normalised URL.
    let spelled = app
        .post_link(json!({"campaignId": "c", "url": "HTTPS://A.TEST:443/x", "phone": "+155"}))
        .await;
    assert_eq!(spelled.status(), StatusCode::OK);
    assert_eq!(
        spelled.json::<Value>().await.unwrap()["code"],
        first["code"]
    );
}

async fn a_custom_code_is_used_and_a_taken_one_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/", "code": "Spring_26-a"}))
        .await;
    assert_eq!(link["code"], "Spring_26-a");
    assert_eq!(link["shortUrl"], "https://link.test/Spring_26-a");
    let taken = app
        .post_link(json!({"campaignId": "c", "url": "https://b.test/", "code": "Spring_26-a"}))
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(taken).await, "code_taken");
}

async fn the_same_identity_under_another_custom_code_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_link(json!({"campaignId": "c", "url": "https://a.test/", "code": "first"}))
        .await;
    let renamed = app
        .post_link(json!({"campaignId": "c", "url": "https://a.test/", "code": "second"}))
        .await;
    assert_eq!(renamed.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(renamed).await, "link_exists");
    let lookup = app.admin_get("/v1/links/second").await;
    assert_eq!(lookup.status(), StatusCode::NOT_FOUND);
}

async fn generated_codes_follow_the_configured_length(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.code_length = 12).await;
    for i in 0..20 {
        let link = app
            .create_link(json!({"campaignId": "c", "url": format!("https://a.test/{i}")}))
            .await;
        let code = link["code"].as_str().unwrap();
        assert_eq!(code.len(), 12);
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
    }
}

async fn invalid_fields_are_422_with_a_field_specific_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ok = json!({"campaignId": "c", "url": "https://a.test/", "phone": "+155"});
    let with = |field: &str, value: Value| {
        let mut body = ok.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("phone", json!("4155550123")), "invalid_phone"),
        (with("phone", json!("+0155")), "invalid_phone"),
        (with("phone", json!("+1")), "invalid_phone"),
        (with("phone", json!("+1234567890123456")), "invalid_phone"),
        (with("phone", json!("+1 415 555 0123")), "invalid_phone"),
        (with("url", json!("javascript:alert(1)")), "invalid_url"),
        (with("url", json!("ftp://a.test/")), "invalid_url"),
        (with("url", json!("/relative")), "invalid_url"),
        (with("url", json!("https://user:pw@a.test/")), "invalid_url"),
        (
            with("url", json!("https://a.test/\r\nSet-Cookie: a=b")),
            "invalid_url",
        ),
        (
            with("url", json!(format!("https://a.test/{}", "a".repeat(2100)))),
            "invalid_url",
        ),
        (with("campaignId", json!("")), "invalid_campaign_id"),
        (
            with("campaignId", json!("has space")),
            "invalid_campaign_id",
        ),
        (
            with("campaignId", json!("c".repeat(65))),
            "invalid_campaign_id",
        ),
        (with("code", json!("a/b")), "invalid_code"),
        (with("code", json!("")), "invalid_code"),
        (
            with("externalLeadId", json!("a\u{0}b")),
            "invalid_external_lead_id",
        ),
        (with("expiresAt", json!("tomorrow")), "invalid_expires_at"),
        (with("iosUrl", json!("itms-apps://x")), "invalid_ios_url"),
        (
            with("androidUrl", json!("https://a.test/\r\n")),
            "invalid_android_url",
        ),
        (with("forwardQuery", json!("yes")), "invalid_body"),
        (with("surprise", json!(1)), "invalid_body"),
        (with("phone", json!(14155550123u64)), "invalid_body"),
        (json!({"url": "https://a.test/"}), "invalid_body"),
    ];
    for (body, code) in cases {
        let response = app.post_link(body.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Nothing was created along the way.
    let page: Value = app.admin_get("/v1/links").await.json().await.unwrap();
    assert_eq!(page["links"], json!([]));
}

async fn bulk_creation_answers_in_order_and_is_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let single = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/", "phone": "+1002"}))
        .await;
    let body = json!({
        "campaignId": "c",
        "url": "https://A.test",
        "iosUrl": "https://apps.apple.com/app/id9",
        "forwardQuery": true,
        "leads": [
            {"phone": "+1001", "externalLeadId": "one"},
            {"phone": "+1002"},
            {"phone": "+1003"},
            {"phone": "+1001", "externalLeadId": "one"},
        ],
    });
    let response = app.admin_send(Method::POST, "/v1/links/bulk", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let links = response.json::<Value>().await.unwrap()["links"]
        .as_array()
        .unwrap()
        .clone();
    let phones: Vec<&str> = links.iter().map(|l| l["phone"].as_str().unwrap()).collect();
    assert_eq!(phones, ["+1001", "+1002", "+1003", "+1001"]);
    links.iter().for_each(expect_link_shape);
    assert_eq!(links[0]["externalLeadId"], "one");
    assert_eq!(links[0]["url"], "https://a.test/");
    assert_eq!(links[0]["iosUrl"], "https://apps.apple.com/app/id9");
    assert_eq!(links[2]["forwardQuery"], true);
    assert_eq!(links[2]["androidUrl"], Value::Null);
    // The link that existed keeps its own routing: creation is idempotent on the identity.
    assert_eq!(links[1]["code"], single["code"]);
    assert_eq!(links[1]["iosUrl"], Value::Null);
    assert_eq!(links[0]["code"], links[3]["code"]);
    let again = app.admin_send(Method::POST, "/v1/links/bulk", &body).await;
    let again = again.json::<Value>().await.unwrap()["links"].clone();
    assert_eq!(again, Value::Array(links));
}

async fn bulk_creation_takes_ten_thousand_leads_and_no_more(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let leads: Vec<Value> = (0..10_001)
        .map(|i| json!({"phone": format!("+1555{i:07}")}))
        .collect();
    let too_many = json!({"campaignId": "c", "url": "https://a.test/", "leads": leads});
    let response = app
        .admin_send(Method::POST, "/v1/links/bulk", &too_many)
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(response).await, "invalid_leads");

    let leads: Vec<Value> = (0..10_000)
        .map(|i| json!({"phone": format!("+1555{i:07}")}))
        .collect();
    let body = json!({"campaignId": "c", "url": "https://a.test/", "leads": leads});
    let response = app.admin_send(Method::POST, "/v1/links/bulk", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let links = response.json::<Value>().await.unwrap()["links"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(links.len(), 10_000);
    let codes: HashSet<&str> = links.iter().map(|l| l["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 10_000);
    assert_eq!(links[9_999]["phone"], "+15550009999");

    // Indexed in chunks: every link is listed once, and the campaign counts them all.
    let stats: Value = app
        .admin_get("/v1/campaigns/c/stats")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["links"], 10_000);
    let listed = list_codes(&app, "", 1000).await;
    assert_eq!(
        listed,
        codes.iter().map(|c| c.to_string()).collect::<HashSet<_>>()
    );
}

async fn bulk_errors_name_the_lead_at_fault(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"campaignId": "c", "url": "https://a.test/", "leads": [{"phone": "+155"}, {"phone": "555"}]});
    let response = app.admin_send(Method::POST, "/v1/links/bulk", &body).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_phone");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("leads[1].phone")
    );
    // All or nothing: the valid lead was not created either.
    let page: Value = app.admin_get("/v1/links").await.json().await.unwrap();
    assert_eq!(page["links"], json!([]));
}

async fn get_patch_and_delete_a_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/", "expiresAt": "2031-01-01T00:00:00Z"}))
        .await;
    let code = link["code"].as_str().unwrap();
    let got: Value = app
        .admin_get(&format!("/v1/links/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, link);

    let response = app
        .patch_link(code, json!({"url": "https://b.test/new", "disabled": true}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["url"], "https://b.test/new");
    assert_eq!(patched["disabled"], true);
    assert_eq!(patched["expiresAt"], "2031-01-01T00:00:00.000Z");
    assert_eq!(patched["createdAt"], link["createdAt"]);

    let cleared: Value = app
        .patch_link(code, json!({"expiresAt": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["expiresAt"], Value::Null);
    assert_eq!(cleared["disabled"], true);
    let bad = app.patch_link(code, json!({"url": "javascript:x"})).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let got: Value = app
        .admin_get(&format!("/v1/links/{code}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, cleared);

    let delete = app
        .admin_send(Method::DELETE, &format!("/v1/links/{code}"), &json!(null))
        .await;
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    for response in [
        app.admin_get(&format!("/v1/links/{code}")).await,
        app.patch_link(code, json!({"disabled": false})).await,
        app.admin_send(Method::DELETE, &format!("/v1/links/{code}"), &json!(null))
            .await,
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(response).await, "not_found");
    }
}

async fn a_patch_that_collides_with_another_link_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/", "phone": "+155"}))
        .await;
    app.create_link(json!({"campaignId": "c", "url": "https://b.test/", "phone": "+155"}))
        .await;
    let response = app
        .patch_link(
            a["code"].as_str().unwrap(),
            json!({"url": "https://b.test/"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "link_exists");
}

async fn listing_pages_with_a_cursor_and_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut created = HashSet::new();
    for i in 0..5 {
        let link = app.create_link(json!({"campaignId": "a", "url": format!("https://a.test/{i}"), "phone": "+14155550123"})).await;
        created.insert(link["code"].as_str().unwrap().to_owned());
    }
    app.create_link(json!({"campaignId": "b", "url": "https://a.test/", "phone": "+14155550123"}))
        .await;
    app.create_link(
        json!({"campaignId": "a", "url": "https://a.test/", "phone": "+4915112345678"}),
    )
    .await;

    let seen = list_codes(&app, "campaignId=a&phone=%2B14155550123&", 2).await;
    assert_eq!(seen, created);

    // An unencoded '+' arrives as a space; it still means the phone.
    let page: Value = app
        .admin_get("/v1/links?phone=+4915112345678")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["links"].as_array().unwrap().len(), 1);
    let all: Value = app
        .admin_get("/v1/links?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["links"].as_array().unwrap().len(), 7);
    assert_eq!(all["nextCursor"], Value::Null);
}

/// Every code `GET /v1/links?<filters>limit=<limit>` lists, page after page; asserts that
/// no page is longer than `limit` and no code comes twice.
async fn list_codes(app: &TestApp, filters: &str, limit: usize) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut path = format!("/v1/links?{filters}limit={limit}");
    loop {
        let page: Value = app.admin_get(&path).await.json().await.unwrap();
        let links = page["links"].as_array().unwrap();
        assert!(links.len() <= limit);
        for link in links {
            assert!(
                seen.insert(link["code"].as_str().unwrap().to_owned()),
                "no repeats"
            );
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/v1/links?{filters}limit={limit}&cursor={}",
                    urlencode(cursor)
                );
            }
            None => return seen,
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn list_parameters_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("cursor=garbage", "invalid_cursor"),
        ("phone=123", "invalid_phone"),
        ("campaignId=a%20b", "invalid_campaign_id"),
        ("sort=asc", "invalid_query"),
    ] {
        let response = app.admin_get(&format!("/v1/links?{query}")).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        assert_eq!(error_code(response).await, code, "{query}");
    }
}

async fn every_v1_route_requires_a_configured_bearer_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.admin_token = vec!["one".into(), "two".into()]
    })
    .await;
    let url = app.admin_url("/v1/links");
    for auth in [
        None,
        Some("Bearer three"),
        Some("Bearer"),
        Some("Basic b25lOg=="),
        Some(TOKEN),
    ] {
        let mut request = app.client.get(&url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(error_code(response).await, "unauthorized");
    }
    for token in ["one", "two"] {
        let response = app
            .client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    for path in ["/v1/openapi.json", "/v1/nowhere", "/v1/links/abc"] {
        let response = app.client.get(app.admin_url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let write = app
        .client
        .post(&url)
        .json(&json!({"campaignId": "c", "url": "https://a.test/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);

    let closed = TestApp::spawn_with(backend, |c| c.admin_token = vec![]).await;
    let response = closed
        .client
        .get(closed.admin_url("/v1/links"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn the_openapi_document_lists_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.admin_get("/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, methods) in [
        ("/v1/links", &["get", "post"][..]),
        ("/v1/links/bulk", &["post"]),
        ("/v1/links/{code}", &["get", "patch", "delete"]),
        ("/{code}", &["get", "head"]),
        ("/callbacks/twilio/status", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/v1/openapi.json", &["get"]),
    ] {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is documented"
            );
        }
    }
    assert!(doc["components"]["schemas"]["CreateLink"].is_object());
    // The public listener's routes are served at AKTI_BASE_URL, not beside the document.
    for path in ["/{code}", "/callbacks/twilio/status"] {
        assert_eq!(
            doc["paths"][path]["servers"][0]["url"],
            crate::helpers::BASE_URL
        );
    }
    // Every /v1 operation documents the shared answers; every JSON body its errors.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !operation.is_object() || method == "servers" {
                continue;
            }
            let responses = &operation["responses"];
            if path.starts_with("/v1") {
                assert!(responses["401"].is_object(), "{method} {path}: 401");
            }
            if operation["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "408", "413", "415", "422"] {
                    assert!(responses[status].is_object(), "{method} {path}: {status}");
                }
            }
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
