//! The create and read use cases, and the guarantee that no user is left without its
//! `UserCreated` event.
//!
//! A new user is stored with its event id and `event_published = false`, holding a short
//! claim on publishing. The event is published with bounded retries; then the user is
//! marked published. If publishing still fails, the claim is released and the caller gets
//! [`ApiError::EventPending`] (503): the same request sent again finds the pending user,
//! takes the claim and publishes the same event id. A request that finds the email taken
//! by a published user, by a different profile, or by a create still in flight gets 409.

use std::sync::atomic::{AtomicUsize, Ordering};

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use shared::UserCreated;
use uuid::Uuid;

use crate::config::PublishPolicy;
use crate::domain::{NewUser, User};
use crate::error::ApiError;
use crate::ports::{EventPublisher, IdempotencyStore, PublishError, StoreError, UserStore};

/// Business counters, as CloudWatch metrics in the product's namespace.
static METRICS: emf::Metrics = emf::Metrics::new("user-service");

/// The user service's use cases over its three ports.
pub struct UserService<S, P, I> {
    store: S,
    publisher: P,
    idempotency: I,
    policy: PublishPolicy,
}

impl<S: UserStore, P: EventPublisher, I: IdempotencyStore> UserService<S, P, I> {
    /// Builds the service; adapters and clients are created once, by the caller.
    pub fn new(store: S, publisher: P, idempotency: I, policy: PublishPolicy) -> Self {
        Self {
            store,
            publisher,
            idempotency,
            policy,
        }
    }

    /// The store of remembered `Idempotency-Key` responses.
    pub fn idempotency(&self) -> &I {
        &self.idempotency
    }

