//! SMS bodies: finding the URLs in one and putting the lead's short links in their place,
//! byte for byte around them.

use crate::domain::Destination;
use linkify::{LinkFinder, LinkKind};

/// A URL found in a body: where it is, and where it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUrl {
    pub start: usize,
    pub end: usize,
    pub destination: Destination,
}

/// The URLs of `body` that we shorten, in order. linkify decides where a URL ends
/// (trailing punctuation, brackets) and finds bare domains; a bare domain is taken as
/// `https://`. Our own short links (under `base_url`) and anything that is not a valid
/// destination stay as they are.
pub fn find_urls(body: &str, base_url: &str) -> Vec<FoundUrl> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]).url_must_have_scheme(false);
    let own = format!("{base_url}/");
    finder
        .links(body)
        .filter_map(|link| {
            let text = link.as_str();
            let has_scheme = text.contains("://");
            if has_scheme && !text.to_ascii_lowercase().starts_with("http") {
                return None;
            }
            let absolute = if has_scheme {
                text.to_owned()
            } else {
                format!("https://{text}")
            };
            if absolute.starts_with(&own) {
                return None;
            }
            let destination = Destination::parse(&absolute).ok()?;
            Some(FoundUrl {
                start: link.start(),
                end: link.end(),
                destination,
            })
        })
        .collect()
}

/// `body` with each found URL replaced by its short URL (`short[i]` for `found[i]`);
/// every other byte stays as it was.
pub fn rewrite(body: &str, found: &[FoundUrl], short: &[String]) -> String {
    let mut out = String::with_capacity(body.len() + found.len() * 32);
    let mut at = 0;
    for (url, short) in found.iter().zip(short) {
        out.push_str(&body[at..url.start]);
        out.push_str(short);
        at = url.end;
    }
    out.push_str(&body[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(body: &str) -> Vec<String> {
        find_urls(body, "https://link.akti.fyi")
            .iter()
            .map(|f| f.destination.as_str().to_owned())
            .collect()
    }

    #[test]
    fn finds_urls_without_their_trailing_punctuation() {
        assert_eq!(
            urls("Deal: https://shop.example.com/a?b=1."),
            ["https://shop.example.com/a?b=1"]
        );
        assert_eq!(
            urls("(see https://example.com/x), ok!"),
            ["https://example.com/x"]
        );
        assert_eq!(
            urls("Wiki https://en.wikipedia.org/wiki/Rust_(language)!"),
            ["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert_eq!(
            urls("Go to shop.example.com/deal, now"),
            ["https://shop.example.com/deal"]
        );
        assert_eq!(urls("HTTP://EXAMPLE.COM"), ["http://example.com/"]);
    }

    #[test]
    fn leaves_emails_other_schemes_and_our_own_links_alone() {
        assert!(urls("Write to john@example.com").is_empty());
        assert!(urls("ftp://files.example.com/a").is_empty());
        assert!(urls("Already short: https://link.akti.fyi/abc123").is_empty());
        assert!(urls("No links here, just text 3.14").is_empty());
    }

    #[test]
    fn rewriting_keeps_every_other_byte() {
        let body = "Hé 👋 https://a.example/x. Then https://b.example?q=ü!";
        let found = find_urls(body, "https://l.test");
        assert_eq!(found.len(), 2);
        let out = rewrite(
            body,
            &found,
            &["https://l.test/A".into(), "https://l.test/B".into()],
        );
        assert_eq!(out, "Hé 👋 https://l.test/A. Then https://l.test/B!");
    }
}
