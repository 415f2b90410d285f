//! Adapters for the ports: SES v2 and DynamoDB for Lambda, in-memory for the local stack
//! and tests.

pub mod dynamodb;
pub mod memory;
pub mod ses;
