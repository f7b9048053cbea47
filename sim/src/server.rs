//! The HTTP side: one loopback port for DRS (restJson1: `POST /<Operation>`), EventBridge
//! (awsJson1_1: `POST /` with `X-Amz-Target`) and the admin API under `/_sim/`.
//!
//! A call goes: latency → SigV4 presence → account initialised (DRS) → faults that refuse
//! before anything happens → JSON parse → model validation (DRS) → the operation → faults that
//! act after a job was created. Each request runs in its own task so a panic answers 500 and
//! the server keeps serving.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::config::{Fault, Operation, SimConfig};
use crate::error::ApiError;
use crate::fleet::{FailbackState, LaunchResult};
use crate::model::model;
use crate::state::{AfterCreate, CallRecord, DeliveredEvent, SimInstance, SimJob, State};

/// Bodies beyond this are refused unread; PutEvents' own limit (256 KB) is checked on content.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const DRS_CONTENT_TYPE: &str = "application/json";
const EVENTS_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const EVENTS_TARGET: &str = "AWSEvents.PutEvents";

type Resp = Response<Full<Bytes>>;

struct Inner {
    state: Mutex<State>,
}

impl Inner {
    // A panic while the lock was held leaves consistent-enough data for a simulator; keep going.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Listens on an ephemeral loopback port.
    pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
        Simulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Listens on `addr`, which must be a loopback address.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> io::Result<SimHandle> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to listen on {addr}: the simulator only binds loopback addresses"
                ),
            ));
        }
        config
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State::new(config)),
        });
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, Arc::clone(&inner), rx));
        Ok(SimHandle {
            addr,
            inner,
            shutdown,
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn inject(&self, fault: Fault) {
        self.inner.lock().inject(fault);
    }

    pub fn clear_faults(&self) {
        self.inner.lock().clear_faults();
    }

    /// Faults still pending (exhausted ones are gone).
    pub fn faults(&self) -> Vec<Fault> {
        self.inner.lock().faults()
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.inner.lock().calls.clone()
    }

    pub fn delivered_events(&self) -> Vec<DeliveredEvent> {
        self.inner.lock().events.clone()
    }

    /// Jobs in creation order, as they are now.
    pub fn jobs(&self) -> Vec<SimJob> {
        self.inner.lock().sim_jobs(Instant::now())
    }

    /// Instances in fleet order, as they are now.
    pub fn instances(&self) -> Vec<SimInstance> {
        self.inner.lock().sim_instances(Instant::now())
    }

    /// Sets an instance's failback state (it no longer follows its last job). False if unknown.
    pub fn set_instance_state(&self, id: &str, state: FailbackState) -> bool {
        self.inner.lock().set_state(id, state)
    }

    /// How the instance's next launch ends. False if unknown.
    pub fn set_launch_result(&self, id: &str, result: LaunchResult) -> bool {
        self.inner.lock().set_launch_result(id, result)
    }

    /// Back to the configured fleet; jobs, calls, events and faults cleared.
    pub fn reset(&self) {
        self.inner.lock().reset();
    }

    /// Stops accepting; open connections finish their current request.
    pub fn shutdown(self) {}

    /// Stops and waits (at most 5 s) for open connections to finish.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn serve(listener: TcpListener, inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopping(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let inner = Arc::clone(&inner);
                    let mut shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let svc = service_fn(move |req| {
                            let inner = Arc::clone(&inner);
                            let what = format!("{} {}", req.method(), req.uri().path());
                            async move { Ok::<_, Infallible>(isolate(what, handle(inner, req)).await) }
                        });
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                        let mut conn = std::pin::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stopping(&mut shutdown) => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, inside a plain statement.
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// Runs one request's handling in its own task: a panic there becomes a 500 for that request
/// instead of taking the connection (or the accept loop) down.
async fn isolate<F>(what: String, handling: F) -> Resp
where
    F: std::future::Future<Output = Resp> + Send + 'static,
{
    match tokio::spawn(handling).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(request = %what, error = %e, "handler failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "simulator handler failed"}),
            )
        }
    }
}

enum Route {
    Api(Operation),
    UnknownDrs(String),
    UnknownTarget(String),
    NotFound,
}

