//! The HTTP API: one axum router that lambda_http runs in Lambda and a plain HTTP server
//! runs locally.
//!
//! - `POST /users` creates a user; `GET /users/{id}` reads one.
//! - A body is JSON when its content type is `application/json` or `application/*+json`,
//!   in any case, with any parameters but a charset other than UTF-8. A request with no
//!   content type at all is read as JSON too, since API Gateway test consoles and many
//!   scripts send none; any other declared type is 415. The body is read by [`body::parse`].
//! - Bodies over [`MAX_BODY_BYTES`] are 413 before any parsing.
//! - Every error is `application/problem+json` (see [`crate::error`]).
//! - Every response carries `x-correlation-id`: the caller's, when well-formed, otherwise
//!   the API Gateway request id, otherwise a new id.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{Duration, Utc};
use lambda_http::request::RequestContext;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

use crate::body;
use crate::domain::{NewUser, User, UserView};
use crate::error::ApiError;
use crate::ports::{EventPublisher, IdempotencyStore, StoredResponse, UserStore};
use crate::service::UserService;
use crate::validation;

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Header carrying the correlation id in both directions.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Header a client may send to make a create safely repeatable.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// How long a response stays replayable under its `Idempotency-Key`.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

const MAX_CORRELATION_ID_LEN: usize = 128;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The correlation id of the request being served.
#[derive(Clone, Debug)]
pub struct CorrelationId(pub String);

/// Builds the API's router over a shared service.
pub fn router<S, P, I>(service: Arc<UserService<S, P, I>>) -> Router
where
    S: UserStore,
    P: EventPublisher,
    I: IdempotencyStore,
{
    Router::new()
        .route("/users", post(create_user::<S, P, I>))
        .route("/users/{id}", get(get_user::<S, P, I>))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(correlate))
        .with_state(service)
}

async fn correlate(mut request: Request, next: Next) -> Response {
    let id = correlation_id(&request);
    request.extensions_mut().insert(CorrelationId(id.clone()));

    let span = tracing::info_span!("request", correlation_id = %id);
    let mut response = next.run(request).instrument(span).await;

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

fn correlation_id(request: &Request) -> String {
    let from_header = request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_well_formed_id(id, MAX_CORRELATION_ID_LEN));
    let from_gateway = || match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.as_deref(),
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.as_deref(),
        _ => None,
    };

    from_header
        .or_else(|| from_gateway().filter(|id| is_well_formed_id(id, MAX_CORRELATION_ID_LEN)))
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned)
}

fn is_well_formed_id(id: &str, max_len: usize) -> bool {
    (1..=max_len).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'='))
}

async fn create_user<S, P, I>(
    State(service): State<Arc<UserService<S, P, I>>>,
    Extension(CorrelationId(correlation_id)): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError>
where
    S: UserStore,
    P: EventPublisher,
    I: IdempotencyStore,
{
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let idempotency_key = idempotency_key(&headers)?;
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })?;
    let request = validation::new_user(&body::parse(&body)?)?;

    let Some(key) = idempotency_key else {
        return service
            .create(request, &correlation_id)
            .await
            .map(|user| created(&user));
    };

    // A replay answers what the first request was answered; only successes are kept, so a
    // failed request can be retried under the same key.
    let fingerprint = fingerprint(&request);
    if let Some(stored) = service.idempotency().get(key).await? {
        if stored.fingerprint != fingerprint {
            return Err(ApiError::IdempotencyKeyReused);
        }
        tracing::info!("idempotent replay");
        return Ok(replay(stored));
    }

    let user = service.create(request, &correlation_id).await?;
    let stored = StoredResponse {
        fingerprint,
        status: StatusCode::CREATED.as_u16(),
        location: Some(location(&user)),
        body: to_json(&UserView::from(&user)),
    };
    let expires_at = Utc::now() + Duration::hours(IDEMPOTENCY_TTL_HOURS);
    if let Err(error) = service.idempotency().put(key, &stored, expires_at).await {
        // The user exists and its event is out; losing the replay record only means a replay
        // gets 409 instead of the original answer.
        tracing::warn!(error = ?error, "could not store idempotent response");
    }
    Ok(replay(stored))
}

