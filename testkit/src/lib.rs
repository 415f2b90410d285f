//! Test helpers shared by the workspace's test suites: the field cases, a proptest strategy
//! for arbitrary JSON, and SDK client configuration answered by aws-smithy-mocks rules.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;

#[doc(hidden)]
pub use aws_smithy_mocks;

/// One field case: the file it came from and its JSON (`about`, `expect`, `event`, ...).
#[derive(Clone, Debug)]
pub struct Case {
    /// Where the case was read from, for failure messages.
    pub path: PathBuf,
    /// The whole case.
    pub json: Value,
}

impl Case {
    /// The Lambda event the case delivers.
    pub fn event(&self) -> &Value {
        &self.json["event"]
    }

    /// What the case expects.
    pub fn expect(&self) -> &Value {
        &self.json["expect"]
    }

    /// The file name, for failure messages.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// The folder of field cases of one kind (`http`, `eventbridge`): `shared/cases/<kind>`
/// beside the repository where that folder exists (the maintained originals), otherwise the
/// copy in `tests/cases/<kind>`, so that a checkout on its own runs them too.
pub fn cases_dir(kind: &str) -> PathBuf {
    let beside = repository().join("../shared/cases").join(kind);
    if beside.is_dir() {
        beside
    } else {
        copy_dir(kind)
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_dir(kind: &str) -> PathBuf {
    repository().join("tests/cases").join(kind)
}

/// Every case of one kind, sorted by file name.
///
/// # Panics
/// When the folder is missing, empty or holds a file that is not JSON: the suites that use
/// the cases must fail rather than pass on nothing.
pub fn cases(kind: &str) -> Vec<Case> {
    let folder = cases_dir(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", folder.display()))
        .map(|entry| entry.expect("a readable folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no cases in {}", folder.display());

    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable case");
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()));
            Case { path, json }
        })
        .collect()
}

/// Any JSON value, nested a few levels deep, with strings of any characters: the
/// property tests' stand-in for whatever a caller might send.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// SDK client configuration whose calls are answered, in order, by aws-smithy-mocks rules:
/// `mock_config!(aws_sdk_sesv2, &rule_a, &rule_b)`. The SDK's own retries are off, so a
/// test sees every attempt its code makes.
#[macro_export]
macro_rules! mock_config {
    ($sdk:ident, $($rule:expr),+ $(,)?) => {{
        let interceptor = $crate::aws_smithy_mocks::MockResponseInterceptor::new()
            .rule_mode($crate::aws_smithy_mocks::RuleMode::Sequential)
            $(.with_rule($rule))+;
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new("test", "test", None, None, "mock"))
            .http_client($crate::aws_smithy_mocks::create_mock_http_client())
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .interceptor(interceptor)
            .build()
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy in `tests/cases` must not drift from the originals where both are present.
    #[test]
    fn the_copied_cases_match_the_originals() {
        for kind in ["http", "eventbridge"] {
            let copy = read_all(&copy_dir(kind));
            assert!(!copy.is_empty(), "no copied {kind} cases");
            let originals = cases_dir(kind);
            if originals != copy_dir(kind) {
                assert_eq!(
                    read_all(&originals),
                    copy,
                    "tests/cases/{kind} differs from {}; copy the originals again",
                    originals.display()
                );
            }
        }
    }

    fn read_all(folder: &Path) -> Vec<(PathBuf, String)> {
        let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(folder)
            .expect("a readable folder")
            .map(|entry| {
                let path = entry.expect("an entry").path();
                let text = std::fs::read_to_string(&path).expect("a readable case");
                (PathBuf::from(path.file_name().expect("a file name")), text)
            })
            .collect();
        files.sort();
        files
    }
}