fn route(method: &Method, path: &str, headers: &HeaderMap) -> Route {
    if method != Method::POST {
        return Route::NotFound;
    }
    if path == "/" {
        return match headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            Some(EVENTS_TARGET) => Route::Api(Operation::PutEvents),
            Some(other) => Route::UnknownTarget(other.to_owned()),
            None => Route::NotFound,
        };
    }
    match Operation::drs_from_path(path) {
        Some(op) => Route::Api(op),
        None => match path.strip_prefix('/') {
            Some(name) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                Route::UnknownDrs(name.to_owned())
            }
            _ => Route::NotFound,
        },
    }
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Resp {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes());
    if path == "/_sim" || path.starts_with("/_sim/") {
        return admin(&inner, &parts.method, &path, body.ok());
    }
    match route(&parts.method, &path, &parts.headers) {
        Route::Api(op) => {
            let parsed = match body {
                Ok(b) if b.is_empty() => Ok(json!({})),
                Ok(b) => serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()),
                Err(e) => Err(format!("body unreadable: {e}")),
            };
            api_call(&inner, op, &parts.headers, parsed, arrived).await
        }
        Route::UnknownDrs(name) => {
            tracing::info!(operation = %name, "unknown operation");
            drs_response(Err(ApiError::validation(
                "unknownOperation",
                format!("Unknown operation {name}"),
                &[],
            )))
        }
        Route::UnknownTarget(target) => {
            tracing::info!(target = %target, "unknown X-Amz-Target");
            events_response(Err(ApiError::events(
                400,
                "UnknownOperationException",
                format!("Unknown operation {target}"),
            )))
        }
        Route::NotFound => plain(
            StatusCode::NOT_FOUND,
            json!({"message": format!("no route for {} {path}", parts.method)}),
        ),
    }
}

/// What a call did, decided under the lock.
struct Outcome {
    result: Result<Value, ApiError>,
    job_id: Option<String>,
    hang: Option<Duration>,
}

async fn api_call(
    inner: &Inner,
    op: Operation,
    headers: &HeaderMap,
    parsed: Result<Value, String>,
    arrived: Instant,
) -> Resp {
    let latency = inner.lock().latency;
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let ids = parsed
        .as_ref()
        .map(|v| requested_ids(op, v))
        .unwrap_or_default();
    let entries = match (&parsed, op) {
        (Ok(v), Operation::PutEvents) => v["Entries"].as_array().map_or(0, Vec::len),
        _ => 0,
    };
    let outcome = {
        let mut state = inner.lock();
        let outcome = decide(&mut state, op, headers, parsed, Instant::now());
        let record = CallRecord {
            at_ms: state.clock.ms(arrived),
            operation: op,
            recovery_instance_ids: ids,
            status: outcome.result.as_ref().map_or_else(|e| e.status, |_| 200),
            error_type: outcome.result.as_ref().err().map(|e| e.kind.to_owned()),
            job_id: outcome.job_id.clone(),
            entries,
        };
        tracing::info!(
            operation = %op,
            status = record.status,
            error = record.error_type.as_deref().unwrap_or("-"),
            job = record.job_id.as_deref().unwrap_or("-"),
            instances = record.recovery_instance_ids.len(),
            entries,
            "call"
        );
        state.calls.push(record);
        outcome
    };
    if let Some(hang) = outcome.hang {
        tokio::time::sleep(hang).await;
    }
    if op.is_drs() {
        drs_response(outcome.result)
    } else {
        events_response(outcome.result)
    }
}

fn decide(
    state: &mut State,
    op: Operation,
    headers: &HeaderMap,
    parsed: Result<Value, String>,
    now: Instant,
) -> Outcome {
    let mut job_id = None;
    let mut hang = None;
    let result = (|| {
        check_signature(op, headers)?;
        if op.is_drs() && !state.account_initialized {
            return Err(ApiError::uninitialized());
        }
        if let Some(e) = state.fault_before(op, now) {
            return Err(e);
        }
        let input = parsed.map_err(|e| {
            if op.is_drs() {
                ApiError::validation(
                    "cannotParse",
                    format!("Could not parse the request body: {e}"),
                    &[],
                )
            } else {
                ApiError::events(
                    400,
                    "SerializationException",
                    format!("Could not parse the request body: {e}"),
                )
            }
        })?;
        if op.is_drs() {
            let violations = model().validate(op.as_str(), &input);
            if !violations.is_empty() {
                return Err(ApiError::from_violations(&violations));
            }
        }
        match op {
            Operation::StartFailbackLaunch => {
                let (answer, id) = state.start_failback_launch(&input, now)?;
                job_id = Some(id);
                match state.fault_after_create() {
                    AfterCreate::Answer => Ok(answer),
                    AfterCreate::InternalError => Err(ApiError::internal(
                        "Internal server error (simulated, after the job was created)",
                    )),
                    AfterCreate::Hang(d) => {
                        hang = Some(d);
                        Ok(answer)
                    }
                }
            }
            Operation::DescribeRecoveryInstances => state.describe_recovery_instances(&input, now),
            Operation::DescribeJobs => state.describe_jobs(&input, now),
            Operation::DescribeJobLogItems => state.describe_job_log_items(&input, now),
            Operation::PutEvents => state.put_events(&input, now),
        }
    })();
    Outcome {
        result,
        job_id,
        hang,
    }
}

