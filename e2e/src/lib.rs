//! Test harness for the end-to-end tests: a moto server started on a free loopback port,
//! SDK configuration pointing at it, and the AWS resources the SAM template declares.
//!
//! The server is the `moto_server` named by `MOTO_SERVER` (by default the one
//! `scripts/setup` installs in `.venv/`). If it cannot be started the tests fail; they
//! never skip.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::Value;

/// The account id moto answers with.
pub const ACCOUNT_ID: &str = "123456789012";

/// The sender address used by the tests, on a domain verified in SES.
pub const SENDER: &str = "welcome@onboarding.example.com";

/// A moto server process, stopped when dropped.
pub struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers.
    ///
    /// # Panics
    /// When the server cannot be started or does not answer within 30 seconds: the
    /// end-to-end tests must fail, not skip, without it.
    pub async fn start() -> Self {
        let program = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../.venv/bin/moto_server"
                ))
            });
        let port = free_port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {} (run scripts/setup): {error}",
                    program.display()
                )
            });
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };

        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/moto-api/data.json", moto.endpoint))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "moto did not start on {}",
                moto.endpoint
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// The server's base URL, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration that sends every client's calls to this server, SigV4-signed
    /// with dummy credentials.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "e2e"),
            ))
            // moto speaks plain HTTP on loopback.
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build()
    }

    /// Every email moto's SES recorded, as objects with `source`, `destinations`, `subject`
    /// and `body` (the HTML part when both parts were sent).
    pub async fn sent_emails(&self) -> Vec<Value> {
        let data: Value = reqwest::get(format!("{}/moto-api/data.json", self.endpoint))
            .await
            .expect("moto answers")
            .json()
            .await
            .expect("moto's state is JSON");
        data["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AWS resources of one test, named uniquely so tests never share state.
#[derive(Clone, Debug)]
pub struct Stack {
    /// The custom bus.
    pub bus_name: String,
    /// The queue the rule delivers matching events to, standing in for the function.
    pub queue_url: String,
    /// The users table.
    pub users_table: String,
    /// The processed-events table.
    pub processed_events_table: String,
}

impl Stack {
    /// Creates the bus, the rule with the contract's pattern targeting a queue, both tables
    /// and a verified sender domain.
    ///
    /// # Panics
    /// When moto refuses a call.
    pub async fn create(config: &SdkConfig, name: &str) -> Self {
        let stack = Self {
            bus_name: format!("{name}-bus"),
            queue_url: String::new(),
            users_table: format!("{name}-users"),
            processed_events_table: format!("{name}-processed"),
        };
        create_table(config, &stack.users_table, "pk").await;
        create_table(config, &stack.processed_events_table, "eventId").await;

        let sqs = aws_sdk_sqs::Client::new(config);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}-deliveries"))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let stack = Self { queue_url, ..stack };
        stack.create_bus(config).await;

        let ses = aws_sdk_sesv2::Client::new(config);
        let domain = SENDER
            .split_once('@')
            .map(|(_, domain)| domain)
            .unwrap_or(SENDER);
        ses.create_email_identity()
            .email_identity(domain)
            .send()
            .await
            .expect("verify domain");
        stack
    }

    /// Creates the bus and its rule; also used to bring a deleted bus back.
    ///
    /// # Panics
    /// When moto refuses a call.
    pub async fn create_bus(&self, config: &SdkConfig) {
        let events = aws_sdk_eventbridge::Client::new(config);
        events
            .create_event_bus()
            .name(&self.bus_name)
            .send()
            .await
            .expect("create bus");
        events
            .put_rule()
            .name("user-created")
            .event_bus_name(&self.bus_name)
            .event_pattern(shared::event_pattern().to_string())
            .send()
            .await
            .expect("create rule");
        let queue_name = self.queue_url.rsplit('/').next().unwrap_or_default();
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("deliveries")
            .arn(format!("arn:aws:sqs:us-east-1:{ACCOUNT_ID}:{queue_name}"))
            .build()
            .expect("target");
        events
            .put_targets()
            .rule("user-created")
            .event_bus_name(&self.bus_name)
            .targets(target)
            .send()
            .await
            .expect("add target");
    }

    /// Deletes the bus (rule first), so that publishing to it fails.
    ///
    /// # Panics
    /// When moto refuses a call.
    pub async fn delete_bus(&self, config: &SdkConfig) {
        let events = aws_sdk_eventbridge::Client::new(config);
        events
            .remove_targets()
            .rule("user-created")
            .event_bus_name(&self.bus_name)
            .ids("deliveries")
            .send()
            .await
            .expect("remove target");
        events
            .delete_rule()
            .name("user-created")
            .event_bus_name(&self.bus_name)
            .send()
            .await
            .expect("delete rule");
        events
            .delete_event_bus()
            .name(&self.bus_name)
            .send()
            .await
            .expect("delete bus");
    }

    /// Drains the delivery queue: every envelope the rule delivered, waiting until none
    /// has arrived for `quiet`.
    ///
    /// # Panics
    /// When moto refuses a call or a message is not JSON.
    pub async fn delivered(&self, config: &SdkConfig, quiet: Duration) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(config);
        let mut envelopes = Vec::new();
        let mut last_arrival = Instant::now();
        while last_arrival.elapsed() < quiet {
            let output = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for message in output.messages() {
                let body = message.body().expect("body");
                envelopes.push(serde_json::from_str(body).expect("envelope is JSON"));
                last_arrival = Instant::now();
                if let Some(handle) = message.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
        }
        envelopes
    }
}

async fn create_table(config: &SdkConfig, name: &str, key: &str) {
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create table");
}

/// An HTTP API (payload v2) event as API Gateway delivers it to the function.
pub fn http_api_event(method: &str, path: &str, body: Option<&Value>) -> Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "content-type": "application/json", "host": "api.example.com" },
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "e2e",
            "domainName": "api.example.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "e2e"
            },
            "requestId": "e2e-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1_796_299_200_000_u64
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    })
}

fn free_port() -> u16 {
    // The port is free when we look; moto binds it a moment later. Collisions are possible
    // but rare, and show up as a start-up failure rather than a wrong result.
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
