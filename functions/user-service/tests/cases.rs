//! Every HTTP field case (`testkit::cases`) through the service lambda_http runs,
//! each with a fresh store: the status it expects, a problem+json body naming each field
//! it lists, and nothing published when the request is rejected.

use std::sync::Arc;

use serde_json::Value;
use tower::ServiceExt;
use user_service::adapters::memory::{
    InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
};
use user_service::http::router;
use user_service::lambda::{lambda_service, request_from_event};
use user_service::{PublishPolicy, UserService};

#[tokio::test]
async fn every_http_case_gets_its_expected_answer() {
    for case in testkit::cases("http") {
        let name = case.name();
        let publisher = Arc::new(RecordingPublisher::new());
        let store = Arc::new(InMemoryUserStore::new());
        let service = UserService::new(
            Arc::clone(&store),
            Arc::clone(&publisher),
            InMemoryIdempotencyStore::new(),
            PublishPolicy::default(),
        );
        let service = lambda_service(router(Arc::new(service)));
        let request = request_from_event(&case.event().to_string())
            .unwrap_or_else(|error| panic!("{name}: lambda_http cannot read the event: {error}"));

        let response = service.oneshot(request).await.expect("infallible");

        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").cloned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let expected: Vec<u64> = case.expect()["status"]
            .as_array()
            .expect("status list")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert!(
            expected.contains(&u64::from(status)),
            "{name}: got {status}, want {expected:?}: {body}"
        );

        if status >= 400 {
            assert_eq!(
                content_type.as_ref().map(|v| v.as_bytes()),
                Some(&b"application/problem+json"[..]),
                "{name}"
            );
            assert_eq!(body["status"], u64::from(status), "{name}");
            assert!(
                body["type"].as_str().is_some_and(|t| !t.is_empty()),
                "{name}"
            );
            assert!(
                publisher.published().is_empty(),
                "{name}: a rejected request published"
            );
            assert!(store.is_empty(), "{name}: a rejected request stored a user");
        } else {
            assert_eq!(publisher.published().len(), 1, "{name}");
        }
        for field in case.expect()["fields"].as_array().into_iter().flatten() {
            let named = body["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|error| error["field"] == *field);
            assert!(named, "{name}: {field} not named in {body}");
        }
    }
}
