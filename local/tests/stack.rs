//! The local stack over real HTTP on a loopback port: a signup writes exactly one welcome
//! email into the outbox, and a rejected one writes nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Stack {
    base: String,
    outbox: tempfile::TempDir,
}

async fn start() -> Stack {
    let outbox = tempfile::tempdir().expect("temp dir");
    let router = local::in_memory_router(outbox.path()).expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Stack { base, outbox }
}

fn emails(outbox: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(outbox)
        .expect("outbox exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect()
}

async fn wait_for_emails(outbox: &Path, count: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let found = emails(outbox);
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post(stack: &Stack, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = reqwest::Client::new()
        .post(format!("{}/users", stack.base))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the stack answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

#[tokio::test]
async fn a_signup_writes_one_welcome_email_within_a_second() {
    let stack = start().await;

    let ada = json!({ "email": "ada@example.com", "profile": { "firstName": "Ada", "lastName": "Lovelace" } });
    let (status, user, headers) = post(&stack, &ada).await;

    assert_eq!(status, 201, "{user}");
    assert_eq!(
        headers["location"],
        format!("/users/{}", user["id"].as_str().expect("id")).as_str()
    );
    let written = wait_for_emails(stack.outbox.path(), 1).await;
    assert_eq!(written.len(), 1);
    let eml = std::fs::read_to_string(&written[0]).expect("readable");
    assert!(eml.contains("To: ada@example.com"), "{eml}");
    assert!(eml.contains("Subject: Welcome to"), "{eml}");
    assert!(eml.contains("Hi Ada,"), "{eml}");
    assert!(eml.contains("Content-Type: text/html"), "{eml}");

    let (status, read) = reqwest::get(format!(
        "{}/users/{}",
        stack.base,
        user["id"].as_str().expect("id")
    ))
    .await
    .map(|r| (r.status().as_u16(), r))
    .expect("answers");
    assert_eq!(status, 200);
    assert_eq!(read.json::<Value>().await.expect("json"), user);
}

#[tokio::test]
async fn an_invalid_email_is_rejected_and_writes_nothing() {
    let stack = start().await;

    let body =
        json!({ "email": "ada@", "profile": { "firstName": "Ada", "lastName": "Lovelace" } });
    let (status, problem, headers) = post(&stack, &body).await;

    assert_eq!(status, 422);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["errors"][0]["field"], "email");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(emails(stack.outbox.path()).is_empty());
}

#[tokio::test]
async fn a_replayed_event_writes_no_second_email() {
    let outbox = tempfile::tempdir().expect("temp dir");
    let bus = local::InProcessBus::new(outbox.path()).expect("bus");
    let detail = include_str!("../../shared/tests/fixtures/user-created.detail.json");
    let event = serde_json::from_str(detail).expect("fixture");

    let first = bus.deliver(&event).await.expect("sent");
    let replay = bus.deliver(&event).await.expect("no-op");

    assert!(matches!(first, notification::Outcome::Sent { .. }));
    assert_eq!(replay, notification::Outcome::Duplicate);
    assert_eq!(emails(outbox.path()).len(), 1);
}
