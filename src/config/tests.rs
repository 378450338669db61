use super::*;

fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut figment = Figment::new();
    for (k, v) in pairs {
        figment = figment.merge((*k, *v));
    }
    Config::from_raw(figment.extract().unwrap())
}

#[test]
fn defaults_match_the_contract() {
    let c = from(&[]).unwrap();
    assert_eq!(c.public_addr.to_string(), "0.0.0.0:8080");
    assert_eq!(c.admin_addr.to_string(), "127.0.0.1:8081");
    assert_eq!(c.base_url, "https://link.akti.fyi");
    assert_eq!(
        c.store(),
        StoreConfig::Embedded {
            data_dir: "./data".into()
        }
    );
    assert!(c.admin_token.is_empty());
    assert_eq!(c.dedup_window, Duration::from_secs(30));
    assert_eq!(c.webhook_timeout, Duration::from_secs(15));
    assert_eq!(c.webhook_retry_schedule.len(), 7);
    assert_eq!(c.webhook_retry_schedule[6], Duration::from_secs(36_000));
    assert!(!c.webhook_allow_private);
    assert_eq!(c.code_length, 8);
    assert_eq!(c.message_ttl, Duration::from_secs(7 * 86_400));
    assert_eq!(c.event_retention, Duration::from_secs(7 * 86_400));
    assert_eq!(c.log, "info");
}

#[test]
fn values_are_parsed() {
    let c = from(&[
        ("dedup_window", "1500ms"),
        ("admin_token", " a , b,,"),
        ("base_url", "http://localhost:9000/"),
        ("redis_url", "redis://127.0.0.1:6390/0"),
        ("webhook_allow_private", "TRUE"),
        ("webhook_retry_schedule", "10ms, 1s"),
    ])
    .unwrap();
    assert_eq!(c.dedup_window, Duration::from_millis(1500));
    assert_eq!(c.admin_token, ["a", "b"]);
    assert_eq!(c.base_url, "http://localhost:9000");
    assert!(matches!(c.store(), StoreConfig::Redis { .. }));
    assert!(c.webhook_allow_private);
    assert_eq!(
        c.webhook_retry_schedule,
        [Duration::from_millis(10), Duration::from_secs(1)]
    );
}

#[test]
fn bad_values_name_the_variable_on_one_line() {
    for (key, value, var) in [
        ("code_length", "3", "AKTI_CODE_LENGTH"),
        ("dedup_window", "soon", "AKTI_DEDUP_WINDOW"),
        ("dedup_window", "0s", "AKTI_DEDUP_WINDOW"),
        ("public_addr", "8080", "AKTI_PUBLIC_ADDR"),
        ("redis_url", "http://x", "AKTI_REDIS_URL"),
        ("base_url", "link.akti.fyi", "AKTI_BASE_URL"),
        (
            "webhook_allow_private",
            "maybe",
            "AKTI_WEBHOOK_ALLOW_PRIVATE",
        ),
        ("log", "info,[[[", "AKTI_LOG"),
        ("cache_capacity", "0", "AKTI_CACHE_CAPACITY"),
    ] {
        let err = from(&[(key, value)]).unwrap_err().to_string();
        assert!(err.contains(var), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn redis_passwords_are_not_echoed() {
    let err = from(&[("redis_url", "foo://:hunter2@x")])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

/// The README's configuration table is the settings, with their defaults.
#[test]
fn the_readme_table_lists_every_setting_with_its_default() {
    let readme = include_str!("../../README.md");
    let rows: std::collections::HashMap<&str, &str> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.strip_prefix("| `AKTI_")?.split(" | ").collect();
            let env = line[3..].split('`').next()?;
            Some((env, cells.last()?.trim_end_matches(" |").trim()))
        })
        .collect();
    for setting in SETTINGS {
        let shown = rows
            .get(setting.env)
            .unwrap_or_else(|| panic!("{} is not in the README", setting.env));
        if setting.default.is_empty() {
            assert!(shown.starts_with("unset"), "{}: {shown}", setting.env);
        } else {
            assert_eq!(*shown, format!("`{}`", setting.default), "{}", setting.env);
        }
    }
    for env in rows.keys().filter(|env| **env != "AKTI_CONFIG") {
        assert!(
            SETTINGS.iter().any(|s| s.env == *env),
            "the README lists {env}, no setting"
        );
    }
}

#[test]
fn every_default_parses() {
    for setting in SETTINGS {
        assert!(setting.env.starts_with("AKTI_"), "{setting:?}");
    }
    assert!(from(&[]).is_ok());
}
