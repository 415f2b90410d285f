//! The whole product against moto: HTTP API event → user service → DynamoDB and EventBridge
//! → rule → SQS → notification handler → SES, with the real adapters and real SigV4 calls.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{http_api_event, Moto, Stack, SENDER};
use http::StatusCode;
use notification::adapters::dynamodb::DynamoDbDedupStore;
use notification::adapters::ses::{SesEmailSender, ThrottleRetry};
use notification::{DedupPolicy, EmailConfig, Notifier, Outcome};
use serde_json::{json, Value};
use tower::ServiceExt;
use user_service::adapters::dynamodb::{DynamoDbIdempotencyStore, DynamoDbUserStore};
use user_service::adapters::eventbridge::EventBridgePublisher;
use user_service::http::router;
use user_service::lambda::{lambda_service, request_from_event, LambdaService};
use user_service::{PublishPolicy, UserService};

const QUIET: Duration = Duration::from_secs(2);

fn user_service(config: &SdkConfig, stack: &Stack) -> LambdaService {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let policy = PublishPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total_delay: Duration::from_millis(200),
        ..PublishPolicy::default()
    };
    let service = UserService::new(
        DynamoDbUserStore::new(dynamodb.clone(), &stack.users_table),
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(config), &stack.bus_name),
        DynamoDbIdempotencyStore::new(dynamodb, &stack.users_table),
        policy,
    );
    lambda_service(router(Arc::new(service)))
}

fn notifier(config: &SdkConfig, stack: &Stack) -> Notifier<SesEmailSender, DynamoDbDedupStore> {
    Notifier::new(
        SesEmailSender::new(aws_sdk_sesv2::Client::new(config), ThrottleRetry::default()),
        DynamoDbDedupStore::new(
            aws_sdk_dynamodb::Client::new(config),
            &stack.processed_events_table,
        ),
        EmailConfig {
            sender: SENDER.into(),
            product_name: "Acme Learning".into(),
        },
        DedupPolicy::default(),
    )
}

async fn call(
    service: &LambdaService,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    call_with(service, http_api_event(method, path, body)).await
}

async fn call_with(service: &LambdaService, event: Value) -> (StatusCode, Value) {
    let event = event.to_string();
    let request = request_from_event(&event).expect("a valid HTTP API event");
    let response = service.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn ada(email: &str) -> Value {
    json!({ "email": email, "profile": { "firstName": "Ada", "lastName": "Lovelace" } })
}

async fn started(name: &str) -> (Moto, SdkConfig, Stack) {
    let moto = Moto::start().await;
    let config = moto.sdk_config();
    let stack = Stack::create(&config, name).await;
    (moto, config, stack)
}

#[tokio::test]
async fn a_signup_over_http_sends_one_welcome_email() {
    let (moto, config, stack) = started("signup").await;
    let service = user_service(&config, &stack);

    let (status, user) = call(&service, "POST", "/users", Some(&ada(" Ada@Example.com "))).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["email"], "ada@example.com");

    let delivered = stack.delivered(&config, QUIET).await;
    assert_eq!(
        delivered.len(),
        1,
        "one UserCreated reached the rule's target"
    );
    let envelope = &delivered[0];
    assert_eq!(envelope["source"], shared::SOURCE);
    assert_eq!(envelope["detail-type"], shared::DETAIL_TYPE);
    assert_eq!(envelope["detail"]["payload"]["userId"], user["id"]);

    let outcome = notifier(&config, &stack)
        .handle(envelope.clone())
        .await
        .expect("sent");
    assert!(matches!(outcome, Outcome::Sent { .. }), "{outcome:?}");

    let emails = moto.sent_emails().await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = &emails[0];
    assert_eq!(email["source"], SENDER);
    assert_eq!(
        email["destinations"]["ToAddresses"],
        json!(["ada@example.com"])
    );
    assert_eq!(email["subject"], "Welcome to Acme Learning");
    assert!(
        email["body"].as_str().expect("body").contains("Hi Ada,"),
        "{email}"
    );
}

