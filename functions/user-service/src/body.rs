//! Reading a request body as one JSON document, strictly: not empty, valid JSON, nesting
//! bounded by serde_json's recursion limit (128), and no object that repeats a key.
//!
//! serde_json keeps the last of two equal keys, so `{"email":"a@x.io","email":"b@x.io"}`
//! would silently become the second address; RFC 8259 leaves such a document's meaning to
//! each reader. The API refuses it instead, as it refuses unknown fields.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::ApiError;

/// How much of a repeated key the error message quotes, in characters.
const QUOTED_KEY_CHARS: usize = 64;

/// Parses a request body.
///
/// # Errors
/// [`ApiError::MalformedBody`] when the body is empty, is not JSON, nests too deeply or
/// repeats a key within one object.
pub fn parse(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(malformed("the request body is empty; send a JSON object"));
    }
    let json = serde_json::from_slice(body)
        .map_err(|error| malformed(format!("the request body is not valid JSON: {error}")))?;
    // The document is valid JSON by now, so a repeated key is the only possible error.
    serde_json::from_slice::<UniqueKeys>(body)
        .map_err(|error| malformed(format!("the request body {error}")))?;
    Ok(json)
}

fn malformed(reason: impl Into<String>) -> ApiError {
    ApiError::MalformedBody {
        reason: reason.into(),
    }
}

/// A walk over a JSON document that keeps nothing and fails on the first repeated key.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self, A::Error> {
        while items.next_element::<UniqueKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = entries.next_key::<String>()? {
            if seen.contains(&key) {
                let quoted: String = key.chars().take(QUOTED_KEY_CHARS).collect();
                return Err(de::Error::custom(format_args!(
                    "repeats the key \"{quoted}\" in one object"
                )));
            }
            entries.next_value::<UniqueKeys>()?;
            seen.insert(key);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> String {
        match parse(body.as_bytes()) {
            Err(ApiError::MalformedBody { reason }) => reason,
            other => panic!("{body}: expected a malformed body, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_json_document() {
        let json = parse(br#"{"email":"ada@example.com","profile":{"firstName":"Ada"}}"#);

        assert_eq!(json.expect("valid")["profile"]["firstName"], "Ada");
    }

    #[test]
    fn rejects_a_repeated_key_at_any_depth() {
        for body in [
            r#"{"email":"a@example.com","email":"b@example.com"}"#,
            r#"{"profile":{"firstName":"A","firstName":"B"}}"#,
            r#"[{"x":1},{"y":[{"z":1,"z":2}]}]"#,
        ] {
            assert!(reason(body).contains("repeats the key"), "{body}");
        }
    }

    #[test]
    fn treats_escaped_and_plain_spellings_of_a_key_as_the_same_key() {
        assert!(
            reason(r#"{"email":"a@example.com","\u0065mail":"b@example.com"}"#)
                .contains(r#""email""#)
        );
    }

    #[test]
    fn allows_equal_keys_in_different_objects() {
        assert!(parse(br#"{"a":{"k":1},"b":{"k":2},"k":3}"#).is_ok());
    }

    #[test]
    fn says_what_is_wrong_with_a_body_that_is_not_json() {
        assert_eq!(reason(""), "the request body is empty; send a JSON object");
        assert!(reason(r#"{"email":"#).starts_with("the request body is not valid JSON: EOF"));
        assert!(reason(&"[".repeat(200)).contains("recursion limit"));
    }

    #[test]
    fn quotes_a_long_repeated_key_only_in_part() {
        let key = "k".repeat(1000);
        let body = format!(r#"{{"{key}":1,"{key}":2}}"#);

        assert!(reason(&body).len() < 200);
    }
}