async fn get_user<S, P, I>(
    State(service): State<Arc<UserService<S, P, I>>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError>
where
    S: UserStore,
    P: EventPublisher,
    I: IdempotencyStore,
{
    let Ok(Path(id)) = id else {
        return Err(ApiError::InvalidUserId);
    };
    let id = canonical_user_id(&id).ok_or(ApiError::InvalidUserId)?;

    let user = service.get(id).await?;
    Ok(json_response(StatusCode::OK, &UserView::from(&user)))
}

/// A user id in the one spelling the API hands out: hyphenated, as in `Location` (any case).
/// uuid also reads braced, `urn:uuid:` and unhyphenated forms; accepting those would give one
/// user several URLs.
fn canonical_user_id(raw: &str) -> Option<Uuid> {
    let id = Uuid::try_parse(raw).ok()?;
    id.hyphenated()
        .to_string()
        .eq_ignore_ascii_case(raw)
        .then_some(id)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|key| {
            (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
                && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(Some)
        .ok_or(ApiError::InvalidIdempotencyKey)
}

/// Whether the declared content type is JSON in UTF-8, the only encoding JSON may travel
/// in (RFC 8259); no content type at all counts as JSON.
///
/// Read by hand rather than with the mime crate, which refuses the optional white space
/// RFC 9110 allows around `;` (`application/json ; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    };
    let utf8 = parts
        .filter_map(|parameter| parameter.split_once('='))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .all(|(_, charset)| {
            charset
                .trim()
                .trim_matches('"')
                .eq_ignore_ascii_case("utf-8")
        });
    json && utf8
}

fn fingerprint(request: &NewUser) -> String {
    let mut hasher = Sha256::new();
    for part in [
        &request.email,
        &request.profile.first_name,
        &request.profile.last_name,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn location(user: &User) -> String {
    format!("/users/{}", user.id)
}

fn created(user: &User) -> Response {
    let mut response = json_response(StatusCode::CREATED, &UserView::from(user));
    if let Ok(location) = HeaderValue::from_str(&location(user)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, to_json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn to_json(body: &impl Serialize) -> String {
    // The API's views hold only strings and ids, which always serialise.
    serde_json::to_string(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::adapters::memory::{
        InMemoryIdempotencyStore, InMemoryUserStore, RecordingPublisher,
    };
    use crate::PublishPolicy;

    const ADA: &str =
        r#"{"email":"ada@example.com","profile":{"firstName":"Ada","lastName":"Lovelace"}}"#;

    struct App {
        router: Router,
        store: Arc<InMemoryUserStore>,
        publisher: Arc<RecordingPublisher>,
    }

    fn app() -> App {
        let store = Arc::new(InMemoryUserStore::new());
        let publisher = Arc::new(RecordingPublisher::new());
        let service = UserService::new(
            Arc::clone(&store),
            Arc::clone(&publisher),
            InMemoryIdempotencyStore::new(),
            PublishPolicy::default(),
        );
        App {
            router: router(Arc::new(service)),
            store,
            publisher,
        }
    }

    async fn send(router: &Router, request: http::Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn post(content_type: Option<&str>, body: impl Into<Body>) -> http::Request<Body> {
        let mut request = http::Request::post("/users");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.body(body.into()).expect("request")
    }

    async fn lambda(event: Value) -> (StatusCode, Value) {
        let App { router, .. } = app();
        let request = crate::lambda::request_from_event(&event.to_string()).expect("event");
        let response = crate::lambda::lambda_service(router)
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn rest_v1(method: &str, path: &str, stage: &str, body: Option<&str>) -> Value {
        json!({
            "resource": "/users",
            "path": path,
            "httpMethod": method,
            "headers": null,
            "multiValueHeaders": null,
            "queryStringParameters": null,
            "multiValueQueryStringParameters": null,
            "pathParameters": null,
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012",
                "resourcePath": "/users",
                "httpMethod": method,
                "path": format!("/{stage}{path}"),
                "stage": stage,
                "requestId": "rest-request-1",
                "identity": {}
            },
            "body": body,
            "isBase64Encoded": false
        })
    }

    #[tokio::test]
    async fn reads_json_in_any_spelling_and_treats_a_missing_type_as_json() {
        for content_type in [
            Some("application/json"),
            Some("Application/JSON; charset=UTF-8"),
            Some("application/json ; charset=\"utf-8\""),
            Some(" application/json;"),
            Some("application/vnd.acme.user+json"),
            None,
        ] {
            let App { router, .. } = app();

            let (status, _, body) = send(&router, post(content_type, ADA)).await;

            assert_eq!(status, StatusCode::CREATED, "{content_type:?}: {body}");
        }
    }

    #[tokio::test]
    async fn refuses_other_declared_types_with_415() {
        for content_type in [
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "json",
            "",
        ] {
            let App {
                router, publisher, ..
            } = app();

            let (status, headers, _) = send(&router, post(Some(content_type), ADA)).await;

            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
            assert!(publisher.published().is_empty());
        }
    }

    #[tokio::test]
    async fn refuses_json_in_another_charset_with_415() {
        for content_type in [
            "application/json; charset=iso-8859-1",
            "application/json; charset=utf-16",
        ] {
            let App { router, .. } = app();

            let (status, _, _) = send(&router, post(Some(content_type), ADA)).await;

            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        }
    }

    #[tokio::test]
    async fn checks_the_content_type_before_the_idempotency_key() {
        let App { router, .. } = app();
        let request = http::Request::post("/users")
            .header(header::CONTENT_TYPE, "text/plain")
            .header(IDEMPOTENCY_HEADER, "not a key")
            .body(Body::from(ADA))
            .expect("request");

        let (status, _, _) = send(&router, request).await;

        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn a_repeated_key_is_a_400_that_creates_nothing() {
        let App {
            router,
            store,
            publisher,
        } = app();
        let body = r#"{"email":"ada@example.com","email":"eve@example.com",
            "profile":{"firstName":"Ada","lastName":"Lovelace"}}"#;

        let (status, _, problem) = send(&router, post(Some("application/json"), body)).await;

        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains(r#"repeats the key "email""#)),
            "{problem}"
        );
        assert!(store.is_empty());
        assert!(publisher.published().is_empty());
    }

    #[tokio::test]
    async fn caps_the_body_before_parsing() {
        let App { router, store, .. } = app();
        let padding = " ".repeat(MAX_BODY_BYTES);

        let (status, _, body) = send(
            &router,
            post(Some("application/json"), format!("{ADA}{padding}")),
        )
        .await;

        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn deeply_nested_json_is_a_400_not_a_crash() {
        let App { router, .. } = app();
        let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));

        let (status, _, _) = send(&router, post(Some("application/json"), nested)).await;

        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn an_empty_body_is_a_400() {
        let App { router, .. } = app();

        let (status, _, problem) = send(&router, post(Some("application/json"), "")).await;

        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            problem["type"],
            "urn:problem-type:user-service:malformed-body"
        );
    }

    #[tokio::test]
    async fn reads_back_a_created_user_and_rejects_bad_ids() {
        let App { router, .. } = app();
        let (_, headers, created) = send(&router, post(Some("application/json"), ADA)).await;
        let location = headers[header::LOCATION]
            .to_str()
            .expect("ascii")
            .to_owned();

        let (status, _, read) = send(
            &router,
            http::Request::get(&location)
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read, created);
        let id = location.trim_start_matches("/users/");
        // One user, one URL: other spellings uuid would also read are not ids here.
        for (path, expected) in [
            (
                format!("/users/{}", id.to_ascii_uppercase()),
                StatusCode::OK,
            ),
            (
                format!("/users/{}", id.replace('-', "")),
                StatusCode::BAD_REQUEST,
            ),
            (format!("/users/%7B{id}%7D"), StatusCode::BAD_REQUEST),
            (format!("/users/urn:uuid:{id}"), StatusCode::BAD_REQUEST),
        ] {
            let request = http::Request::get(&path).body(Body::empty()).expect("req");
            let (status, _, _) = send(&router, request).await;
            assert_eq!(status, expected, "{path}");
        }

        for (path, expected) in [
            (
                "/users/01930000-0000-7000-8000-000000000000",
                StatusCode::NOT_FOUND,
            ),
            ("/users/42", StatusCode::BAD_REQUEST),
            ("/users/%FF%FE", StatusCode::BAD_REQUEST),
        ] {
            let (status, headers, _) = send(
                &router,
                http::Request::get(path).body(Body::empty()).expect("req"),
            )
            .await;
            assert_eq!(status, expected, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        }
    }

    #[tokio::test]
    async fn a_wrong_method_is_405_with_allow() {
        let App { router, .. } = app();

        let (status, headers, _) = send(
            &router,
            http::Request::put("/users/x")
                .body(Body::empty())
                .expect("req"),
        )
        .await;

        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(headers[header::ALLOW]
            .to_str()
            .expect("ascii")
            .contains("GET"));
    }

    #[tokio::test]
    async fn strips_the_rest_api_stage_and_reads_null_console_fields() {
        let (status, body) = lambda(rest_v1("POST", "/users", "Prod", Some(ADA))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, _) = lambda(rest_v1("GET", "/users/not-a-uuid", "Prod", None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (status, _) = lambda(rest_v1("POST", "/users", "Prod", None)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn leaves_paths_that_only_look_like_a_stage_alone() {
        let mut event = rest_v1("POST", "/users", "use", Some(ADA));
        event["requestContext"]["path"] = json!("/users");
        event["path"] = json!("/users");

        let (status, _) = lambda(event).await;

        assert_eq!(
            status,
            StatusCode::CREATED,
            "the stage 'use' must not eat '/users'"
        );
    }

    #[tokio::test]
    async fn odd_query_strings_never_break_routing() {
        for (n, query) in [
            "a=%ZZ",
            "a=b&&&c==d",
            "%00=%00",
            "x=%E2%82",
            "q=<script>",
            "=;;",
            "a b",
            "é=ü",
        ]
        .into_iter()
        .enumerate()
        {
            let mut event = rest_v1(
                "POST",
                "/users",
                "$default",
                Some(&ADA.replace("ada@", &format!("ada{n}@"))),
            );
            event["requestContext"]["path"] = json!("/users");
            let v2 = json!({
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": "/users",
                "rawQueryString": query,
                "headers": { "content-type": "application/json" },
                "requestContext": { "http": { "method": "POST", "path": "/users" }, "stage": "$default" },
                "body": ADA,
                "isBase64Encoded": false
            });

            let (status, body) = lambda(v2).await;

            assert_eq!(status, StatusCode::CREATED, "{query}: {body}");
        }
    }

    #[tokio::test]
    async fn replays_an_idempotent_create_and_refuses_a_reused_key() {
        let App {
            router,
            store,
            publisher,
        } = app();
        let keyed = |body: &str, key: &str| {
            http::Request::post("/users")
                .header(header::CONTENT_TYPE, "application/json")
                .header(IDEMPOTENCY_HEADER, key)
                .body(Body::from(body.to_owned()))
                .expect("request")
        };

        let first = send(&router, keyed(ADA, "key-1")).await;
        let replay = send(&router, keyed(&ADA.replace("Ada\"", " Ada \""), "key-1")).await;
        let reused = send(&router, keyed(&ADA.replace("Lovelace", "Byron"), "key-1")).await;
        let malformed = send(&router, keyed(ADA, "key with spaces")).await;

        assert_eq!(first.0, StatusCode::CREATED);
        assert_eq!((replay.0, &replay.2), (StatusCode::CREATED, &first.2));
        assert_eq!(replay.1[header::LOCATION], first.1[header::LOCATION]);
        assert_eq!(reused.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            reused.2["type"],
            "urn:problem-type:user-service:idempotency-key-reused"
        );
        assert_eq!(malformed.0, StatusCode::BAD_REQUEST);
        assert_eq!(store.len(), 1);
        assert_eq!(publisher.published().len(), 1);
    }

    #[tokio::test]
    async fn uses_a_well_formed_caller_correlation_id_and_replaces_others() {
        let App {
            router, publisher, ..
        } = app();
        let with_id = |id: &str, email: &str| {
            http::Request::post("/users")
                .header(header::CONTENT_TYPE, "application/json")
                .header(CORRELATION_HEADER, id)
                .body(Body::from(ADA.replace("ada@", email)))
                .expect("request")
        };

        let (_, kept, _) = send(&router, with_id("order-42.retry:1", "a@")).await;
        let (_, replaced, _) = send(&router, with_id("bad id\twith spaces", "b@")).await;
        let (_, too_long, _) = send(&router, with_id(&"x".repeat(200), "c@")).await;

        assert_eq!(kept[CORRELATION_HEADER], "order-42.retry:1");
        assert_ne!(replaced[CORRELATION_HEADER], "bad id\twith spaces");
        assert_eq!(too_long[CORRELATION_HEADER].len(), 36);
        let published = publisher.published();
        assert_eq!(published[0].metadata.correlation_id, "order-42.retry:1");
        assert_eq!(
            published[1].metadata.correlation_id,
            replaced[CORRELATION_HEADER].to_str().expect("ascii")
        );
    }

    #[tokio::test]
    async fn falls_back_to_the_api_gateway_request_id() {
        let App {
            router, publisher, ..
        } = app();
        let request = crate::lambda::request_from_event(
            &rest_v1("POST", "/users", "Prod", Some(ADA)).to_string(),
        )
        .expect("event");

        let response = crate::lambda::lambda_service(router)
            .oneshot(request)
            .await
            .expect("infallible");

        assert_eq!(response.headers()[CORRELATION_HEADER], "rest-request-1");
        assert_eq!(
            publisher.published()[0].metadata.correlation_id,
            "rest-request-1"
        );
    }
}
