//! The notification handler: one EventBridge delivery in, at most one welcome email out.
//!
//! 1. Parse the envelope and its `UserCreated` detail; anything else is a permanent error.
//! 2. Claim `metadata.eventId` in the de-duplication store. A completed id is a successful
//!    no-op, a failed id fails fast, an id claimed by a live delivery is retryable, and an
//!    expired claim (its delivery crashed) is taken over.
//! 3. Send. On success the id is completed; on a retryable failure the claim is released so
//!    the retry can send; on a permanent failure the id is marked failed.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use shared::UserCreated;
use tracing::Instrument;

use crate::config::{DedupPolicy, EmailConfig};
use crate::email::WelcomeEmail;
use crate::error::{redacted, NotificationError};
use crate::ports::{Claim, DedupStore, EmailSender, SendError};

/// Business counters, as CloudWatch metrics in the product's namespace.
static METRICS: emf::Metrics = emf::Metrics::new("notification");

/// What a successful delivery did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    /// The welcome email was sent.
    #[serde(rename_all = "camelCase")]
    Sent {
        /// The provider's message id.
        message_id: String,
    },
    /// The event was handled before; nothing was sent.
    Duplicate,
}

/// Handles `UserCreated` deliveries through an email sender and a de-duplication store.
pub struct Notifier<E, D> {
    sender: E,
    dedup: D,
    email: EmailConfig,
    policy: DedupPolicy,
}

impl<E: EmailSender, D: DedupStore> Notifier<E, D> {
    /// Builds the handler; adapters and clients are created once, by the caller.
    pub fn new(sender: E, dedup: D, email: EmailConfig, policy: DedupPolicy) -> Self {
        Self {
            sender,
            dedup,
            email,
            policy,
        }
    }

    /// Handles one delivery, given as the raw event JSON Lambda received.
    ///
    /// # Errors
    /// A [`NotificationError`] whose [`is_retryable`](NotificationError::is_retryable) says
    /// whether another delivery of the same event can succeed.
    pub async fn handle(&self, event: Value) -> Result<Outcome, NotificationError> {
        let ids = LogIds::of(&event);
        let span = tracing::info_span!(
            "user_created",
            event_id = ids.event_id,
            user_id = ids.user_id,
            correlation_id = ids.correlation_id,
        );

        let result = self.process(event).instrument(span.clone()).await;

        let _entered = span.enter();
        match &result {
            Err(error) if error.is_retryable() => {
                tracing::error!(kind = error.kind(), error = ?error, "delivery failed, will be retried");
            }
            Err(error) => {
                tracing::error!(kind = error.kind(), reason = %error, "permanent failure");
                METRICS.count("PermanentFailures", 1);
            }
            Ok(_) => {}
        }
        result
    }

    async fn process(&self, event: Value) -> Result<Outcome, NotificationError> {
        let event = parse(event)?;
        let event_id = event.metadata.event_id;
        let now = Utc::now();

        let claim = self
            .dedup
            .claim(
                event_id,
                event.payload.user_id,
                now,
                now + self.policy.claim_duration,
            )
            .await
            .map_err(|error| NotificationError::Store(error.into()))?;
        match claim {
            Claim::Acquired => {}
            Claim::Completed => {
                tracing::info!("duplicate delivery skipped");
                METRICS.count("DuplicateDeliveriesSkipped", 1);
                return Ok(Outcome::Duplicate);
            }
            Claim::Failed => return Err(NotificationError::PreviouslyFailed),
            Claim::InProgress => return Err(NotificationError::InProgress),
        }

        let email = WelcomeEmail::render(&event.payload, &self.email);
        let expires_at = now + self.policy.retention;
        match self.sender.send(&email).await {
            Ok(message_id) => {
                tracing::info!(message_id = %message_id, "welcome email sent");
                METRICS.count("WelcomeEmailsSent", 1);
                // The email is out; a failure to record it must not fail the invocation, or
                // Lambda's retry would send a second one once the claim expires.
                if let Err(error) = self.dedup.complete(event_id, &message_id, expires_at).await {
                    tracing::error!(error = ?error, "could not record the sent email");
                }
                Ok(Outcome::Sent { message_id })
            }
            Err(SendError::Rejected { code, source }) => {
                if let Err(error) = self.dedup.fail(event_id, &code, expires_at).await {
                    tracing::error!(error = ?error, "could not record the permanent failure");
                }
                Err(NotificationError::Rejected { code, source })
            }
            Err(error) => {
                if let Err(release) = self.dedup.release(event_id).await {
                    tracing::warn!(error = ?release, "could not release the claim");
                }
                Err(NotificationError::SendFailed(error.into()))
            }
        }
    }
}

