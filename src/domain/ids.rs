//! Identifier types: short codes, campaign ids and the customer's own lead ids.

use super::InvalidValue;
use std::fmt;
use std::sync::Arc;

/// The longest custom code or campaign id we accept.
const MAX_ID_LEN: usize = 64;

/// The alphabet of generated codes: the 62 ASCII letters and digits. Custom codes may also
/// use `_` and `-`.
const CODE_ALPHABET: [char; 62] = [
    'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S',
    'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l',
    'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '0', '1', '2', '3', '4',
    '5', '6', '7', '8', '9',
];

/// `len` random bytes from the thread's CSPRNG (ChaCha12, seeded and periodically
/// reseeded from the operating system). nanoid's own default seeds a fresh generator from
/// the OS on every call, which costs more than the rest of creating a link.
pub fn random_bytes(len: usize) -> Vec<u8> {
    use rand::Rng;
    let mut bytes = vec![0; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A random identifier: `prefix` and `len` characters of the 62 letters and digits, from
/// a CSPRNG. Used for event and subscription ids.
pub fn random_id(prefix: &str, len: usize) -> String {
    let mut id = String::with_capacity(prefix.len() + len);
    id.push_str(prefix);
    id.push_str(&nanoid::format(random_bytes, &CODE_ALPHABET, len));
    id
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn check_id(field: &'static str, s: &str) -> Result<(), InvalidValue> {
    if s.is_empty() || s.len() > MAX_ID_LEN || !s.bytes().all(is_id_char) {
        return Err(InvalidValue::new(
            field,
            "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
        ));
    }
    Ok(())
}

/// Single-segment paths of the public listener that are not codes.
const RESERVED_CODES: [&str; 2] = ["healthz", "readyz"];

/// The path segment of a short URL (`https://link.akti.fyi/<code>`). Shared (`Arc<str>`):
/// every click copies it into counters and events, so a clone must not allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortCode(Arc<str>);

impl ShortCode {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        check_id("code", s)?;
        if RESERVED_CODES.contains(&s) {
            return Err(InvalidValue::new(
                "code",
                "is a path of the public listener (healthz and readyz are not codes)",
            ));
        }
        Ok(Self(s.into()))
    }

    /// Whether `s` could be a code, without allocating (the redirect path's first check).
    pub fn is_valid(s: &str) -> bool {
        check_id("code", s).is_ok() && !RESERVED_CODES.contains(&s)
    }

    /// A fresh code of `len` characters drawn from the 62 letters and digits, from a CSPRNG
    /// ([`random_bytes`]); nanoid masks the bytes without modulo bias.
    pub fn generate(len: usize) -> Self {
        loop {
            let code = nanoid::format(random_bytes, &CODE_ALPHABET, len);
            if !RESERVED_CODES.contains(&code.as_str()) {
                return Self(code.into());
            }
        }
    }

    /// For values read back from our own store, which only ever holds parsed codes.
    pub fn from_trusted(s: &str) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The customer's campaign identifier; every link belongs to exactly one. Shared like
/// [`ShortCode`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CampaignId(Arc<str>);

impl CampaignId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        check_id("campaignId", s)?;
        Ok(Self(s.into()))
    }

    pub fn from_trusted(s: String) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The customer's own identifier for a lead, echoed in events. Opaque to us, but bounded
/// and free of control characters so that it is safe in logs and JSON consumers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalLeadId(String);

impl ExternalLeadId {
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let length = s.chars().count();
        if !(1..=Self::MAX_LEN).contains(&length) || s.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                "externalLeadId",
                "must be 1 to 256 characters without control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The sender's id of a message (its own, or its SMS provider's, e.g. a Twilio
/// `MessageSid`), or one we generate. It appears in a URL path, so it is kept to a safe
/// alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !ok {
            return Err(InvalidValue::new(
                "messageId",
                "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn generate() -> Self {
        Self(random_id("msg_", 24))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Declares an id we generate (`prefix` and random letters and digits) and that clients
/// name in paths: `parse` takes the id alphabet and `None` means no such thing can exist.
macro_rules! generated_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $len:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                Self(random_id($prefix, $len))
            }

            /// `None` when `s` cannot be an id (so names nothing).
            pub fn parse(s: &str) -> Option<Self> {
                check_id("id", s).is_ok().then(|| Self(s.to_owned()))
            }

            /// For ids read back from our own store.
            pub fn from_trusted(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

generated_id!(
    /// A webhook subscription's id: `sub_` and 20 letters and digits.
    SubscriptionId,
    "sub_",
    20
);
generated_id!(
    /// An event's id, the `webhook-id` of every delivery of it: `evt_` and 24 letters and
    /// digits.
    EventId,
    "evt_",
    24
);

// Lets maps keyed by these be probed with a `&str` without allocating.
impl std::borrow::Borrow<str> for ShortCode {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for CampaignId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_requested_length_and_alphabet() {
        for len in [4, 8, 22] {
            let code = ShortCode::generate(len);
            assert_eq!(code.as_str().len(), len);
            assert!(code.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn generated_codes_differ() {
        let a = ShortCode::generate(8);
        let b = ShortCode::generate(8);
        assert_ne!(a, b);
    }

    #[test]
    fn ids_accept_the_documented_alphabet_only() {
        assert!(ShortCode::parse("Ab9_-x").is_ok());
        assert!(ShortCode::parse(&"a".repeat(64)).is_ok());
        assert!(ShortCode::parse(&"a".repeat(65)).is_err());
        assert!(ShortCode::parse("").is_err());
        assert!(ShortCode::parse("a/b").is_err());
        assert!(ShortCode::parse("é").is_err());
        assert!(ShortCode::parse("healthz").is_err());
        assert!(!ShortCode::is_valid("readyz"));
        assert!(CampaignId::parse("spring sale").is_err());
    }

    #[test]
    fn message_ids_are_path_safe() {
        assert!(MessageId::parse("SM0123456789abcdef0123456789abcdef").is_ok());
        assert!(MessageId::parse("ext:batch-7.1_a").is_ok());
        assert!(MessageId::parse("a/b").is_err());
        assert!(MessageId::parse("").is_err());
        assert!(MessageId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn generated_ids_have_their_prefix_and_parse_back() {
        let sub = SubscriptionId::generate();
        assert!(sub.as_str().starts_with("sub_") && sub.as_str().len() == 24);
        assert_eq!(SubscriptionId::parse(sub.as_str()), Some(sub));
        assert!(EventId::generate().as_str().starts_with("evt_"));
        assert_eq!(EventId::parse("evt/1"), None);
    }

    #[test]
    fn external_lead_ids_refuse_control_characters() {
        assert!(ExternalLeadId::parse("crm-42 ü").is_ok());
        assert!(ExternalLeadId::parse("a\nb").is_err());
        assert!(ExternalLeadId::parse("").is_err());
        assert!(ExternalLeadId::parse(&"ü".repeat(256)).is_ok());
        assert!(ExternalLeadId::parse(&"ü".repeat(257)).is_err());
    }
}
