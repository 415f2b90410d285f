//! Fuzz target: arbitrary bytes as the EventBridge delivery the notification function gets,
//! through `handler::parse` and `Notifier::handle` with in-memory adapters: never a panic, a
//! rejected event sends nothing and fails for good, and an accepted one sends exactly one.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use notification::adapters::memory::{InMemoryDedupStore, RecordingEmailSender};
use notification::handler::parse;
use notification::{DedupPolicy, EmailConfig, Notifier, Outcome};
use serde_json::Value;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    // The runtime only invokes the handler with a JSON payload.
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let parsed = parse(event.clone());

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
    let result = runtime().block_on(notifier.handle(event));

    match (&parsed, &result) {
        (Ok(user_created), Ok(Outcome::Sent { .. })) => {
            let sent = sender.sent();
            assert_eq!(sent.len(), 1, "one email per event");
            assert_eq!(sent[0].to, user_created.payload.email);
        }
        (Err(_), Err(error)) => {
            assert!(
                !error.is_retryable(),
                "a malformed event is retryable: {error:?}"
            );
            assert_eq!(
                sender.attempts(),
                0,
                "a malformed event reached the provider"
            );
        }
        _ => panic!("parse and handle disagree: {parsed:?} vs {result:?}"),
    }
});
