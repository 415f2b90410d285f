//! A stand-in for the Lambda Runtime API on a loopback port, one per bootstrap process.
//!
//! `GET /invocation/next` long-polls a queue the harness fills one event at a time; the
//! latency of an invocation runs from the moment its event is handed out to the moment its
//! response (or error) is posted back, which is what Lambda bills as the duration.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How the bootstrap's start-up went, as seen from the Runtime API.
#[derive(Clone, Debug)]
pub(crate) enum Startup {
    /// Nothing heard from the process yet.
    Pending,
    /// The first `invocation/next` arrived at this instant.
    Polled(Instant),
    /// The process reported an init error with this body.
    Failed(String),
}

/// What the function answered to one event.
#[derive(Debug)]
pub(crate) struct Answer {
    /// From handing out the event to receiving the answer.
    pub(crate) latency: Duration,
    /// The response body, or the error body when the function posted an error.
    pub(crate) outcome: Result<Bytes, Bytes>,
}

struct Invocation {
    body: String,
    answer: oneshot::Sender<Answer>,
}

struct Shared {
    function_arn: String,
    timeout: Duration,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    startup: watch::Sender<Startup>,
    in_flight: Mutex<HashMap<String, (Instant, oneshot::Sender<Answer>)>>,
}

/// A running Runtime API for one bootstrap process.
pub(crate) struct RuntimeApi {
    address: SocketAddr,
    queue: mpsc::Sender<Invocation>,
    startup: watch::Receiver<Startup>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts serving on a free loopback port.
    pub(crate) async fn start(function_arn: String, timeout: Duration) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel(1);
        let (startup, startup_receiver) = watch::channel(Startup::Pending);
        let shared = Arc::new(Shared {
            function_arn,
            timeout,
            queue: tokio::sync::Mutex::new(receiver),
            startup,
            in_flight: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("runtime api stopped: {error}");
            }
        });
        Ok(Self {
            address,
            queue,
            startup: startup_receiver,
            server,
        })
    }

    /// The `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// The start-up state now, or once it changes within `wait`.
    pub(crate) async fn startup(&mut self, wait: Duration) -> Startup {
        let changed = self
            .startup
            .wait_for(|state| !matches!(state, Startup::Pending));
        match tokio::time::timeout(wait, changed).await {
            Ok(Ok(state)) => state.clone(),
            _ => Startup::Pending,
        }
    }

    /// Hands one event to the function and waits up to `limit` for its answer.
    pub(crate) async fn invoke(&self, body: String, limit: Duration) -> Option<Answer> {
        let (answer, answered) = oneshot::channel();
        self.queue.send(Invocation { body, answer }).await.ok()?;
        tokio::time::timeout(limit, answered).await.ok()?.ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.startup.send_if_modified(|state| {
        let first = matches!(state, Startup::Pending);
        if first {
            *state = Startup::Polled(Instant::now());
        }
        first
    });

    // Long poll, as Lambda does: the call returns when the harness queues an event. The
    // queue closes when the harness is done with this process.
    let Some(invocation) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };

    let request_id = Uuid::now_v7().to_string();
    let deadline = SystemTime::now() + shared.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let trace = Uuid::now_v7().simple().to_string();
    let trace_id = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        deadline_ms / 1000,
        &trace[8..],
        &trace[16..],
    );

    lock(&shared.in_flight).insert(request_id.clone(), (Instant::now(), invocation.answer));
    let mut response = Response::new(Body::from(invocation.body));
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-type", "application/json".to_owned()),
        ("lambda-runtime-aws-request-id", request_id),
        ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            shared.function_arn.clone(),
        ),
        ("lambda-runtime-trace-id", trace_id),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Ok(body))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Err(body))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    let message = String::from_utf8_lossy(&body).into_owned();
    shared.startup.send_replace(Startup::Failed(message));
    StatusCode::ACCEPTED
}

fn settle(shared: &Shared, id: &str, outcome: Result<Bytes, Bytes>) -> StatusCode {
    let Some((started, answer)) = lock(&shared.in_flight).remove(id) else {
        return StatusCode::BAD_REQUEST;
    };
    let latency = started.elapsed();
    // The harness may have given up on this event already; then nobody is listening.
    let _ = answer.send(Answer { latency, outcome });
    StatusCode::ACCEPTED
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
