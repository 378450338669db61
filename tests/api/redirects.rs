//! The public listener: redirects, their headers, 404/410 and what it must not expose.

use crate::helpers::{Backend, TOKEN, TestApp, location};
use crate::on_every_store;
use reqwest::StatusCode;
use serde_json::json;

on_every_store!(
    a_click_is_a_302_to_the_destination_that_no_one_may_cache,
    head_answers_like_get_without_a_body,
    unknown_codes_get_a_404_page,
    disabled_and_expired_links_are_410_until_enabled_again,
    a_configured_fallback_replaces_404_and_410,
    query_parameters_on_the_short_url_are_not_forwarded,
    a_forwarding_link_appends_the_query_and_stays_on_its_destination,
    each_device_goes_to_its_own_destination_bots_included,
    the_public_listener_exposes_no_admin_route,
    metrics_count_requests_and_cache_hits,
    health_and_readiness_answer_on_both_listeners,
    only_get_and_head_of_one_segment_are_redirects,
);

async fn a_click_is_a_302_to_the_destination_that_no_one_may_cache(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://Shop.test/p?id=1&x=%20y"}))
        .await;
    let code = link["code"].as_str().unwrap();
    for _ in 0..2 {
        let response = app.click(code).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            location(&response).as_deref(),
            Some("https://shop.test/p?id=1&x=%20y")
        );
        assert_eq!(response.headers()["cache-control"], "private, no-store");
    }
}

async fn head_answers_like_get_without_a_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let live = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/"}))
        .await;
    let gone = app
        .create_link(json!({"campaignId": "c", "url": "https://b.test/"}))
        .await;
    let gone = gone["code"].as_str().unwrap();
    app.patch_link(gone, json!({"disabled": true})).await;
    /// Every header but the date, which may tick between the two requests.
    fn headers(response: &reqwest::Response) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = (response.headers().iter())
            .filter(|(name, _)| *name != "date")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        headers
    }
    for (code, status) in [
        (live["code"].as_str().unwrap(), StatusCode::FOUND),
        ("nope", StatusCode::NOT_FOUND),
        (gone, StatusCode::GONE),
    ] {
        let url = format!("{}/{code}", app.public);
        let get = app.client.get(&url).send().await.unwrap();
        let head = app.client.head(&url).send().await.unwrap();
        assert_eq!(get.status(), status);
        assert_eq!(head.status(), status);
        let get_headers = headers(&get);
        assert!(
            get_headers.iter().any(|(n, _)| n == "content-length"),
            "{get_headers:?}"
        );
        assert_eq!(headers(&head), get_headers, "HEAD /{code}");
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

async fn unknown_codes_get_a_404_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["nope", "a%2Fb", "x/y", "%E2%9C%93", "-_-"] {
        let response = app.click(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(location(&response).is_none());
        assert!(response.text().await.unwrap().contains("Link not found"));
    }
}

async fn disabled_and_expired_links_are_410_until_enabled_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/"}))
        .await;
    let code = link["code"].as_str().unwrap();
    assert_eq!(app.click(code).await.status(), StatusCode::FOUND);

    app.patch_link(code, json!({"disabled": true})).await;
    let response = app.click(code).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("no longer available")
    );

    app.patch_link(
        code,
        json!({"disabled": false, "expiresAt": "2020-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(app.click(code).await.status(), StatusCode::GONE);

    app.patch_link(code, json!({"expiresAt": null})).await;
    assert_eq!(app.click(code).await.status(), StatusCode::FOUND);

    let expired = app
        .create_link(json!({"campaignId": "c", "url": "https://b.test/", "expiresAt": "2001-01-01T00:00:00Z"}))
        .await;
    assert_eq!(
        app.click(expired["code"].as_str().unwrap()).await.status(),
        StatusCode::GONE
    );
}

async fn a_configured_fallback_replaces_404_and_410(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.fallback_url = Some("https://home.test/".into())
    })
    .await;
    let response = app.click("unknown").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response).as_deref(), Some("https://home.test/"));
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/"}))
        .await;
    let code = link["code"].as_str().unwrap();
    app.patch_link(code, json!({"disabled": true})).await;
    assert_eq!(
        location(&app.click(code).await).as_deref(),
        Some("https://home.test/")
    );
}

async fn query_parameters_on_the_short_url_are_not_forwarded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/p?keep=1"}))
        .await;
    let code = link["code"].as_str().unwrap();
    let response = app.click(&format!("{code}?utm_source=sms&keep=2")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response).as_deref(),
        Some("https://a.test/p?keep=1")
    );
}

