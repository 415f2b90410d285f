//! In-process cost of one `UserCreated` delivery through [`Notifier::handle`], with
//! in-memory ports so that only this crate's code and its libraries are timed: parse the
//! envelope, claim the event id, render the welcome email, "send" it, complete the claim.
//!
//! Every iteration gets a new event id and a fresh handler, built outside the timed part,
//! so no delivery is a duplicate and the in-memory store and outbox never grow. The event
//! arrives as a `serde_json::Value`, as the runtime hands it over; reading the JSON bytes is
//! not timed here (the cold-start harness, `bench/cold-start`, measures whole invocations).
//! The handler writes one metric line to stdout per email, as it does in Lambda: pipe the
//! output (see `BENCHMARKS.md`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use notification::adapters::memory::{InMemoryDedupStore, RecordingEmailSender};
use notification::{DedupPolicy, EmailConfig, Notifier, Outcome};
use serde_json::Value;
use uuid::Uuid;

type MemoryNotifier = Notifier<RecordingEmailSender, InMemoryDedupStore>;

/// The sample EventBridge delivery of a `UserCreated`.
const EVENT: &str = include_str!("../../../events/eventbridge-user-created.json");

/// A fresh handler over an empty store and outbox.
fn fresh() -> MemoryNotifier {
    Notifier::new(
        RecordingEmailSender::new(),
        InMemoryDedupStore::new(),
        EmailConfig {
            sender: "welcome@example.com".to_owned(),
            product_name: "EdTech".to_owned(),
        },
        DedupPolicy::default(),
    )
}

/// The sample delivery as a new event: new envelope id, event id and user id.
fn delivery(template: &Value) -> Value {
    let mut event = template.clone();
    event["id"] = Uuid::now_v7().to_string().into();
    let detail = &mut event["detail"];
    detail["metadata"]["eventId"] = Uuid::now_v7().to_string().into();
    detail["payload"]["userId"] = Uuid::now_v7().to_string().into();
    event
}

fn user_created(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let template: Value = serde_json::from_str(EVENT).expect("the sample event is JSON");

    // A benchmark of an error or a skipped duplicate would measure the wrong path.
    let outcome = runtime.block_on(fresh().handle(delivery(&template)));
    assert!(
        matches!(outcome, Ok(Outcome::Sent { .. })),
        "the sample delivery was not sent: {outcome:?}"
    );

    // The handler goes out with the output, so that dropping it (and what it recorded) is
    // not timed.
    c.bench_function("user_created", |b| {
        b.to_async(&runtime).iter_batched(
            || (fresh(), delivery(&template)),
            |(notifier, event)| async move {
                let outcome = notifier.handle(event).await;
                (notifier, outcome)
            },
            BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, user_created);
criterion_main!(benches);
