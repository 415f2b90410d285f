//! EventBridge adapter: one `PutEvents` call per attempt, with every entry's result checked.
//!
//! `PutEvents` answers 200 even when entries fail, so success means "no entry failed",
//! never just "the call returned". Entry failures with `InternalFailure` or
//! `ThrottlingException` are transient; any other entry error code (malformed detail, bad
//! argument, access denied) is permanent. Call-level throttling, 5xx answers, timeouts and
//! connection errors are transient. Retries belong to the caller (see
//! [`crate::config::PublishPolicy`]); the client is built with the SDK's own retries off so
//! that the attempt budget is counted in one place.

use aws_sdk_eventbridge::config::http::HttpResponse;
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::put_events::PutEventsError;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use shared::UserCreated;

use crate::ports::{BoxError, EventPublisher, PublishError};

/// Entry error codes that another attempt can fix.
const TRANSIENT_ENTRY_ERRORS: [&str; 2] = ["InternalFailure", "ThrottlingException"];

/// An entry the bus did not accept.
#[derive(Debug, thiserror::Error)]
#[error("the bus rejected the entry: {code}: {message}")]
pub struct EntryRejected {
    /// The entry's error code.
    pub code: String,
    /// The entry's error message.
    pub message: String,
}

/// Publishes to a custom EventBridge bus.
#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
}

impl EventBridgePublisher {
    /// A publisher to `bus_name`, using a client built once at start-up.
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    fn entry(&self, event: &UserCreated) -> Result<PutEventsRequestEntry, PublishError> {
        let detail = serde_json::to_string(event)
            .map_err(|error| PublishError::Permanent(Box::new(error)))?;
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(shared::SOURCE)
            .detail_type(shared::DETAIL_TYPE)
            .detail(detail)
            .build())
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, event: &UserCreated) -> Result<(), PublishError> {
        let output = self
            .client
            .put_events()
            .entries(self.entry(event)?)
            .send()
            .await
            .map_err(classify_call_error)?;

        if output.failed_entry_count() == 0 {
            return Ok(());
        }
        let failure = output
            .entries()
            .iter()
            .find(|entry| entry.error_code().is_some());
        let rejected = EntryRejected {
            code: failure
                .and_then(|e| e.error_code())
                .unwrap_or("Unknown")
                .to_owned(),
            message: failure
                .and_then(|e| e.error_message())
                .unwrap_or_default()
                .to_owned(),
        };
        if TRANSIENT_ENTRY_ERRORS.contains(&rejected.code.as_str()) {
            Err(PublishError::Transient(Box::new(rejected)))
        } else {
            Err(PublishError::Permanent(Box::new(rejected)))
        }
    }
}