async fn a_forwarding_link_appends_the_query_and_stays_on_its_destination(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(
            json!({"campaignId": "c", "url": "https://a.test/p?keep=1#top",
            "forwardQuery": true}),
        )
        .await;
    assert_eq!(link["forwardQuery"], true);
    let code = link["code"].as_str().unwrap();
    for (query, expected) in [
        ("", "https://a.test/p?keep=1#top"),
        ("?", "https://a.test/p?keep=1#top"),
        (
            "?utm_source=sms&keep=2",
            "https://a.test/p?keep=1&utm_source=sms&keep=2#top",
        ),
        ("?flag", "https://a.test/p?keep=1&flag#top"),
        // What could smuggle a header or another origin is only ever query text.
        (
            "?x=%0D%0ASet-Cookie:%20a=1",
            "https://a.test/p?keep=1&x=%0D%0ASet-Cookie:%20a=1#top",
        ),
        ("?@evil.test/", "https://a.test/p?keep=1&@evil.test/#top"),
        (
            "?next=//evil.test/%2F..",
            "https://a.test/p?keep=1&next=//evil.test/%2F..#top",
        ),
        ("?q=\"<x>\"", "https://a.test/p?keep=1&q=%22%3Cx%3E%22#top"),
    ] {
        let response = app.click(&format!("{code}{query}")).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{query}");
        let location = location(&response).unwrap();
        assert_eq!(location, expected, "{query}");
        let parsed = url::Url::parse(&location).unwrap();
        assert_eq!(parsed.host_str(), Some("a.test"), "{query}");
        assert_eq!(parsed.path(), "/p", "{query}");
    }
    // Turned off by a PATCH, the query is dropped again.
    let patched = app.patch_link(code, json!({"forwardQuery": false})).await;
    let patched: serde_json::Value = patched.json().await.unwrap();
    assert_eq!(patched["forwardQuery"], false);
    let response = app.click(&format!("{code}?utm_source=sms")).await;
    assert_eq!(
        location(&response).as_deref(),
        Some("https://a.test/p?keep=1#top")
    );
}

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
    (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// The preview fetch of WhatsApp on Android: a bot, on an Android device.
const WHATSAPP_ANDROID: &str = "WhatsApp/2.24.24.76 A";
const FACEBOOK_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 facebookexternalhit/1.1";

async fn each_device_goes_to_its_own_destination_bots_included(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://shop.test/",
            "iosUrl": "https://apps.apple.com/app/id123", "androidUrl":
            "https://play.google.com/store/apps/details?id=test.shop", "phone": "+15550001111"}))
        .await;
    assert_eq!(link["iosUrl"], "https://apps.apple.com/app/id123");
    let code = link["code"].as_str().unwrap();
    let ios = "https://apps.apple.com/app/id123";
    let android = "https://play.google.com/store/apps/details?id=test.shop";
    for (agent, expected) in [
        (Some(IPHONE), ios),
        (Some(IPAD), ios),
        (Some(ANDROID), android),
        (Some(DESKTOP), "https://shop.test/"),
        (None, "https://shop.test/"),
        (Some(FACEBOOK_IOS), ios),
        (Some(WHATSAPP_ANDROID), "https://shop.test/"),
    ] {
        let response = app.click_as(code, agent).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{agent:?}");
        assert_eq!(location(&response).as_deref(), Some(expected), "{agent:?}");
    }
    // Previews were counted as bots, whatever their device.
    crate::helpers::eventually("clicks are counted", crate::helpers::WAIT, || async {
        let stats = app.stats(code).await;
        stats["botClicks"] == 3 && stats["clicks"] == 4
    })
    .await;

    // Without its own destination a device goes to the url; `null` removes one.
    let response = app.patch_link(code, json!({"androidUrl": null})).await;
    let patched: serde_json::Value = response.json().await.unwrap();
    assert_eq!(patched["androidUrl"], serde_json::Value::Null);
    assert_eq!(patched["iosUrl"], ios);
    let response = app.click_as(code, Some(ANDROID)).await;
    assert_eq!(location(&response).as_deref(), Some("https://shop.test/"));
    let response = app.click_as(code, Some(IPHONE)).await;
    assert_eq!(location(&response).as_deref(), Some(ios));
}

async fn the_public_listener_exposes_no_admin_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/"}))
        .await;
    let code = link["code"].as_str().unwrap();
    for path in [
        "/v1/links".to_owned(),
        format!("/v1/links/{code}"),
        "/v1/openapi.json".to_owned(),
        "/metrics".to_owned(),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.public))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(code) && !body.contains("akti_http"),
            "{path}: {body}"
        );
    }
    let create = app
        .client
        .post(format!("{}/v1/links", app.public))
        .bearer_auth(TOKEN)
        .json(&json!({"campaignId": "c", "url": "https://evil.test/"}))
        .send()
        .await
        .unwrap();
    assert!(create.status().is_client_error());
    let page: serde_json::Value = app.admin_get("/v1/links").await.json().await.unwrap();
    assert_eq!(page["links"].as_array().unwrap().len(), 1);
}

async fn metrics_count_requests_and_cache_hits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/"}))
        .await;
    let code = link["code"].as_str().unwrap();
    app.click(code).await;
    app.click(code).await;
    let response = app
        .client
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for needle in [
        r#"akti_http_requests_total{listener="public",route="/{code}",method="GET",status="302"}"#,
        r#"akti_http_request_duration_seconds_bucket{listener="public",route="/{code}",method="GET",status="302""#,
        r#"akti_link_cache_total{result="hit"}"#,
        r#"akti_link_cache_total{result="miss"}"#,
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
}

async fn health_and_readiness_answer_on_both_listeners(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for base in [&app.public, &app.admin] {
        for path in ["/healthz", "/readyz"] {
            let response = app
                .client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{base}{path}");
        }
    }
}

/// Redirects are answered in front of the router (`PublicService`); whatever is not
/// `GET|HEAD /{code}` must still get the router's answers.
async fn only_get_and_head_of_one_segment_are_redirects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let link = app
        .create_link(json!({"campaignId": "c", "url": "https://a.test/"}))
        .await;
    let code = link["code"].as_str().unwrap();
    let url = format!("{}/{code}", app.public);
    let post = app.client.post(&url).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let delete = app.client.delete(&url).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
    for path in [format!("{code}/"), format!("{code}/x"), format!("x/{code}")] {
        let response = app.click(&path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(response.text().await.unwrap().contains("Link not found"));
    }
    // Nothing above was a click.
    let stats: serde_json::Value = app
        .admin_get(&format!("/v1/links/{code}/stats"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (stats["clicks"].as_u64(), stats["botClicks"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(app.click(code).await.status(), StatusCode::FOUND);
}
