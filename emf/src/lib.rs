//! CloudWatch Embedded Metric Format (EMF): a metric is a JSON line on stdout that
//! CloudWatch Logs turns into a metric, so counting costs no API call and no extra client.
//!
//! Every metric goes into one namespace with a `Service` dimension. Only counts are needed
//! here, so only counts are supported.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// The namespace every metric of the product is published in.
pub const NAMESPACE: &str = "EdTechOnboarding";

/// A source of count metrics for one service.
#[derive(Clone, Copy, Debug)]
pub struct Metrics {
    service: &'static str,
}

impl Metrics {
    /// Metrics with `Service` set to `service`.
    pub const fn new(service: &'static str) -> Self {
        Self { service }
    }

    /// Emits `value` for the count metric `name`, as one EMF line on stdout.
    pub fn count(&self, name: &str, value: u64) {
        // println! rather than a raw stdout handle so that test harnesses capture it.
        println!("{}", self.line(name, value, now_millis()));
    }

    /// The EMF line for a count at `timestamp_ms` (milliseconds since the Unix epoch).
    pub fn line(&self, name: &str, value: u64, timestamp_ms: u64) -> String {
        let mut line = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Service"]],
                    "Metrics": [{ "Name": name, "Unit": "Count" }],
                }],
            },
            "Service": self.service,
        });
        line[name] = value.into();
        line.to_string()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn writes_a_count_in_embedded_metric_format() {
        let line = Metrics::new("user-service").line("UsersCreated", 1, 1_796_299_200_000);

        let emf: Value = serde_json::from_str(&line).expect("one JSON object");
        let directive = &emf["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(emf["_aws"]["Timestamp"], 1_796_299_200_000_u64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Service"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{ "Name": "UsersCreated", "Unit": "Count" }])
        );
        assert_eq!(emf["Service"], "user-service");
        assert_eq!(emf["UsersCreated"], 1);
        assert!(!line.contains('\n'));
    }
}
