//! The dashboard in a real headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` with fantoccini), against the real binary: sign in, read a campaign,
//! download its CSVs, sign out. A screenshot of the campaign page is kept in
//! `target/dashboard/campaign.png`.

use crate::helpers::{Binary, client, free_port};
use chrono::{Duration, SecondsFormat, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const TOKEN: &str = "dashboard-token-4f1c";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1";
const ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36";
const PREVIEW: &str = "WhatsApp/2.23.20.0";

/// `chromedriver` on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) on PATH");
        // Dropped (killed and waited for) however the wait below ends.
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if client()
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .is_ok()
            {
                return driver;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    async fn browser(&self, downloads: &Path, profile: &Path) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1280,1400",
                         format!("--user-data-dir={}", profile.display())],
                "prefs": {"download.default_directory": downloads.display().to_string(),
                          "download.prompt_for_download": false}
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn admin(binary: &Binary, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = client()
        .request(method, format!("{}{path}", binary.admin))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// A campaign of three leads, two messages delivered, two leads clicked, one preview.
async fn campaign_with_clicks(binary: &Binary) {
    let mut codes = Vec::new();
    for phone in ["+14155550301", "+14155550302", "+14155550303"] {
        let body = json!({"campaignId": "black-friday", "phone": phone,
                          "body": "Deals end tonight https://shop.test/bf"});
        let message = admin(binary, reqwest::Method::POST, "/v1/messages", body).await;
        let id = message["messageId"].as_str().unwrap().to_owned();
        for (status, ago) in [("sent", 10), ("delivered", 9)] {
            if phone.ends_with("03") && status == "delivered" {
                continue;
            }
            let at =
                (Utc::now() - Duration::minutes(ago)).to_rfc3339_opts(SecondsFormat::Millis, true);
            let path = format!("/v1/messages/{id}/status");
            admin(
                binary,
                reqwest::Method::POST,
                &path,
                json!({"status": status, "at": at}),
            )
            .await;
        }
        codes.push(message["links"][0]["code"].as_str().unwrap().to_owned());
    }
    for (code, agent) in [
        (&codes[0], IPHONE),
        (&codes[0], IPHONE),
        (&codes[1], ANDROID),
        (&codes[2], PREVIEW),
    ] {
        let response = client()
            .get(format!("{}/{code}", binary.public))
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
    }
    for _ in 0..100 {
        let list = admin(binary, reqwest::Method::GET, "/v1/campaigns", json!(null)).await;
        if list["campaigns"][0]["botClicks"] == 1 && list["campaigns"][0]["clicks"] == 3 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the clicks were not counted");
}

/// Opens `url` and waits for `css` on the page it lands on.
async fn open(browser: &Client, url: &str, css: &str) {
    browser.goto(url).await.unwrap();
    wait_for(browser, css).await;
}

async fn wait_for(browser: &Client, css: &str) {
    let found = browser.wait().for_element(Locator::Css(css)).await;
    found.unwrap_or_else(|e| panic!("{css}: {e}"));
}

async fn click(browser: &Client, css: &str) {
    let element = browser.find(Locator::Css(css)).await;
    element
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn downloaded(dir: &Path, name: &str) -> String {
    let path: PathBuf = dir.join(name);
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{name} was not downloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_signs_in_reads_a_campaign_downloads_its_csvs_and_signs_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let env = [
        ("AKTI_ADMIN_TOKEN", TOKEN),
        ("AKTI_DATA_DIR", data.as_str()),
    ];
    let binary = Binary::start(&env, dir.path()).await;
    campaign_with_clicks(&binary).await;
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let driver = Driver::start().await;
    let browser = driver
        .browser(&downloads, &dir.path().join("profile"))
        .await;

    // Not signed in: a campaign page sends the browser to the sign-in form.
    let campaign_page = format!("{}/dashboard/campaigns/black-friday", binary.admin);
    open(&browser, &campaign_page, "#token").await;
    // A wrong token is refused.
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("not-the-token")
        .await
        .unwrap();
    click(&browser, "#sign-in").await;
    assert!(
        text(&browser, ".error")
            .await
            .contains("not an admin token")
    );
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    click(&browser, "#sign-in").await;
    wait_for(&browser, "#campaigns").await;

    // The session is a cookie the page's scripts cannot read; the token is nowhere.
    let cookies = browser.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "akti_session")
        .expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    assert!(!browser.source().await.unwrap().contains(TOKEN));
    assert!(
        !browser
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains(TOKEN)
    );

    // The list shows what the API says.
    let api = admin(&binary, reqwest::Method::GET, "/v1/campaigns", json!(null)).await;
    let listed = &api["campaigns"][0];
    let row = "#campaigns tr[data-campaign='black-friday']";
    assert_eq!(
        text(&browser, &format!("{row} [data-field=uniqueClicks]")).await,
        listed["uniqueClicks"].to_string()
    );
    assert_eq!(
        text(&browser, &format!("{row} [data-field=clicks]")).await,
        listed["clicks"].to_string()
    );
    assert_eq!(
        text(&browser, &format!("{row} [data-field=botClicks]")).await,
        listed["botClicks"].to_string()
    );

    // The campaign page: funnel and charts with the API's numbers.
    click(&browser, &format!("{row} a")).await;
    wait_for(&browser, "#kpi-ctr").await;
    assert_eq!(
        text(&browser, "#kpi-sent").await,
        listed["messagesSent"].to_string()
    );
    assert_eq!(
        text(&browser, "#kpi-delivered").await,
        listed["messagesDelivered"].to_string()
    );
    assert_eq!(text(&browser, "#kpi-unique").await, "2");
    assert_eq!(
        text(&browser, "#kpi-ctr").await,
        "100.0 %",
        "2 clicked leads of 2 delivered"
    );
    let analytics = admin(
        &binary,
        reqwest::Method::GET,
        "/v1/campaigns/black-friday/analytics",
        json!(null),
    )
    .await;
    assert_eq!(
        text(&browser, "#range-clicks").await,
        analytics["totals"]["clicks"].to_string()
    );
    assert_eq!(
        text(&browser, "#range-bots").await,
        analytics["totals"]["botClicks"].to_string()
    );
    let bars = browser
        .find_all(Locator::Css("svg.chart rect.humans"))
        .await
        .unwrap();
    assert_eq!(bars.len(), analytics["series"].as_array().unwrap().len());
    let links = browser
        .find_all(Locator::Css("#links tbody tr"))
        .await
        .unwrap();
    assert_eq!(links.len(), 3);

    // Another interval and zone, chosen in the form.
    let kolkata = format!("{campaign_page}?range=24h&interval=hour&tz=Asia%2FKolkata");
    open(&browser, &kolkata, "#range-clicks").await;
    let hourly = browser
        .find_all(Locator::Css("svg.chart rect.humans"))
        .await
        .unwrap();
    assert!((24..=26).contains(&hourly.len()), "{}", hourly.len());
    assert_eq!(text(&browser, "#range-clicks").await, "3");

    let shot = browser.screenshot().await.unwrap();
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard");
    std::fs::create_dir_all(&artefacts).unwrap();
    std::fs::write(artefacts.join("campaign.png"), shot).unwrap();

    // Both downloads, with the session only.
    click(&browser, "#links-csv").await;
    let links_csv = downloaded(&downloads, "black-friday-links.csv").await;
    let lines: Vec<&str> = links_csv.lines().collect();
    assert_eq!(lines.len(), 4, "{links_csv}");
    assert!(lines[0].starts_with("code,shortUrl,url,phone"));
    click(&browser, "#analytics-csv").await;
    let series_csv = downloaded(&downloads, "black-friday-analytics.csv").await;
    assert!(series_csv.starts_with("start,clicks,uniqueClicks"));
    assert_eq!(series_csv.lines().count(), 1 + hourly.len());

    // Signed out, the campaign is out of reach again.
    click(&browser, "#sign-out").await;
    wait_for(&browser, "#token").await;
    open(&browser, &campaign_page, "#token").await;
    let csv = client()
        .get(format!(
            "{}/dashboard/campaigns/black-friday/links.csv",
            binary.admin
        ))
        .send()
        .await
        .unwrap();
    assert!(
        !csv.text().await.unwrap().starts_with("code,"),
        "no CSV without a session"
    );
    browser.close().await.unwrap();
}
