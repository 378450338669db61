//! The OpenAPI schemas of the values the API takes, with their patterns and limits, so
//! that a client (or a fuzzer) can tell a valid request from an invalid one before sending
//! it. Each is a documentation type only: the rule itself is the domain type's `parse`, and
//! the tests below hold each pattern to its parser.

// Documentation types: described, never built.
#![allow(dead_code)]

use utoipa::ToSchema;

pub const ID: &str = r"^[A-Za-z0-9_-]{1,64}$";
pub const PHONE: &str = r"^\+[1-9][0-9]{1,14}$";
pub const EXTERNAL_LEAD_ID: &str = r"^[^\u0000-\u001F\u007F-\u009F]{1,256}$";
pub const MESSAGE_ID: &str = r"^[A-Za-z0-9._:-]{1,128}$";
pub const CURSOR: &str = r"^[0-9]{13}:[A-Za-z0-9_-]{1,64}$";
/// An http(s) URL with a host name (not an address), an optional port, and a path, query
/// and fragment of URL characters. The last label of the name starts with a letter, so
/// that no name reads as an IPv4 address.
pub const URL: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*",
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?",
    r"(?:#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"
);
/// [`URL`], without port 0.
pub const WEBHOOK_URL: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*",
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?",
    r"(?:#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"
);

/// A campaign id: 1 to 64 of `A-Z a-z 0-9 _ -`.
#[derive(ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$", example = "spring-sale")]
pub struct CampaignId(String);

/// A short code: 1 to 64 of `A-Z a-z 0-9 _ -`, except `healthz` and `readyz` (the public
/// listener's own paths).
#[derive(ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
pub struct ShortCode(String);

/// A phone number in E.164 form: `+`, then 2 to 15 digits, the first not `0`.
#[derive(ToSchema)]
#[schema(pattern = r"^\+[1-9][0-9]{1,14}$", example = "+14155550123")]
pub struct Phone(String);

/// The customer's own id of a lead: 1 to 256 characters, no control characters.
#[derive(ToSchema)]
#[schema(
    pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,256}$",
    example = "crm-42"
)]
pub struct ExternalLeadId(String);

/// A destination: an absolute http or https URL with a host name, at most 2,048 bytes. It is
/// stored and served normalised (lower-case scheme and host, default port dropped, dot
/// segments resolved, an empty path as `/`).
#[derive(ToSchema)]
#[schema(
    max_length = 2048,
    pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?(?:#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$",
    example = "https://example.com/offer"
)]
pub struct Url(String);

/// Where deliveries go: a URL as for destinations, not on port 0. Unless
/// `AKTI_WEBHOOK_ALLOW_PRIVATE` is set, a host that is `localhost`, under `.localhost`, or
/// that resolves only to loopback, private or reserved addresses is refused (`422`).
#[derive(ToSchema)]
#[schema(
    max_length = 2048,
    pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?(?:#[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$",
    example = "https://crm.example.com/hooks/akti"
)]
pub struct WebhookUrl(String);

/// A message id: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
#[derive(ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9._:-]{1,128}$", example = "SM0123456789abcdef")]
pub struct MessageId(String);

/// An RFC 3339 time.
#[derive(ToSchema)]
#[schema(format = DateTime, example = "2026-02-09T12:00:00.000Z")]
pub struct Time(String);

/// An event type.
#[derive(ToSchema)]
pub enum EventType {
    #[serde(rename = "lead.link_sent")]
    LinkSent,
    #[serde(rename = "lead.link_delivered")]
    LinkDelivered,
    #[serde(rename = "lead.link_clicked")]
    LinkClicked,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain;
    use utoipa::PartialSchema;

    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(s)
    }

    /// The pattern in a schema is the constant of the same rule.
    fn pattern_of<T: PartialSchema>() -> String {
        let json = serde_json::to_value(T::schema()).unwrap();
        json["pattern"].as_str().unwrap().to_owned()
    }

    #[test]
    fn the_schemas_carry_the_patterns() {
        assert_eq!(pattern_of::<CampaignId>(), ID);
        assert_eq!(pattern_of::<ShortCode>(), ID);
        assert_eq!(pattern_of::<Phone>(), PHONE);
        assert_eq!(pattern_of::<ExternalLeadId>(), EXTERNAL_LEAD_ID);
        assert_eq!(pattern_of::<MessageId>(), MESSAGE_ID);
        assert_eq!(pattern_of::<Url>(), URL);
        assert_eq!(pattern_of::<WebhookUrl>(), WEBHOOK_URL);
    }

    #[test]
    fn each_pattern_agrees_with_its_parser() {
        for s in [
            "a",
            "spring-sale_2",
            &"x".repeat(64),
            "",
            &"x".repeat(65),
            "a b",
            "é",
        ] {
            assert_eq!(
                matches(ID, s),
                domain::CampaignId::parse(s).is_ok(),
                "{s:?}"
            );
        }
        for s in [
            "+14155550123",
            "+44",
            "+1",
            "+0123",
            "14155550123",
            "+1234567890123456",
        ] {
            assert_eq!(matches(PHONE, s), domain::Phone::parse(s).is_ok(), "{s:?}");
        }
        for s in [
            "crm-42 ü",
            &"ü".repeat(256),
            &"a".repeat(257),
            "",
            "a\nb",
            "a\u{85}",
        ] {
            let parsed = domain::ExternalLeadId::parse(s).is_ok();
            assert_eq!(matches(EXTERNAL_LEAD_ID, s), parsed, "{s:?}");
        }
        for s in ["SM0a.b_c:d-e", "", "a/b", &"x".repeat(129)] {
            assert_eq!(
                matches(MESSAGE_ID, s),
                crate::domain::MessageId::parse(s).is_ok(),
                "{s:?}"
            );
        }
        for s in ["1706443200000:abc", "17:abc", "1706443200000:a b"] {
            assert_eq!(
                matches(CURSOR, s),
                crate::domain::Position::parse(s).is_some(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn every_url_the_pattern_takes_is_a_destination() {
        for s in [
            "https://example.com/offer?id=7#top",
            "HTTP://A-B.Example.COM:8080/a/./b/../c?x=%zz&y=(1)*",
            "https://a/",
            "http://a",
            "https://a.b:65535",
            "https://x.y?q",
            &format!("https://{}.com/", "a".repeat(2000)),
        ] {
            assert!(matches(URL, s), "{s}");
            assert!(domain::Destination::parse(s).is_ok(), "{s}");
            assert!(matches(WEBHOOK_URL, s), "{s}");
        }
        for s in [
            "ftp://a.b/",
            "https://1.2.3.4/",
            "https://a.b:65536/",
            "https://user@a.b/",
            "https://a b/",
            "https://a.1/",
        ] {
            assert!(!matches(URL, s), "{s}");
        }
        assert!(matches(URL, "https://a.b:0/"));
        assert!(!matches(WEBHOOK_URL, "https://a.b:0/"));
    }
}