#[tokio::test]
async fn users_are_stored_read_back_and_unique_by_email() {
    let (_moto, config, stack) = started("crud").await;
    let service = user_service(&config, &stack);

    let (status, created) = call(&service, "POST", "/users", Some(&ada("grace@example.com"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/users/{}", created["id"].as_str().expect("id"));

    let (status, read) = call(&service, "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);

    let (status, _) = call(
        &service,
        "GET",
        "/users/01930000-0000-7000-8000-000000000000",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&service, "GET", "/users/not-an-id", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, problem) = call(&service, "POST", "/users", Some(&ada("GRACE@example.com"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(stack.delivered(&config, QUIET).await.len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_creates_of_one_email_make_one_user_and_one_event() {
    let (_moto, config, stack) = started("race").await;
    let service = user_service(&config, &stack);

    let attempts = (0..20).map(|_| {
        let service = service.clone();
        tokio::spawn(async move {
            call(&service, "POST", "/users", Some(&ada("race@example.com"))).await
        })
    });
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("task").0);
    }

    let created = statuses
        .iter()
        .filter(|status| **status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
    assert_eq!(stack.delivered(&config, QUIET).await.len(), 1);
}

#[tokio::test]
async fn a_create_whose_publish_failed_is_finished_by_the_retried_request() {
    let (_moto, config, stack) = started("retry").await;
    let service = user_service(&config, &stack);
    stack.delete_bus(&config).await;

    let (status, problem) = call(&service, "POST", "/users", Some(&ada("ada@example.com"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    let stored = stored_user_by_email(&config, &stack, "ada@example.com").await;
    assert_eq!(stored["eventPublished"], AttributeValue::Bool(false));

    stack.create_bus(&config).await;
    let (status, user) = call(&service, "POST", "/users", Some(&ada("ada@example.com"))).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");

    let delivered = stack.delivered(&config, QUIET).await;
    assert_eq!(delivered.len(), 1);
    let stored = stored_user_by_email(&config, &stack, "ada@example.com").await;
    assert_eq!(stored["eventPublished"], AttributeValue::Bool(true));
    assert_eq!(
        stored["userId"].as_s().ok(),
        user["id"].as_str().map(String::from).as_ref()
    );
    assert_eq!(
        delivered[0]["detail"]["metadata"]["eventId"].as_str(),
        stored["eventId"].as_s().ok().map(String::as_str)
    );
}

#[tokio::test]
async fn duplicate_deliveries_send_exactly_one_email() {
    let (moto, config, stack) = started("dedup").await;
    let service = user_service(&config, &stack);
    let notifier = Arc::new(notifier(&config, &stack));
    for email in ["one@example.com", "two@example.com"] {
        let (status, _) = call(&service, "POST", "/users", Some(&ada(email))).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let delivered = stack.delivered(&config, QUIET).await;
    assert_eq!(delivered.len(), 2);

    // The first event three times in a row.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(
            notifier
                .handle(delivered[0].clone())
                .await
                .expect("handled"),
        );
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Duplicate)
            .count(),
        2,
        "{outcomes:?}"
    );

    // The second event three times at once: one sends, the others skip or back off.
    let concurrent = (0..3).map(|_| {
        let notifier = Arc::clone(&notifier);
        let envelope = delivered[1].clone();
        tokio::spawn(async move { notifier.handle(envelope).await })
    });
    let mut results = Vec::new();
    for delivery in concurrent {
        results.push(delivery.await.expect("task"));
    }
    let sent = results
        .iter()
        .filter(|r| matches!(r, Ok(Outcome::Sent { .. })))
        .count();
    assert_eq!(sent, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.as_ref().map_or_else(|e| e.is_retryable(), |_| true)));

    let emails = moto.sent_emails().await;
    assert_eq!(emails.len(), 2, "one email per user: {emails:?}");
}

async fn stored_user_by_email(
    config: &SdkConfig,
    stack: &Stack,
    email: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let get = |key: String| {
        dynamodb
            .get_item()
            .table_name(&stack.users_table)
            .key("pk", AttributeValue::S(key))
            .consistent_read(true)
            .send()
    };
    let claim = get(format!("EMAIL#{email}"))
        .await
        .expect("get")
        .item
        .expect("email claim");
    let user_id = claim["userId"].as_s().expect("user id").clone();
    get(format!("USER#{user_id}"))
        .await
        .expect("get")
        .item
        .expect("user")
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_from_dynamodb() {
    let (_moto, config, stack) = started("idempotency").await;
    let service = user_service(&config, &stack);
    let keyed = |body: &Value| {
        let mut event = http_api_event("POST", "/users", Some(body));
        event["headers"]["idempotency-key"] = json!("signup-7d1e");
        event
    };

    let (first_status, first) = call_with(&service, keyed(&ada("ada@example.com"))).await;
    let (replay_status, replay) = call_with(&service, keyed(&ada("ada@example.com"))).await;
    let (reused_status, reused) = call_with(&service, keyed(&ada("grace@example.com"))).await;

    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    assert_eq!((replay_status, &replay), (StatusCode::CREATED, &first));
    assert_eq!(reused_status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(stack.delivered(&config, QUIET).await.len(), 1);
}

#[tokio::test]
async fn a_delivery_that_crashed_after_its_claim_is_taken_over_after_the_expiry() {
    let (moto, config, stack) = started("crash").await;
    let envelope = json!({
        "version": "0",
        "id": "crash-1",
        "detail-type": shared::DETAIL_TYPE,
        "source": shared::SOURCE,
        "detail": serde_json::from_str::<Value>(include_str!("../../shared/tests/fixtures/user-created.detail.json")).expect("fixture"),
    });
    let event_id = uuid::Uuid::try_parse("0193a5a0-1111-7000-8000-00000000e001").expect("id");
    let crashed_at = chrono::Utc::now() - chrono::Duration::seconds(120);
    let dedup = DynamoDbDedupStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        &stack.processed_events_table,
    );
    let claim = notification::ports::DedupStore::claim(
        &dedup,
        event_id,
        uuid::Uuid::nil(),
        crashed_at,
        crashed_at + chrono::Duration::seconds(45),
    )
    .await
    .expect("the crashed delivery's claim");
    assert_eq!(claim, notification::ports::Claim::Acquired);
    let notifier = notifier(&config, &stack);

    let takeover = notifier.handle(envelope.clone()).await.expect("taken over");
    let later = notifier.handle(envelope).await.expect("no-op");

    assert!(matches!(takeover, Outcome::Sent { .. }), "{takeover:?}");
    assert_eq!(later, Outcome::Duplicate);
    assert_eq!(moto.sent_emails().await.len(), 1);
}
