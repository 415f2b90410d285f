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
    // Timeouts, connection failures and unreadable answers: nothing says the call failed
    // for good.
    let Some(service_error) = error.as_service_error() else {
        return SendError::Transient(Box::new(error));
    };

    if service_error.is_too_many_requests_exception() || service_error.is_limit_exceeded_exception()
    {
        return SendError::Throttled(Box::new(error));
    }
    let server_error = error
        .raw_response()
        .is_some_and(|raw| raw.status().is_server_error());
    if server_error
        || service_error.is_sending_paused_exception()
        || service_error.is_account_suspended_exception()
    {
        return SendError::Transient(Box::new(error));
    }

    let code = service_error
        .code()
        .map_or_else(|| variant_name(service_error), str::to_owned);
    SendError::Rejected {
        code,
        source: Box::new(error),
    }
}

fn variant_name(error: &SendEmailError) -> String {
    let name = match error {
        SendEmailError::MessageRejected(_) => "MessageRejected",
        SendEmailError::MailFromDomainNotVerifiedException(_) => {
            "MailFromDomainNotVerifiedException"
        }
        SendEmailError::NotFoundException(_) => "NotFoundException",
        SendEmailError::BadRequestException(_) => "BadRequestException",
        _ => "Unknown",
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use aws_sdk_sesv2::operation::send_email::SendEmailOutput;
    use aws_sdk_sesv2::types::error::{MessageRejected, TooManyRequestsException};
    use aws_smithy_mocks::{mock, Rule};
    use shared::{Profile, UserCreatedPayload};
    use uuid::Uuid;

    use super::*;
    use crate::config::EmailConfig;

    fn sender(rule: &Rule) -> SesEmailSender {
        let client = Client::from_conf(testkit::mock_config!(aws_sdk_sesv2, rule));
        let retry = ThrottleRetry {
            max_attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        SesEmailSender::new(client, retry)
    }

    fn email() -> WelcomeEmail {
        let payload = UserCreatedPayload {
            user_id: Uuid::nil(),
            email: "ada@example.com".into(),
            profile: Profile {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
            },
        };
        let config = EmailConfig {
            sender: "hello@example.com".into(),
            product_name: "Acme".into(),
        };
        WelcomeEmail::render(&payload, &config)
    }

    fn throttled() -> SendEmailError {
        SendEmailError::TooManyRequestsException(TooManyRequestsException::builder().build())
    }

    #[tokio::test]
    async fn retries_throttling_then_sends_once() {
        let rule = mock!(Client::send_email)
            .match_requests(|request| {
                let content = request.content().and_then(|c| c.simple());
                request.from_email_address() == Some("hello@example.com")
                    && content.and_then(|m| m.subject()).and_then(|s| s.charset()) == Some(CHARSET)
                    && content
                        .and_then(|m| m.body())
                        .is_some_and(|b| b.text().is_some() && b.html().is_some())
            })
            .sequence()
            .error(throttled)
            .times(2)
            .output(|| SendEmailOutput::builder().message_id("ses-1").build())
            .build();

        let message_id = sender(&rule).send(&email()).await.expect("sent");

        assert_eq!(message_id, "ses-1");
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn gives_up_on_throttling_after_the_attempt_budget() {
        let rule = mock!(Client::send_email)
            .sequence()
            .error(throttled)
            .times(5)
            .build();

        let error = sender(&rule)
            .send(&email())
            .await
            .expect_err("still throttled");

        assert!(matches!(error, SendError::Throttled(_)));
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn a_rejected_message_is_permanent_after_one_attempt() {
        let rule = mock!(Client::send_email).then_error(|| {
            SendEmailError::MessageRejected(
                MessageRejected::builder()
                    .message("Email address is not verified")
                    .build(),
            )
        });

        let error = sender(&rule).send(&email()).await.expect_err("rejected");

        assert!(
            matches!(&error, SendError::Rejected { code, .. } if code == "MessageRejected"),
            "{error:?}"
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_server_error_is_transient_and_left_to_lambda() {
        let rule = mock!(Client::send_email)
            .sequence()
            .http_status(503, None)
            .build();

        let error = sender(&rule).send(&email()).await.expect_err("unavailable");

        assert!(matches!(error, SendError::Transient(_)), "{error:?}");
        assert_eq!(rule.num_calls(), 1);
    }
}
