//! The notification function: consumes `UserCreated` from EventBridge and sends exactly one
//! welcome email per event through SES v2.
//!
//! [`handler::Notifier`] is the whole function; Lambda runs it through lambda_runtime and
//! the local stack calls it in-process. Email and de-duplication go through the [`ports`],
//! with adapters in [`adapters`].

pub mod adapters;
pub mod config;
pub mod email;
pub mod error;
pub mod handler;
pub mod ports;

pub use config::{Config, DedupPolicy, EmailConfig};
pub use error::NotificationError;
pub use handler::{Notifier, Outcome};
