//! The track request: `{"action": "track", "runId", "jobIDs", "reportedJobIDs"?, "final"?,
//! "notLaunched"?, "step"?, "critical"?, "maxFailed"?}`. The state machine (or a user) asks after the jobs of a run; nothing about a
//! run is kept between calls, so the caller passes back which jobs were already reported.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::not_launched::{NotLaunched, parse_not_launched};
use super::rules::{Critical, parse_critical, parse_max_failed, parse_step_name};
use super::{RequestError, check_fields, is_valid_run_id, json_kind};
use crate::config::REQUEST_INSTANCES_CEILING;

/// A run of the largest request launches at most one job per instance.
pub const MAX_TRACKED_JOBS: usize = REQUEST_INSTANCES_CEILING;

const KNOWN_FIELDS: [&str; 9] = [
    "action",
    "runId",
    "jobIDs",
    "reportedJobIDs",
    "final",
    "notLaunched",
    "step",
    "critical",
    "maxFailed",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRequest {
    pub run_id: String,
    /// The jobs to follow, duplicates removed, in the order given.
    pub job_ids: Vec<String>,
    /// Jobs whose `Failback Launch Job Completed` event was already published.
    pub reported_job_ids: Vec<String>,
    /// The run is over after this call (no launch left to make): publish `Failback Run Finished`.
    pub final_call: bool,
    /// Instances of the run that were never launched (skipped, rejected, or still deferred when
    /// the run gave up), for the run's summary: a count, or the launch answers' groups.
    pub not_launched: NotLaunched,
    /// The plan step these jobs belong to: its events carry it, and its last call publishes
    /// `Failback Step Finished` with the step's verdict instead of `Failback Run Finished`.
    pub step: Option<String>,
    pub critical: Critical,
    pub max_failed: Option<u64>,
}

/// `drsjob-` and 17 letters or digits, as the DRS API model states.
pub fn is_valid_job_id(id: &str) -> bool {
    id.len() == 24
        && id.starts_with("drsjob-")
        && id[7..].bytes().all(|b| b.is_ascii_alphanumeric())
}

pub(crate) fn parse_track(body: &Map<String, Value>) -> Result<TrackRequest, RequestError> {
    check_fields(body, &KNOWN_FIELDS)?;
    let run_id = match body.get("runId") {
        None | Some(Value::Null) => return Err(RequestError::Missing("runId")),
        Some(Value::String(id)) if is_valid_run_id(id) => id.clone(),
        Some(Value::String(_)) => return Err(RequestError::BadRunId),
        Some(other) => return Err(wrong("runId", "a string", other)),
    };
    let final_call = match body.get("final") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => return Err(wrong("final", "true or false", other)),
    };
    let job_ids = job_ids(body, "jobIDs")?.ok_or(RequestError::Missing("jobIDs"))?;
    // A run that launched nothing still ends with a final call, to account for its instances.
    if job_ids.is_empty() && !final_call {
        return Err(RequestError::Missing("jobIDs"));
    }
    let reported_job_ids = job_ids_or_none(body, "reportedJobIDs")?;
    let not_launched = parse_not_launched(body.get("notLaunched"))?;
    let step = parse_step_name(body.get("step"))?;
    // A step's rules decide its verdict: without a step there is none to decide.
    for rule in ["critical", "maxFailed"] {
        if step.is_none() && body.get(rule).is_some_and(|v| !v.is_null()) {
            return Err(RequestError::Invalid {
                field: rule.into(),
                problem: "applies to a plan step: give step as well".into(),
            });
        }
    }
    Ok(TrackRequest {
        run_id,
        job_ids,
        reported_job_ids,
        final_call,
        not_launched,
        step,
        critical: parse_critical(body.get("critical"))?,
        max_failed: parse_max_failed(body.get("maxFailed"))?,
    })
}

fn wrong(field: &str, expected: &'static str, found: &Value) -> RequestError {
    RequestError::WrongType {
        field: field.into(),
        expected,
        found: json_kind(found),
    }
}

