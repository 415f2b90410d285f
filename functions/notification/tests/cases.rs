//! Every EventBridge field case (`testkit::cases`) through the real handler,
//! with the outcome the case states.

use std::sync::Arc;

use notification::adapters::memory::{InMemoryDedupStore, RecordingEmailSender};
use notification::{DedupPolicy, EmailConfig, Notifier, Outcome};

#[tokio::test]
async fn every_eventbridge_case_has_its_stated_outcome() {
    for case in testkit::cases("eventbridge") {
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
        let name = case.name();

        let result = notifier.handle(case.event().clone()).await;

        let expect = case.expect();
        match expect["outcome"].as_str() {
            Some("sent") => {
                assert!(
                    matches!(result, Ok(Outcome::Sent { .. })),
                    "{name}: {result:?}"
                );
                let sent = sender.sent();
                assert_eq!(sent.len(), 1, "{name}");
                assert_eq!(Some(sent[0].to.as_str()), expect["to"].as_str(), "{name}");
            }
            Some("permanent-error") => {
                let error = result.expect_err(&format!("{name} must fail"));
                assert!(!error.is_retryable(), "{name}: {error:?}");
                assert!(error.error_type().starts_with("Permanent."), "{name}");
                assert_eq!(sender.attempts(), 0, "{name}: nothing reaches the provider");
            }
            Some("no-op") => {
                assert_eq!(
                    result.expect("no-op succeeds"),
                    Outcome::Duplicate,
                    "{name}"
                );
                assert_eq!(sender.attempts(), 0, "{name}");
            }
            other => panic!("{name}: unknown outcome {other:?}"),
        }
        if let Some(emails) = expect["emails"].as_u64() {
            assert_eq!(sender.sent().len() as u64, emails, "{name}");
        }
    }
}
