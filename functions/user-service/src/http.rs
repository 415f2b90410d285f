//! The HTTP API: one axum router that lambda_http runs in Lambda and a plain HTTP server
//! runs locally.
//!
//! - `POST /users` creates a user; `GET /users/{id}` reads one.
//! - A body is JSON when its content type is `application/json` or `application/*+json`,
//!   with any parameters and in any case. A request with no content type at all is read as
//!   JSON too, since API Gateway test consoles and many scripts send none; any other
//!   declared type is 415.
//! - Bodies over [`MAX_BODY_BYTES`] are 413 before any parsing. JSON nesting is bounded by
//!   serde_json's recursion limit (128), beyond which the body is 400.
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
use tower::util::MapRequest;
use tower::ServiceExt;
use tracing::Instrument;
use uuid::Uuid;

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

/// The service lambda_http runs: the router behind a step that removes the API Gateway
/// stage (`/Prod`, `/dev`) that lambda_http keeps at the front of the path.
pub type LambdaService = MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

/// Wraps the router for lambda_http.
pub fn lambda_service(router: Router) -> LambdaService {
    router.map_request(strip_stage as fn(lambda_http::Request) -> lambda_http::Request)
}

fn strip_stage(mut request: lambda_http::Request) -> lambda_http::Request {
    let stage = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|stage| stage != "$default") else {
        return request;
    };

    let uri = request.uri();
    let Some(rest) = uri
        .path()
        .strip_prefix('/')
        .and_then(|path| path.strip_prefix(&*stage))
    else {
        return request;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return request;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };

    let mut parts = uri.clone().into_parts();
    if let Ok(path_and_query) = path_and_query.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
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
    let idempotency_key = idempotency_key(&headers)?;
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })?;
    if body.is_empty() {
        return Err(ApiError::MalformedBody {
            reason: "the body is empty".into(),
        });
    }
    let json = serde_json::from_slice(&body).map_err(|error| ApiError::MalformedBody {
        reason: error.to_string(),
    })?;
    let request = validation::new_user(&json)?;

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
    let id = Uuid::try_parse(&id).map_err(|_| ApiError::InvalidUserId)?;

    let user = service.get(id).await?;
    Ok(json_response(StatusCode::OK, &UserView::from(&user)))
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

/// Whether the declared content type is JSON; no content type at all counts as JSON.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    }
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
