//! Turns a create-user body into a [`NewUser`], reporting every failing field at once.
//!
//! Rules, chosen to match what SES will accept and what a welcome email can carry:
//! - `email`: trimmed and lower-cased; ASCII only (an internationalised domain must be sent
//!   in its punycode `xn--` form); no quoted local part, no domain literal, no display name;
//!   a domain of at least two labels with no trailing dot; at most 254 characters, 64 before
//!   the `@`. Syntax is checked by the `email_address` crate, the SES limits here.
//! - `profile.firstName`, `profile.lastName`: trimmed, 1 to 100 characters of any script
//!   with at least one letter or digit; no control characters, no line or paragraph
//!   separators, and no invisible characters that could disguise a name (text-direction
//!   controls, zero-width space, byte-order mark).
//! - Fields the API does not know are rejected, so a typo never passes silently.
//!
//! Fields are named in dot notation (`profile.firstName`).

use email_address::{EmailAddress, Options};
use serde_json::{Map, Value};
use shared::Profile;

use crate::domain::NewUser;
use crate::error::{ApiError, FieldError};

/// Longest accepted first or last name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Longest accepted email address (RFC 5321 path limit), in bytes.
pub const MAX_EMAIL_LEN: usize = 254;

/// Longest accepted local part (before the `@`), in bytes.
pub const MAX_LOCAL_PART_LEN: usize = 64;

/// Longest accepted label of the domain (DNS limit), in bytes.
const MAX_DOMAIN_LABEL_LEN: usize = 63;

/// Validates a parsed body.
///
/// # Errors
/// [`ApiError::MalformedBody`] when the body is not an object, otherwise
/// [`ApiError::Validation`] listing every field that failed.
pub fn new_user(body: &Value) -> Result<NewUser, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::MalformedBody {
            reason: "the request body must be a JSON object".into(),
        });
    };
    let mut errors = Vec::new();

    let email = match fields.get("email") {
        None | Some(Value::Null) => missing(&mut errors, "email"),
        Some(Value::String(raw)) => normalise_email(raw)
            .map_err(|message| errors.push(FieldError::new("email", message)))
            .ok(),
        Some(_) => wrong_type(&mut errors, "email", "a string"),
    };

    let profile = match fields.get("profile") {
        None | Some(Value::Null) => missing(&mut errors, "profile"),
        Some(Value::Object(profile)) => validate_profile(profile, &mut errors),
        Some(_) => wrong_type(&mut errors, "profile", "an object"),
    };

    reject_unknown(fields, &["email", "profile"], "", &mut errors);

    match (email, profile) {
        (Some(email), Some(profile)) if errors.is_empty() => Ok(NewUser { email, profile }),
        _ => Err(ApiError::Validation(errors)),
    }
}

fn validate_profile(profile: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Profile> {
    let first_name = name(profile, "firstName", errors);
    let last_name = name(profile, "lastName", errors);
    reject_unknown(profile, &["firstName", "lastName"], "profile.", errors);

    Some(Profile {
        first_name: first_name?,
        last_name: last_name?,
    })
}

fn name(profile: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let field = format!("profile.{key}");
    match profile.get(key) {
        None | Some(Value::Null) => missing(errors, &field),
        Some(Value::String(raw)) => normalise_name(raw)
            .map_err(|message| errors.push(FieldError::new(&field, message)))
            .ok(),
        Some(_) => wrong_type(errors, &field, "a string"),
    }
}

fn missing<T>(errors: &mut Vec<FieldError>, field: &str) -> Option<T> {
    errors.push(FieldError::new(field, "is required"));
    None
}

fn wrong_type<T>(errors: &mut Vec<FieldError>, field: &str, expected: &str) -> Option<T> {
    errors.push(FieldError::new(field, format!("must be {expected}")));
    None
}

fn reject_unknown(
    fields: &Map<String, Value>,
    known: &[&str],
    prefix: &str,
    errors: &mut Vec<FieldError>,
) {
    for key in fields.keys().filter(|key| !known.contains(&key.as_str())) {
        errors.push(FieldError::new(
            format!("{prefix}{key}"),
            "is not a known field",
        ));
    }
}

/// Trims, checks and lower-cases an email address.
///
/// # Errors
/// A message, safe to show to the client, saying what is wrong.
pub fn normalise_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim();

    if email.is_empty() {
        return Err("must not be empty");
    }
    if !email.is_ascii() {
        return Err("must be ASCII; write an internationalised domain in its xn-- form");
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err("must be at most 254 characters");
    }
    if email.contains(['<', '>']) {
        return Err("must be the bare address, like name@example.com, without a display name");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("must be an address like name@example.com");
    };
    if local.starts_with('"') {
        return Err("must not have a quoted local part");
    }
    if email.contains(|c: char| c.is_ascii_whitespace()) {
        return Err("must not contain spaces or line breaks");
    }
    if local.len() > MAX_LOCAL_PART_LEN {
        return Err("must have at most 64 characters before the @");
    }
    if domain.ends_with('.') {
        return Err("must not end with a dot");
    }
    if domain
        .split('.')
        .any(|label| label.len() > MAX_DOMAIN_LABEL_LEN)
    {
        return Err("must not have a part of the domain longer than 63 characters");
    }
    if !domain.split('.').all(is_dns_label) {
        return Err("must have a domain of letters, digits and hyphens");
    }

    let options = Options {
        minimum_sub_domains: 2,
        allow_domain_literal: false,
        allow_display_text: false,
        ..Options::default()
    };
    EmailAddress::parse_with_options(email, options)
        .map_err(|_| "must be an address like name@example.com")?;

    Ok(email.to_ascii_lowercase())
}