/// Reads a `UserCreated` out of an EventBridge envelope.
///
/// # Errors
/// [`NotificationError::Malformed`] when the input is not an envelope or the detail is
/// missing a required field, [`NotificationError::Unexpected`] for another source or detail
/// type, and [`NotificationError::UnsupportedVersion`] for an `eventVersion` this code does
/// not know. Unknown fields are ignored.
pub fn parse(event: Value) -> Result<UserCreated, NotificationError> {
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(event).map_err(|e| NotificationError::Malformed(redacted(&e)))?;
    if envelope.source != shared::SOURCE || envelope.detail_type != shared::DETAIL_TYPE {
        return Err(NotificationError::Unexpected {
            event_source: envelope.source,
            detail_type: envelope.detail_type,
        });
    }

    let event: UserCreated = serde_json::from_value(envelope.detail)
        .map_err(|e| NotificationError::Malformed(redacted(&e)))?;
    if event.metadata.event_version != shared::EVENT_VERSION {
        return Err(NotificationError::UnsupportedVersion(
            event.metadata.event_version,
        ));
    }
    Ok(event)
}

/// Ids for the log span, read leniently so that even a malformed event is logged with them.
struct LogIds<'a> {
    event_id: Option<&'a str>,
    user_id: Option<&'a str>,
    correlation_id: Option<&'a str>,
}