    /// Creates a user and publishes its `UserCreated`, or finishes a create whose event is
    /// still pending when the same request comes again.
    ///
    /// # Errors
    /// [`ApiError::EmailTaken`] when the email belongs to another request's user,
    /// [`ApiError::EventPending`] when the event could not be published yet, and
    /// [`ApiError::Store`] when the store fails.
    #[tracing::instrument(skip_all)]
    pub async fn create(&self, request: NewUser, correlation_id: &str) -> Result<User, ApiError> {
        let now = Utc::now();
        let user = User::new(request, now, self.claim_until(now));

        match self.store.insert(&user).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, event_id = %user.event_id, "user created");
                METRICS.count("UsersCreated", 1);
                self.publish(user, correlation_id).await
            }
            Err(StoreError::EmailTaken) => {
                let request = NewUser {
                    email: user.email,
                    profile: user.profile,
                };
                self.resume(request, correlation_id, now).await
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Finds a user by id.
    ///
    /// # Errors
    /// [`ApiError::UserNotFound`] when absent, [`ApiError::Store`] when the store fails.
    pub async fn get(&self, id: Uuid) -> Result<User, ApiError> {
        self.store.get(id).await?.ok_or(ApiError::UserNotFound)
    }

    /// Handles a create whose email is already taken: a retry of a create whose event is
    /// pending and unclaimed gets that user, with its event published now.
    async fn resume(
        &self,
        request: NewUser,
        correlation_id: &str,
        now: DateTime<Utc>,
    ) -> Result<User, ApiError> {
        let existing = self.store.find_by_email(&request.email).await?;
        let Some(existing) =
            existing.filter(|user| !user.event_published && user.matches(&request))
        else {
            tracing::info!("duplicate email rejected");
            METRICS.count("DuplicateEmailRejected", 1);
            return Err(ApiError::EmailTaken);
        };
        let claimed = self
            .store
            .claim_publish(existing.id, now, self.claim_until(now))
            .await?;
        if !claimed {
            tracing::info!(user_id = %existing.id, "duplicate email rejected, create in flight");
            METRICS.count("DuplicateEmailRejected", 1);
            return Err(ApiError::EmailTaken);
        }

        tracing::info!(user_id = %existing.id, event_id = %existing.event_id, "resuming pending event");
        self.publish(existing, correlation_id).await
    }

    /// Publishes the user's event with retries, then records the outcome on the user.
    async fn publish(&self, mut user: User, correlation_id: &str) -> Result<User, ApiError> {
        let event = user.created_event(correlation_id);

        let (result, attempts) = self.publish_with_retries(&event).await;
        if attempts > 1 {
            METRICS.count("EventPublishRetries", (attempts - 1) as u64);
        }
        match result {
            Ok(()) => {
                tracing::info!(user_id = %user.id, event_id = %user.event_id, attempts, "event published");
                // The event is out; failing to record that only means a later retry of the
                // same request publishes the same event id again, which consumers de-duplicate.
                if let Err(error) = self.store.mark_published(user.id).await {
                    tracing::error!(user_id = %user.id, error = ?error, "could not mark event published");
                }
                user.event_published = true;
                user.publish_claimed_until = None;
                Ok(user)
            }
            Err(error) => {
                tracing::error!(user_id = %user.id, event_id = %user.event_id, attempts, error = ?error, "event publish failed");
                METRICS.count("EventPublishFailures", 1);
                if let Err(release) = self.store.release_publish(user.id).await {
                    tracing::warn!(user_id = %user.id, error = ?release, "could not release publish claim");
                }
                Err(ApiError::EventPending(error))
            }
        }
    }

    /// Attempts to publish within the policy's bounds; also returns how many attempts it took.
    async fn publish_with_retries(&self, event: &UserCreated) -> (Result<(), PublishError>, usize) {
        let policy = &self.policy;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_attempts.saturating_sub(1))
            .with_total_delay(Some(policy.max_total_delay))
            .with_jitter();
        let attempts = AtomicUsize::new(0);

        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.publisher.publish(event)
        })
        .retry(backoff)
        .when(PublishError::is_retryable)
        .notify(|error, delay| {
            tracing::warn!(event_id = %event.metadata.event_id, error = ?error, ?delay, "retrying publish");
        })
        .await;

        (result, attempts.load(Ordering::Relaxed))
    }

    fn claim_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.policy.claim_duration
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use shared::Profile;

    use super::*;
    use crate::adapters::memory::{
        InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
    };

    type TestService =
        UserService<Arc<InMemoryUserStore>, Arc<RecordingPublisher>, InMemoryIdempotencyStore>;

    fn fast_policy() -> PublishPolicy {
        PublishPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_total_delay: Duration::from_millis(50),
            claim_duration: Duration::from_secs(15),
        }
    }

    fn service() -> (TestService, Arc<InMemoryUserStore>, Arc<RecordingPublisher>) {
        let store = Arc::new(InMemoryUserStore::new());
        let publisher = Arc::new(RecordingPublisher::new());
        let service = UserService::new(
            Arc::clone(&store),
            Arc::clone(&publisher),
            InMemoryIdempotencyStore::new(),
            fast_policy(),
        );
        (service, store, publisher)
    }

    fn ada() -> NewUser {
        NewUser {
            email: "ada@example.com".into(),
            profile: Profile {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
            },
        }
    }

    fn transient() -> PublishError {
        PublishError::Transient("throttled".into())
    }

    #[tokio::test]
    async fn creates_a_user_and_publishes_its_event_once() {
        let (service, store, publisher) = service();

        let user = service.create(ada(), "corr-1").await.expect("created");

        let published = publisher.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].metadata.event_id, user.event_id);
        assert_eq!(published[0].metadata.correlation_id, "corr-1");
        assert_eq!(published[0].payload.user_id, user.id);
        let stored = store.get(user.id).await.expect("store").expect("stored");
        assert!(stored.event_published);
    }

    #[tokio::test]
    async fn retries_transient_failures_within_the_budget() {
        let (service, _, publisher) = service();
        publisher.fail_next(transient());
        publisher.fail_next(transient());

        service
            .create(ada(), "corr-1")
            .await
            .expect("third attempt succeeds");

        assert_eq!(publisher.published().len(), 1);
    }

    #[tokio::test]
    async fn does_not_retry_a_permanent_failure() {
        let (service, _, publisher) = service();
        publisher.fail_next(PublishError::Permanent("bad detail".into()));

        let error = service.create(ada(), "corr-1").await.expect_err("pending");

        assert!(matches!(error, ApiError::EventPending(_)));
        assert!(publisher.published().is_empty());
    }

    #[tokio::test]
    async fn keeps_the_user_pending_when_publishing_keeps_failing() {
        let (service, store, publisher) = service();
        for _ in 0..3 {
            publisher.fail_next(transient());
        }

        let error = service.create(ada(), "corr-1").await.expect_err("pending");

        assert!(matches!(error, ApiError::EventPending(_)));
        assert!(publisher.published().is_empty());
        let stored = store
            .find_by_email("ada@example.com")
            .await
            .expect("store")
            .expect("kept");
        assert!(!stored.event_published);
        assert_eq!(
            stored.publish_claimed_until, None,
            "claim released for the retry"
        );
    }

    #[tokio::test]
    async fn a_retried_request_publishes_the_pending_event_with_its_original_id() {
        let (service, store, publisher) = service();
        for _ in 0..3 {
            publisher.fail_next(transient());
        }
        service.create(ada(), "corr-1").await.expect_err("pending");
        let pending = store
            .find_by_email("ada@example.com")
            .await
            .expect("store")
            .expect("kept");

        let user = service.create(ada(), "corr-2").await.expect("finished");

        assert_eq!(user.id, pending.id);
        assert_eq!(store.len(), 1);
        let published = publisher.published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].metadata.event_id, pending.event_id);
        assert_eq!(published[0].metadata.occurred_at, pending.created_at);
    }

    #[tokio::test]
    async fn a_second_create_of_a_published_user_is_a_conflict() {
        let (service, _, publisher) = service();
        service.create(ada(), "corr-1").await.expect("created");

        let error = service
            .create(ada(), "corr-2")
            .await
            .expect_err("duplicate");

        assert!(matches!(error, ApiError::EmailTaken));
        assert_eq!(publisher.published().len(), 1);
    }

    #[tokio::test]
    async fn a_pending_user_with_another_profile_is_a_conflict() {
        let (service, _, publisher) = service();
        for _ in 0..3 {
            publisher.fail_next(transient());
        }
        service.create(ada(), "corr-1").await.expect_err("pending");
        let mut other = ada();
        other.profile.first_name = "Augusta".into();

        let error = service.create(other, "corr-2").await.expect_err("conflict");

        assert!(matches!(error, ApiError::EmailTaken));
        assert!(publisher.published().is_empty());
    }

    #[tokio::test]
    async fn a_create_in_flight_is_not_overtaken() {
        let (service, store, publisher) = service();
        let now = Utc::now();
        let in_flight = User::new(ada(), now, now + Duration::from_secs(15));
        store.insert(&in_flight).await.expect("inserted");

        let error = service
            .create(ada(), "corr-2")
            .await
            .expect_err("in flight");

        assert!(matches!(error, ApiError::EmailTaken));
        assert!(publisher.published().is_empty());
    }

    #[tokio::test]
    async fn an_expired_claim_of_a_crashed_create_is_taken_over() {
        let (service, store, publisher) = service();
        let long_ago = Utc::now() - Duration::from_secs(60);
        let crashed = User::new(ada(), long_ago, long_ago + Duration::from_secs(15));
        store.insert(&crashed).await.expect("inserted");

        let user = service.create(ada(), "corr-2").await.expect("taken over");

        assert_eq!(user.id, crashed.id);
        assert_eq!(publisher.published()[0].metadata.event_id, crashed.event_id);
    }
}
