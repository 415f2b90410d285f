//! What the HTTP fuzz targets share: serving a Lambda request with the real user service over
//! in-memory adapters, the promises every answer must keep, and the event that carries a
//! create-user body.

use std::sync::{Arc, OnceLock};

use tower::ServiceExt;
use user_service::adapters::memory::{
    InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
};
use user_service::http::router;
use user_service::lambda::lambda_service;
use user_service::{PublishPolicy, UserService};

/// The answer to one request, and what the request left in the adapters.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` of the response, if any.
    pub content_type: Option<Vec<u8>>,
    /// How many events were published.
    pub published: usize,
    /// How many users were stored.
    pub stored: usize,
}

impl Answer {
    /// Panics unless the answer keeps the API's promises: no 5xx, every error is
    /// `application/problem+json`, and a rejected request publishes and stores nothing.
    pub fn check(&self) {
        assert!(self.status < 500, "server error: {self:?}");
        if self.status >= 400 {
            assert_eq!(
                self.content_type.as_deref(),
                Some(&b"application/problem+json"[..]),
                "an error that is not problem+json: {self:?}"
            );
            assert_eq!(self.published, 0, "a rejected request published: {self:?}");
            assert_eq!(self.stored, 0, "a rejected request stored a user: {self:?}");
        } else {
            assert!(self.published <= 1, "more than one event: {self:?}");
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Serves one request with a fresh service over empty in-memory adapters.
pub fn serve(request: lambda_http::Request) -> Answer {
    let publisher = Arc::new(RecordingPublisher::new());
    let store = Arc::new(InMemoryUserStore::new());
    let service = UserService::new(
        Arc::clone(&store),
        Arc::clone(&publisher),
        InMemoryIdempotencyStore::new(),
        PublishPolicy::default(),
    );
    let service = lambda_service(router(Arc::new(service)));

    let (status, content_type) = runtime().block_on(async {
        let response = service.oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| value.as_bytes().to_vec());
        // Read the body too: a response body that fails to stream is a failure as well.
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an in-memory body");
        (status, content_type)
    });

    Answer {
        status,
        content_type,
        published: publisher.published().len(),
        stored: store.len(),
    }
}

/// An HTTP API (payload 2.0) `POST /users` event carrying `body` as API Gateway sends it:
/// as text when it is UTF-8, base64-encoded otherwise.
pub fn post_users_event(body: &[u8]) -> String {
    use base64::Engine;

    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/users",
        "rawQueryString": "",
        "headers": { "content-type": "application/json" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": "/users",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "fuzz"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1_796_299_200_000_u64
        },
        "isBase64Encoded": encoded,
        "body": body
    })
    .to_string()
}
