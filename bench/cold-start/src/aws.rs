//! A local AWS endpoint that answers at once, with the smallest valid answer, every call
//! the two functions make: DynamoDB and EventBridge (AWS JSON, chosen by `X-Amz-Target`)
//! and SES v2 `SendEmail` (REST JSON). Anything else is answered 400 and counted, so a run
//! that strays from the happy path is reported instead of measured.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use uuid::Uuid;

const DYNAMODB_JSON: &str = "application/x-amz-json-1.0";
const EVENTBRIDGE_JSON: &str = "application/x-amz-json-1.1";

/// The running stub and the calls it has answered, by operation.
pub(crate) struct AwsStub {
    address: SocketAddr,
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
    server: JoinHandle<()>,
}

impl AwsStub {
    /// Starts serving on a free loopback port.
    pub(crate) async fn start() -> std::io::Result<Self> {
        let calls = Arc::new(Mutex::new(BTreeMap::new()));
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&calls));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("aws stub stopped: {error}");
            }
        });
        Ok(Self {
            address,
            calls,
            server,
        })
    }

    /// The URL for `AWS_ENDPOINT_URL`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Takes the counts of calls answered since the last take.
    pub(crate) fn take_calls(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for AwsStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(calls): State<Arc<Mutex<BTreeMap<String, u64>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    // Read so that the connection stays reusable, as it would against AWS.
    _body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok());
    let (operation, response) = match target {
        Some(
            target @ ("DynamoDB_20120810.TransactWriteItems"
            | "DynamoDB_20120810.PutItem"
            | "DynamoDB_20120810.UpdateItem"
            | "DynamoDB_20120810.GetItem"
            | "DynamoDB_20120810.DeleteItem"),
        ) => (target.to_owned(), json(DYNAMODB_JSON, "{}".to_owned())),
        Some(target @ "AWSEvents.PutEvents") => {
            let body = format!(
                r#"{{"FailedEntryCount":0,"Entries":[{{"EventId":"{}"}}]}}"#,
                Uuid::now_v7()
            );
            (target.to_owned(), json(EVENTBRIDGE_JSON, body))
        }
        None if method == Method::POST && uri.path() == "/v2/email/outbound-emails" => {
            let body = format!(r#"{{"MessageId":"{}"}}"#, Uuid::now_v7());
            ("SESv2.SendEmail".to_owned(), json("application/json", body))
        }
        Some(target) => (format!("unexpected {target}"), unknown()),
        None => (format!("unexpected {method} {}", uri.path()), unknown()),
    };

    *calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(operation)
        .or_default() += 1;
    response
}

fn json(content_type: &'static str, body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(&Uuid::now_v7().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn unknown() -> Response {
    let mut response = json(
        DYNAMODB_JSON,
        r#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#.to_owned(),
    );
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}
