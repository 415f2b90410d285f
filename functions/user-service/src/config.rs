//! Configuration, read once from the environment at start-up.

use std::time::Duration;

/// A required setting is absent or unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set or is empty.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
}

/// Everything the deployed function needs to know about its surroundings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Name of the custom EventBridge bus (`EVENT_BUS_NAME`).
    pub event_bus_name: String,
    /// Name of the DynamoDB table holding users, email claims and idempotency records
    /// (`USERS_TABLE`).
    pub users_table: String,
}

impl Config {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] naming the first variable that is not set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's value.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] naming the first variable that is not set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };

        Ok(Self {
            event_bus_name: required("EVENT_BUS_NAME")?,
            users_table: required("USERS_TABLE")?,
        })
    }
}

/// How hard the service tries to publish an event before answering 503.
///
/// The defaults keep the worst case near three seconds, well inside the function's timeout,
/// so a request never dies half-way through its retries.
#[derive(Clone, Copy, Debug)]
pub struct PublishPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    /// Delay before the first retry; doubled each time, with jitter.
    pub min_delay: Duration,
    /// Cap on any one delay.
    pub max_delay: Duration,
    /// Cap on the sum of all delays.
    pub max_total_delay: Duration,
    /// How long a request's claim on a pending event lasts; longer than the whole retry
    /// budget, so a live request is never overtaken, and short enough that a retry after a
    /// crash can take over soon.
    pub claim_duration: Duration,
}

impl Default for PublishPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_total_delay: Duration::from_secs(3),
            claim_duration: Duration::from_secs(15),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_variable() {
        let error = Config::from_lookup(|name| (name == "USERS_TABLE").then(|| "users".into()))
            .expect_err("bus is missing");

        assert_eq!(
            error.to_string(),
            "environment variable EVENT_BUS_NAME is required but not set"
        );
    }

    #[test]
    fn treats_an_empty_variable_as_missing() {
        let error = Config::from_lookup(|name| match name {
            "EVENT_BUS_NAME" => Some("bus".into()),
            _ => Some(" ".into()),
        })
        .expect_err("table is blank");

        assert!(error.to_string().contains("USERS_TABLE"));
    }

    #[test]
    fn reads_every_variable() {
        let config = Config::from_lookup(|name| Some(name.to_lowercase())).expect("complete");

        assert_eq!(config.event_bus_name, "event_bus_name");
        assert_eq!(config.users_table, "users_table");
    }
}
