//! The released binary as an operator runs it: `--help`, bad configuration, the config
//! file layers, start-up logs, SIGTERM and restarts of the embedded store.

use crate::helpers::{Binary, RedisServer, binary_path, client, location};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::Command;

#[test]
fn help_lists_every_contract_variable() {
    let output = Command::new(binary_path()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let settings = akti_link::config::SETTINGS.iter().map(|s| s.env);
    for var in settings.chain(["AKTI_CONFIG"]) {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn a_bad_configuration_exits_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("AKTI_CODE_LENGTH", "abc"),
        ("AKTI_DEDUP_WINDOW", "forever"),
        ("AKTI_PUBLIC_ADDR", "nowhere"),
        ("AKTI_REDIS_URL", "mysql://x"),
        (
            "AKTI_REDIS_URL",
            "redis://127.0.0.1:7000,http://127.0.0.1:7001",
        ),
        ("AKTI_REDIS_WAIT_REPLICAS", "-1"),
        ("AKTI_CONFIG", "/does/not/exist.toml"),
        ("AKTI_LOG", "info,[[["),
    ] {
        let output = Command::new(binary_path())
            .env_clear()
            .env(var, value)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
}

#[test]
fn a_redis_of_another_key_layout_is_refused_at_start() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        Command::new(binary_path())
            .env_clear()
            .env("AKTI_REDIS_URL", redis.url())
            .env("AKTI_PUBLIC_ADDR", "127.0.0.1:0")
            .env("AKTI_ADMIN_ADDR", "127.0.0.1:0")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    for (key, field, value) in [
        // Written by a later version.
        ("akti:meta", "layout", "9"),
        // Written before versions were recorded: everything under one `{q}` tag.
        ("akti:{q}:subs", "sub_1", "{}"),
    ] {
        redis.command(&["FLUSHALL"]);
        redis.command(&["HSET", key, field, value]);
        let output = start();
        assert_eq!(output.status.code(), Some(1), "{key} was accepted");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("key layout"), "{stderr}");
    }
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("akti.toml");
    std::fs::write(&file, "code_lenght = 12\n").unwrap();
    let output = Command::new(binary_path())
        .env_clear()
        .env("AKTI_CONFIG", &file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("code_lenght"), "{stderr}");
}

#[tokio::test]
async fn the_environment_overrides_the_config_file_which_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    // config/default.toml in the working directory is read without AKTI_CONFIG.
    std::fs::write(
        dir.path().join("config/default.toml"),
        "code_length = 12\nbase_url = \"https://file.test\"\nadmin_token = \"from-file\"\n",
    )
    .unwrap();
    let binary = Binary::start(
        &[
            ("AKTI_BASE_URL", "https://env.test/"),
            ("AKTI_DATA_DIR", "data"),
        ],
        dir.path(),
    )
    .await;
    let response = client()
        .post(format!("{}/v1/links", binary.admin))
        .bearer_auth("from-file")
        .json(&json!({"campaignId": "c", "url": "https://a.test/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let link: Value = response.json().await.unwrap();
    let code = link["code"].as_str().unwrap();
    assert_eq!(code.len(), 12);
    assert_eq!(link["shortUrl"], format!("https://env.test/{code}"));
    assert!(dir.path().join("data/akti-link.sqlite3").exists());
}

#[tokio::test]
async fn the_embedded_store_keeps_links_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let env = [
        ("AKTI_ADMIN_TOKEN", "secret-token"),
        ("AKTI_DATA_DIR", data.to_str().unwrap()),
    ];
    let first = Binary::start(&env, dir.path()).await;
    let log = first.log();
    assert!(
        log.contains("embedded (SQLite)"),
        "the store in use is logged: {log}"
    );
    assert!(!log.contains("secret-token"), "tokens never reach the log");
    let link: Value = client()
        .post(format!("{}/v1/links", first.admin))
        .bearer_auth("secret-token")
        .json(&json!({"campaignId": "c", "url": "https://kept.test/", "phone": "+155"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = first.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");

    let second = Binary::start(&env, dir.path()).await;
    let response = client()
        .get(format!(
            "{}/{}",
            second.public,
            link["code"].as_str().unwrap()
        ))
        .header("user-agent", "Mozilla/5.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response).as_deref(), Some("https://kept.test/"));
    let again = client()
        .post(format!("{}/v1/links", second.admin))
        .bearer_auth("secret-token")
        .json(&json!({"campaignId": "c", "url": "https://kept.test/", "phone": "+155"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "idempotency survives the restart too"
    );
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_closed_and_a_warning_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Binary::start(&[("AKTI_DATA_DIR", "data")], dir.path()).await;
    let response = client()
        .get(format!("{}/v1/links", binary.admin))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        binary.log().contains("AKTI_ADMIN_TOKEN is not set"),
        "{}",
        binary.log()
    );
}
