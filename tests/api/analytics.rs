//! `GET /v1/campaigns/{id}/analytics` and `analytics.csv`: a campaign's series over a
//! range, in a time zone, with its funnel, time to click and systems.

use crate::helpers::{Backend, TestApp, WAIT, error_code, eventually};
use crate::on_every_store;
use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1";
const ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36";
const WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36";
const PREVIEW: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0";

on_every_store!(
    every_bucket_of_the_range_is_listed_and_clicks_land_in_theirs,
    a_link_is_one_unique_click_and_bots_have_no_system,
    time_to_click_is_from_the_delivered_reports_time,
    buckets_start_on_the_zones_own_hours_and_midnights,
    minute_buckets_reach_back_48_hours_only,
    parameters_are_validated,
    the_csv_has_a_line_per_bucket,
);

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn analytics(app: &TestApp, campaign: &str, query: &str) -> Value {
    let response = app
        .admin_get(&format!("/v1/campaigns/{campaign}/analytics{query}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

async fn link(app: &TestApp, campaign: &str, phone: &str) -> String {
    let link = app
        .create_link(json!({"campaignId": campaign, "url": "https://shop.test/", "phone": phone}))
        .await;
    link["code"].as_str().unwrap().to_owned()
}

/// Waits until the campaign's totals over the last hour have `field` at `n`.
async fn settled(app: &TestApp, campaign: &str, field: &str, n: u64) {
    let query = format!(
        "?from={}&to={}",
        rfc3339(Utc::now() - Duration::hours(1)),
        rfc3339(Utc::now() + Duration::minutes(5))
    );
    eventually(&format!("{field} reaches {n}"), WAIT, || async {
        analytics(app, campaign, &query).await["totals"][field] == n
    })
    .await;
}

fn start(bucket: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(bucket["start"].as_str().unwrap()).unwrap()
}

/// The bucket holding `at`.
fn bucket_at(report: &Value, at: DateTime<Utc>) -> &Value {
    let series = report["series"].as_array().unwrap();
    let i = series
        .iter()
        .rposition(|b| start(b) <= at)
        .expect("a bucket before");
    &series[i]
}

async fn every_bucket_of_the_range_is_listed_and_clicks_land_in_theirs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let code = link(&app, "spring", "+14155550201").await;
    app.click_as(&code, Some(IPHONE)).await;
    app.click_as(&code, Some(PREVIEW)).await;
    let clicked_at = Utc::now();
    settled(&app, "spring", "botClicks", 1).await;

    let (from, to) = (
        clicked_at - Duration::hours(5),
        clicked_at + Duration::minutes(30),
    );
    let report = analytics(
        &app,
        "spring",
        &format!("?from={}&to={}&interval=hour", rfc3339(from), rfc3339(to)),
    )
    .await;
    assert_eq!(report["campaignId"], "spring");
    assert_eq!(
        (report["interval"].as_str(), report["tz"].as_str()),
        (Some("hour"), Some("UTC"))
    );
    let series = report["series"].as_array().unwrap();
    // From the hour holding `from` to the one holding `to`: 6 or 7 hours, every one.
    let hours = (to.timestamp() / 3600 - from.timestamp() / 3600 + 1) as usize;
    assert_eq!(series.len(), hours, "{report}");
    for pair in series.windows(2) {
        assert_eq!(start(&pair[1]) - start(&pair[0]), Duration::hours(1));
    }
    assert_eq!(
        series[0]["start"].as_str().unwrap(),
        format!("{}:00:00+00:00", from.format("%Y-%m-%dT%H"))
    );
    let clicked = bucket_at(&report, clicked_at);
    assert_eq!(
        (clicked["clicks"].as_u64(), clicked["botClicks"].as_u64()),
        (Some(1), Some(1))
    );
    let empty: Vec<&Value> = series.iter().filter(|b| b["clicks"] == 0).collect();
    assert_eq!(empty.len(), hours - 1);
    for bucket in empty {
        assert_eq!(
            bucket,
            &json!({"start": bucket["start"], "clicks": 0, "uniqueClicks": 0, "clickEvents": 0,
                    "botClicks": 0, "messagesSent": 0, "messagesDelivered": 0})
        );
    }
    assert_eq!(report["totals"]["clicks"], 1);
    assert_eq!(report["totals"]["clickThroughRate"], Value::Null);
    // Another campaign's clicks are not in it.
    let other = analytics(&app, "autumn", "").await;
    assert_eq!(other["totals"]["clicks"], 0);
    assert_eq!(
        other["series"].as_array().unwrap().len(),
        8,
        "7 days by day: 8 dates"
    );
}

async fn a_link_is_one_unique_click_and_bots_have_no_system(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (a, b, c) = (
        link(&app, "launch", "+14155550211").await,
        link(&app, "launch", "+14155550212").await,
        link(&app, "launch", "+14155550213").await,
    );
    for _ in 0..3 {
        app.click_as(&a, Some(IPHONE)).await;
    }
    app.click_as(&b, Some(ANDROID)).await;
    app.click_as(&b, Some(WINDOWS)).await;
    for _ in 0..4 {
        app.click_as(&c, Some(PREVIEW)).await;
    }
    settled(&app, "launch", "clicks", 5).await;
    // Clicked again once its first click is written: still one unique click.
    app.click_as(&a, Some(IPHONE)).await;
    settled(&app, "launch", "clicks", 6).await;
    settled(&app, "launch", "botClicks", 4).await;

    let report = analytics(&app, "launch", "").await;
    let totals = &report["totals"];
    assert_eq!(totals["uniqueClicks"], 2, "{report}");
    assert_eq!(totals["clickEvents"], 2, "one event per lead's window");
    assert_eq!(
        report["os"],
        json!({"iOS": 4, "Android": 1, "Windows": 1, "macOS": 0, "Linux": 0, "other": 0}),
        "bots are in no system"
    );
    let series_unique: u64 = (report["series"].as_array().unwrap().iter())
        .map(|b| b["uniqueClicks"].as_u64().unwrap())
        .sum();
    assert_eq!(series_unique, 2);
    // The campaign list agrees.
    let list: Value = app.admin_get("/v1/campaigns").await.json().await.unwrap();
    assert_eq!(list["campaigns"][0]["uniqueClicks"], 2);
}

/// A message sent, delivered 5 minutes before its link is clicked; another whose link was
/// clicked before the delivered report came in (a late report, 2 hours after delivery).
async fn time_to_click_is_from_the_delivered_reports_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let send = |phone: &'static str| {
        let app = &app;
        async move {
            let body = json!({"campaignId": "sale", "phone": phone,
                              "body": "Sale today: https://shop.test/sale"});
            let response = app
                .admin_send(reqwest::Method::POST, "/v1/messages", &body)
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let message: Value = response.json().await.unwrap();
            let id = message["messageId"].as_str().unwrap().to_owned();
            let code = message["links"][0]["code"].as_str().unwrap().to_owned();
            (id, code)
        }
    };
    let report = |id: String, status: &'static str, at: DateTime<Utc>| {
        let app = &app;
        async move {
            let response = app
                .admin_send(
                    reqwest::Method::POST,
                    &format!("/v1/messages/{id}/status"),
                    &json!({"status": status, "at": rfc3339(at)}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    let now = Utc::now();
    let (early, early_code) = send("+14155550221").await;
    report(early.clone(), "sent", now - Duration::minutes(6)).await;
    report(early.clone(), "delivered", now - Duration::minutes(5)).await;
    // A repeated report counts nothing again.
    report(early, "delivered", now).await;
    app.click_as(&early_code, Some(IPHONE)).await;

    let (late, late_code) = send("+14155550222").await;
    app.click_as(&late_code, Some(ANDROID)).await;
    settled(&app, "sale", "uniqueClicks", 2).await;
    report(late, "delivered", now - Duration::hours(2)).await;
    // A message without a delivered report has no time to click.
    let (_, unreported) = send("+14155550223").await;
    app.click_as(&unreported, Some(IPHONE)).await;
    settled(&app, "sale", "uniqueClicks", 3).await;

    let window = format!(
        "?from={}&to={}",
        rfc3339(now - Duration::hours(3)),
        rfc3339(now + Duration::minutes(5))
    );
    eventually(
        "the late report's time to click is counted",
        WAIT,
        || async {
            let r = analytics(&app, "sale", &window).await;
            r["timeToClick"][4]["links"] == 1
        },
    )
    .await;
    let r = analytics(&app, "sale", &window).await;
    assert_eq!(
        r["timeToClick"],
        json!([{"le": 60, "links": 0}, {"le": 300, "links": 0}, {"le": 900, "links": 1},
               {"le": 3600, "links": 0}, {"le": 21600, "links": 1}, {"le": 86400, "links": 0},
               {"le": null, "links": 0}]),
        "{r}"
    );
    let totals = &r["totals"];
    assert_eq!(
        (
            totals["messagesSent"].as_u64(),
            totals["messagesDelivered"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(
        totals["clickThroughRate"], 1.5,
        "3 links clicked / 2 delivered"
    );
    // Each report in the bucket of its `at`.
    let delivered_late = bucket_at(&r, now - Duration::hours(2));
    assert_eq!(delivered_late["messagesDelivered"], 1, "{r}");
    assert_eq!(bucket_at(&r, now - Duration::minutes(6))["messagesSent"], 1);
    // The link stats carry the same times.
    let stats = app.stats(&early_code).await;
    assert_eq!(stats["deliveredAt"], rfc3339(now - Duration::minutes(5)));
}

async fn buckets_start_on_the_zones_own_hours_and_midnights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let code = link(&app, "zones", "+14155550231").await;
    app.click_as(&code, Some(IPHONE)).await;
    let clicked_at = Utc::now();
    settled(&app, "zones", "clicks", 1).await;
    let range = format!(
        "from={}&to={}",
        rfc3339(clicked_at - Duration::hours(4)),
        rfc3339(clicked_at + Duration::minutes(1))
    );
    for (tz, offset) in [
        ("Asia/Kolkata", "+05:30"),
        ("Asia/Kathmandu", "+05:45"),
        ("America/Sao_Paulo", "-03:00"),
    ] {
        let report = analytics(&app, "zones", &format!("?{range}&interval=hour&tz={tz}")).await;
        assert_eq!(report["tz"], tz);
        let series = report["series"].as_array().unwrap();
        assert!((5..=6).contains(&series.len()), "{report}");
        for bucket in series {
            let start = bucket["start"].as_str().unwrap();
            assert!(start.ends_with(&format!(":00:00{offset}")), "{tz}: {start}");
        }
        let clicked = bucket_at(&report, clicked_at);
        assert_eq!(clicked["clicks"], 1, "{tz}: {report}");
        assert!(start(clicked) + Duration::hours(1) > clicked_at);

        let days = analytics(&app, "zones", &format!("?interval=day&tz={tz}")).await;
        let first = days["series"][0]["start"].as_str().unwrap();
        assert!(
            first.ends_with(&format!("T00:00:00{offset}")),
            "{tz}: {first}"
        );
        assert_eq!(days["totals"]["clicks"], 1);
    }
}

async fn minute_buckets_reach_back_48_hours_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let code = link(&app, "flash", "+14155550241").await;
    app.click_as(&code, Some(IPHONE)).await;
    let clicked_at = Utc::now();
    settled(&app, "flash", "clicks", 1).await;
    let from = clicked_at - Duration::minutes(30);
    let report = analytics(
        &app,
        "flash",
        &format!(
            "?from={}&to={}&interval=minute",
            rfc3339(from),
            rfc3339(clicked_at + Duration::seconds(1))
        ),
    )
    .await;
    let series = report["series"].as_array().unwrap();
    assert!((31..=32).contains(&series.len()), "{}", series.len());
    assert_eq!(bucket_at(&report, clicked_at)["clicks"], 1);
    assert_eq!(report["totals"]["clicks"], 1);

    let old = rfc3339(Utc::now() - Duration::hours(49));
    let response = app
        .admin_get(&format!(
            "/v1/campaigns/flash/analytics?from={old}&interval=minute"
        ))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(response).await, "invalid_interval");
}

async fn parameters_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = Utc::now();
    let cases = [
        ("from=yesterday".to_owned(), "invalid_from"),
        (
            format!(
                "from={}&to={}",
                rfc3339(now),
                rfc3339(now - Duration::hours(1))
            ),
            "invalid_from",
        ),
        (
            format!("from={}&to={}", rfc3339(now), rfc3339(now)),
            "invalid_from",
        ),
        ("interval=week".to_owned(), "invalid_interval"),
        ("tz=Mars%2FOlympus".to_owned(), "invalid_tz"),
        ("tz=%2B05%3A30".to_owned(), "invalid_tz"),
        (
            format!("from={}&interval=hour", rfc3339(now - Duration::days(90))),
            "invalid_interval",
        ),
        (
            format!("from={}&interval=day", rfc3339(now - Duration::days(2000))),
            "invalid_interval",
        ),
    ];
    for (query, code) in cases {
        let response = app
            .admin_get(&format!("/v1/campaigns/c/analytics?{query}"))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        assert_eq!(error_code(response).await, code, "{query}");
    }
    for path in [
        "/v1/campaigns/c/analytics?limit=5",
        "/v1/campaigns/not%20an%20id/analytics",
    ] {
        let response = app.admin_get(path).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}"
        );
    }
    // The longest ranges that are allowed.
    let hours = format!(
        "/v1/campaigns/c/analytics?from={}&interval=hour",
        rfc3339(now - Duration::days(60))
    );
    assert_eq!(app.admin_get(&hours).await.status(), StatusCode::OK);
}

