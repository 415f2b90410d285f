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
