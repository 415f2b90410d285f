//! Adapters for the ports: SES v2 and DynamoDB for Lambda, in-memory for the local stack
//! and tests.

pub mod dynamodb;
pub mod memory;
pub mod ses;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

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