fn classify_call_error(error: SdkError<PutEventsError, HttpResponse>) -> PublishError {
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(context) if context.err().is_internal_exception() => true,
        SdkError::ServiceError(context) => {
            let throttled = matches!(
                context.err().code(),
                Some("ThrottlingException" | "Throttling" | "TooManyRequestsException")
            );
            throttled || context.raw().status().is_server_error()
        }
        _ => false,
    };
    let error: BoxError = Box::new(error);
    if transient {
        PublishError::Transient(error)
    } else {
        PublishError::Permanent(error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use aws_sdk_eventbridge::error::ErrorMetadata;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{mock, Rule};
    use http::StatusCode;

    use super::*;
    use crate::adapters::memory::{InMemoryIdempotencyStore, InMemoryUserStore};
    use crate::adapters::post_user;
    use crate::config::PublishPolicy;
    use crate::http::router;
    use crate::ports::UserStore;
    use crate::UserService;
    use testkit::mock_config;

    const ADA: &str =
        r#"{"email":"ada@example.com","profile":{"firstName":"Ada","lastName":"Lovelace"}}"#;

    /// Event ids of every PutEvents call a rule answered, in order.
    type Seen = Arc<Mutex<Vec<String>>>;

    fn accepted() -> PutEventsOutput {
        PutEventsOutput::builder()
            .failed_entry_count(0)
            .entries(PutEventsResultEntry::builder().event_id("eb-1").build())
            .build()
    }

    fn entry_failed(code: &str) -> PutEventsOutput {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(
                PutEventsResultEntry::builder()
                    .error_code(code)
                    .error_message("no")
                    .build(),
            )
            .build()
    }

    fn throttled() -> PutEventsError {
        PutEventsError::generic(ErrorMetadata::builder().code("ThrottlingException").build())
    }

    fn recording(
        seen: &Seen,
    ) -> impl Fn(&aws_sdk_eventbridge::operation::put_events::PutEventsInput) -> bool {
        let seen = Arc::clone(seen);
        move |request| {
            let entry = &request.entries()[0];
            let detail: UserCreated = serde_json::from_str(entry.detail().unwrap_or_default())
                .expect("detail is the contract");
            let well_formed = entry.source() == Some(shared::SOURCE)
                && entry.detail_type() == Some(shared::DETAIL_TYPE)
                && entry.event_bus_name() == Some("users-bus");
            seen.lock()
                .expect("lock")
                .push(detail.metadata.event_id.to_string());
            well_formed
        }
    }

    fn publisher(rule: &Rule) -> EventBridgePublisher {
        EventBridgePublisher::new(
            Client::from_conf(mock_config!(aws_sdk_eventbridge, rule)),
            "users-bus",
        )
    }

    fn app(rule: &Rule) -> (axum::Router, Arc<InMemoryUserStore>) {
        let store = Arc::new(InMemoryUserStore::new());
        let policy = PublishPolicy {
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_total_delay: Duration::from_millis(50),
            claim_duration: Duration::from_secs(15),
        };
        let service = UserService::new(
            Arc::clone(&store),
            publisher(rule),
            InMemoryIdempotencyStore::new(),
            policy,
        );
        (router(Arc::new(service)), store)
    }

    #[tokio::test]
    async fn a_failed_entry_in_a_200_answer_is_retried_not_reported_as_success() {
        let seen = Seen::default();
        let rule = mock!(Client::put_events)
            .match_requests(recording(&seen))
            .sequence()
            .output(|| entry_failed("InternalFailure"))
            .output(accepted)
            .build();
        let (router, _) = app(&rule);

        let (status, _) = post_user(&router, ADA).await;

        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(rule.num_calls(), 2);
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0], seen[1], "every attempt carries the same event id");
    }

    #[tokio::test]
    async fn throttling_twice_then_success_creates_the_user() {
        let rule = mock!(Client::put_events)
            .sequence()
            .error(throttled)
            .times(2)
            .output(accepted)
            .build();
        let (router, _) = app(&rule);

        let (status, _) = post_user(&router, ADA).await;

        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn persistent_failure_answers_503_and_a_retry_publishes_the_original_event_once() {
        let seen = Seen::default();
        let rule = mock!(Client::put_events)
            .match_requests(recording(&seen))
            .sequence()
            .output(|| entry_failed("InternalFailure"))
            .times(3)
            .output(accepted)
            .build();
        let (router, store) = app(&rule);

        let (status, problem) = post_user(&router, ADA).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        let pending = store
            .find_by_email("ada@example.com")
            .await
            .expect("store")
            .expect("kept");
        assert!(!pending.event_published);

        let (status, user) = post_user(&router, ADA).await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        assert_eq!(user["id"], pending.id.to_string());
        assert_eq!(store.len(), 1);
        assert_eq!(
            rule.num_calls(),
            4,
            "three failed attempts, then one publish"
        );
        let stored = store.get(pending.id).await.expect("store").expect("user");
        assert!(stored.event_published);
        let seen = seen.lock().expect("lock");
        assert!(
            seen.iter().all(|id| *id == pending.event_id.to_string()),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn classifies_entry_and_call_failures() {
        let cases: [(Rule, bool); 4] = [
            (
                mock!(Client::put_events).then_output(|| entry_failed("MalformedDetail")),
                false,
            ),
            (
                mock!(Client::put_events).then_output(|| entry_failed("ThrottlingException")),
                true,
            ),
            (mock!(Client::put_events).then_error(throttled), true),
            (
                mock!(Client::put_events)
                    .sequence()
                    .http_status(500, None)
                    .build(),
                true,
            ),
        ];
        let event: UserCreated = serde_json::from_str(include_str!(
            "../../../../shared/tests/fixtures/user-created.detail.json"
        ))
        .expect("fixture");

        for (rule, retryable) in cases {
            let error = publisher(&rule).publish(&event).await.expect_err("failed");
            assert_eq!(error.is_retryable(), retryable, "{error:?}");
        }
    }
}
