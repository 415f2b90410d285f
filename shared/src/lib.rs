//! The `UserCreated` event contract: the one thing the user service and the notification
//! function both compile against.
//!
//! The wire shape is the EventBridge `detail` object `{ "metadata": {..}, "payload": {..} }`
//! in camelCase. Readers are tolerant: unknown fields are ignored, so a producer may add a
//! field without bumping [`EVENT_VERSION`]. A missing required field fails deserialisation,
//! which consumers treat as a permanent error for that event.

use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The EventBridge `Source` of every event this contract describes.
pub const SOURCE: &str = "edtech.user-service";

/// The EventBridge `DetailType` (and `metadata.eventType`) of a new user.
pub const DETAIL_TYPE: &str = "UserCreated";

/// The schema version carried in `metadata.eventVersion`; bumped only on breaking changes.
pub const EVENT_VERSION: u32 = 1;

/// The name the user service puts in `metadata.producer`.
pub const PRODUCER: &str = "user-service";

/// The EventBridge rule pattern that selects `UserCreated` events, as the SAM template and
/// the end-to-end tests must spell it.
pub fn event_pattern() -> serde_json::Value {
    serde_json::json!({
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
    })
}

/// The JSON Schema of [`UserCreated`], as published in `shared/schema/`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(UserCreated))
        .expect("a derived schema always serialises to JSON")
}

/// The `detail` of a `UserCreated` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    /// Envelope data every event of this producer carries.
    pub metadata: EventMetadata,
    /// The user that was created.
    pub payload: UserCreatedPayload,
}

impl UserCreated {
    /// Builds the event for a user, stamping the contract's type, version and producer.
    pub fn new(
        event_id: Uuid,
        occurred_at: DateTime<Utc>,
        correlation_id: impl Into<String>,
        payload: UserCreatedPayload,
    ) -> Self {
        Self {
            metadata: EventMetadata {
                event_id,
                event_type: DETAIL_TYPE.to_owned(),
                event_version: EVENT_VERSION,
                occurred_at,
                correlation_id: correlation_id.into(),
                producer: PRODUCER.to_owned(),
            },
            payload,
        }
    }
}

/// Metadata common to every event: identity, type, version, time and tracing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    /// Unique and stable for the life of the event; consumers de-duplicate on it.
    pub event_id: Uuid,
    /// Always [`DETAIL_TYPE`] for this contract.
    pub event_type: String,
    /// Schema version, starting at [`EVENT_VERSION`].
    #[schemars(range(min = 1))]
    pub event_version: u32,
    /// When the user was created, in UTC.
    pub occurred_at: DateTime<Utc>,
    /// The id that links the API request, this event and the email it causes.
    pub correlation_id: String,
    /// The service that published the event.
    pub producer: String,
}

/// The new user, as much of it as a consumer needs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCreatedPayload {
    /// The user's id.
    pub user_id: Uuid,
    /// The normalised (trimmed, lower-case) email address.
    #[schemars(email)]
    pub email: String,
    /// The user's names.
    pub profile: Profile,
}

/// A user's names, trimmed and free of control characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Given name.
    #[schemars(length(min = 1, max = 100))]
    pub first_name: String,
    /// Family name.
    #[schemars(length(min = 1, max = 100))]
    pub last_name: String,
}

// Debug output ends up in logs and panic messages, so personal data is redacted there.
impl fmt::Debug for UserCreatedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCreatedPayload")
            .field("user_id", &self.user_id)
            .field("email", &"<redacted>")
            .field("profile", &self.profile)
            .finish()
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/user-created.detail.json");
    const FIXTURE_WITH_EXTRAS: &str =
        include_str!("../tests/fixtures/user-created.detail.extra-fields.json");
    const SCHEMA_FILE: &str = include_str!("../schema/user-created.schema.json");
    const PATTERN_FILE: &str = include_str!("../schema/event-pattern.json");

    fn fixture() -> UserCreated {
        serde_json::from_str(FIXTURE).expect("fixture parses")
    }

    #[test]
    fn parses_the_fixture_into_the_expected_values() {
        let event = fixture();

        assert_eq!(event.metadata.event_type, DETAIL_TYPE);
        assert_eq!(event.metadata.event_version, EVENT_VERSION);
        assert_eq!(event.metadata.producer, PRODUCER);
        assert_eq!(event.metadata.correlation_id, "corr-1");
        assert_eq!(event.payload.email, "ada@example.com");
        assert_eq!(event.payload.profile.first_name, "Ada");
        assert_eq!(event.payload.profile.last_name, "Lovelace");
    }

    #[test]
    fn round_trips_to_the_fixture_wire_shape() {
        let event = fixture();

        let written = serde_json::to_value(&event).expect("serialises");
        let expected: serde_json::Value = serde_json::from_str(FIXTURE).expect("valid JSON");
        assert_eq!(written, expected);

        let reparsed: UserCreated = serde_json::from_value(written).expect("re-parses");
        assert_eq!(reparsed, event);
    }

    #[test]
    fn ignores_unknown_fields_at_every_level() {
        let event: UserCreated = serde_json::from_str(FIXTURE_WITH_EXTRAS).expect("tolerant");

        assert_eq!(event, fixture());
    }

    #[test]
    fn rejects_a_payload_without_email() {
        let mut detail: serde_json::Value = serde_json::from_str(FIXTURE).expect("valid JSON");
        detail["payload"]
            .as_object_mut()
            .expect("payload is an object")
            .remove("email");

        let error = serde_json::from_value::<UserCreated>(detail).expect_err("email is required");
        assert!(error.to_string().contains("email"), "{error}");
    }

    #[test]
    fn new_stamps_type_version_and_producer() {
        let original = fixture();

        let built = UserCreated::new(
            original.metadata.event_id,
            original.metadata.occurred_at,
            "corr-1",
            original.payload.clone(),
        );

        assert_eq!(built, original);
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let printed = format!("{:?}", fixture());

        assert!(!printed.contains("ada@example.com"), "{printed}");
        assert!(!printed.contains("Ada"), "{printed}");
        assert!(!printed.contains("Lovelace"), "{printed}");
    }

    /// Regenerate with `UPDATE_SCHEMA=1 cargo test -p shared`.
    #[test]
    fn published_schema_and_pattern_are_up_to_date() {
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schema");
            for (file, value) in [
                ("user-created.schema.json", json_schema()),
                ("event-pattern.json", event_pattern()),
            ] {
                let text = serde_json::to_string_pretty(&value).expect("serialises") + "\n";
                std::fs::write(format!("{dir}/{file}"), text).expect("write");
            }
            return;
        }

        // Compared as JSON values: key order depends on serde_json's features in the build.
        let published: serde_json::Value = serde_json::from_str(SCHEMA_FILE).expect("JSON");
        let pattern: serde_json::Value = serde_json::from_str(PATTERN_FILE).expect("JSON");
        assert_eq!(
            published,
            json_schema(),
            "schema is stale: run UPDATE_SCHEMA=1 cargo test -p shared"
        );
        assert_eq!(
            pattern,
            event_pattern(),
            "pattern is stale: run UPDATE_SCHEMA=1 cargo test -p shared"
        );
    }

    #[test]
    fn fixture_satisfies_the_required_fields_of_the_schema() {
        let schema = json_schema();

        let required = schema["required"].as_array().expect("required list");
        assert!(required.contains(&"metadata".into()) && required.contains(&"payload".into()));
        let payload = &schema["$defs"]["UserCreatedPayload"]["required"];
        for field in ["userId", "email", "profile"] {
            assert!(
                payload.as_array().expect("list").contains(&field.into()),
                "{field}"
            );
        }
    }
}
