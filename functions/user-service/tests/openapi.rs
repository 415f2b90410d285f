//! Every answer the API gives in these scenarios, and to every HTTP field case, matches
//! `openapi.json`: the status is documented for the operation, the content type is the
//! documented one, the body validates against the documented schema, and documented
//! required headers are present.

use std::sync::Arc;

use axum::body::Body;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, Request};
use serde_json::{json, Value};
use tower::ServiceExt;
use user_service::adapters::memory::{
    InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
};
use user_service::domain::User;
use user_service::http::router;
use user_service::lambda::{lambda_service, request_from_event};
use user_service::ports::{PublishError, StoreError, UserStore};
use user_service::{PublishPolicy, UserService};
use uuid::Uuid;

const ADA: &str =
    r#"{"email":"ada@example.com","profile":{"firstName":"Ada","lastName":"Lovelace"}}"#;

struct Spec(Value);

impl Spec {
    fn load() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
        Self(
            serde_json::from_str(&std::fs::read_to_string(path).expect("openapi.json"))
                .expect("JSON"),
        )
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                self.resolve(
                    self.0
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("dangling {reference}")),
                )
            }
            None => value,
        }
    }

    /// The documented responses for a request: the operation's, or those any route has.
    fn responses(&self, method: &Method, path: &str) -> &Value {
        let template = match path.split('/').collect::<Vec<_>>().as_slice() {
            ["", "users"] => "/users",
            ["", "users", _] => "/users/{id}",
            _ => return &self.0["x-any-route-responses"],
        };
        let operation = &self.0["paths"][template][method.as_str().to_lowercase()];
        if operation.is_null() {
            &self.0["x-any-route-responses"]
        } else {
            &operation["responses"]
        }
    }

    fn check(&self, method: &Method, path: &str, status: u16, headers: &HeaderMap, body: &Value) {
        let context = format!("{method} {path} → {status}");
        let responses = self.responses(method, path);
        let documented = responses.get(status.to_string()).unwrap_or_else(|| {
            let fallback = &self.0["x-any-route-responses"][status.to_string()];
            assert!(!fallback.is_null(), "{context}: status not documented");
            fallback
        });
        let response = self.resolve(documented);

        let (media_type, media) = response["content"]
            .as_object()
            .and_then(|content| content.iter().next())
            .unwrap_or_else(|| panic!("{context}: no content documented"));
        assert_eq!(headers["content-type"], media_type.as_str(), "{context}");

        let mut schema = json!({ "components": self.0["components"] });
        schema["$ref"] = media["schema"]["$ref"].clone();
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{context}: {body} does not match: {errors:?}"
        );

        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            if self.resolve(header)["required"] == true {
                assert!(
                    headers.contains_key(name.as_str()),
                    "{context}: missing header {name}"
                );
            }
        }
    }
}

/// A store that is always down.
struct BrokenStore;

impl UserStore for BrokenStore {
    async fn insert(&self, _: &User) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn get(&self, _: Uuid) -> Result<Option<User>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn find_by_email(&self, _: &str) -> Result<Option<User>, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn claim_publish(
        &self,
        _: Uuid,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn mark_published(&self, _: Uuid) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn release_publish(&self, _: Uuid) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }
}

fn app<S: UserStore>(store: S, publisher: Arc<RecordingPublisher>) -> axum::Router {
    router(Arc::new(UserService::new(
        store,
        publisher,
        InMemoryIdempotencyStore::new(),
        PublishPolicy::default(),
    )))
}

async fn exchange(spec: &Spec, router: &axum::Router, request: Request<Body>) -> (u16, Value) {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    spec.check(&method, &path, parts.status.as_u16(), &parts.headers, &body);
    (parts.status.as_u16(), body)
}

fn post(content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post("/users")
        .header("content-type", content_type)
        .body(body.into())
        .expect("request")
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn every_scenario_answers_as_documented() {
    let spec = Spec::load();
    let publisher = Arc::new(RecordingPublisher::new());
    let router = app(InMemoryUserStore::new(), Arc::clone(&publisher));
    let keyed = |key: &str, body: &str| {
        Request::post("/users")
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_owned()))
            .expect("request")
    };
    let mut seen = Vec::new();

    let (status, user) = exchange(&spec, &router, post("application/json", ADA)).await;
    seen.push(status);
    let id = user["id"].as_str().expect("id");
    for request in [
        get(&format!("/users/{id}")),
        get(&format!("/users/{}", Uuid::now_v7())),
        get("/users/nope"),
        get("/nope"),
        Request::delete("/users")
            .body(Body::empty())
            .expect("request"),
        post("application/json", ADA),
        post("application/json", r#"{"email":"x"}"#),
        post("application/json", "{"),
        post("text/plain", ADA),
        post("application/json", " ".repeat(20_000)),
        keyed("k-1", &ADA.replace("ada@", "grace@")),
        keyed("k-1", &ADA.replace("ada@", "alan@")),
        keyed("not a key", ADA),
    ] {
        seen.push(exchange(&spec, &router, request).await.0);
    }

    publisher.fail_next(PublishError::Permanent("bus is gone".into()));
    seen.push(
        exchange(
            &spec,
            &router,
            post("application/json", ADA.replace("ada@", "ida@")),
        )
        .await
        .0,
    );
    let broken = app(BrokenStore, Arc::new(RecordingPublisher::new()));
    seen.push(
        exchange(&spec, &broken, post("application/json", ADA))
            .await
            .0,
    );
    seen.push(
        exchange(&spec, &broken, get(&format!("/users/{id}")))
            .await
            .0,
    );

    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        [200, 201, 400, 404, 405, 409, 413, 415, 422, 500, 503],
        "every documented status is exercised"
    );
}

#[tokio::test]
async fn every_http_case_answers_as_documented() {
    let spec = Spec::load();
    for case in testkit::cases("http") {
        let request = request_from_event(&case.event().to_string()).expect("event");
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let service = lambda_service(app(
            InMemoryUserStore::new(),
            Arc::new(RecordingPublisher::new()),
        ));

        let response = service.oneshot(request).await.expect("infallible");

        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // The stage is stripped inside the service; the documented path is the one after it.
        let path = path
            .trim_start_matches("/Prod")
            .trim_start_matches("/dev")
            .to_owned();
        spec.check(&method, &path, parts.status.as_u16(), &parts.headers, &body);
    }
}
