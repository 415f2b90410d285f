//! The ports the service talks through: where users live, where events go, and where
//! idempotent responses are remembered. Adapters live in [`crate::adapters`].

use std::future::Future;

use chrono::{DateTime, Utc};
use shared::UserCreated;
use uuid::Uuid;

use crate::domain::User;

/// Any error an adapter wants to keep as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failure of the [`UserStore`] or [`IdempotencyStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user already holds the email address.
    #[error("a user with this email address already exists")]
    EmailTaken,
    /// The backing store could not be reached or refused the call.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// An item in the store does not have the shape this code writes.
    #[error("a stored item is corrupt: {0}")]
    Corrupt(String),
}

/// A failure of the [`EventPublisher`]; says whether another attempt can help.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Throttling, a 5xx answer, a timeout, or an entry the bus failed transiently.
    #[error("publishing failed and may succeed when retried")]
    Transient(#[source] BoxError),
    /// The bus rejected the event in a way a retry cannot fix.
    #[error("publishing failed permanently")]
    Permanent(#[source] BoxError),
}

impl PublishError {
    /// Whether retrying the same event may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Durable storage of users, keeping each email address unique.
pub trait UserStore: Send + Sync + 'static {
    /// Stores a new user and claims its email address in one atomic step.
    ///
    /// # Errors
    /// [`StoreError::EmailTaken`] when another user holds the address.
    fn insert(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Finds a user by id.
    ///
    /// # Errors
    /// When the store fails.
    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Finds the user holding a normalised email address.
    ///
    /// # Errors
    /// When the store fails.
    fn find_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Takes the right to publish a user's pending event until `until`, if its event is still
    /// unpublished and nobody else holds an unexpired claim. Returns whether it was taken.
    ///
    /// # Errors
    /// When the store fails.
    fn claim_publish(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that the user's event reached the bus.
    ///
    /// # Errors
    /// When the store fails.
    fn mark_published(&self, id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives up a publish claim so that a retried request can take it at once.
    ///
    /// # Errors
    /// When the store fails.
    fn release_publish(&self, id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Delivery of domain events to the bus.
pub trait EventPublisher: Send + Sync + 'static {
    /// Makes one attempt to publish the event; the caller owns retries.
    ///
    /// # Errors
    /// A [`PublishError`] saying whether a retry may help.
    fn publish(&self, event: &UserCreated)
        -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// A response remembered under an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// Fingerprint of the request body the response answered.
    pub fingerprint: String,
    /// HTTP status code.
    pub status: u16,
    /// `Location` header, if the response had one.
    pub location: Option<String>,
    /// The JSON body.
    pub body: String,
}

/// Remembered responses for `Idempotency-Key` replays; entries expire after a day.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// The response stored under a key, if any and not expired.
    ///
    /// # Errors
    /// When the store fails.
    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<StoredResponse>, StoreError>> + Send;

    /// Stores a response under a key unless one is already there (the first one wins).
    ///
    /// # Errors
    /// When the store fails.
    fn put(
        &self,
        key: &str,
        response: &StoredResponse,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

// Shared handles: tests and the local stack keep an `Arc` to look inside an adapter while the
// service owns another.
impl<T: UserStore> UserStore for std::sync::Arc<T> {
    fn insert(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert(user)
    }

    fn get(&self, id: Uuid) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
        (**self).get(id)
    }

    fn find_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send {
        (**self).find_by_email(email)
    }

    fn claim_publish(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).claim_publish(id, now, until)
    }

    fn mark_published(&self, id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).mark_published(id)
    }

    fn release_publish(&self, id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release_publish(id)
    }
}

impl<T: EventPublisher> EventPublisher for std::sync::Arc<T> {
    fn publish(
        &self,
        event: &UserCreated,
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).publish(event)
    }
}
