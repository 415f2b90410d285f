//! Everything a request can fail with, and the one place those failures become HTTP
//! responses: RFC 9457 problem details with a stable `type` per kind of problem.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ports::{PublishError, StoreError};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client is asked to wait before retrying a create whose event is pending.
pub const RETRY_AFTER_SECS: u64 = 5;

/// One field of the request that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field in dot notation, e.g. `profile.firstName`.
    pub field: String,
    /// What is wrong with it, safe to show to the client.
    pub message: String,
}

impl FieldError {
    /// Creates a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A request that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is JSON but its fields are wrong; every failing field is listed.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// The body cannot be read as one JSON object.
    #[error("{reason}")]
    MalformedBody {
        /// Why the body could not be read, as a sentence safe to show to the client.
        reason: String,
    },
    /// The body is not declared as JSON.
    #[error("the request content type is not JSON")]
    UnsupportedMediaType,
    /// The body exceeds the size limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No route matches the path.
    #[error("no route matches the path")]
    RouteNotFound,
    /// The route exists but not for this method; the router adds the `Allow` header.
    #[error("the method is not allowed on this route")]
    MethodNotAllowed,
    /// The path segment cannot be a user id.
    #[error("the user id is not a valid id")]
    InvalidUserId,
    /// No user has this id.
    #[error("no user has this id")]
    UserNotFound,
    /// Another user already has this email address.
    #[error("a user with this email address already exists")]
    EmailTaken,
    /// The `Idempotency-Key` header is malformed.
    #[error("the Idempotency-Key header must be 1 to 255 visible ASCII characters")]
    InvalidIdempotencyKey,
    /// The `Idempotency-Key` was used before with a different body.
    #[error("the Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// The user is stored but its UserCreated event could not be published yet.
    #[error("the user's UserCreated event could not be published")]
    EventPending(#[source] PublishError),
    /// The store failed.
    #[error("the user store failed")]
    Store(#[from] StoreError),
}

/// The problem details body (RFC 9457).
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody { .. } | Self::InvalidUserId | Self::InvalidIdempotencyKey => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RouteNotFound | Self::UserNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::EmailTaken => StatusCode::CONFLICT,
            Self::EventPending(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable slug of the problem type; the `type` URI is built from it.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation-failed",
            Self::MalformedBody { .. } => "malformed-body",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::RouteNotFound => "route-not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::InvalidUserId => "invalid-user-id",
            Self::UserNotFound => "user-not-found",
            Self::EmailTaken => "email-taken",
            Self::InvalidIdempotencyKey => "invalid-idempotency-key",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::EventPending(_) => "event-pending",
            Self::Store(_) => "internal-error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Validation(_) => "Invalid request fields",
            Self::MalformedBody { .. } => "Malformed request body",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::PayloadTooLarge { .. } => "Request body too large",
            Self::RouteNotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::InvalidUserId => "Invalid user id",
            Self::UserNotFound => "User not found",
            Self::EmailTaken => "Email address already registered",
            Self::InvalidIdempotencyKey => "Invalid Idempotency-Key",
            Self::IdempotencyKeyReused => "Idempotency-Key reused",
            Self::EventPending(_) => "User created, notification pending",
            Self::Store(_) => "Internal error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::UnsupportedMediaType => {
                "Send the body as application/json (or an application/*+json type), in UTF-8."
                    .to_owned()
            }
            Self::EventPending(_) => format!(
                "The user is stored but its welcome flow has not started yet. Retry the same \
                 request after {RETRY_AFTER_SECS} seconds to finish it."
            ),
            // Server errors say nothing about their cause; it is logged instead.
            Self::Store(_) => "The request could not be completed. Try again later.".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(problem = self.slug(), error = ?self, "request failed");
        } else {
            tracing::debug!(problem = self.slug(), "request rejected");
        }

        let errors = match &self {
            Self::Validation(errors) => errors.as_slice(),
            _ => &[],
        };
        let problem = Problem {
            kind: problem_type(self.slug()),
            title: self.title(),
            status: status.as_u16(),
            detail: self.detail(),
            errors,
        };

        let mut response = (status, problem_body(&problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Self::EventPending(_) = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

/// The `type` URI of a problem kind.
pub fn problem_type(slug: &str) -> String {
    format!("urn:problem-type:user-service:{slug}")
}

fn problem_body(problem: &Problem<'_>) -> String {
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_string(problem).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).expect("json"),
        )
    }

    #[tokio::test]
    async fn validation_problem_lists_every_field() {
        let error = ApiError::Validation(vec![
            FieldError::new("email", "is required"),
            FieldError::new("profile.firstName", "must be a string"),
        ]);

        let (status, headers, body) = body_of(error).await;

        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            body["type"],
            "urn:problem-type:user-service:validation-failed"
        );
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["errors"][1]["field"], "profile.firstName");
    }

    #[tokio::test]
    async fn server_errors_hide_their_cause() {
        let cause = StoreError::Unavailable("table users-secret is gone".into());

        let (status, _, body) = body_of(ApiError::Store(cause)).await;

        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("users-secret"), "{body}");
    }

    #[tokio::test]
    async fn pending_event_asks_the_client_to_retry() {
        let error = ApiError::EventPending(PublishError::Permanent("bus missing".into()));

        let (status, headers, body) = body_of(error).await;

        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            headers[header::RETRY_AFTER],
            RETRY_AFTER_SECS.to_string().as_str()
        );
        assert!(!body.to_string().contains("bus missing"), "{body}");
    }
}