fn requested_ids(op: Operation, input: &Value) -> Vec<String> {
    let ids = match op {
        Operation::StartFailbackLaunch => &input["recoveryInstanceIDs"],
        Operation::DescribeRecoveryInstances => &input["filters"]["recoveryInstanceIDs"],
        _ => &Value::Null,
    };
    ids.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Only the presence and shape of a SigV4 `Authorization` header and its credential scope's
/// service are checked: enough to catch an unsigned or wrongly scoped client, not a signature.
/// Both services answer 403: AccessDeniedException for DRS, MissingAuthenticationTokenException
/// or InvalidSignatureException (in `__type`) for EventBridge.
fn check_signature(op: Operation, headers: &HeaderMap) -> Result<(), ApiError> {
    let service = if op.is_drs() { "drs" } else { "events" };
    let refuse = |missing: bool, message: String| {
        Err(match (op.is_drs(), missing) {
            (true, _) => ApiError::access_denied(message),
            (false, true) => ApiError::events(403, "MissingAuthenticationTokenException", message),
            (false, false) => ApiError::events(403, "InvalidSignatureException", message),
        })
    };
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return refuse(true, "Missing Authentication Token".into());
    };
    match signing_service(auth) {
        None => refuse(
            true,
            "Authorization header is not a SigV4 (AWS4-HMAC-SHA256) header".into(),
        ),
        Some(s) if s != service => refuse(
            false,
            format!("Credential should be scoped to correct service: '{service}'."),
        ),
        Some(_) => Ok(()),
    }
}

