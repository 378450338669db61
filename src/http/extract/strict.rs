//! Reading request JSON strictly, with errors in the API's own words.
//!
//! Two passes. [`parse`] reads the text into a `serde_json::Value`, so that a syntax error
//! is reported as such (`400`) whatever fields come before it, and refuses a key given twice
//! in one object. Then [`from_value`] fills the request type through [`Strict`], a
//! deserializer of that value that differs from serde_json's in two ways: a struct must be
//! a JSON object (serde_json also takes an array of its fields in order), and every error
//! knows the path of the field it is about (`leads[3].phone`) and says what is wrong in
//! words a client understands, never in Rust's.

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, Expected, Unexpected, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses `bytes` as one JSON value. The error is a message for a `400`.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de
        .deserialize_any(ValueWithoutDuplicates)
        .and_then(|v| de.end().map(|()| v));
    value.map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => "the body ends before its JSON value does".to_owned(),
        serde_json::error::Category::Data => e.to_string(),
        _ => format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
    })
}

/// A `serde_json::Value`, except that an object may not name a key twice.
struct ValueWithoutDuplicates;

impl<'de> Visitor<'de> for ValueWithoutDuplicates {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key `{key}` appears twice in one object"
                )));
            }
            let value = map.next_value_seed(Self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

impl<'de> DeserializeSeed<'de> for ValueWithoutDuplicates {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

/// Fills `T` from `value`; the error says which field is wrong and how.
pub fn from_value<'a, T: serde::Deserialize<'a>>(value: &'a Value) -> Result<T, FieldError> {
    T::deserialize(Strict(value))
}

/// What is wrong with one field of a request, and where it is.
#[derive(Debug)]
pub struct FieldError {
    /// `leads[3].phone`; empty for the request as a whole.
    path: String,
    problem: Problem,
}

#[derive(Debug)]
enum Problem {
    Missing,
    Unknown { known: &'static [&'static str] },
    Type { expected: String },
    Other(String),
}

impl FieldError {
    fn new(problem: Problem) -> Self {
        Self {
            path: String::new(),
            problem,
        }
    }

    /// The same error, one level further out: `segment` is a field name or `[i]`.
    fn within(mut self, segment: &str) -> Self {
        let joined = match (segment.starts_with('['), self.path.is_empty()) {
            (_, true) => segment.to_owned(),
            (_, false) if self.path.starts_with('[') => format!("{segment}{}", self.path),
            _ => format!("{segment}.{}", self.path),
        };
        self.path = joined;
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.path.is_empty() {
            "the body"
        } else {
            &self.path
        };
        match &self.problem {
            Problem::Missing => write!(f, "{what} is required"),
            Problem::Unknown { known: [] } => write!(f, "{what} is not expected"),
            Problem::Unknown { known } => {
                write!(f, "{what} is not expected (expected: {})", known.join(", "))
            }
            Problem::Type { expected } => write!(f, "{what} must be {expected}"),
            Problem::Other(message) => write!(f, "{what} {message}"),
        }
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self::new(Problem::Other(message.to_string()))
    }
    fn invalid_type(_: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::new(Problem::Type {
            expected: in_our_words(expected),
        })
    }
    fn invalid_value(_: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::new(Problem::Type {
            expected: in_our_words(expected),
        })
    }
    fn invalid_length(_: usize, expected: &dyn Expected) -> Self {
        Self::new(Problem::Type {
            expected: in_our_words(expected),
        })
    }
    fn unknown_field(field: &str, known: &'static [&'static str]) -> Self {
        Self::new(Problem::Unknown { known }).within(field)
    }
    fn missing_field(field: &'static str) -> Self {
        Self::new(Problem::Missing).within(field)
    }
    fn duplicate_field(field: &'static str) -> Self {
        Self::new(Problem::Other("is given twice".into())).within(field)
    }
}

