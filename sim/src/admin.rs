//! `/_sim/...`: the test and CI controls on the simulator's port. No SigV4, JSON in and out.

use hyper::Method;
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::{Fault, Settings};
use crate::fleet::{FailbackState, LaunchResult};
use crate::reply::Reply;
use crate::state::Shared;

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
    /// The launch fails with this job log event (e.g. CONVERSION_FAIL).
    failure_event: Option<String>,
    /// Replaces the instance's tags.
    tags: Option<std::collections::BTreeMap<String, String>>,
    /// Replicates the instance back from now on, timed from this call.
    replication: Option<crate::replication::Replication>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JobRequest {
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Vec<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// Answers one admin call.
pub(crate) fn admin(shared: &Shared, method: &Method, path: &str, body: Option<Bytes>) -> Reply {
    let now = Instant::now();
    let ok = |v: Value| Reply::json(200, v);
    let bad = |m: String| Reply::json(400, json!({ "message": m }));
    let to_json = |v: Result<Value, serde_json::Error>| {
        v.unwrap_or_else(|e| json!({ "error": e.to_string() }))
    };
    let body = body.unwrap_or_default();
    tracing::debug!(%method, path, "admin");
    match (method.as_str(), path) {
        ("GET", "/_sim/health") => ok(json!({ "ok": true })),
        ("GET", "/_sim/calls") => ok(to_json(serde_json::to_value(&shared.lock().calls))),
        ("GET", "/_sim/events") => ok(to_json(serde_json::to_value(&shared.lock().events))),
        ("GET", "/_sim/jobs") => ok(to_json(serde_json::to_value(shared.lock().sim_jobs(now)))),
        ("GET", "/_sim/instances") => ok(to_json(serde_json::to_value(
            shared.lock().sim_instances(now),
        ))),
        ("GET", "/_sim/faults") => ok(to_json(serde_json::to_value(shared.lock().faults()))),
        ("POST", "/_sim/faults") => match serde_json::from_slice::<FaultsBody>(&body) {
            Ok(parsed) => {
                let faults = match parsed {
                    FaultsBody::One(f) => vec![f],
                    FaultsBody::Many(v) => v,
                };
                if let Some(e) = faults.iter().find_map(|f| f.check().err()) {
                    return bad(e);
                }
                let mut state = shared.lock();
                faults.into_iter().for_each(|f| state.inject(f));
                ok(json!({ "pending": state.faults().len() }))
            }
            Err(e) => bad(format!("not a fault: {e}")),
        },
        ("DELETE", "/_sim/faults") => {
            shared.lock().clear_faults();
            ok(json!({ "pending": 0 }))
        }
        ("POST", "/_sim/instances") => match serde_json::from_slice::<InstanceUpdate>(&body) {
            Ok(u) => {
                if let Some(event) = &u.failure_event
                    && let Err(e) = crate::model::check_value("JobLogEvent", event)
                {
                    return bad(format!("failureEvent {event:?}: {e}"));
                }
                let mut state = shared.lock();
                let found = u
                    .state
                    .is_none_or(|s| state.set_state(&u.recovery_instance_id, s))
                    && u.launch_result
                        .is_none_or(|r| state.set_launch_result(&u.recovery_instance_id, r))
                    && u.failure_event
                        .as_deref()
                        .is_none_or(|e| state.set_failure(&u.recovery_instance_id, e))
                    && u.tags
                        .is_none_or(|t| state.set_tags(&u.recovery_instance_id, t))
                    && u.replication
                        .is_none_or(|r| state.set_replication(&u.recovery_instance_id, r, now))
                    && state.by_id.contains_key(&u.recovery_instance_id);
                if found {
                    ok(json!({ "updated": u.recovery_instance_id }))
                } else {
                    Reply::json(
                        404,
                        json!({ "message": format!("no instance {}", u.recovery_instance_id) }),
                    )
                }
            }
            Err(e) => bad(format!(
                "expected {{recoveryInstanceID, state?, launchResult?, failureEvent?, tags?, replication?}}: {e}"
            )),
        },
        ("POST", "/_sim/jobs") => match serde_json::from_slice::<JobRequest>(&body) {
            Ok(j) => {
                let tags: Vec<(&str, &str)> = j
                    .tags
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match shared.lock().start_job(&j.recovery_instance_ids, &tags) {
                    Ok(job_id) => ok(json!({ "jobID": job_id })),
                    Err(refusal) => Reply::json(409, json!({ "message": refusal })),
                }
            }
            Err(e) => bad(format!("expected {{recoveryInstanceIDs, tags?}}: {e}")),
        },
        ("POST", "/_sim/settings") => match serde_json::from_slice::<Settings>(&body) {
            Ok(settings) => match shared.lock().apply(settings) {
                Ok(()) => ok(json!({ "updated": true })),
                Err(message) => bad(message),
            },
            Err(e) => bad(format!(
                "expected {{errorDetails?, visibilityLagSeconds?, completedJobsWithoutInstanceIDs?, \
                 launchStatusStaysPending?, finalStateLagSeconds?, history?}}: {e}"
            )),
        },
        ("POST", "/_sim/reset") => {
            shared.lock().reset();
            ok(json!({ "reset": true }))
        }
        _ => Reply::json(
            404,
            json!({ "message": format!("no admin route {method} {path}") }),
        ),
    }
}
