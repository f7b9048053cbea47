//! The end of an execution that could not sum its run up: Step Functions' own `Step Functions
//! Execution Status Change` event for an execution aborted, timed out or failed, which an
//! EventBridge rule sends to the function so that the run still ends with a `Failback Run
//! Finished` saying so, with what DRS shows of the run's jobs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::launch::parse_run_id;
use super::not_launched::NotLaunched;
use super::rules::Critical;
use super::track::TrackRequest;
use super::{RequestError, deserialize_at, is_valid_run_id, truncate_utf8};

/// The source and detail-type of Step Functions' execution status events.
pub const STATES_SOURCE: &str = "aws.states";
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// How an execution ended without its summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndStatus {
    Aborted,
    TimedOut,
    Failed,
}

/// The execution that ended, for the run's last event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionEnd {
    pub status: EndStatus,
    pub execution_arn: String,
    /// When the execution started: the run's jobs were all created after it.
    pub started: SystemTime,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusDetail {
    execution_arn: String,
    name: String,
    status: String,
    /// Milliseconds since the epoch.
    start_date: u64,
    /// The execution's input as a JSON string; absent or null when Step Functions left it out
    /// (over 248 KiB).
    input: Option<String>,
}

/// Whether `payload` is a Step Functions execution status event (whose end this function sums up).
pub(super) fn is_status_event(payload: &Value) -> bool {
    payload.get("source").and_then(Value::as_str) == Some(STATES_SOURCE)
        && payload.get("detail-type").and_then(Value::as_str) == Some(EXECUTION_STATUS_CHANGE)
}

/// The run's last call for an execution that ended without summing it up: every job of the run
/// is looked for (none named here), none announced again.
pub(super) fn parse_execution_end(payload: &Value) -> Result<TrackRequest, RequestError> {
    let detail = payload.get("detail").unwrap_or(&Value::Null);
    if !detail.is_object() {
        return Err(RequestError::Envelope(
            "detail must be the execution's status".into(),
        ));
    }
    let detail: StatusDetail = deserialize_at(detail, "detail", &["detail"])?;
    // Step Functions' words, as EndStatus spells them (serde): not DRS's.
    let status: EndStatus =
        serde_json::from_value(Value::String(detail.status.clone())).map_err(|_| {
            RequestError::Invalid {
                field: "detail.status".into(),
                problem: format!(
                    "is {:?}: only an execution ABORTED, TIMED_OUT or FAILED is summed up here",
                    truncate_utf8(&detail.status, 32)
                ),
            }
        })?;
    let input: Value = detail
        .input
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    // The plan's execution runs the whole run (its steps are its child executions): its input
    // is the request, and its start the run's.
    Ok(TrackRequest {
        target: None,
        run_id: run_id_of(&input, &detail.name)?,
        job_ids: Vec::new(),
        reported_job_ids: Vec::new(),
        final_call: true,
        not_launched: NotLaunched::default(),
        step: None,
        critical: Critical::default(),
        max_failed: None,
        step_loop: None,
        held_by_other_steps: Vec::new(),
        ended: Some(ExecutionEnd {
            status,
            execution_arn: truncate_utf8(&detail.execution_arn, 2048),
            started: UNIX_EPOCH + Duration::from_millis(detail.start_date),
        }),
    })
}

/// The run id the execution used, by the rule that fixed it: the request's `runId`, else (the
/// input an EventBridge event) the event's id, else the execution's name.
fn run_id_of(input: &Value, execution_name: &str) -> Result<String, RequestError> {
    let is_event = input.get("detail-type").is_some() && input.get("detail").is_some();
    let request = if is_event { &input["detail"] } else { input };
    let given = request
        .get("runId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let event_id = input
        .get("id")
        .and_then(Value::as_str)
        .filter(|_| is_event)
        .map(str::to_owned);
    let name = execution_name.to_owned();
    let run_id = parse_run_id(given, event_id, || name)?;
    if is_valid_run_id(&run_id) {
        Ok(run_id)
    } else {
        Err(RequestError::BadRunId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Action, parse_action};
    use serde_json::json;

    fn event(status: &str, input: Option<Value>) -> Value {
        json!({"version": "0", "id": "e1", "detail-type": EXECUTION_STATUS_CHANGE,
            "source": "aws.states", "account": "111122223333", "time": "2026-12-03T10:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"executionArn": "arn:aws:states:us-east-1:111122223333:execution:fb:exec-1",
                "stateMachineArn": "arn:aws:states:us-east-1:111122223333:stateMachine:fb",
                "name": "exec-1", "status": status, "startDate": 1_764_756_000_000u64,
                "stopDate": 1_764_759_600_000u64,
                "input": input.map(|i| i.to_string()), "inputDetails": {"included": true}}})
    }

    fn parse(payload: Value) -> Result<TrackRequest, RequestError> {
        match parse_action(payload, 5000, || "new".into())? {
            Action::Track(track) => Ok(track),
            other => panic!("a track request, not {other:?}"),
        }
    }

    #[test]
    fn the_run_id_is_found_as_the_execution_fixed_it() {
        let cases = [
            (
                Some(json!({"runId": "wave-1", "recoveryInstanceIDs": []})),
                "wave-1",
            ),
            (
                Some(
                    json!({"id": "evt-9", "detail-type": "Failback Launch Requested",
                    "source": "x", "detail": {"recoveryInstanceIDs": []}}),
                ),
                "evt-9",
            ),
            (
                Some(
                    json!({"id": "evt-9", "detail-type": "Failback Launch Requested",
                    "source": "x", "detail": {"runId": "plan-7", "steps": []}}),
                ),
                "plan-7",
            ),
            (Some(json!({"steps": []})), "exec-1"),
            (None, "exec-1"),
        ];
        for (input, run_id) in cases {
            let request = parse(event("ABORTED", input.clone())).unwrap();
            assert_eq!(request.run_id, run_id, "{input:?}");
            assert!(request.final_call && request.job_ids.is_empty());
        }
        for expected in [EndStatus::Aborted, EndStatus::TimedOut, EndStatus::Failed] {
            let status = serde_json::to_value(expected).unwrap();
            let ended = parse(event(status.as_str().unwrap(), None))
                .unwrap()
                .ended
                .unwrap();
            assert_eq!(ended.status, expected);
            assert!(ended.execution_arn.ends_with(":exec-1"));
            assert_eq!(
                ended.started,
                UNIX_EPOCH + Duration::from_millis(1_764_756_000_000)
            );
        }
    }

    #[test]
    fn other_ends_and_broken_events_are_refused_by_name() {
        let error = parse(event("SUCCEEDED", None)).unwrap_err().to_string();
        assert!(error.contains("detail.status is \"SUCCEEDED\""), "{error}");
        let mut broken = event("ABORTED", None);
        broken["detail"]["startDate"] = json!("yesterday");
        let error = parse(broken).unwrap_err().to_string();
        assert!(error.contains("detail.startDate"), "{error}");
        let mut bad_run = event("ABORTED", Some(json!({"runId": "no spaces allowed"})));
        bad_run["detail"]["name"] = json!("exec-1");
        let error = parse(bad_run).unwrap_err().to_string();
        assert!(error.contains("runId must be"), "{error}");
    }
}
