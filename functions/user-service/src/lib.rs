//! The user service: validates and creates users, stores them, and publishes `UserCreated`
//! to EventBridge.
//!
//! [`http::router`] is the whole API as one axum router. Lambda runs it through lambda_http
//! ([`lambda::handler`]); the local stack serves it over plain HTTP. Storage and
//! publishing go through the [`ports`], with adapters in [`adapters`].

pub mod adapters;
pub mod body;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod lambda;
pub mod ports;
pub mod service;
pub mod validation;

pub use config::{Config, PublishPolicy};
pub use service::UserService;
