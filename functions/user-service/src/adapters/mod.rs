//! Adapters for the ports: DynamoDB and EventBridge for Lambda, in-memory for the local
//! stack and tests.

pub mod dynamodb;
pub mod eventbridge;
pub mod memory;

/// Drives a router with a JSON `POST /users` and returns the status and JSON body.
#[cfg(test)]
pub(crate) async fn post_user(
    router: &axum::Router,
    body: &str,
) -> (http::StatusCode, serde_json::Value) {
    use tower::ServiceExt;

    let request = http::Request::post("/users")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_owned()))
        .expect("valid request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}
