//! In-process cost of `POST /users`, with in-memory ports so that only this crate's code and
//! its libraries are timed: no network, no SDK.
//!
//! - `create_user/router`: a `lambda_http::Request` through the router as lambda_http runs
//!   it (stage stripped), the response body collected.
//! - `create_user/lambda_handler`: the event as lambda_http delivers it after JSON parsing,
//!   through the whole handler the runtime calls (event repair, request conversion, router,
//!   API Gateway response), the response serialised to the JSON the runtime posts.
//!
//! Every iteration gets a new email address and a fresh service, built outside the timed
//! part, so no iteration sees another's user and the in-memory maps never grow. Turning the
//! event JSON into a request is outside the timed part too; the cold-start harness
//! (`bench/cold-start`) measures the whole invocation. The service writes one metric line
//! to stdout per created user, as it does in Lambda: pipe the output (see `BENCHMARKS.md`).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use lambda_http::request::LambdaRequest;
use serde_json::Value;
use tower::ServiceExt;
use user_service::adapters::memory::{
    InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
};
use user_service::{http, lambda, PublishPolicy, UserService};

type MemoryService = UserService<InMemoryUserStore, RecordingPublisher, InMemoryIdempotencyStore>;

/// The sample API Gateway HTTP API (v2) create event, stage `v1`.
const EVENT: &str = include_str!("../../../events/http-api-create-user.json");

/// A fresh service over empty in-memory ports, and its router.
fn fresh() -> (Arc<MemoryService>, axum::Router) {
    let service = Arc::new(UserService::new(
        InMemoryUserStore::new(),
        RecordingPublisher::new(),
        InMemoryIdempotencyStore::new(),
        PublishPolicy::default(),
    ));
    let router = http::router(Arc::clone(&service));
    (service, router)
}

/// The sample event with the `n`th unique email address.
fn event(template: &Value, n: u64) -> String {
    let body = serde_json::json!({
        "email": format!("bench.{n}@example.com"),
        "profile": { "firstName": "Grace", "lastName": "Hopper" }
    })
    .to_string();
    let mut event = template.clone();
    event["headers"]["content-length"] = body.len().to_string().into();
    event["body"] = body.into();
    event.to_string()
}

/// The router as lambda_http runs it: the response's status and collected body.
async fn via_router(
    router: axum::Router,
    request: lambda_http::Request,
) -> (u16, axum::body::Bytes) {
    let response = lambda::lambda_service(router)
        .oneshot(request)
        .await
        .expect("the router never fails");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("an in-memory body");
    (status, body)
}

/// The whole handler the runtime calls: the JSON the runtime would post back.
async fn via_handler(router: axum::Router, event: LambdaEvent<LambdaRequest>) -> Vec<u8> {
    let response = lambda::handler(router)
        .oneshot(event)
        .await
        .expect("the handler never fails");
    serde_json::to_vec(&response).expect("a response serialises")
}

fn create_user(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let template: Value = serde_json::from_str(EVENT).expect("the sample event is JSON");
    let request = |n| {
        lambda::request_from_event(&event(&template, n))
            .expect("the sample event is an HTTP API event")
    };
    let lambda_event = |n| {
        let payload: LambdaRequest = serde_json::from_str(&event(&template, n))
            .expect("the sample event is an HTTP API event");
        LambdaEvent::new(payload, Context::default())
    };

    // Both paths must create a user; a benchmark of an error answer would measure nothing.
    let (status, _) = runtime.block_on(via_router(fresh().1, request(0)));
    assert_eq!(status, 201, "the router did not create the user");
    let json: Value =
        serde_json::from_slice(&runtime.block_on(via_handler(fresh().1, lambda_event(0))))
            .expect("the handler answers JSON");
    assert_eq!(
        json["statusCode"], 201,
        "the handler did not create the user"
    );

    let mut group = c.benchmark_group("create_user");
    let mut n = 0_u64;
    // The service and a router handle go out with the output, so that dropping them (and
    // the maps they hold) is not timed.
    group.bench_function("router", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                n += 1;
                (fresh(), request(n))
            },
            |((service, router), request)| async move {
                let answer = via_router(router.clone(), request).await;
                (service, router, answer)
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("lambda_handler", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                n += 1;
                (fresh(), lambda_event(n))
            },
            |((service, router), event)| async move {
                let answer = via_handler(router.clone(), event).await;
                (service, router, answer)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, create_user);
criterion_main!(benches);
