//! Lambda entry point: reads config, builds the SDK clients once, and serves the router.

use std::sync::Arc;

use aws_sdk_eventbridge::config::retry::RetryConfig;
use user_service::adapters::dynamodb::{DynamoDbIdempotencyStore, DynamoDbUserStore};
use user_service::adapters::eventbridge::EventBridgePublisher;
use user_service::{http, lambda, Config, PublishPolicy, UserService};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;

    let sdk_config = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);
    // Publish retries are the service's (PublishPolicy), so the SDK's are off for this client.
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk_config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );

    let service = UserService::new(
        DynamoDbUserStore::new(dynamodb.clone(), &config.users_table),
        EventBridgePublisher::new(eventbridge, &config.event_bus_name),
        DynamoDbIdempotencyStore::new(dynamodb, &config.users_table),
        PublishPolicy::default(),
    );

    lambda_http::lambda_runtime::run(lambda::handler(http::router(Arc::new(service)))).await
}
