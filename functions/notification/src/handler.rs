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
/// missing a required field, [`NotificationError::Unexpected`] for another source, detail
/// type.
/// [`NotificationError::UnsupportedVersion`] for an `eventVersion` this code does not know. Unknown fields are ignored.
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
