//! Every EventBridge field case (`../shared/cases/eventbridge/`) through the real handler,
//! with the outcome the case states.

use std::path::PathBuf;
use std::sync::Arc;

use notification::adapters::memory::{InMemoryDedupStore, RecordingEmailSender};
use notification::{DedupPolicy, EmailConfig, Notifier, Outcome};
use serde_json::Value;

fn cases() -> Vec<(PathBuf, Value)> {
    let folder =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/cases/eventbridge");
    let mut cases: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", folder.display()))
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable case");
            let case = serde_json::from_str(&text).expect("case is JSON");
            (path, case)
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!cases.is_empty(), "no cases in {}", folder.display());
    cases
}

#[tokio::test]
async fn every_eventbridge_case_has_its_stated_outcome() {
    for (path, case) in cases() {
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
        let name = path.display();

        let result = notifier.handle(case["event"].clone()).await;

        let expect = &case["expect"];
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
