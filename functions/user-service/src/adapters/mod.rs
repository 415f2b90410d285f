//! Adapters for the ports: DynamoDB and EventBridge for Lambda, in-memory for the local
//! stack and tests.

pub mod dynamodb;
pub mod eventbridge;
pub mod memory;
