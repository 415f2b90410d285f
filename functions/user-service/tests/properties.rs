//! Property tests of the service the Lambda handler runs: no body or event shape makes it
//! panic or answer 5xx, every rejection is problem+json, and a rejection publishes nothing.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};
use tower::ServiceExt;
use user_service::adapters::memory::{
    InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
};
use user_service::http::router;
use user_service::lambda::{lambda_service, request_from_event};
use user_service::{PublishPolicy, UserService};

/// What one request got, and what it left behind.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    /// A `HEAD` request: its answer has no body to check.
    head: bool,
    body: Value,
    published: Vec<shared::UserCreated>,
    stored: usize,
}

/// Runs one Lambda event through a fresh service, reading it as the Lambda handler does;
/// `None` when the event is not one lambda_http reads (the runtime reports an error then).
fn serve(event: &Value) -> Option<Answer> {
    let request = request_from_event(&event.to_string()).ok()?;
    let head = request.method() == http::Method::HEAD;

    let publisher = Arc::new(RecordingPublisher::new());
    let store = Arc::new(InMemoryUserStore::new());
    let service = UserService::new(
        Arc::clone(&store),
        Arc::clone(&publisher),
        InMemoryIdempotencyStore::new(),
        PublishPolicy::default(),
    );
    let service = lambda_service(router(Arc::new(service)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let (status, content_type, body) = runtime.block_on(async {
        let response = service.oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an in-memory body");
        (status, content_type, body)
    });

    Some(Answer {
        status,
        content_type,
        head,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        published: publisher.published(),
        stored: store.len(),
    })
}

/// The invariants every answer keeps: no 5xx, problem+json for every 4xx with its status in
/// the body, nothing published or stored by a rejection, and at most one event otherwise.
fn check_answer(answer: &Answer) -> Result<(), TestCaseError> {
    prop_assert!(answer.status < 500, "a server error: {answer:?}");
    if answer.status >= 400 {
        prop_assert_eq!(
            answer.content_type.as_deref(),
            Some("application/problem+json"),
            "{:?}",
            answer
        );
        if !answer.head {
            prop_assert_eq!(
                answer.body["status"].as_u64(),
                Some(u64::from(answer.status))
            );
        }
        prop_assert!(answer.published.is_empty(), "a rejection published");
        prop_assert_eq!(answer.stored, 0, "a rejection stored a user");
    } else {
        prop_assert!(answer.published.len() <= 1, "{answer:?}");
    }
    Ok(())
}

/// The HTTP shapes Lambda receives a request in.
#[derive(Clone, Copy, Debug)]
enum Shape {
    HttpApi,
    FunctionUrl,
    RestApi,
    Alb,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::HttpApi),
        Just(Shape::FunctionUrl),
        Just(Shape::RestApi),
        Just(Shape::Alb),
    ]
}

/// Builds an event of the given shape; `stage` is the API Gateway stage the path sits under.
#[allow(clippy::too_many_arguments)]
fn event(
    shape: Shape,
    method: &str,
    path: &str,
    stage: &str,
    query: &str,
    headers: Value,
    body: Value,
    base64: Value,
) -> Value {
    match shape {
        Shape::HttpApi | Shape::FunctionUrl => {
            let domain = match shape {
                Shape::FunctionUrl => "abcdefghij.lambda-url.us-east-1.on.aws",
                _ => "abc123.execute-api.us-east-1.amazonaws.com",
            };
            json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": path,
                "rawQueryString": query,
                "headers": headers,
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "abc123",
                    "domainName": domain,
                    "domainPrefix": "abc123",
                    "http": {
                        "method": method,
                        "path": path,
                        "protocol": "HTTP/1.1",
                        "sourceIp": "192.0.2.10",
                        "userAgent": "proptest"
                    },
                    "requestId": "JKJaXmPLvHcESHA=",
                    "routeKey": "$default",
                    "stage": stage,
                    "time": "03/Dec/2026:12:00:00 +0000",
                    "timeEpoch": 1_796_299_200_000_u64
                },
                "isBase64Encoded": base64,
                "body": body
            })
        }
        Shape::RestApi => json!({
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": null,
            "queryStringParameters": query_map(query),
            "multiValueQueryStringParameters": null,
            "pathParameters": null,
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "resourcePath": "/{proxy+}",
                "httpMethod": method,
                "path": format!("/{stage}{path}"),
                "stage": stage,
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "protocol": "HTTP/1.1",
                "identity": { "sourceIp": "192.0.2.10", "userAgent": "proptest" },
                "requestTimeEpoch": 1_796_299_200_000_u64,
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com"
            },
            "body": body,
            "isBase64Encoded": base64
        }),
        Shape::Alb => json!({
            "requestContext": {
                "elb": {
                    "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/users/49e9d65c45c6791a"
                }
            },
            "httpMethod": method,
            "path": path,
            // An ALB always sends the map, empty when there is no query.
            "queryStringParameters": query_map(query).unwrap_or_default(),
            "headers": headers,
            "body": body,
            "isBase64Encoded": base64
        }),
    }
}