fn is_dns_label(label: &str) -> bool {
    (1..=MAX_DOMAIN_LABEL_LEN).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Trims and checks a first or last name.
///
/// # Errors
/// A message, safe to show to the client, saying what is wrong.
pub fn normalise_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();

    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("must be at most 100 characters");
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err("must not contain control characters or line breaks");
    }
    if name.chars().any(is_hidden_format) {
        return Err("must not contain invisible or text-direction characters");
    }
    if !name.chars().any(char::is_alphanumeric) {
        return Err("must contain a letter");
    }

    Ok(name.to_owned())
}

/// Invisible characters that no name needs and that can disguise one: text-direction
/// overrides, embeddings, isolates and marks (the "Trojan Source" characters), zero-width
/// space, word joiner and byte-order mark. Zero-width (non-)joiners stay allowed: Persian
/// and Indic names need them.
fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_names(result: Result<NewUser, ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_and_normalises_a_valid_body() {
        let body = json!({
            "email": "  Ada@Example.COM ",
            "profile": { "firstName": " Ada ", "lastName": "Lovelace" }
        });

        let user = new_user(&body).expect("valid");

        assert_eq!(user.email, "ada@example.com");
        assert_eq!(user.profile.first_name, "Ada");
        assert_eq!(user.profile.last_name, "Lovelace");
    }

    #[test]
    fn names_every_missing_field_of_an_empty_object() {
        assert_eq!(field_names(new_user(&json!({}))), ["email", "profile"]);
    }

    #[test]
    fn names_every_failing_field_in_one_response() {
        let body = json!({
            "email": "nope",
            "profile": { "firstName": 7, "lastName": "" },
            "role": "admin"
        });

        assert_eq!(
            field_names(new_user(&body)),
            ["email", "profile.firstName", "profile.lastName", "role"]
        );
    }

    #[test]
    fn rejects_unknown_profile_fields() {
        let body = json!({
            "email": "ada@example.com",
            "profile": { "firstName": "Ada", "lastName": "Lovelace", "age": 36 }
        });

        assert_eq!(field_names(new_user(&body)), ["profile.age"]);
    }

    #[test]
    fn rejects_a_body_that_is_not_an_object() {
        for body in [json!([]), json!("ada"), json!(1), json!(null)] {
            assert!(
                matches!(new_user(&body), Err(ApiError::MalformedBody { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn rejects_email_without_domain() {
        assert!(normalise_email("ada@").is_err());
        assert!(normalise_email("ada").is_err());
        assert!(normalise_email("ada@localhost").is_err());
    }

    #[test]
    fn rejects_emails_ses_would_not_accept() {
        for email in [
            "ada@example.com.",
            "\"ada lovelace\"@example.com",
            "ada@[192.0.2.1]",
            "Ada <ada@example.com>",
            "ada@exa_mple.com",
            "ada@-example.com",
            "ada@example..com",
            "adá@example.com",
            "ada@exämple.com",
            "ada@@example.com",
            "ada@example.com\r\nBcc: eve@example.com",
        ] {
            assert!(
                normalise_email(email).is_err(),
                "{email} should be rejected"
            );
        }
    }

    #[test]
    fn enforces_address_length_limits() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("ada@{}.com", "a".repeat(63).repeat(4).replace("aaa", "aa."));

        assert!(normalise_email(&long_local).is_err());
        assert!(normalise_email(&long_total).is_err());
        assert!(normalise_email(&format!("{}@example.com", "a".repeat(64))).is_ok());
    }

    #[test]
    fn accepts_punycode_and_plus_addresses() {
        assert_eq!(
            normalise_email("ada+news@xn--exmple-cua.com"),
            Ok("ada+news@xn--exmple-cua.com".into())
        );
    }

    #[test]
    fn accepts_names_in_any_script() {
        for name in [
            "José",
            "Łukasz",
            "李",
            "O'Brien",
            "Anne-Marie",
            "Zoë Ó Súilleabháin",
        ] {
            assert_eq!(normalise_name(name), Ok(name.to_owned()));
        }
    }

    #[test]
    fn rejects_names_with_control_characters() {
        for name in [
            "Ada\r\nBcc: x",
            "Ada\nLovelace",
            "A\u{0}da",
            "Ada\u{2028}Byron",
            "\u{1b}[31mAda",
        ] {
            assert!(normalise_name(name).is_err(), "{name:?} should be rejected");
        }
    }

    #[test]
    fn rejects_names_that_are_invisible_or_reorder_text() {
        for name in [
            "\u{200b}",
            "\u{200d}\u{200d}",
            "\u{feff}Ada",
            "\u{202e}adA",
            "A\u{2066}da",
            "--",
        ] {
            assert!(normalise_name(name).is_err(), "{name:?} should be rejected");
        }
    }

    #[test]
    fn keeps_the_joiners_that_scripts_need() {
        let persian = "\u{0645}\u{06cc}\u{200c}\u{0631}\u{0636}\u{0627}";

        assert_eq!(normalise_name(persian), Ok(persian.to_owned()));
    }

    #[test]
    fn says_why_an_address_with_a_display_name_or_long_label_fails() {
        assert_eq!(
            normalise_email("Ada <ada@example.com>"),
            Err("must be the bare address, like name@example.com, without a display name")
        );
        assert_eq!(
            normalise_email(&format!("ada@{}.com", "a".repeat(64))),
            Err("must not have a part of the domain longer than 63 characters")
        );
        assert_eq!(
            normalise_email("ada lovelace@example.com"),
            Err("must not contain spaces or line breaks")
        );
    }

    #[test]
    fn bounds_name_length_in_characters() {
        assert!(normalise_name(&"李".repeat(100)).is_ok());
        assert!(normalise_name(&"李".repeat(101)).is_err());
        assert!(normalise_name("   ").is_err());
    }
}
