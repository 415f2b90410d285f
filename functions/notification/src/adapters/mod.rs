//! Adapters for the ports: SES v2 and DynamoDB for Lambda, in-memory for the local stack
//! and tests.

pub mod dynamodb;
pub mod memory;
pub mod ses;

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
