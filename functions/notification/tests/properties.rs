//! Property tests of the notification handler: whatever JSON arrives, it never panics, a
//! malformed event fails for good without sending, and a valid one sends exactly one email.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use notification::adapters::memory::{InMemoryDedupStore, RecordingEmailSender};
use notification::email::WelcomeEmail;
use notification::handler::parse;
use notification::{DedupPolicy, EmailConfig, NotificationError, Notifier, Outcome};
use proptest::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

const FIXTURE: &str = include_str!("../../../shared/tests/fixtures/user-created.detail.json");

/// A well-formed EventBridge delivery of the fixture `UserCreated`.
fn envelope() -> Value {
    let detail: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "UserCreated",
        "source": "edtech.user-service",
        "account": "123456789012",
        "time": "2026-12-03T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail
    })
}

/// What one delivery did, against fresh in-memory adapters.
#[derive(Debug)]
struct Delivery {
    result: Result<Outcome, NotificationError>,
    sent: Vec<WelcomeEmail>,
    attempts: usize,
}

fn deliver(event: Value) -> Delivery {
    let sender = Arc::new(RecordingEmailSender::new());
    let email = EmailConfig {
        sender: "hello@example.com".into(),
        product_name: "Acme".into(),
    };
    let notifier = Notifier::new(
        Arc::clone(&sender),
        InMemoryDedupStore::new(),
        email,
        DedupPolicy::default(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let result = runtime.block_on(notifier.handle(event));

    Delivery {
        result,
        sent: sender.sent(),
        attempts: sender.attempts(),
    }
}

/// A rejected delivery is permanent and never reaches the email provider.
fn check_rejected(delivery: &Delivery) -> Result<(), TestCaseError> {
    match &delivery.result {
        Err(error) => {
            prop_assert!(!error.is_retryable(), "{error:?}");
            prop_assert!(error.error_type().starts_with("Permanent."), "{error:?}");
        }
        Ok(outcome) => {
            return Err(TestCaseError::fail(format!(
                "expected a rejection, got {outcome:?}"
            )))
        }
    }
    prop_assert_eq!(
        delivery.attempts,
        0,
        "a rejected event reached the provider"
    );
    Ok(())
}

/// An accepted delivery sends exactly one email, to the payload's address.
fn check_sent(delivery: &Delivery, to: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(delivery.result, Ok(Outcome::Sent { .. })),
        "expected one email, got {:?}",
        delivery.result
    );
    prop_assert_eq!(delivery.sent.len(), 1);
    prop_assert_eq!(delivery.sent[0].to.as_str(), to);
    Ok(())
}

/// The JSON type a field of the envelope or its `UserCreated` detail must have.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A string; `Some` when only that exact value is accepted.
    Text(Option<&'static str>),
    Uuid,
    Timestamp,
    Version,
    Object,
    /// An envelope field that may be absent or null.
    Optional(Optional),
}

#[derive(Clone, Copy, Debug)]
enum Optional {
    Text,
    Timestamp,
    TextList,
}

/// Every field the handler reads, as a JSON pointer into [`envelope`].
const FIELDS: &[(&str, Kind)] = &[
    ("/version", Kind::Optional(Optional::Text)),
    ("/id", Kind::Optional(Optional::Text)),
    ("/account", Kind::Optional(Optional::Text)),
    ("/region", Kind::Optional(Optional::Text)),
    ("/time", Kind::Optional(Optional::Timestamp)),
    ("/resources", Kind::Optional(Optional::TextList)),
    ("/detail-type", Kind::Text(Some("UserCreated"))),
    ("/source", Kind::Text(Some("edtech.user-service"))),
    ("/detail", Kind::Object),
    ("/detail/metadata", Kind::Object),
    ("/detail/metadata/eventId", Kind::Uuid),
    ("/detail/metadata/eventType", Kind::Text(None)),
    ("/detail/metadata/eventVersion", Kind::Version),
    ("/detail/metadata/occurredAt", Kind::Timestamp),
    ("/detail/metadata/correlationId", Kind::Text(None)),
    ("/detail/metadata/producer", Kind::Text(None)),
    ("/detail/payload", Kind::Object),
    ("/detail/payload/userId", Kind::Uuid),
    ("/detail/payload/email", Kind::Text(None)),
    ("/detail/payload/profile", Kind::Object),
    ("/detail/payload/profile/firstName", Kind::Text(None)),
    ("/detail/payload/profile/lastName", Kind::Text(None)),
];

/// The objects unknown fields can be added to.
const OBJECTS: &[&str] = &[
    "",
    "/detail",
    "/detail/metadata",
    "/detail/payload",
    "/detail/payload/profile",
];

fn field() -> impl Strategy<Value = (&'static str, Kind)> {
    prop::sample::select(FIELDS)
}

/// A value of the wrong JSON type for a field of `kind`.
///
/// Arrays are left out for objects: serde reads a struct from an array of its fields in
/// order, so `["Ada", "Lovelace"]` is a valid profile and not a wrong type.
fn wrong_value(kind: Kind) -> BoxedStrategy<Value> {
    let null = Just(Value::Null);
    let boolean = any::<bool>().prop_map(Value::from);
    let number = any::<i64>().prop_map(Value::from);
    let text = any::<String>().prop_map(Value::from);
    let array = prop::collection::vec(testkit::json_value(), 0..3).prop_map(Value::from);
    let object = prop::collection::btree_map("[a-z]{1,8}", testkit::json_value(), 0..3)
        .prop_map(|map| Value::Object(map.into_iter().collect()));
    match kind {
        Kind::Text(_) | Kind::Uuid | Kind::Timestamp => {
            prop_oneof![null, boolean, number, array, object].boxed()
        }
        Kind::Version => prop_oneof![null, boolean, text, array, object].boxed(),
        Kind::Object => prop_oneof![null, boolean, number, text].boxed(),
        Kind::Optional(Optional::Text | Optional::Timestamp) => {
            prop_oneof![boolean, number, array, object].boxed()
        }
        Kind::Optional(Optional::TextList) => prop_oneof![boolean, number, text, object].boxed(),
    }
}

/// Whether the handler must accept `text` in a string field of `kind`.
fn accepts_text(kind: Kind, text: &str) -> bool {
    match kind {
        Kind::Text(None) | Kind::Optional(Optional::Text) => true,
        Kind::Text(Some(only)) => text == only,
        Kind::Uuid => Uuid::parse_str(text).is_ok(),
        Kind::Timestamp | Kind::Optional(Optional::Timestamp) => {
            text.parse::<DateTime<Utc>>().is_ok()
        }
        Kind::Version | Kind::Object | Kind::Optional(Optional::TextList) => false,
    }
}

/// Replaces the value at `pointer`, or removes it when `value` is `None`.
fn set(event: &mut Value, pointer: &str, value: Option<Value>) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let object = event
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("the fixture has this object");
    match value {
        Some(value) => object.insert(key.to_owned(), value),
        None => object.remove(key),
    };
}

