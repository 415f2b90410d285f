//! Adapters for the ports: DynamoDB and EventBridge for Lambda, in-memory for the local
//! stack and tests.

pub mod dynamodb;
pub mod eventbridge;
pub mod memory;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::config::{Config, PublishPolicy};
use crate::service::UserService;
use dynamodb::{DynamoDbIdempotencyStore, DynamoDbUserStore};
use eventbridge::EventBridgePublisher;

/// The service as Lambda runs it: users in DynamoDB, events to EventBridge.
pub type AwsUserService =
    UserService<DynamoDbUserStore, EventBridgePublisher, DynamoDbIdempotencyStore>;

/// Loads the AWS configuration the standard way (environment, `AWS_ENDPOINT_URL`, the
/// credential chain), with an HTTPS client on rustls and ring.
pub async fn load_sdk_config() -> SdkConfig {
    // ring rather than the SDK's default aws-lc: the same TLS for a much smaller bootstrap.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// Builds the service over DynamoDB and EventBridge clients made once from `sdk_config`.
pub fn aws_service(sdk_config: &SdkConfig, config: &Config) -> AwsUserService {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk_config);
    // Publish retries are the service's (PublishPolicy), so the SDK's are off for this client.
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(sdk_config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );

    UserService::new(
        DynamoDbUserStore::new(dynamodb.clone(), &config.users_table),
        EventBridgePublisher::new(eventbridge, &config.event_bus_name),
        DynamoDbIdempotencyStore::new(dynamodb, &config.users_table),
        PublishPolicy::default(),
    )
}

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
