//! SES v2 adapter: `SendEmail` with a UTF-8 subject, text part and HTML part.
//!
//! Classification of SES errors:
//! - `TooManyRequestsException` and `LimitExceededException` are throttling: nothing was
//!   sent, so this adapter retries them itself a few times with jittered backoff.
//! - 5xx answers, timeouts, connection failures, `SendingPausedException` and
//!   `AccountSuspendedException` are transient: the invocation fails and Lambda retries.
//! - `MessageRejected`, `MailFromDomainNotVerifiedException`, `NotFoundException`,
//!   `BadRequestException` and any other 4xx mean this message will never be accepted.
//!
//! The client is built with the SDK's own retries off, so that the attempt budget is the
//! one set here.

use std::time::Duration;

use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;
use backon::{ExponentialBuilder, Retryable};

use crate::email::WelcomeEmail;
use crate::ports::{EmailSender, SendError};

const CHARSET: &str = "UTF-8";

/// How the adapter retries throttling.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleRetry {
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    /// Delay before the first retry; doubled each time, with jitter.
    pub min_delay: Duration,
    /// Cap on any one delay.
    pub max_delay: Duration,
}

impl Default for ThrottleRetry {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// Sends email through SES v2.
#[derive(Clone, Debug)]
pub struct SesEmailSender {
    client: Client,
    retry: ThrottleRetry,
}

impl SesEmailSender {
    /// A sender using a client built once at start-up.
    pub fn new(client: Client, retry: ThrottleRetry) -> Self {
        Self { client, retry }
    }

    async fn send_once(&self, email: &WelcomeEmail) -> Result<String, SendError> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(
                Body::builder()
                    .text(utf8(&email.text)?)
                    .html(utf8(&email.html)?)
                    .build(),
            )
            .build();

        let output = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(classify)?;

        Ok(output.message_id.unwrap_or_default())
    }
}

impl EmailSender for SesEmailSender {
    async fn send(&self, email: &WelcomeEmail) -> Result<String, SendError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_attempts.saturating_sub(1))
            .with_jitter();

        (|| self.send_once(email))
            .retry(backoff)
            .when(|error| matches!(error, SendError::Throttled(_)))
            .notify(
                |error, delay| tracing::warn!(error = ?error, ?delay, "email throttled, retrying"),
            )
            .await
    }
}

fn utf8(data: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset(CHARSET)
        .build()
        .map_err(|error| SendError::Rejected {
            code: "InvalidContent".into(),
            source: Box::new(error),
        })
}

fn classify(error: SdkError<SendEmailError, HttpResponse>) -> SendError {
    let server_error = error
        .raw_response()
        .is_some_and(|raw| raw.status().is_server_error());
    let code = error.code().map(str::to_owned);
    let service_error = matches!(error, SdkError::ServiceError(_));

    match code.as_deref() {
        Some("TooManyRequestsException" | "LimitExceededException" | "Throttling") => {
            SendError::Throttled(Box::new(error))
        }
        Some("SendingPausedException" | "AccountSuspendedException") => {
            SendError::Transient(Box::new(error))
        }
        _ if server_error || !service_error => SendError::Transient(Box::new(error)),
        _ => SendError::Rejected {
            code: code.unwrap_or_else(|| "Unknown".into()),
            source: Box::new(error),
        },
    }
}
