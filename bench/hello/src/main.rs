//! The smallest useful Lambda function: echoes its input. The cold-start harness runs it as
//! the baseline, so it starts the way the real functions do (default subscriber, tokio's
//! multi-threaded runtime) and does nothing else.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();

    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