/// serde's description of what a type takes, as a client would say it.
fn in_our_words(expected: &dyn Expected) -> String {
    let said = expected.to_string();
    match said.as_str() {
        "a string" | "a borrowed string" | "a char" => "a string".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "an array".into(),
        "option" => "a value or null".into(),
        s if s.starts_with("struct ") || s == "a map" => "an object".into(),
        s if s.starts_with('u') || s.starts_with('i') => "a whole number".into(),
        s if s.starts_with('f') => "a number".into(),
        _ => "a value of another kind".into(),
    }
}

/// A deserializer of a parsed value that takes objects only where a struct is expected.
struct Strict<'a>(&'a Value);

impl<'de> serde::Deserializer<'de> for Strict<'de> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (_, Some(i)) => visitor.visit_i64(i),
                _ => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Elements {
                items: items.iter(),
                index: 0,
            }),
            Value::Object(fields) => visitor.visit_map(Fields {
                fields: fields.iter(),
                current: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            _ => Err(FieldError::new(Problem::Type {
                expected: "an object".into(),
            })),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct enum identifier ignored_any
    }
}

struct Elements<'a> {
    items: std::slice::Iter<'a, Value>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'de> {
    type Error = FieldError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, FieldError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(Strict(item))
            .map(Some)
            .map_err(|e| e.within(&format!("[{index}]")))
    }
}

struct Fields<'a> {
    fields: serde_json::map::Iter<'a>,
    current: Option<(&'a String, &'a Value)>,
}

impl<'de> de::MapAccess<'de> for Fields<'de> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let Some((key, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some((key, value));
        let key = de::value::BorrowedStrDeserializer::<FieldError>::new(key.as_str());
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let (key, value) = self
            .current
            .take()
            .ok_or_else(|| de::Error::custom("has a value without a key"))?;
        seed.deserialize(Strict(value)).map_err(|e| e.within(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Bulk {
        campaign_id: String,
        leads: Vec<Lead>,
        limit: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Lead {
        phone: String,
    }

    fn error(json: &str) -> String {
        let value = parse(json.as_bytes()).unwrap();
        from_value::<Bulk>(&value).unwrap_err().to_string()
    }

    #[test]
    fn syntax_errors_are_found_before_any_field_is_looked_at() {
        assert!(parse(br#"{"unknown": 1, "campaignId": "#).is_err());
        assert!(parse(b"{\"unknown\": \"\xff\"}").is_err(), "invalid UTF-8");
        assert!(parse(br#"{"a": 1} {"#).is_err(), "trailing data");
        let twice = parse(br#"{"campaignId": "a", "campaignId": "b"}"#).unwrap_err();
        assert!(twice.contains("appears twice"), "{twice}");
    }

    #[test]
    fn objects_only_where_a_struct_is_expected() {
        assert_eq!(error(r#"["c", []]"#), "the body must be an object");
        assert_eq!(
            error(r#"{"campaignId": "c", "leads": [["+1"]]}"#),
            "leads[0] must be an object"
        );
    }

    #[test]
    fn errors_name_the_field_in_our_words() {
        assert_eq!(
            error(r#"{"campaignId": 5, "leads": []}"#),
            "campaignId must be a string"
        );
        assert_eq!(
            error(r#"{"campaignId": "c", "leads": [{"phone": "+1"}, {"phone": true}]}"#),
            "leads[1].phone must be a string"
        );
        assert_eq!(
            error(r#"{"campaignId": "c", "leads": [{}]}"#),
            "leads[0].phone is required"
        );
        assert_eq!(error(r#"{"leads": []}"#), "campaignId is required");
        assert_eq!(
            error(r#"{"campaignId": "c", "leads": [], "limit": -1}"#),
            "limit must be a whole number"
        );
        assert_eq!(
            error(r#"{"campaignId": "c", "leads": {}}"#),
            "leads must be an array"
        );
        let unknown = error(r#"{"campaignId": "c", "leads": [], "foo": 1}"#);
        assert!(
            unknown.starts_with("foo is not expected (expected: campaignId"),
            "{unknown}"
        );
    }
}
