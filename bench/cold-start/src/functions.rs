//! The functions the harness measures: the hello-world baseline and the two product
//! functions, each with the environment it needs, the events it is sent and what counts as a
//! successful answer.

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// Account id in every ARN and event the harness makes up.
const ACCOUNT_ID: &str = "123456789012";

/// Region the functions are told they run in.
pub(crate) const REGION: &str = "us-east-1";

/// A function under measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Function {
    /// `bench/hello`: echoes its input; the baseline.
    Hello,
    /// `functions/user-service`, sent `POST /users` as an HTTP API (v2) event.
    UserService,
    /// `functions/notification`, sent a `UserCreated` EventBridge delivery.
    Notification,
}

impl Function {
    /// Every function, the baseline first.
    pub(crate) const ALL: [Self; 3] = [Self::Hello, Self::UserService, Self::Notification];

    /// The release binary's file name.
    pub(crate) fn binary(self) -> &'static str {
        match self {
            Self::Hello => "hello-lambda",
            Self::UserService => "user-service",
            Self::Notification => "notification",
        }
    }

    /// The timeout the deployed function has (see `template.yaml`), for the deadline header.
    pub(crate) fn timeout_secs(self) -> u64 {
        match self {
            Self::Hello => 3,
            Self::UserService => 10,
            Self::Notification => 30,
        }
    }

    /// The ARN Lambda would pass as the invoked function.
    pub(crate) fn arn(self) -> String {
        format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}",
            self.binary()
        )
    }

    /// Environment variables of the function's own configuration.
    pub(crate) fn config(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Hello => &[],
            Self::UserService => &[("EVENT_BUS_NAME", "users-bus"), ("USERS_TABLE", "users")],
            Self::Notification => &[
                ("SENDER_EMAIL", "welcome@example.com"),
                ("PRODUCT_NAME", "EdTech"),
                ("PROCESSED_EVENTS_TABLE", "processed-events"),
            ],
        }
    }

    /// The `n`th event of a run; every event is new (email, ids), so no de-duplication or
    /// uniqueness rule turns it into a no-op.
    pub(crate) fn event(self, run: usize, n: usize) -> String {
        let unique = Uuid::now_v7().simple().to_string();
        let email = format!("bench-{run}-{n}-{}@example.com", &unique[20..]);
        let event = match self {
            Self::Hello => json!({ "greeting": "hello", "run": run, "n": n }),
            Self::UserService => http_api_create_user(&email),
            Self::Notification => user_created_delivery(&email),
        };
        event.to_string()
    }

    /// Whether the function's answer is the successful one.
    pub(crate) fn succeeded(self, event: &str, answer: &[u8]) -> bool {
        let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
            return false;
        };
        match self {
            Self::Hello => serde_json::from_str::<Value>(event).is_ok_and(|sent| sent == answer),
            Self::UserService => answer["statusCode"] == 201,
            Self::Notification => answer["outcome"] == "sent",
        }
    }
}

fn http_api_create_user(email: &str) -> Value {
    let now = Utc::now();
    let body = json!({
        "email": email,
        "profile": { "firstName": "Ada", "lastName": "Lovelace" }
    });
    json!({
        "version": "2.0",
        "routeKey": "POST /users",
        "rawPath": "/users",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "api.example.com",
            "user-agent": "cold-start"
        },
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "bench",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": "POST",
                "path": "/users",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "cold-start"
            },
            "requestId": Uuid::now_v7().to_string(),
            "routeKey": "POST /users",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

fn user_created_delivery(email: &str) -> Value {
    let now = Utc::now();
    let detail = shared::UserCreated::new(
        Uuid::now_v7(),
        now,
        Uuid::now_v7().to_string(),
        shared::UserCreatedPayload {
            user_id: Uuid::now_v7(),
            email: email.to_owned(),
            profile: shared::Profile {
                first_name: "Ada".to_owned(),
                last_name: "Lovelace".to_owned(),
            },
        },
    );
    json!({
        "version": "0",
        "id": Uuid::now_v7(),
        "detail-type": shared::DETAIL_TYPE,
        "source": shared::SOURCE,
        "account": ACCOUNT_ID,
        "time": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": REGION,
        "resources": [],
        "detail": detail
    })
}