async fn the_csv_has_a_line_per_bucket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let code = link(&app, "csv", "+14155550251").await;
    app.click_as(&code, Some(IPHONE)).await;
    app.click_as(&code, Some(PREVIEW)).await;
    settled(&app, "csv", "botClicks", 1).await;
    let query = format!(
        "?from={}&tz=Asia/Kolkata",
        rfc3339(Utc::now() - Duration::hours(3))
    );
    let report = analytics(&app, "csv", &query).await;
    let response = app
        .admin_get(&format!("/v1/campaigns/csv/analytics.csv{query}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    let mut expected = vec![
        "start,clicks,uniqueClicks,clickEvents,botClicks,messagesSent,messagesDelivered".to_owned(),
    ];
    for b in report["series"].as_array().unwrap() {
        expected.push(format!(
            "{},{},{},{},{},{},{}",
            b["start"].as_str().unwrap(),
            b["clicks"],
            b["uniqueClicks"],
            b["clickEvents"],
            b["botClicks"],
            b["messagesSent"],
            b["messagesDelivered"]
        ));
    }
    assert_eq!(lines, expected);
    assert!(text.contains(",1,1,1,1,0,0\r\n"), "{text}");
    let bad = app
        .admin_get("/v1/campaigns/csv/analytics.csv?interval=year")
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
