//! `GET /v1/campaigns`: every campaign, newest first, with its counters; and the CSV of a
//! campaign's links.

use crate::helpers::{Backend, TestApp, WAIT, error_code, eventually};
use crate::on_every_store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const PHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1";
const PREVIEW: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0";

on_every_store!(
    campaigns_are_listed_newest_first_in_pages,
    a_campaign_counts_each_clicked_link_once_and_no_bot,
    list_parameters_are_validated,
    links_csv_has_every_link_and_its_counters,
);

async fn link(app: &TestApp, campaign: &str, phone: &str) -> Value {
    app.create_link(json!({"campaignId": campaign, "url": "https://shop.test/", "phone": phone}))
        .await
}

async fn list(app: &TestApp, query: &str) -> Value {
    let response = app.admin_get(&format!("/v1/campaigns{query}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<&str> {
    (page["campaigns"].as_array().unwrap().iter())
        .map(|c| c["campaignId"].as_str().unwrap())
        .collect()
}

async fn campaigns_are_listed_newest_first_in_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        list(&app, "").await,
        json!({"campaigns": [], "nextCursor": null})
    );
    let first = link(&app, "spring", "+14155550101").await;
    for campaign in ["summer", "autumn"] {
        // Creation times a millisecond apart at least, so the order is theirs.
        tokio::time::sleep(Duration::from_millis(5)).await;
        link(&app, campaign, "+14155550102").await;
    }
    // A later link of the first campaign does not move it.
    link(&app, "spring", "+14155550103").await;

    let page = list(&app, "?limit=2").await;
    assert_eq!(ids(&page), ["autumn", "summer"]);
    let cursor = page["nextCursor"].as_str().expect("a next page");
    let rest = list(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&rest), ["spring"]);
    assert_eq!(rest["nextCursor"], Value::Null);
    let spring = &rest["campaigns"][0];
    assert_eq!(spring["createdAt"], first["createdAt"]);
    assert_eq!(spring["links"], 2);

    // A campaign whose links are gone is still listed.
    let code = first["code"].as_str().unwrap();
    let response = app
        .admin_send(
            reqwest::Method::DELETE,
            &format!("/v1/links/{code}"),
            &json!(null),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(ids(&list(&app, "").await), ["autumn", "summer", "spring"]);
}

async fn a_campaign_counts_each_clicked_link_once_and_no_bot(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = link(&app, "launch", "+14155550111").await;
    let b = link(&app, "launch", "+14155550112").await;
    let c = link(&app, "launch", "+14155550113").await;
    let code = |l: &Value| l["code"].as_str().unwrap().to_owned();
    // Link a: three human clicks; link b: one; link c: previews only.
    for _ in 0..3 {
        assert_eq!(
            app.click_as(&code(&a), Some(PHONE)).await.status(),
            StatusCode::FOUND
        );
    }
    app.click_as(&code(&b), Some(PHONE)).await;
    for _ in 0..2 {
        app.click_as(&code(&c), Some(PREVIEW)).await;
    }
    // Link a clicked again once its first clicks are written: still one unique click.
    eventually("link a's first clicks are written", WAIT, || async {
        app.stats(&code(&a)).await["clicks"] == 3
    })
    .await;
    app.click_as(&code(&a), Some(PHONE)).await;
    eventually("the campaign's counters settle", WAIT, || async {
        let page = list(&app, "").await;
        let launch = &page["campaigns"][0];
        launch["clicks"] == 5 && launch["botClicks"] == 2
    })
    .await;
    let launch = list(&app, "").await["campaigns"][0].clone();
    assert_eq!(launch["uniqueClicks"], 2, "{launch}");
    assert_eq!(launch["links"], 3);
    assert_eq!(launch["clickEvents"], 2);
    assert_eq!(launch["messagesSent"], 0);
    assert_eq!(launch["messagesDelivered"], 0);
    assert_eq!(launch["createdAt"], a["createdAt"]);
    let stats = app.stats(&code(&a)).await;
    assert_eq!(launch["lastClickedAt"], stats["lastClickedAt"]);
    assert_eq!(app.stats(&code(&c)).await["firstClickedAt"], Value::Null);
}

async fn list_parameters_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for query in [
        "?limit=0",
        "?limit=1001",
        "?cursor=yesterday",
        "?campaignId=x",
    ] {
        let response = app.admin_get(&format!("/v1/campaigns{query}")).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        assert!(!error_code(response).await.is_empty());
    }
}