/// A raw query string as the `{name: value}` map REST APIs and ALBs deliver; `None` when
/// there is no query, which a REST API sends as null.
fn query_map(query: &str) -> Option<Map<String, Value>> {
    if query.is_empty() {
        return None;
    }
    let pairs = query.split('&').map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name.to_owned(), Value::from(value))
    });
    Some(pairs.collect())
}

/// A `POST /users` carrying `body` (already a Lambda event body string) in the given shape.
fn post_users(shape: Shape, content_type: Option<&str>, body: Value, base64: bool) -> Value {
    let mut headers = Map::new();
    if let Some(content_type) = content_type {
        headers.insert("content-type".into(), content_type.into());
    }
    event(
        shape,
        "POST",
        "/users",
        "$default",
        "",
        Value::Object(headers),
        body,
        base64.into(),
    )
}

/// Standard base64 with padding, as API Gateway encodes a binary body.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strings that look like email addresses, almost valid ones, and arbitrary text.
fn email_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (any::<String>(), any::<String>()).prop_map(|(local, domain)| format!("{local}@{domain}")),
        "[ -~]{0,70}@[ -~]{0,70}",
        "[a-zA-Z0-9._%+-]{1,70}@[a-zA-Z0-9.-]{1,70}\\.[a-z]{2,6}",
        "\\PC{0,10}@\\PC{0,10}",
    ]
}

/// A value for a field the API expects to be a string.
fn field_value(text: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => text.prop_map(Value::from),
        1 => testkit::json_value(),
    ]
}

/// Objects shaped like a create-user body, with any values in the known fields, fields left
/// out, and unknown fields added.
fn user_shaped_body() -> impl Strategy<Value = Value> {
    let name = || field_value(any::<String>().boxed());
    let profile = prop_oneof![
        4 => (
            prop::option::of(name()),
            prop::option::of(name()),
            prop::collection::btree_map("[a-zA-Z]{1,12}", testkit::json_value(), 0..2),
        )
            .prop_map(|(first, last, extra)| {
                let mut profile: Map<String, Value> = extra.into_iter().collect();
                if let Some(first) = first {
                    profile.insert("firstName".into(), first);
                }
                if let Some(last) = last {
                    profile.insert("lastName".into(), last);
                }
                Value::Object(profile)
            }),
        1 => testkit::json_value(),
    ];
    (
        prop::option::of(field_value(email_like().boxed())),
        prop::option::of(profile),
        prop::collection::btree_map(any::<String>(), testkit::json_value(), 0..2),
    )
        .prop_map(|(email, profile, extra)| {
            let mut body: Map<String, Value> = extra.into_iter().collect();
            if let Some(email) = email {
                body.insert("email".into(), email);
            }
            if let Some(profile) = profile {
                body.insert("profile".into(), profile);
            }
            Value::Object(body)
        })
}

