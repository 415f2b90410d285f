//! Running the router in Lambda: what lambda_http hands over is repaired first, and the
//! API Gateway stage is taken off the path.
//!
//! lambda_http 1.3 builds the request URI with `unwrap`/`expect`, so a raw query string
//! with characters a URI cannot hold (`<`, a space, a quote), a `Host` header that is not a
//! host, an `X-Forwarded-Proto` that is not a scheme, or a path without its leading slash
//! would panic inside the runtime and reach the client as a 502; so would a body flagged
//! base64 that is not base64 (aws_lambda_events decodes with `expect`). [`repair`]
//! percent-encodes or drops those parts first, and reads a body wrongly flagged base64 as the
//! text it is, so every event reaches the router. The condition that would remove it:
//! lambda_http and aws_lambda_events returning errors instead of panicking on such events.

use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::header::HOST;
use http::{HeaderMap, HeaderName};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Adapter, LambdaEvent};
use percent_encoding::{AsciiSet, CONTROLS};
use tower::util::MapRequest;
use tower::ServiceExt;

/// The router as lambda_http runs it, stage removed from the path.
pub type LambdaService = MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request>;

/// The whole function as the Lambda runtime calls it.
pub type Handler = MapRequest<
    Adapter<'static, axum::response::Response, LambdaService>,
    fn(LambdaEvent<LambdaRequest>) -> LambdaEvent<LambdaRequest>,
>;

/// Characters a query string cannot carry unencoded; `%`, `&` and `=` keep their meaning.
const QUERY_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^')
    .add(b'[')
    .add(b']');

const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Wraps the router for lambda_http.
pub fn lambda_service(router: Router) -> LambdaService {
    router.map_request(strip_stage as fn(lambda_http::Request) -> lambda_http::Request)
}

/// The service for `lambda_runtime::run`: repairs each event, then runs the router.
pub fn handler(router: Router) -> Handler {
    Adapter::from(lambda_service(router))
        .map_request(repair_event as fn(LambdaEvent<LambdaRequest>) -> LambdaEvent<LambdaRequest>)
}

/// Reads an event the way [`handler`] does, for tests and tools that call the router with
/// events from files.
///
/// # Errors
/// When the JSON is not an event shape lambda_http knows.
pub fn request_from_event(event: &str) -> Result<lambda_http::Request, serde_json::Error> {
    let event: LambdaRequest = serde_json::from_str(event)?;
    Ok(repair(event).into())
}

fn repair_event(event: LambdaEvent<LambdaRequest>) -> LambdaEvent<LambdaRequest> {
    LambdaEvent {
        payload: repair(event.payload),
        context: event.context,
    }
}

/// Makes every part lambda_http turns into the URI safe to turn into one.
pub fn repair(mut event: LambdaRequest) -> LambdaRequest {
    match &mut event {
        LambdaRequest::ApiGatewayV1(request) => {
            repair_headers(&mut request.headers);
            repair_base64_flag(&mut request.is_base64_encoded, request.body.as_deref());
            repair_path(&mut request.path);
            request
                .request_context
                .domain_name
                .take_if(|host| !is_usable_host(host));
        }
        LambdaRequest::ApiGatewayV2(request) => {
            repair_headers(&mut request.headers);
            repair_base64_flag(&mut request.is_base64_encoded, request.body.as_deref());
            repair_path(&mut request.raw_path);
            if let Some(query) = &mut request.raw_query_string {
                *query = percent_encoding::utf8_percent_encode(query, QUERY_UNSAFE).to_string();
            }
            request
                .request_context
                .domain_name
                .take_if(|host| !is_usable_host(host));
        }
        LambdaRequest::Alb(request) => {
            repair_headers(&mut request.headers);
            repair_base64_flag(&mut request.is_base64_encoded, request.body.as_deref());
            repair_path(&mut request.path);
        }
        _ => {}
    }
    event
}

fn repair_headers(headers: &mut HeaderMap) {
    let host_usable = headers
        .get(HOST)
        .is_none_or(|host| host.to_str().is_ok_and(is_usable_host));
    if !host_usable {
        headers.remove(HOST);
    }
    let scheme_usable = headers
        .get(&FORWARDED_PROTO)
        .is_none_or(|proto| matches!(proto.to_str(), Ok("http" | "https")));
    if !scheme_usable {
        headers.remove(&FORWARDED_PROTO);
    }
}

fn repair_base64_flag(is_base64_encoded: &mut bool, body: Option<&str>) {
    if *is_base64_encoded && body.is_some_and(|body| BASE64.decode(body).is_err()) {
        *is_base64_encoded = false;
    }
}

fn repair_path(path: &mut Option<String>) {
    if let Some(path) = path.as_mut().filter(|path| !path.starts_with('/')) {
        path.insert(0, '/');
    }
}

fn is_usable_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .parse::<http::uri::Authority>()
            .is_ok_and(|authority| authority.as_str() == host)
        && !host.contains('@')
        && url::Url::parse(&format!("https://{host}/")).is_ok()
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn http_api(headers: Value, raw_path: &str, raw_query: &str) -> String {
        json!({
            "version": "2.0",
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": { "http": { "method": "GET", "path": raw_path }, "stage": "$default" },
            "isBase64Encoded": false
        })
        .to_string()
    }

    #[test]
    fn repairs_events_lambda_http_would_panic_on() {
        let events = [
            http_api(json!({ "host": "exa mple.com" }), "/users", ""),
            http_api(json!({ "host": "example.com:99999" }), "/users", ""),
            http_api(
                json!({ "host": "example.com", "x-forwarded-proto": "ht tp" }),
                "/users",
                "",
            ),
            http_api(
                json!({ "host": "example.com" }),
                "/users",
                "q=<script> \"x\"&a=%ZZ",
            ),
            http_api(json!({}), "users", ""),
            http_api(json!({}), ":99999", ""),
        ];
        let mut bad_base64: Value =
            serde_json::from_str(&http_api(json!({}), "/users", "")).expect("json");
        bad_base64["body"] = json!("{not base64}");
        bad_base64["isBase64Encoded"] = json!(true);
        let events = events.into_iter().chain([bad_base64.to_string()]);

        for event in events {
            let request = request_from_event(&event).expect("readable");
            assert!(
                request.uri().path().starts_with('/'),
                "{event}: {}",
                request.uri()
            );
        }
    }

    #[test]
    fn keeps_a_valid_query_string_as_it_is() {
        let request = request_from_event(&http_api(
            json!({ "host": "example.com" }),
            "/users",
            "a=1&b=%20",
        ))
        .expect("readable");

        assert_eq!(request.uri().query(), Some("a=1&b=%20"));
    }

    #[test]
    fn strips_only_a_whole_stage_segment() {
        let mut event: Value =
            serde_json::from_str(&http_api(json!({}), "/dev/users", "")).expect("json");
        event["requestContext"]["stage"] = json!("dev");
        let staged = strip_stage(request_from_event(&event.to_string()).expect("readable"));
        assert_eq!(staged.uri().path(), "/users");

        // lambda_http puts the stage in front of a path that lacks it; the strip undoes
        // exactly that and never eats part of a segment.
        event["rawPath"] = json!("/devices");
        let prefixed = strip_stage(request_from_event(&event.to_string()).expect("readable"));
        assert_eq!(prefixed.uri().path(), "/devices");
    }
}
