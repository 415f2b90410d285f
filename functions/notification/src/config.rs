//! Configuration, read once from the environment at start-up.

use std::time::Duration;

/// A required setting is absent or unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set or is empty.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// The variable is set to something unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// What the welcome email says and who it comes from.
#[derive(Clone, Debug)]
pub struct EmailConfig {
    /// The verified SES identity mail is sent from (`SENDER_EMAIL`).
    pub sender: String,
    /// The product named in the subject and body (`PRODUCT_NAME`).
    pub product_name: String,
}

impl EmailConfig {
    /// Reads the email settings through `lookup`, which returns a variable's value.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or unusable.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let sender = required(lookup, "SENDER_EMAIL")?;
        if !sender.contains('@') || sender.chars().any(char::is_control) {
            return Err(ConfigError::Invalid {
                name: "SENDER_EMAIL",
                reason: "not an address",
            });
        }
        // The product name goes into the Subject header: it must stay on one line.
        let product_name = required(lookup, "PRODUCT_NAME")?;
        if product_name.chars().any(char::is_control) {
            return Err(ConfigError::Invalid {
                name: "PRODUCT_NAME",
                reason: "contains control characters",
            });
        }
        Ok(Self {
            sender,
            product_name,
        })
    }
}

/// Everything the deployed function needs to know about its surroundings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Sender and product name.
    pub email: EmailConfig,
    /// DynamoDB table of processed event ids (`PROCESSED_EVENTS_TABLE`).
    pub processed_events_table: String,
}

impl Config {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or unusable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's value.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or unusable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            email: EmailConfig::from_lookup(&lookup)?,
            processed_events_table: required(&lookup, "PROCESSED_EVENTS_TABLE")?,
        })
    }
}

fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    lookup(name)
        .filter(|value| !value.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// How long claims and records in the de-duplication store last.
#[derive(Clone, Copy, Debug)]
pub struct DedupPolicy {
    /// How long an in-progress claim holds off other deliveries: a little longer than the
    /// function timeout, so a crashed attempt's claim is free by the next retry.
    pub claim_duration: Duration,
    /// How long a completed or failed event id is remembered; longer than EventBridge's and
    /// Lambda's retry windows (24 h and 6 h).
    pub retention: Duration,
}

impl Default for DedupPolicy {
    fn default() -> Self {
        Self {
            claim_duration: Duration::from_secs(45),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn names_the_missing_variable() {
        let error = Config::from_lookup(env(&[("SENDER_EMAIL", "hello@example.com")]))
            .expect_err("incomplete");

        assert_eq!(
            error.to_string(),
            "environment variable PRODUCT_NAME is required but not set"
        );
    }

    #[test]
    fn rejects_a_product_name_that_would_break_the_subject() {
        let error = Config::from_lookup(env(&[
            ("SENDER_EMAIL", "hello@example.com"),
            ("PRODUCT_NAME", "Acme\r\nBcc: x@example.com"),
            ("PROCESSED_EVENTS_TABLE", "processed"),
        ]))
        .expect_err("header injection");

        assert!(error.to_string().contains("PRODUCT_NAME"));
    }

    #[test]
    fn reads_every_variable() {
        let config = Config::from_lookup(env(&[
            ("SENDER_EMAIL", "hello@example.com"),
            ("PRODUCT_NAME", "Acme Learning"),
            ("PROCESSED_EVENTS_TABLE", "processed"),
        ]))
        .expect("complete");

        assert_eq!(config.email.sender, "hello@example.com");
        assert_eq!(config.email.product_name, "Acme Learning");
        assert_eq!(config.processed_events_table, "processed");
    }
}
