//! What the product logs at info level: one signup through the local stack and every field
//! case, captured as JSON lines. Every line must parse, one correlation id must link the
//! request, the event and the email, and no email address or name from the inputs may
//! appear anywhere.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;
use user_service::adapters::memory::{
    InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
};
use user_service::http::router;
use user_service::lambda::{lambda_service, request_from_event};
use user_service::{PublishPolicy, UserService};

const CORRELATION_ID: &str = "signup-4f1c";

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every email address and name a request or event body carries.
fn personal_data(body: &Value, found: &mut Vec<String>) {
    match body {
        Value::Object(fields) => {
            for (key, value) in fields {
                if let (Some(text), true) = (
                    value.as_str(),
                    ["email", "firstName", "lastName"].contains(&key.as_str()),
                ) {
                    found.extend(
                        text.split(|c: char| c.is_whitespace() || c == '\r' || c == '\n')
                            .map(str::to_owned),
                    );
                }
                personal_data(value, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| personal_data(item, found)),
        Value::String(text) => {
            if let Ok(inner) = serde_json::from_str::<Value>(text) {
                personal_data(&inner, found);
            }
        }
        _ => {}
    }
}

/// Whether `value` shows `needle` as a whole word anywhere in its strings.
fn shows(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(text) => {
            text.contains(needle)
                && (needle.contains('@')
                    || text
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|w| w == needle))
        }
        Value::Object(fields) => fields
            .iter()
            .any(|(key, v)| key.contains(needle) || shows(v, needle)),
        Value::Array(items) => items.iter().any(|v| shows(v, needle)),
        _ => false,
    }
}

async fn wait_for_email(outbox: &Path) {
    for _ in 0..50 {
        let written = std::fs::read_dir(outbox).expect("outbox").count();
        if written > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no welcome email was written");
}

#[tokio::test]
async fn info_logs_are_json_correlated_and_free_of_personal_data() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(captured.clone())
        .finish();
    // The test runs on one thread, so the spawned notification task logs here too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut inputs = Vec::new();

    // One signup through the local stack.
    let outbox = tempfile::tempdir().expect("temp dir");
    let signup = json!({
        "email": "Quillon.Vexmoor@example.org",
        "profile": { "firstName": "Quillon", "lastName": "Vexmoor" }
    });
    personal_data(&signup, &mut inputs);
    let request = http::Request::post("/users")
        .header("content-type", "application/json")
        .header("x-correlation-id", CORRELATION_ID)
        .body(axum::body::Body::from(signup.to_string()))
        .expect("request");
    let response = local::in_memory_router(outbox.path())
        .expect("router")
        .oneshot(request)
        .await
        .expect("answer");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-correlation-id"], CORRELATION_ID);
    wait_for_email(outbox.path()).await;

    // Every HTTP case, accepted or rejected.
    for case in testkit::cases("http") {
        personal_data(case.event(), &mut inputs);
        let service = UserService::new(
            InMemoryUserStore::new(),
            RecordingPublisher::new(),
            InMemoryIdempotencyStore::new(),
            PublishPolicy::default(),
        );
        let request = request_from_event(&case.event().to_string()).expect("event");
        let _ = lambda_service(router(Arc::new(service)))
            .oneshot(request)
            .await;
    }

    // Every EventBridge case, sent or failed.
    for case in testkit::cases("eventbridge") {
        personal_data(case.event(), &mut inputs);
        let bus = local::InProcessBus::new(outbox.path()).expect("bus");
        let _ = bus.handle_envelope(case.event().clone()).await;
    }

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.len() > 5, "too few log lines: {text}");

    inputs.retain(|word| word.chars().count() > 1);
    inputs.sort();
    inputs.dedup();
    for line in &lines {
        for word in &inputs {
            assert!(
                !shows(line, word),
                "log line shows personal data {word:?}: {line}"
            );
        }
    }

    let linked = |message: &str| {
        lines.iter().any(|line| {
            line["fields"]["message"] == message
                && line["spans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|span| span["correlation_id"] == CORRELATION_ID)
        })
    };
    for message in [
        "user created",
        "event published",
        "welcome email sent",
        "email written",
    ] {
        assert!(
            linked(message),
            "{message:?} is not linked to {CORRELATION_ID}: {text}"
        );
    }
}