/// The service of `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=..., Signature=...`.
fn signing_service(auth: &str) -> Option<&str> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, false, false);
    for part in rest.split(',').map(str::trim) {
        if let Some(c) = part.strip_prefix("Credential=") {
            credential = Some(c);
        } else if part
            .strip_prefix("SignedHeaders=")
            .is_some_and(|s| !s.is_empty())
        {
            signed = true;
        } else if part
            .strip_prefix("Signature=")
            .is_some_and(|s| !s.is_empty())
        {
            signature = true;
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    match scope.as_slice() {
        [key, date, region, service, "aws4_request"]
            if signed && signature && !key.is_empty() && !date.is_empty() && !region.is_empty() =>
        {
            Some(service)
        }
        _ => None,
    }
}

fn drs_response(result: Result<Value, ApiError>) -> Resp {
    respond(result, DRS_CONTENT_TYPE, true)
}

fn events_response(result: Result<Value, ApiError>) -> Resp {
    respond(result, EVENTS_CONTENT_TYPE, false)
}

fn respond(
    result: Result<Value, ApiError>,
    content_type: &'static str,
    error_header: bool,
) -> Resp {
    let (status, body, kind, retry_after) = match result {
        Ok(v) => (200, v, None, None),
        Err(e) => (e.status, Value::Object(e.body), Some(e.kind), e.retry_after),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-requestid", v);
    }
    if let (true, Some(kind)) = (error_header, kind) {
        h.insert("x-amzn-errortype", HeaderValue::from_static(kind));
    }
    if let Some(v) = retry_after.and_then(|r| HeaderValue::from_str(&r).ok()) {
        h.insert("retry-after", v);
    }
    resp
}

fn plain(status: StatusCode, body: Value) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FaultsBody {
    One(Fault),
    Many(Vec<Fault>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InstanceUpdate {
    #[serde(rename = "recoveryInstanceID")]
    recovery_instance_id: String,
    state: Option<FailbackState>,
    launch_result: Option<LaunchResult>,
}

/// `/_sim/...`: test and CI controls. No SigV4, JSON in and out.
fn admin(inner: &Inner, method: &Method, path: &str, body: Option<Bytes>) -> Resp {
    let now = Instant::now();
    let ok = |v: Value| plain(StatusCode::OK, v);
    let bad = |m: String| plain(StatusCode::BAD_REQUEST, json!({ "message": m }));
    let to_json = |v: Result<Value, serde_json::Error>| {
        v.unwrap_or_else(|e| json!({ "error": e.to_string() }))
    };
    let body = body.unwrap_or_default();
    tracing::debug!(%method, path, "admin");
    match (method.as_str(), path) {
        ("GET", "/_sim/health") => ok(json!({ "ok": true })),
        ("GET", "/_sim/calls") => ok(to_json(serde_json::to_value(&inner.lock().calls))),
        ("GET", "/_sim/events") => ok(to_json(serde_json::to_value(&inner.lock().events))),
        ("GET", "/_sim/jobs") => ok(to_json(serde_json::to_value(inner.lock().sim_jobs(now)))),
        ("GET", "/_sim/instances") => ok(to_json(serde_json::to_value(
            inner.lock().sim_instances(now),
        ))),
        ("GET", "/_sim/faults") => ok(to_json(serde_json::to_value(inner.lock().faults()))),
        ("POST", "/_sim/faults") => match serde_json::from_slice::<FaultsBody>(&body) {
            Ok(parsed) => {
                let faults = match parsed {
                    FaultsBody::One(f) => vec![f],
                    FaultsBody::Many(v) => v,
                };
                if let Some(e) = faults.iter().find_map(|f| f.check().err()) {
                    return bad(e);
                }
                let mut state = inner.lock();
                faults.into_iter().for_each(|f| state.inject(f));
                ok(json!({ "pending": state.faults().len() }))
            }
            Err(e) => bad(format!("not a fault: {e}")),
        },
        ("DELETE", "/_sim/faults") => {
            inner.lock().clear_faults();
            ok(json!({ "pending": 0 }))
        }
        ("POST", "/_sim/instances") => match serde_json::from_slice::<InstanceUpdate>(&body) {
            Ok(u) => {
                let mut state = inner.lock();
                let found = u
                    .state
                    .is_none_or(|s| state.set_state(&u.recovery_instance_id, s))
                    && u.launch_result
                        .is_none_or(|r| state.set_launch_result(&u.recovery_instance_id, r))
                    && state.by_id.contains_key(&u.recovery_instance_id);
                if found {
                    ok(json!({ "updated": u.recovery_instance_id }))
                } else {
                    plain(
                        StatusCode::NOT_FOUND,
                        json!({ "message": format!("no instance {}", u.recovery_instance_id) }),
                    )
                }
            }
            Err(e) => bad(format!(
                "expected {{recoveryInstanceID, state?, launchResult?}}: {e}"
            )),
        },
        ("POST", "/_sim/reset") => {
            inner.lock().reset();
            ok(json!({ "reset": true }))
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            json!({ "message": format!("no admin route {method} {path}") }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_service_parses_sigv4_headers() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/drs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(signing_service(h), Some("drs"));
        assert_eq!(signing_service("Bearer x"), None);
        assert_eq!(
            signing_service(
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/drs/aws4_request, Signature=abc"
            ),
            None
        );
        assert_eq!(
            signing_service(
                "AWS4-HMAC-SHA256 Credential=AKID/us-east-1/drs/aws4_request, SignedHeaders=host, Signature=abc"
            ),
            None
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500() {
        let resp = isolate("POST /x".into(), async { panic!("boom") }).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let ok = isolate("POST /y".into(), async { plain(StatusCode::OK, json!({})) }).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }

    #[test]
    fn routes() {
        let h = HeaderMap::new();
        assert!(matches!(
            route(&Method::POST, "/DescribeJobs", &h),
            Route::Api(Operation::DescribeJobs)
        ));
        assert!(matches!(
            route(&Method::POST, "/StartRecovery", &h),
            Route::UnknownDrs(_)
        ));
        assert!(matches!(
            route(&Method::GET, "/DescribeJobs", &h),
            Route::NotFound
        ));
        assert!(matches!(route(&Method::POST, "/", &h), Route::NotFound));
        assert!(matches!(route(&Method::POST, "/a/b", &h), Route::NotFound));
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("AWSEvents.PutEvents"),
        );
        assert!(matches!(
            route(&Method::POST, "/", &h),
            Route::Api(Operation::PutEvents)
        ));
    }
}