proptest! {
    #[test]
    fn arbitrary_json_is_rejected_for_good_without_sending(event in testkit::json_value()) {
        let delivery = deliver(event);

        check_rejected(&delivery)?;
    }

    #[test]
    fn arbitrary_json_as_the_detail_is_rejected_for_good(detail in testkit::json_value()) {
        let mut event = envelope();
        set(&mut event, "/detail", Some(detail));

        let delivery = deliver(event);

        check_rejected(&delivery)?;
    }

    #[test]
    fn removing_a_field_rejects_the_event_unless_the_field_is_optional(
        (pointer, kind) in field(),
    ) {
        let mut event = envelope();
        set(&mut event, pointer, None);

        let delivery = deliver(event);

        if matches!(kind, Kind::Optional(_)) {
            check_sent(&delivery, "ada@example.com")?;
        } else {
            check_rejected(&delivery)?;
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_rejects_the_event(
        ((pointer, _), value) in field().prop_flat_map(|field| (Just(field), wrong_value(field.1))),
    ) {
        let mut event = envelope();
        set(&mut event, pointer, Some(value));

        let delivery = deliver(event);

        check_rejected(&delivery)?;
    }

    #[test]
    fn arbitrary_text_in_a_field_is_sent_only_when_valid_there(
        (pointer, kind) in field(),
        text in prop_oneof![
            any::<String>(),
            Just("UserCreated".to_owned()),
            Just("edtech.user-service".to_owned()),
            Just("2026-12-03T12:00:00+01:00".to_owned()),
            Just("0193A5A0-1111-7000-8000-00000000E001".to_owned()),
            "[0-9a-fA-F-]{30,40}",
            "[0-9T:.Z+-]{10,30}",
        ],
    ) {
        let mut event = envelope();
        set(&mut event, pointer, Some(text.clone().into()));
        let to = if pointer == "/detail/payload/email" { text.as_str() } else { "ada@example.com" };

        let delivery = deliver(event);

        if accepts_text(kind, &text) {
            check_sent(&delivery, to)?;
        } else {
            check_rejected(&delivery)?;
        }
    }

    #[test]
    fn unknown_fields_anywhere_still_send_exactly_one(
        extras in prop::collection::vec(
            (prop::sample::select(OBJECTS), any::<String>(), testkit::json_value()),
            1..6,
        ),
    ) {
        let mut event = envelope();
        for (object, key, value) in extras {
            let object = event
                .pointer_mut(object)
                .and_then(Value::as_object_mut)
                .expect("the fixture has this object");
            // Only unknown names: an existing one would be a different mutation.
            object.entry(key).or_insert(value);
        }

        let delivery = deliver(event);

        check_sent(&delivery, "ada@example.com")?;
    }

    #[test]
    fn markup_in_a_name_never_reaches_the_html_part(
        name in "\\PC{0,20}[<>&]\\PC{0,20}",
    ) {
        let mut event = envelope();
        set(&mut event, "/detail/payload/profile/firstName", Some(name.clone().into()));

        let delivery = deliver(event);

        check_sent(&delivery, "ada@example.com")?;
        let greeting = format!("Hi {name},");
        prop_assert!(!delivery.sent[0].html.contains(&greeting), "raw name in the HTML part");
        prop_assert!(delivery.sent[0].text.contains(&greeting), "name missing from the text part");
    }

    #[test]
    fn the_handler_agrees_with_parse(event in prop_oneof![
        testkit::json_value(),
        (field(), testkit::json_value()).prop_map(|((pointer, _), value)| {
            let mut event = envelope();
            set(&mut event, pointer, Some(value));
            event
        }),
    ]) {
        let parsed = parse(event.clone());

        let delivery = deliver(event);

        match parsed {
            Ok(user_created) => check_sent(&delivery, &user_created.payload.email)?,
            Err(_) => check_rejected(&delivery)?,
        }
    }
}

/// The unchanged fixture envelope is sent: the mutations above start from a valid event.
#[test]
fn the_unmutated_envelope_sends_one_email() {
    let delivery = deliver(envelope());

    assert!(
        matches!(delivery.result, Ok(Outcome::Sent { .. })),
        "{delivery:?}"
    );
    assert_eq!(delivery.sent.len(), 1);
}

/// Every pointer in the field table names a field of the fixture envelope.
#[test]
fn the_field_table_matches_the_fixture() {
    let event = envelope();
    for (pointer, _) in FIELDS {
        assert!(event.pointer(pointer).is_some(), "{pointer}");
    }
}
