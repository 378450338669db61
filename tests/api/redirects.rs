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
