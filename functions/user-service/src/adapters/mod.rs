//! Adapters for the ports: DynamoDB and EventBridge for Lambda, in-memory for the local
//! stack and tests.

pub mod dynamodb;
pub mod eventbridge;
pub mod memory;

/// SDK client configuration whose calls are answered by aws-smithy-mocks rules, in order.
#[cfg(test)]
macro_rules! mock_config {
    ($sdk:ident, $($rule:expr),+) => {{
        let interceptor = aws_smithy_mocks::MockResponseInterceptor::new()
            .rule_mode(aws_smithy_mocks::RuleMode::Sequential)
            $(.with_rule($rule))+;
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new("test", "test", None, None, "mock"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .interceptor(interceptor)
            .build()
    }};
}

#[cfg(test)]
pub(crate) use mock_config;

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
