//! Lambda entry point: reads config, builds the SDK clients once, and serves the router.

use std::sync::Arc;

use user_service::adapters::{aws_service, load_sdk_config};
use user_service::{http, lambda, Config};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;

    let sdk_config = load_sdk_config().await;
    let service = aws_service(&sdk_config, &config);

    lambda_http::lambda_runtime::run(lambda::handler(http::router(Arc::new(service)))).await
}
