//! Why a delivery failed, and whether Lambda retrying it can help.
//!
//! Lambda retries a failed asynchronous invocation whatever the error, so the error type
//! reported to the runtime says which kind it is (`Permanent.*` or `Retryable.*`), and a
//! permanent failure is recorded in the de-duplication store so that the retries fail fast
//! without reaching SES and the event ends in the on-failure destination.

use lambda_runtime::Diagnostic;

use crate::ports::BoxError;

/// A delivery that did not end in a sent email or a skipped duplicate.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The input is not an EventBridge envelope carrying a valid `UserCreated` detail.
    #[error("the event is not a valid UserCreated: {0}")]
    Malformed(String),
    /// A well-formed event of a kind this function does not handle.
    #[error("unexpected event: source {event_source:?}, detail-type {detail_type:?}")]
    Unexpected {
        /// The envelope's `source`.
        event_source: String,
        /// The envelope's `detail-type`.
        detail_type: String,
    },
    /// A `UserCreated` of a version this code cannot read.
    #[error("unsupported UserCreated version {0}")]
    UnsupportedVersion(u32),
    /// SES refused the message for good (rejected, unverified sender, bad address).
    #[error("the email was rejected by the provider: {code}")]
    Rejected {
        /// The provider's error code; its message may contain the address and is not shown.
        code: String,
        /// The provider's error.
        #[source]
        source: BoxError,
    },
    /// An earlier delivery of this event failed permanently; nothing is sent again.
    #[error("this event already failed permanently; not sending again")]
    PreviouslyFailed,
    /// Another delivery of this event holds an unexpired claim.
    #[error("another delivery of this event is in progress")]
    InProgress,
    /// Throttling, a 5xx answer or a timeout from the email provider.
    #[error("sending failed and may succeed when retried")]
    SendFailed(#[source] BoxError),
    /// The de-duplication store failed.
    #[error("the de-duplication store failed")]
    Store(#[source] BoxError),
}

impl NotificationError {
    /// Whether a later attempt at the same event can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::InProgress | Self::SendFailed(_) | Self::Store(_)
        )
    }

    /// A short name for the kind of failure, used in the error type and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "MalformedEvent",
            Self::Unexpected { .. } => "UnexpectedEvent",
            Self::UnsupportedVersion(_) => "UnsupportedVersion",
            Self::Rejected { .. } => "EmailRejected",
            Self::PreviouslyFailed => "PreviouslyFailed",
            Self::InProgress => "InProgress",
            Self::SendFailed(_) => "SendFailed",
            Self::Store(_) => "StoreFailed",
        }
    }

    /// The error type reported to Lambda: `Permanent.<kind>` or `Retryable.<kind>`.
    pub fn error_type(&self) -> String {
        let class = if self.is_retryable() {
            "Retryable"
        } else {
            "Permanent"
        };
        format!("{class}.{}", self.kind())
    }
}

impl From<NotificationError> for Diagnostic {
    fn from(error: NotificationError) -> Self {
        Self {
            error_type: error.error_type(),
            error_message: error.to_string(),
        }
    }
}

/// A serde error message with quoted values removed: they may be personal data.
pub(crate) fn redacted(error: &serde_json::Error) -> String {
    let mut out = String::new();
    let mut in_quotes = false;
    for c in error.to_string().chars() {
        match c {
            '"' if in_quotes => {
                in_quotes = false;
                out.push_str("\"…\"");
            }
            '"' => in_quotes = true,
            _ if !in_quotes => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_kind() {
        let permanent = [
            NotificationError::Malformed("missing field `email`".into()),
            NotificationError::PreviouslyFailed,
            NotificationError::Rejected {
                code: "MessageRejected".into(),
                source: "x".into(),
            },
        ];
        let retryable = [
            NotificationError::InProgress,
            NotificationError::SendFailed("throttled".into()),
            NotificationError::Store("down".into()),
        ];

        for error in permanent {
            assert!(error.error_type().starts_with("Permanent."), "{error:?}");
        }
        for error in retryable {
            assert!(error.error_type().starts_with("Retryable."), "{error:?}");
        }
    }

    #[test]
    fn rejection_message_hides_the_provider_text() {
        let error = NotificationError::Rejected {
            code: "MessageRejected".into(),
            source: "Email address is not verified: ada@example.com".into(),
        };

        let diagnostic = Diagnostic::from(error);

        assert_eq!(diagnostic.error_type, "Permanent.EmailRejected");
        assert!(!diagnostic.error_message.contains("ada@example.com"));
    }

    #[test]
    fn redacts_quoted_values_from_serde_messages() {
        let error = serde_json::from_str::<u32>("\"ada@example.com\"").expect_err("not a number");

        let message = redacted(&error);

        assert!(!message.contains("ada@example.com"), "{message}");
        assert!(message.contains("invalid type"), "{message}");
    }
}