fn job_ids_or_none(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Vec<String>, RequestError> {
    Ok(job_ids(body, field)?.unwrap_or_default())
}

/// A list of job ids, checked one by one and de-duplicated; `None` when absent.
fn job_ids(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Vec<String>>, RequestError> {
    let list = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong(field, "an array of job ids", other)),
    };
    if list.len() > MAX_TRACKED_JOBS {
        return Err(RequestError::TooMany {
            field,
            count: list.len(),
            max: MAX_TRACKED_JOBS,
        });
    }
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let Value::String(id) = entry else {
            return Err(wrong(&format!("{field}[{index}]"), "a string", entry));
        };
        if !is_valid_job_id(id) {
            return Err(RequestError::BadJobId {
                field: format!("{field}[{index}]"),
            });
        }
        if seen.insert(id.as_str()) {
            ids.push(id.clone());
        }
    }
    Ok(Some(ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Action, parse_action};
    use serde_json::json;

    fn parse(payload: Value) -> Result<Action, RequestError> {
        parse_action(payload, 5000, || "generated".into())
    }

    const JOB: &str = "drsjob-0123456789abcdefg";

    #[test]
    fn a_track_request_in_either_envelope() {
        let direct = json!({"action": "track", "runId": "wave-1", "jobIDs": [JOB, JOB],
            "reportedJobIDs": [], "final": true, "notLaunched": 3});
        let Action::Track(track) = parse(direct.clone()).unwrap() else {
            panic!("a track request")
        };
        assert_eq!(track.job_ids, [JOB], "duplicates collapse");
        assert!(track.final_call);
        assert_eq!(track.not_launched.count, 3);
        let nothing_launched = json!({"action": "track", "runId": "wave-1", "jobIDs": [],
            "final": true, "notLaunched": [{"outcome": "skipped", "reason": "NOT_FOUND",
            "recoveryInstanceIDs": ["i-11111111"]}]});
        let Action::Track(track) = parse(nothing_launched).unwrap() else {
            panic!("a track request")
        };
        assert!(track.job_ids.is_empty());
        assert_eq!(track.not_launched.groups[0].reason, "NOT_FOUND");
        let event = json!({"detail-type": "x", "source": "y", "detail": direct});
        assert!(matches!(parse(event).unwrap(), Action::Track(_)));
        // no action, or "launch", is a launch
        let launch = json!({"action": "launch", "recoveryInstanceIDs": ["i-11111111"]});
        assert!(matches!(parse(launch).unwrap(), Action::Launch(_)));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                json!({"action": "trak", "runId": "r", "jobIDs": [JOB]}),
                "action \"trak\"",
            ),
            (json!({"action": 1}), "action must be"),
            (
                json!({"action": "track", "jobIDs": [JOB]}),
                "runId is missing",
            ),
            (
                json!({"action": "track", "runId": "r"}),
                "jobIDs is missing",
            ),
            (
                json!({"action": "track", "runId": "r", "jobIDs": []}),
                "jobIDs is missing",
            ),
            (
                json!({"action": "track", "runId": "r", "jobIDs": ["job-1"]}),
                "jobIDs[0] is not a DRS job id",
            ),
            (
                json!({"action": "track", "runId": "r", "jobIDs": [JOB], "reportedJobIDs": [7]}),
                "reportedJobIDs[0] must be a string",
            ),
            (
                json!({"action": "track", "runId": "r", "jobIDs": [JOB], "final": "yes"}),
                "final must be",
            ),
            (
                json!({"action": "track", "runId": "r", "jobIDs": [JOB], "notLaunched": -1}),
                "notLaunched must be",
            ),
            (
                json!({"action": "track", "runId": "r", "jobIDs": [JOB], "jobIds": []}),
                "did you mean jobIDs",
            ),
            (
                json!({"action": "track", "runId": "r", "jobIDs": [JOB], "recoveryInstanceIDs": []}),
                "unknown field \"recoveryInstanceIDs\"",
            ),
        ];
        for (payload, expected) in cases {
            let err = parse(payload.clone()).expect_err(&payload.to_string());
            assert!(err.to_string().contains(expected), "{payload} -> {err}");
        }
        let many: Vec<String> = (0..5001).map(|n| format!("drsjob-{n:017}")).collect();
        let err = parse(json!({"action": "track", "runId": "r", "jobIDs": many})).unwrap_err();
        assert!(err.to_string().contains("at most 5000"), "{err}");
    }

    #[test]
    fn job_ids_follow_the_api_model() {
        assert!(is_valid_job_id(JOB));
        assert!(!is_valid_job_id("drsjob-0123456789abcdef"));
        assert!(!is_valid_job_id("drsjob-0123456789abcdef!"));
        assert!(!is_valid_job_id("xxxjob-0123456789abcdefg"));
    }
}