async fn links_csv_has_every_link_and_its_counters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let quoted = app
        .create_link(
            json!({"campaignId": "export", "url": "https://shop.test/?a=1,2",
                            "phone": "+14155550121", "externalLeadId": "crm, \"7\""}),
        )
        .await;
    let clicked = link(&app, "export", "+14155550122").await;
    let bare = app
        .create_link(json!({"campaignId": "export", "url": "https://shop.test/"}))
        .await;
    link(&app, "other", "+14155550123").await;
    let code = |l: &Value| l["code"].as_str().unwrap().to_owned();
    app.click_as(&code(&clicked), Some(PHONE)).await;
    app.click_as(&code(&clicked), Some(PREVIEW)).await;
    eventually("the click is counted", WAIT, || async {
        app.stats(&code(&clicked)).await["botClicks"] == 1
    })
    .await;
    let stats = app.stats(&code(&clicked)).await;

    let response = app.admin_get("/v1/campaigns/export/links.csv").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines,
        [
            "code,shortUrl,url,phone,externalLeadId,createdAt,deliveredAt,firstClickedAt,lastClickedAt,clicks,botClicks".to_owned(),
            format!(
                "{},https://link.test/{},\"https://shop.test/?a=1,2\",+14155550121,\"crm, \"\"7\"\"\",{},,,,0,0",
                code(&quoted), code(&quoted), quoted["createdAt"].as_str().unwrap()
            ),
            format!(
                "{},https://link.test/{},https://shop.test/,+14155550122,,{},,{},{},1,1",
                code(&clicked), code(&clicked), clicked["createdAt"].as_str().unwrap(),
                stats["firstClickedAt"].as_str().unwrap(), stats["lastClickedAt"].as_str().unwrap()
            ),
            format!(
                "{},https://link.test/{},https://shop.test/,,,{},,,,0,0",
                code(&bare), code(&bare), bare["createdAt"].as_str().unwrap()
            ),
        ]
    );
    // A campaign without links has the header only.
    let empty = app.admin_get("/v1/campaigns/nothing/links.csv").await;
    assert_eq!(empty.text().await.unwrap().lines().count(), 1);
    let bad = app.admin_get("/v1/campaigns/not%20an%20id/links.csv").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// The real binary streams a campaign of 100,000 links: the file is never held in memory
/// (a page of links at a time is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_csv_of_a_hundred_thousand_links_is_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    // What else grows is bounded whatever the file's size: SQLite's page cache of each of
    // its 8 readers (2 MB each by default) as the scan goes through the file.
    stream_a_hundred_thousand_links(
        ("AKTI_DATA_DIR", data.as_str()),
        8 * 2 * 1024 * 1024,
        dir.path(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_csv_of_a_hundred_thousand_links_is_streamed_from_redis() {
    let redis = crate::helpers::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // The reply buffers of a page of reads (a page of index members and of counters).
    stream_a_hundred_thousand_links(
        ("AKTI_REDIS_URL", redis.url().as_str()),
        4 * 1024 * 1024,
        dir.path(),
    )
    .await;
}

/// Streams the links.csv of a campaign of 100,000 links from the binary on `store`, and
/// checks that the process grew by less than half the file and `store_slack`.
async fn stream_a_hundred_thousand_links(
    store: (&str, &str),
    store_slack: usize,
    dir: &std::path::Path,
) {
    use crate::helpers::{Binary, client};
    use futures::StreamExt;
    let env = [("AKTI_ADMIN_TOKEN", "t"), store];
    let binary = Binary::start(&env, dir).await;
    for batch in 0..10 {
        let leads: Vec<Value> = (0..10_000)
            .map(|i| json!({"phone": format!("+1444{batch}{i:06}")}))
            .collect();
        binary
            .bulk("t", "big", "https://shop.test/landing", leads)
            .await;
    }
    let before = binary.rss_bytes();
    let response = client()
        .get(format!("{}/v1/campaigns/big/links.csv", binary.admin))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (mut bytes, mut lines, mut peak) = (0usize, 0usize, before);
    let mut at_first_chunk = None;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        let rss = binary.rss_bytes();
        at_first_chunk.get_or_insert(rss);
        peak = peak.max(rss);
    }
    assert_eq!(lines, 100_001, "a header and every link");
    // A file built before it is sent would be in memory when its first bytes leave.
    let before_sending = at_first_chunk.unwrap().saturating_sub(before) as usize;
    assert!(
        before_sending < bytes / 2,
        "grew {before_sending} bytes before sending the first of {bytes} bytes of CSV"
    );
    // While streaming, the process holds a page of links at a time.
    let grown = peak.saturating_sub(before) as usize;
    assert!(
        grown < store_slack + bytes / 2,
        "grew {grown} bytes while streaming {bytes} bytes of CSV"
    );
}
