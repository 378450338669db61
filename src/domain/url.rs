//! Link destinations: absolute `http`/`https` URLs in their WHATWG-normalised form.

use super::InvalidValue;
use std::sync::Arc;

/// The longest destination we take, in bytes, as sent.
pub const MAX_URL_LEN: usize = 2048;

/// A destination URL as we store and serve it: the WHATWG serialisation (lower-case scheme
/// and host, default port dropped, dot segments resolved, empty path as `/`). It becomes a
/// `Location` header as is, so it can never hold CR, LF or other control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination(Arc<str>);

/// A DNS name as the WHATWG parser leaves it (lower case, IDNs as `xn--` labels): labels of
/// letters, digits and hyphens, the last starting with a letter. The parser itself lets
/// through names no resolver would take, such as `shop*.example`.
fn is_host_name(name: &str) -> bool {
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    name.split('.').all(label)
        && name
            .rsplit('.')
            .next()
            .is_some_and(|last| last.starts_with(|c: char| c.is_ascii_alphabetic()))
}

impl Destination {
    pub fn parse(input: &str) -> Result<Self, InvalidValue> {
        Self::parse_field("url", input)
    }

    /// As [`Destination::parse`], for a field of another name (`iosUrl`, `androidUrl`).
    pub fn parse_field(field: &'static str, input: &str) -> Result<Self, InvalidValue> {
        let err = |m: &str| Err(InvalidValue::new(field, m));
        // The WHATWG parser silently drops tabs and newlines; we refuse them instead, so
        // that what the customer sent and what we store cannot differ in a hidden way.
        let input = input.trim_matches(' ');
        if input.is_empty() {
            return err("must not be empty");
        }
        if input.len() > MAX_URL_LEN {
            return err("must be at most 2048 bytes");
        }
        if input.chars().any(|c| c.is_control() || c == ' ') {
            return err("must not contain spaces or control characters");
        }
        let Ok(parsed) = url::Url::parse(input) else {
            return err("must be an absolute http or https URL");
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return err("must use the http or https scheme");
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return err("must have a host");
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return err("must not contain user info");
        }
        if let Some(url::Host::Domain(name)) = parsed.host()
            && !is_host_name(name)
        {
            return err("must have a host name of letters, digits and hyphens");
        }
        // The limit is on what the customer sent: normalising may add a `/` or
        // percent-encode, which the customer cannot see coming.
        let normalised: String = parsed.into();
        Ok(Self(normalised.into()))
    }

    pub fn from_trusted(s: &str) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `destination` with a short URL's query (`query`, as the request carried it) appended to
/// its own: the destination's parameters stay first, and a name in both keeps both values.
/// The result is a WHATWG serialisation again (what a request may carry that a URL's query
/// may not, such as a raw `"`, is percent-encoded), and only the query changes, so the
/// origin is the destination's. `None` when there is nothing to forward.
pub fn with_forwarded_query(destination: &str, query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    let mut url = url::Url::parse(destination).ok()?;
    let combined = match url.query() {
        Some(own) if !own.is_empty() => format!("{own}&{query}"),
        _ => query.to_owned(),
    };
    url.set_query(Some(&combined));
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Destination::parse(s).unwrap().as_str().to_owned()
    }

    #[test]
    fn normalises_like_whatwg() {
        assert_eq!(norm("HTTPS://Example.COM"), "https://example.com/");
        assert_eq!(
            norm("http://example.com:80/a/./b/../c"),
            "http://example.com/a/c"
        );
        assert_eq!(
            norm("https://example.com:443/x?q=1#f"),
            "https://example.com/x?q=1#f"
        );
        assert_eq!(
            norm("https://example.com:8443"),
            "https://example.com:8443/"
        );
        assert_eq!(
            norm("https://bücher.example/"),
            "https://xn--bcher-kva.example/"
        );
        assert_eq!(norm(" https://example.com/ "), "https://example.com/");
    }

    #[test]
    fn refuses_dangerous_or_incomplete_urls() {
        for bad in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,hi",
            "ftp://example.com/",
            "//example.com/",
            "/relative",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "https://example.com/\r\nSet-Cookie: x=1",
            "https://example.com/a\nb",
            "https://exa mple.com/",
            "http://shop.example*",
            "https://shop_1.example/",
            "https://example.com./",
            "https://",
            "",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enforces_the_length_limit() {
        let base = "https://example.com/";
        let ok = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert!(Destination::parse(&ok).is_ok());
        let long = format!("{ok}a");
        assert!(Destination::parse(&long).is_err());
        // The limit is on what was sent: a URL at the limit that normalising makes longer
        // (a missing path, percent-encoding) is still taken.
        let no_path = format!("https://{}.com", "a".repeat(MAX_URL_LEN - 12));
        assert_eq!(no_path.len(), MAX_URL_LEN);
        assert!(Destination::parse(&no_path).is_ok());
        let grows = format!("{base}{}", "é".repeat(600));
        assert!(Destination::parse(&grows).is_ok());
    }

    #[test]
    fn forwards_a_query_after_the_destinations_own() {
        let forward = |d: &str, q: &str| with_forwarded_query(d, q);
        assert_eq!(
            forward("https://example.com/offer", "utm_source=sms").as_deref(),
            Some("https://example.com/offer?utm_source=sms")
        );
        // Both values of a name in both are kept, the destination's first; the fragment
        // stays last.
        assert_eq!(
            forward("https://example.com/o?a=1&b=2#top", "a=9&c").as_deref(),
            Some("https://example.com/o?a=1&b=2&a=9&c#top")
        );
        assert_eq!(
            forward("https://example.com/o?", "x=1").as_deref(),
            Some("https://example.com/o?x=1")
        );
        assert_eq!(forward("https://example.com/o?a=1", ""), None);
    }

    #[test]
    fn a_forwarded_query_cannot_leave_the_destination_or_break_the_header() {
        for hostile in [
            "x=%0d%0aSet-Cookie:%20a=1",
            "x=\"><script>",
            "@evil.example/",
            "#frag",
            "next=//evil.example/",
            "a=1/../../b",
            "x=\u{7f}\u{0}",
        ] {
            let url = with_forwarded_query("https://example.com/p?k=v", hostile).unwrap();
            let parsed = url::Url::parse(&url).unwrap();
            assert_eq!(parsed.origin().ascii_serialization(), "https://example.com");
            assert_eq!(parsed.path(), "/p");
            assert_eq!(parsed.fragment(), None, "{hostile:?} made {url}");
            assert!(
                url.bytes().all(|b| b.is_ascii_graphic()),
                "{hostile:?} made {url:?}"
            );
            // Normalised: parsing again gives the same text.
            assert_eq!(String::from(parsed), url);
        }
    }
}
