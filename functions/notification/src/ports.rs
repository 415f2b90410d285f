//! The ports the handler talks through: where email goes and where processed event ids
//! are remembered. Adapters live in [`crate::adapters`].

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::email::WelcomeEmail;

/// Any error an adapter wants to keep as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failed send, classified by whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider throttled the call; nothing was sent.
    #[error("the email provider throttled the request")]
    Throttled(#[source] BoxError),
    /// A 5xx answer, a timeout or a connection failure.
    #[error("the email provider failed transiently")]
    Transient(#[source] BoxError),
    /// The provider refused the message for good.
    #[error("the email provider rejected the message: {code}")]
    Rejected {
        /// The provider's error code.
        code: String,
        /// The provider's error.
        #[source]
        source: BoxError,
    },
}

/// Sends rendered emails.
pub trait EmailSender: Send + Sync + 'static {
    /// Sends one email and returns the provider's message id.
    ///
    /// # Errors
    /// A [`SendError`] saying whether a retry may help.
    fn send(&self, email: &WelcomeEmail) -> impl Future<Output = Result<String, SendError>> + Send;
}

/// The state of an event id in the de-duplication store, as seen by a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This delivery now owns the event and must send, then complete, release or fail it.
    Acquired,
    /// The email was sent by an earlier delivery.
    Completed,
    /// An earlier delivery failed permanently.
    Failed,
    /// Another delivery holds an unexpired claim.
    InProgress,
}

/// The de-duplication store failed.
#[derive(Debug, thiserror::Error)]
#[error("the de-duplication store failed")]
pub struct DedupError(#[source] pub BoxError);

/// Remembers which event ids were processed, so that each gets one email.
pub trait DedupStore: Send + Sync + 'static {
    /// Claims an event id until `until`, unless it is completed, failed, or claimed by
    /// another delivery whose claim has not expired at `now`.
    ///
    /// # Errors
    /// When the store fails.
    fn claim(
        &self,
        event_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claim, DedupError>> + Send;

    /// Records that the email was sent; the record is kept until `expires_at`.
    ///
    /// # Errors
    /// When the store fails.
    fn complete(
        &self,
        event_id: Uuid,
        message_id: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), DedupError>> + Send;

    /// Records a permanent failure so later deliveries fail fast without sending.
    ///
    /// # Errors
    /// When the store fails.
    fn fail(
        &self,
        event_id: Uuid,
        reason: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), DedupError>> + Send;

    /// Drops this delivery's claim so that a retry can send at once.
    ///
    /// # Errors
    /// When the store fails.
    fn release(&self, event_id: Uuid) -> impl Future<Output = Result<(), DedupError>> + Send;
}

impl<T: EmailSender> EmailSender for std::sync::Arc<T> {
    fn send(&self, email: &WelcomeEmail) -> impl Future<Output = Result<String, SendError>> + Send {
        (**self).send(email)
    }
}

impl<T: DedupStore> DedupStore for std::sync::Arc<T> {
    fn claim(
        &self,
        event_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claim, DedupError>> + Send {
        (**self).claim(event_id, user_id, now, until)
    }

    fn complete(
        &self,
        event_id: Uuid,
        message_id: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), DedupError>> + Send {
        (**self).complete(event_id, message_id, expires_at)
    }

    fn fail(
        &self,
        event_id: Uuid,
        reason: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), DedupError>> + Send {
        (**self).fail(event_id, reason, expires_at)
    }

    fn release(&self, event_id: Uuid) -> impl Future<Output = Result<(), DedupError>> + Send {
        (**self).release(event_id)
    }
}
