//! From a request to its answer, whatever carried it (the loopback listener or the in-process SDK
//! client): DRS (restJson1: `POST /<Operation>`), EventBridge (awsJson1_1: `POST /` with
//! `X-Amz-Target`) and the admin API under `/_sim/`.
//!
//! An API call goes: latency → SigV4 presence → account initialised (DRS) → a hang, if one is
//! injected → faults that refuse before anything happens → JSON parse → model validation (DRS) →
//! the operation → faults that act after a job was created.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Request};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::admin::admin;
use crate::config::Operation;
use crate::error::ApiError;
use crate::model::model;
use crate::reply::Reply;
use crate::sigv4::check_signature;
use crate::state::{AfterCreate, CallRecord, Shared, State};
use crate::world::World;

const DRS_CONTENT_TYPE: &str = "application/json";
const EVENTS_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const EVENTS_TARGET: &str = "AWSEvents.PutEvents";

/// A request as a transport hands it over: the body read whole, or why it could not be.
pub(crate) type Incoming = Request<Result<Bytes, String>>;

enum Route {
    Api(Operation),
    Sts,
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
            None if crate::sigv4::signed_for(headers, "sts") => Route::Sts,
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

/// The API operation a request calls, if any.
pub(crate) fn operation_of(request: &Incoming) -> Option<Operation> {
    match route(request.method(), request.uri().path(), request.headers()) {
        Route::Api(op) => Some(op),
        _ => None,
    }
}

/// Answers one request in its own task: a panic there becomes a 500 for that request instead of
/// taking the connection (or the accept loop) down. The task also runs on when the caller gives
/// up waiting, as a server does: a job may be created after the client's timeout.
pub(crate) async fn answer(world: Arc<World>, request: Incoming) -> Reply {
    let what = format!("{} {}", request.method(), request.uri().path());
    match tokio::spawn(dispatch(world, request)).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(request = %what, error = %e, "handler failed");
            Reply::json(500, json!({"message": "simulator handler failed"}))
        }
    }
}

async fn dispatch(world: Arc<World>, request: Incoming) -> Reply {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return admin_of(&world, &parts.method, &path, body.ok());
    }
    match route(&parts.method, &path, &parts.headers) {
        Route::Sts => {
            world.assume_role(&parts.headers, body.as_deref().unwrap_or_default(), arrived)
        }
        Route::Api(op) => {
            let shared = match world.route(&parts.headers, arrived) {
                Ok(shared) => Arc::clone(shared),
                Err(e) if op.is_drs() => return drs_reply(Err(e)),
                Err(e) => return events_reply(Err(e)),
            };
            let parsed = match body {
                Ok(b) if b.is_empty() => Ok(json!({})),
                Ok(b) => serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()),
                Err(e) => Err(format!("body unreadable: {e}")),
            };
            api_call(&shared, op, &parts.headers, parsed, arrived).await
        }
        Route::UnknownDrs(name) => {
            tracing::info!(operation = %name, "unknown operation");
            drs_reply(Err(ApiError::validation(
                "unknownOperation",
                format!("Unknown operation {name}"),
                &[],
            )))
        }
        Route::UnknownTarget(target) => {
            tracing::info!(target = %target, "unknown X-Amz-Target");
            events_reply(Err(ApiError::events(
                400,
                "UnknownOperationException",
                format!("Unknown operation {target}"),
            )))
        }
        Route::NotFound => Reply::json(
            404,
            json!({"message": format!("no route for {} {path}", parts.method)}),
        ),
    }
}

/// The admin API of the home simulator, or under `/_sim/targets/<account>/<region>/` of a
/// target's; `GET /_sim/targets` lists them all.
fn admin_of(world: &World, method: &Method, path: &str, body: Option<Bytes>) -> Reply {
    if path == "/_sim/targets" && method == Method::GET {
        let keys: Vec<Value> = world
            .keys()
            .into_iter()
            .map(|(account, region)| json!({ "accountId": account, "region": region }))
            .collect();
        return Reply::json(200, Value::Array(keys));
    }
    let Some(rest) = path.strip_prefix("/_sim/targets/") else {
        return admin(world.home(), method, path, body);
    };
    let mut parts = rest.splitn(3, '/');
    let (account, region, tail) = (parts.next(), parts.next(), parts.next());
    match (account, region) {
        (Some(account), Some(region)) => match world.at(account, region) {
            Some(shared) => admin(
                shared,
                method,
                &format!("/_sim/{}", tail.unwrap_or("")),
                body,
            ),
            None => Reply::json(
                404,
                json!({ "message": format!("no target {account}/{region}") }),
            ),
        },
        _ => Reply::json(
            404,
            json!({ "message": format!("no route for {method} {path}") }),
        ),
    }
}

/// What a call did, decided under the lock.
struct Decision {
    result: Result<Value, ApiError>,
    job_id: Option<String>,
    hang: Option<Duration>,
}