/// Text nested `depth` arrays or objects deep, optionally inside a user's `firstName`.
fn deeply_nested() -> impl Strategy<Value = String> {
    (1_usize..600, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(depth, objects, in_profile, closed)| {
            let (open, close) = if objects {
                (r#"{"a":"#, "}")
            } else {
                ("[", "]")
            };
            let mut nested = open.repeat(depth) + "1";
            if closed {
                nested += &close.repeat(depth);
            }
            if in_profile {
                format!(
                    r#"{{"email":"ada@example.com","profile":{{"firstName":{nested},"lastName":"L"}}}}"#
                )
            } else {
                nested
            }
        },
    )
}

/// Content types a client may declare, JSON ones most often.
fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(Some("application/json".to_owned())),
        1 => Just(None),
        1 => Just(Some("application/json; charset=utf-8".to_owned())),
        1 => Just(Some("Application/Problem+JSON".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}

/// A valid create-user body, written with the spacing and case a client might use, and the
/// email address the service must store.
fn valid_user() -> impl Strategy<Value = (Value, String)> {
    let local = "[a-z0-9]{1,12}(\\.[a-z0-9]{1,6})?(\\+[a-z0-9]{1,6})?";
    let domain = "[a-z0-9]{1,12}(-[a-z0-9]{1,6})?(\\.[a-z]{2,6}){1,2}";
    let name = "\\p{L}[\\p{L}\\p{M}'. -]{0,40}";
    (local, domain, name, name, any::<bool>(), " {0,3}").prop_map(
        |(local, domain, first, last, upper, pad)| {
            let email = format!("{local}@{domain}");
            let sent = if upper {
                email.to_uppercase()
            } else {
                email.clone()
            };
            let body = json!({
                "email": format!("{pad}{sent}{pad}"),
                "profile": { "firstName": first, "lastName": last }
            });
            (body, email)
        },
    )
}

/// HTTP events of every shape with any method, path, stage, raw query, headers (or null),
/// body (or null) and base64 flag.
fn any_event() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("HEAD".to_owned()),
        Just("OPTIONS".to_owned()),
        Just("DELETE".to_owned()),
        "[A-Za-z]{1,10}",
        any::<String>(),
    ];
    let path = prop_oneof![
        Just("/users".to_owned()),
        Just("/users/".to_owned()),
        Just("/dev/users".to_owned()),
        "/users/[0-9a-f-]{0,40}",
        "/users/\\PC{0,20}",
        "/[ -~]{0,30}",
        any::<String>(),
    ];
    let stage = prop_oneof![
        Just("$default".to_owned()),
        Just("dev".to_owned()),
        Just("Prod".to_owned()),
        "[ -~]{0,10}",
    ];
    let query = prop_oneof![Just(String::new()), "[ -~]{0,30}", any::<String>()];
    let header_name = prop_oneof![
        Just("content-type".to_owned()),
        Just("x-correlation-id".to_owned()),
        Just("idempotency-key".to_owned()),
        Just("host".to_owned()),
        Just("x-forwarded-proto".to_owned()),
        "[a-z-]{1,20}",
        any::<String>(),
    ];
    let header_value = prop_oneof![
        Just("application/json".to_owned()),
        "[ -~]{0,40}",
        any::<String>(),
    ];
    let headers = prop_oneof![
        1 => Just(Value::Null),
        4 => prop::collection::btree_map(header_name, header_value, 0..5).prop_map(|map| {
            Value::Object(map.into_iter().map(|(name, value)| (name, value.into())).collect())
        }),
    ];
    let body = prop_oneof![
        Just(Value::Null),
        any::<String>().prop_map(Value::from),
        user_shaped_body().prop_map(|body| Value::from(body.to_string())),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| Value::from(base64(&bytes))),
    ];
    let base64_encoded = prop_oneof![
        Just(Value::Bool(false)),
        Just(Value::Bool(true)),
        Just(Value::Null),
    ];
    (
        shape(),
        method,
        path,
        stage,
        query,
        headers,
        body,
        base64_encoded,
    )
        .prop_map(
            |(shape, method, path, stage, query, headers, body, base64_encoded)| {
                event(
                    shape,
                    &method,
                    &path,
                    &stage,
                    &query,
                    headers,
                    body,
                    base64_encoded,
                )
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_answered_without_a_server_error(
        shape in shape(),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        content_type in content_type(),
    ) {
        let event = post_users(shape, content_type.as_deref(), base64(&bytes).into(), true);

        let answer = serve(&event).expect("a well-formed event");

        check_answer(&answer)?;
    }

    #[test]
    fn arbitrary_text_is_answered_without_a_server_error(
        shape in shape(),
        text in any::<String>(),
        content_type in content_type(),
    ) {
        let event = post_users(shape, content_type.as_deref(), text.into(), false);

        let answer = serve(&event).expect("a well-formed event");

        check_answer(&answer)?;
    }

    #[test]
    fn arbitrary_json_is_answered_without_a_server_error(
        shape in shape(),
        value in testkit::json_value(),
    ) {
        let event = post_users(shape, Some("application/json"), value.to_string().into(), false);

        let answer = serve(&event).expect("a well-formed event");

        check_answer(&answer)?;
        if !value.is_object() {
            prop_assert_eq!(answer.status, 400, "{:?}", answer);
        }
    }

    #[test]
    fn user_shaped_bodies_are_created_or_rejected_cleanly(
        shape in shape(),
        body in user_shaped_body(),
        base64_encoded in any::<bool>(),
    ) {
        let text = body.to_string();
        let wire = if base64_encoded { base64(text.as_bytes()) } else { text };
        let event = post_users(shape, Some("application/json"), wire.into(), base64_encoded);

        let answer = serve(&event).expect("a well-formed event");

        check_answer(&answer)?;
        prop_assert!(
            matches!(answer.status, 201 | 400 | 413 | 422),
            "unexpected status for a JSON object: {:?}",
            answer
        );
        if answer.status == 201 {
            prop_assert_eq!(answer.published.len(), 1);
            prop_assert_eq!(answer.stored, 1);
        }
    }

    #[test]
    fn deep_nesting_is_a_client_error(shape in shape(), text in deeply_nested()) {
        let event = post_users(shape, Some("application/json"), text.into(), false);

        let answer = serve(&event).expect("a well-formed event");

        check_answer(&answer)?;
        prop_assert!(
            matches!(answer.status, 400 | 413 | 422),
            "{:?}",
            answer
        );
    }

    #[test]
    fn valid_users_are_created_and_published_once(
        shape in shape(),
        (body, email) in valid_user(),
    ) {
        let event = post_users(shape, Some("application/json"), body.to_string().into(), false);

        let answer = serve(&event).expect("a well-formed event");

        prop_assert_eq!(answer.status, 201, "{:?}", answer);
        prop_assert_eq!(answer.published.len(), 1);
        prop_assert_eq!(&answer.published[0].payload.email, &email);
        prop_assert_eq!(answer.body["email"].as_str(), Some(email.as_str()));
    }

    #[test]
    fn any_event_lambda_http_accepts_is_answered_without_a_server_error(event in any_event()) {
        // An event lambda_http refuses never reaches the service.
        if let Some(answer) = serve(&event) {
            check_answer(&answer)?;
        }
    }
}

/// Guards the event property against being vacuous: most generated events must be read and
/// served, not turned away by lambda_http before the service sees them.
#[test]
fn most_generated_events_reach_the_service() {
    let mut runner = TestRunner::deterministic();
    let strategy = any_event();
    let total = 200;

    let served = (0..total)
        .filter(|_| {
            let event = strategy.new_tree(&mut runner).expect("a value").current();
            serve(&event).is_some()
        })
        .count();

    assert!(
        served * 3 >= total,
        "only {served} of {total} events were served"
    );
}

/// The encoder above must agree with RFC 4648's test vectors, or the byte properties would
/// test lambda_http's base64 errors instead of the service.
#[test]
fn base64_matches_the_rfc_vectors() {
    let vectors = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in vectors {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
    }
}

/// The checks above can fail: a 5xx, a plain-text 4xx, or a rejection that published.
#[test]
fn the_answer_check_rejects_what_it_must() {
    let answer = |status, content_type: &str, published| Answer {
        status,
        content_type: Some(content_type.to_owned()),
        head: false,
        body: json!({ "status": status }),
        published,
        stored: 0,
    };
    let event = serde_json::from_str(include_str!(
        "../../../shared/tests/fixtures/user-created.detail.json"
    ))
    .expect("fixture");

    assert!(check_answer(&answer(201, "application/json", vec![])).is_ok());
    assert!(check_answer(&answer(503, "application/problem+json", vec![])).is_err());
    assert!(check_answer(&answer(400, "text/plain", vec![])).is_err());
    assert!(check_answer(&answer(422, "application/problem+json", vec![event])).is_err());
}

/// Guards the event builder: each shape, with a valid body, is accepted and creates a user,
/// so the properties above reach the service rather than being turned away by lambda_http.
#[test]
fn every_shape_reaches_the_service() {
    let body = r#"{"email":"ada@example.com","profile":{"firstName":"Ada","lastName":"L"}}"#;
    for shape in [
        Shape::HttpApi,
        Shape::FunctionUrl,
        Shape::RestApi,
        Shape::Alb,
    ] {
        let event = post_users(shape, Some("application/json"), body.into(), false);

        let answer = serve(&event).expect("accepted");

        assert_eq!(answer.status, 201, "{shape:?}: {answer:?}");
        assert_eq!(answer.published.len(), 1, "{shape:?}");
    }
}

/// Regression, found by `any_event_lambda_http_accepts_is_answered_without_a_server_error`:
/// lambda_http 1.3 decodes a body flagged `isBase64Encoded` with `expect`, so a body that is
/// not base64 panicked inside the runtime (a 502 for the caller) instead of being answered.
#[test]
fn a_body_flagged_base64_that_is_not_base64_is_answered_without_a_panic() {
    let bodies = [
        "𑯰",
        r#"{"email":"ada@example.com","profile":{"firstName":"Ada","lastName":"L"}}"#,
        "eyJ",
        "====",
    ];
    for shape in [
        Shape::HttpApi,
        Shape::FunctionUrl,
        Shape::RestApi,
        Shape::Alb,
    ] {
        for body in bodies {
            let event = post_users(shape, Some("application/json"), body.into(), true);

            let Some(answer) = serve(&event) else {
                continue;
            };

            check_answer(&answer).unwrap_or_else(|error| panic!("{shape:?} {body}: {error}"));
        }
    }
}
