//! E.164 phone numbers: the identity of a lead.

use super::InvalidValue;

/// A phone number in E.164 form: `+`, then 2 to 15 digits, the first not `0`. We do not
/// reformat input (spaces, dashes, national forms): the sender knows its numbers, and a
/// silent rewrite would make two spellings of one lead look like two leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let digits = s.strip_prefix('+').unwrap_or("");
        let ok = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            return Err(InvalidValue::new(
                "phone",
                "must be E.164: '+' then 2 to 15 digits, not starting with 0",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164() {
        for ok in ["+14155550123", "+44", "+123456789012345"] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "14155550123",
            "+0123",
            "+1",
            "+1234567890123456",
            "+1 415 555",
            "+1-415",
            "",
            "+",
            "+１２３",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }
}