async fn api_call(
    shared: &Shared,
    op: Operation,
    headers: &HeaderMap,
    parsed: Result<Value, String>,
    arrived: Instant,
) -> Reply {
    let (latency, hang_before, seq) = {
        let mut state = shared.lock();
        state.arrivals += 1;
        (state.latency, state.hang_before(op), state.arrivals - 1)
    };
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let mut lost = false;
    if let Some((hang, dropped)) = hang_before {
        tokio::time::sleep(hang).await;
        lost = dropped;
    }
    let ids = parsed
        .as_ref()
        .map(|v| requested_ids(op, v))
        .unwrap_or_default();
    let entries = match (&parsed, op) {
        (Ok(v), Operation::PutEvents) => v["Entries"].as_array().map_or(0, Vec::len),
        _ => 0,
    };
    let decision = {
        let mut state = shared.lock();
        let decision = if lost {
            Decision {
                result: Err(ApiError::internal(
                    "Internal server error (simulated: the request was lost)",
                )),
                job_id: None,
                hang: None,
            }
        } else {
            decide(&mut state, op, headers, parsed, Instant::now())
        };
        let record = CallRecord {
            at_ms: state.clock.ms(arrived),
            seq,
            operation: op,
            recovery_instance_ids: ids,
            status: decision.result.as_ref().map_or_else(|e| e.status, |_| 200),
            error_type: decision.result.as_ref().err().map(|e| e.kind.to_string()),
            job_id: decision.job_id.clone(),
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
        decision
    };
    if let Some(hang) = decision.hang {
        tokio::time::sleep(hang).await;
    }
    if op.is_drs() {
        drs_reply(decision.result)
    } else {
        events_reply(decision.result)
    }
}

fn decide(
    state: &mut State,
    op: Operation,
    headers: &HeaderMap,
    parsed: Result<Value, String>,
    now: Instant,
) -> Decision {
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
                    AfterCreate::AnswerWithoutParticipants => {
                        let mut answer = answer;
                        answer["job"]["participatingServers"] = json!([]);
                        Ok(answer)
                    }
                }
            }
            Operation::DescribeRecoveryInstances => state.describe_recovery_instances(&input, now),
            Operation::DescribeJobs => state.describe_jobs(&input, now),
            Operation::DescribeJobLogItems => state.describe_job_log_items(&input, now),
            Operation::DisconnectRecoveryInstance => {
                state.disconnect_recovery_instance(&input, now)
            }
            Operation::TerminateRecoveryInstances => {
                let (answer, id) = state.terminate_recovery_instances(&input, now)?;
                job_id = Some(id);
                Ok(answer)
            }
            Operation::PutEvents => state.put_events(&input, now),
        }
    })();
    Decision {
        result,
        job_id,
        hang,
    }
}

fn requested_ids(op: Operation, input: &Value) -> Vec<String> {
    let ids = match op {
        Operation::StartFailbackLaunch | Operation::TerminateRecoveryInstances => {
            &input["recoveryInstanceIDs"]
        }
        Operation::DisconnectRecoveryInstance => {
            return input["recoveryInstanceID"]
                .as_str()
                .map(|id| vec![id.to_owned()])
                .unwrap_or_default();
        }
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

fn drs_reply(result: Result<Value, ApiError>) -> Reply {
    encode(result, DRS_CONTENT_TYPE, true)
}

fn events_reply(result: Result<Value, ApiError>) -> Reply {
    encode(result, EVENTS_CONTENT_TYPE, false)
}

/// The protocol's answer: the error name in `x-amzn-ErrorType` for restJson1 (awsJson1_1 carries
/// it in the body), `Retry-After` when the error has one, and a request id.
fn encode(
    result: Result<Value, ApiError>,
    content_type: &'static str,
    error_header: bool,
) -> Reply {
    let (status, body, kind, retry_after) = match result {
        Ok(v) => (200, v, None, None),
        Err(e) => (e.status, Value::Object(e.body), Some(e.kind), e.retry_after),
    };
    let mut headers = vec![
        ("content-type", content_type.to_owned()),
        ("x-amzn-requestid", uuid::Uuid::new_v4().to_string()),
    ];
    if let (true, Some(kind)) = (error_header, kind) {
        headers.push(("x-amzn-errortype", kind.into_owned()));
    }
    if let Some(retry_after) = retry_after {
        headers.push(("retry-after", retry_after));
    }
    Reply {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[tokio::test]
    async fn a_panicking_handler_answers_500() {
        let world = Arc::new(World::new(crate::SimConfig::default()));
        // A body that is not bytes at all panics nowhere; a request the admin API cannot even
        // route still answers.
        let request = Request::builder()
            .method(Method::GET)
            .uri("/_sim/nowhere")
            .body(Ok(Bytes::new()))
            .unwrap();
        assert_eq!(answer(world, request).await.status, 404);
        let panicked = tokio::spawn(async { panic!("boom") }).await;
        assert!(panicked.is_err());
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