impl<'a> LogIds<'a> {
    fn of(event: &'a Value) -> Self {
        let detail = &event["detail"];
        Self {
            event_id: detail["metadata"]["eventId"].as_str(),
            user_id: detail["payload"]["userId"].as_str(),
            correlation_id: detail["metadata"]["correlationId"].as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::adapters::memory::{InMemoryDedupStore, RecordingEmailSender};

    const FIXTURE: &str = include_str!("../../../shared/tests/fixtures/user-created.detail.json");

    type TestNotifier = Notifier<Arc<RecordingEmailSender>, Arc<InMemoryDedupStore>>;

    fn notifier() -> (
        TestNotifier,
        Arc<RecordingEmailSender>,
        Arc<InMemoryDedupStore>,
    ) {
        let sender = Arc::new(RecordingEmailSender::new());
        let dedup = Arc::new(InMemoryDedupStore::new());
        let email = EmailConfig {
            sender: "hello@example.com".into(),
            product_name: "Acme".into(),
        };
        let notifier = Notifier::new(
            Arc::clone(&sender),
            Arc::clone(&dedup),
            email,
            DedupPolicy::default(),
        );
        (notifier, sender, dedup)
    }

    fn envelope() -> Value {
        let detail: Value = serde_json::from_str(FIXTURE).expect("fixture");
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

    fn event_id() -> Uuid {
        Uuid::try_parse("0193a5a0-1111-7000-8000-00000000e001").expect("fixture id")
    }

    fn rejected() -> SendError {
        SendError::Rejected {
            code: "MessageRejected".into(),
            source: "rejected".into(),
        }
    }

    #[tokio::test]
    async fn sends_one_welcome_email() {
        let (notifier, sender, _) = notifier();

        let outcome = notifier.handle(envelope()).await.expect("sent");

        assert_eq!(
            outcome,
            Outcome::Sent {
                message_id: "recorded-1".into()
            }
        );
        let sent = sender.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "ada@example.com");
        assert!(sent[0].text.contains("Hi Ada,"));
    }

    #[tokio::test]
    async fn a_repeated_delivery_is_a_successful_no_op() {
        let (notifier, sender, _) = notifier();
        notifier.handle(envelope()).await.expect("sent");

        let outcome = notifier.handle(envelope()).await.expect("no-op");

        assert_eq!(outcome, Outcome::Duplicate);
        assert_eq!(sender.attempts(), 1);
    }

    #[tokio::test]
    async fn a_rejected_email_is_permanent_and_never_retried_against_the_provider() {
        let (notifier, sender, _) = notifier();
        sender.fail_next(rejected());

        let first = notifier.handle(envelope()).await.expect_err("rejected");
        let retry = notifier.handle(envelope()).await.expect_err("fails fast");

        assert!(!first.is_retryable() && !retry.is_retryable());
        assert_eq!(first.error_type(), "Permanent.EmailRejected");
        assert_eq!(retry.error_type(), "Permanent.PreviouslyFailed");
        assert_eq!(sender.attempts(), 1);
    }

    #[tokio::test]
    async fn a_transient_failure_releases_the_claim_so_the_retry_sends() {
        let (notifier, sender, _) = notifier();
        sender.fail_next(SendError::Transient("503".into()));

        let first = notifier.handle(envelope()).await.expect_err("transient");
        let retry = notifier.handle(envelope()).await.expect("sent on retry");

        assert!(first.is_retryable());
        assert!(matches!(retry, Outcome::Sent { .. }));
        assert_eq!(sender.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_live_claim_makes_a_concurrent_delivery_retryable() {
        let (notifier, sender, dedup) = notifier();
        let now = Utc::now();
        dedup
            .claim(event_id(), Uuid::nil(), now, now + Duration::from_secs(45))
            .await
            .expect("claim");

        let error = notifier.handle(envelope()).await.expect_err("in progress");

        assert_eq!(error.error_type(), "Retryable.InProgress");
        assert_eq!(sender.attempts(), 0);
    }

    #[tokio::test]
    async fn a_crashed_delivery_is_taken_over_after_its_claim_expires() {
        let (notifier, sender, dedup) = notifier();
        let crashed_at = Utc::now() - Duration::from_secs(120);
        dedup
            .claim(
                event_id(),
                Uuid::nil(),
                crashed_at,
                crashed_at + Duration::from_secs(45),
            )
            .await
            .expect("claim of the crashed delivery");

        let takeover = notifier.handle(envelope()).await.expect("taken over");
        let later = notifier.handle(envelope()).await.expect("no-op");

        assert!(matches!(takeover, Outcome::Sent { .. }));
        assert_eq!(later, Outcome::Duplicate);
        assert_eq!(sender.sent().len(), 1);
    }

    #[tokio::test]
    async fn rejects_events_the_rule_should_never_send() {
        let (notifier, sender, _) = notifier();
        let mut wrong_source = envelope();
        wrong_source["source"] = json!("edtech.billing");
        let mut wrong_type = envelope();
        wrong_type["detail-type"] = json!("UserDeleted");
        let mut newer = envelope();
        newer["detail"]["metadata"]["eventVersion"] = json!(2);

        for event in [wrong_source, wrong_type, newer] {
            let error = notifier.handle(event).await.expect_err("unexpected");
            assert!(!error.is_retryable(), "{error:?}");
        }
        assert_eq!(sender.attempts(), 0);
    }

    #[tokio::test]
    async fn rejects_malformed_input_as_permanent() {
        let (notifier, sender, _) = notifier();
        let mut no_email = envelope();
        no_email["detail"]["payload"]
            .as_object_mut()
            .expect("object")
            .remove("email");
        let mut bad_id = envelope();
        bad_id["detail"]["metadata"]["eventId"] = json!("not-a-uuid");

        for event in [json!({}), json!([1, 2]), json!("text"), no_email, bad_id] {
            let error = notifier.handle(event).await.expect_err("malformed");
            assert_eq!(error.error_type(), "Permanent.MalformedEvent");
        }
        assert_eq!(sender.attempts(), 0);
    }

    #[tokio::test]
    async fn ignores_unknown_fields() {
        let (notifier, sender, _) = notifier();
        let mut event = envelope();
        event["detail"]["payload"]["locale"] = json!("en-GB");
        event["detail"]["metadata"]["traceparent"] = json!("00-abc");
        event["replay-name"] = json!("archive-1");

        notifier.handle(event).await.expect("sent");

        assert_eq!(sender.sent().len(), 1);
    }
}
