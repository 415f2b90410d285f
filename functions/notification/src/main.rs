//! Lambda entry point: reads config, builds the SDK clients once, and runs the handler.

use std::sync::Arc;

use aws_sdk_sesv2::config::retry::RetryConfig;
use lambda_runtime::{service_fn, LambdaEvent};
use notification::adapters::dynamodb::DynamoDbDedupStore;
use notification::adapters::load_sdk_config;
use notification::adapters::ses::{SesEmailSender, ThrottleRetry};
use notification::{Config, DedupPolicy, Notifier};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;

    let sdk_config = load_sdk_config().await;
    // Throttling retries are the adapter's (ThrottleRetry), so the SDK's are off for SES.
    let ses = aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::config::Builder::from(&sdk_config)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config);

    let notifier = Arc::new(Notifier::new(
        SesEmailSender::new(ses, ThrottleRetry::default()),
        DynamoDbDedupStore::new(dynamodb, config.processed_events_table),
        config.email,
        DedupPolicy::default(),
    ));

    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let notifier = Arc::clone(&notifier);
        async move { notifier.handle(event.payload).await }
    }))
    .await
}
