//! The track request: `{"action": "track", "runId", "jobIDs", "reportedJobIDs"?, "final"?,
//! "notLaunched"?, "step"?, "critical"?, "maxFailed"?}`. The state machine (or a user) asks after
//! the jobs of a run; nothing about a run is kept between calls, so the caller passes back which
//! jobs were already reported.

use std::collections::HashSet;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ended::ExecutionEnd;
use super::not_launched::{NotLaunched, parse_not_launched};
use super::rules::{Critical, parse_critical, parse_step_name};
use super::step_loop::StepLoop;
use super::{RequestError, deserialize, invalid, required_run_id};
use crate::config::REQUEST_INSTANCES_CEILING;
use crate::drs::ids::is_valid_job_id;

/// A run of the largest request launches at most one job per instance.
pub const MAX_TRACKED_JOBS: usize = REQUEST_INSTANCES_CEILING;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRequest {
    pub run_id: String,
    /// The account and region the jobs are in; the function's own when unsaid.
    pub target: Option<crate::drs::Target>,
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
    /// The run's execution ended without summing it up (Step Functions' status event): this call
    /// looks for the run's jobs itself and its `Failback Run Finished` says how the run ended.
    pub ended: Option<ExecutionEnd>,
    /// Where the step's loop stands: given, the answer says what comes next (and, on the last
    /// call, how the step ended).
    pub step_loop: Option<StepLoop>,
    /// A step's last call: the instances its selector matched that other steps hold, as its
    /// launch answers listed them — named in its Failback Step Finished, counted by those steps.
    pub held_by_other_steps: Vec<HeldGroup>,
}

/// Instances this step's selector matches that belong to another step of the plan: named there
/// by the plan's author, or launched there. They are that step's alone: not launched, counted or
/// reported by this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeldGroup {
    pub step: String,
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TrackBody {
    #[serde(rename = "action")]
    _action: Option<IgnoredAny>,
    run_id: Option<String>,
    #[serde(rename = "jobIDs")]
    job_ids: Option<Vec<String>>,
    #[serde(rename = "reportedJobIDs")]
    reported_job_ids: Option<Vec<String>>,
    #[serde(rename = "final")]
    final_call: Option<bool>,
    not_launched: Option<Value>,
    step: Option<String>,
    critical: Option<Value>,
    max_failed: Option<u64>,
    #[serde(rename = "loop")]
    step_loop: Option<StepLoop>,
    held_by_other_steps: Option<Vec<HeldGroup>>,
    target: Option<crate::drs::Target>,
}

pub(crate) fn parse_track(body: &Value) -> Result<TrackRequest, RequestError> {
    let body: TrackBody = deserialize(body)?;
    let run_id = required_run_id(body.run_id)?;
    let final_call = body.final_call.unwrap_or(false);
    let job_ids = checked_jobs("jobIDs", body.job_ids)?;
    // A run that launched nothing still ends with a final call, to account for its instances.
    // A step's loop may ask after no job: a launch round failed before any job of the step
    // existed, and the answer says what comes next.
    let in_loop = body.step_loop.is_some();
    if job_ids
        .as_ref()
        .is_none_or(|ids| ids.is_empty() && !final_call && !in_loop)
    {
        return Err(RequestError::Missing("jobIDs"));
    }
    let reported_job_ids = checked_jobs("reportedJobIDs", body.reported_job_ids)?;
    let not_launched = parse_not_launched(body.not_launched)?;
    let step = parse_step_name("step", body.step)?;
    // A step's rules decide its verdict: without a step there is none to decide.
    if step.is_none() {
        for (rule, given) in [
            ("critical", body.critical.is_some()),
            ("maxFailed", body.max_failed.is_some()),
        ] {
            if given {
                return Err(invalid(rule, "applies to a plan step: give step as well"));
            }
        }
    }
    Ok(TrackRequest {
        target: super::launch::parse_target(body.target)?,
        run_id,
        job_ids: job_ids.unwrap_or_default(),
        reported_job_ids: reported_job_ids.unwrap_or_default(),
        final_call,
        not_launched,
        step,
        critical: parse_critical(body.critical)?,
        max_failed: body.max_failed,
        ended: None,
        step_loop: body.step_loop,
        held_by_other_steps: checked_held(body.held_by_other_steps.unwrap_or_default())?,
    })
}

/// `heldByOtherSteps` as the launch answers gave it: step names checked; past the ceiling of ids
/// in all, the rest is left out rather than the step's last call refused — the list only names
/// what other steps hold, and Step Finished lists 100 of them at most.
fn checked_held(mut held: Vec<HeldGroup>) -> Result<Vec<HeldGroup>, RequestError> {
    for group in &held {
        parse_step_name("heldByOtherSteps[].step", Some(group.step.clone()))?;
    }
    let mut left = REQUEST_INSTANCES_CEILING;
    for group in &mut held {
        group.recovery_instance_ids.truncate(left);
        left -= group.recovery_instance_ids.len();
    }
    Ok(held)
}

/// A list of job ids, checked one by one and de-duplicated.
fn checked_jobs(
    field: &'static str,
    list: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, RequestError> {
    let Some(mut list) = list else {
        return Ok(None);
    };
    if list.len() > MAX_TRACKED_JOBS {
        let (count, max) = (list.len(), MAX_TRACKED_JOBS);
        return Err(RequestError::TooMany { field, count, max });
    }
    if let Some(index) = list.iter().position(|id| !is_valid_job_id(id)) {
        let field = format!("{field}[{index}]");
        return Err(RequestError::BadJobId { field });
    }
    let mut seen = HashSet::with_capacity(list.len());
    list.retain(|id| seen.insert(id.clone()));
    Ok(Some(list))
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
}
