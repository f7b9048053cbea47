//! The step execution request: `{"action": "stepExecution", "runId", "step", "execution": {"name",
//! "status", "error"?, "cause"?}, "redriven", "stale", "polls", "attemptPolls", "redriveRefused"?}`. The plan runs each step as a child
//! execution and waits for it; when that wait ends without the step's answer (the child failed,
//! timed out, was aborted, or could not be started), the plan reads the child and asks what comes
//! of it ([`crate::plan::follow`]). Nothing is read from DRS: the answer is a decision only.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rules::parse_step_name;
use super::{RequestError, deserialize, invalid, required_run_id, truncate_utf8};

/// How much of a child's error and cause an answer repeats.
const ERROR_ECHO_MAX: usize = 256;
const CAUSE_ECHO_MAX: usize = 2048;

/// A step execution's status, as the newest event of its history says it: how it ended, or that
/// it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

/// The step execution as the plan read it: `status` absent when it could not be read (never
/// started, or Step Functions did not answer: `error`, `cause` say what the read met).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepExecution {
    pub name: String,
    pub status: Option<ExecutionStatus>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepExecutionRequest {
    pub run_id: String,
    pub step: String,
    pub execution: StepExecution,
    /// The plan's execution was redriven since the step execution was last looked into: the
    /// operator asks for the run to go on.
    pub redriven: bool,
    /// What the plan read of the step execution was read before the plan's execution was last
    /// redriven: it may be old.
    pub stale: bool,
    /// Looks at this step execution (and starts of it made again) since it was started or the
    /// plan's execution last redriven.
    pub polls: u32,
    /// Looks at step executions (any step) in this attempt of the plan's execution: their
    /// number bounds the history they write.
    pub attempt_polls: u32,
    /// The plan's RedriveExecution of this step execution was refused: the error and cause.
    pub redrive_refused: Option<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    #[serde(rename = "action")]
    _action: Option<IgnoredAny>,
    run_id: Option<String>,
    step: Option<String>,
    execution: Option<ExecutionBody>,
    redriven: Option<bool>,
    stale: Option<bool>,
    polls: Option<u32>,
    attempt_polls: Option<u32>,
    redrive_refused: Option<RefusalBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalBody {
    error: Option<String>,
    cause: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutionBody {
    name: Option<String>,
    // A status this function does not know is refused, not guessed at.
    status: Option<ExecutionStatus>,
    error: Option<String>,
    cause: Option<String>,
}

pub(crate) fn parse_step_execution(body: &Value) -> Result<StepExecutionRequest, RequestError> {
    let body: Body = deserialize(body)?;
    let run_id = required_run_id(body.run_id)?;
    let step = parse_step_name("step", body.step)?.ok_or(RequestError::Missing("step"))?;
    let execution = body.execution.ok_or(RequestError::Missing("execution"))?;
    let name = execution
        .name
        .ok_or(RequestError::Missing("execution.name"))?;
    if name.is_empty()
        || name.len() > 80
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            "execution.name",
            "must be a step execution's name: 1 to 80 letters, digits, - or _",
        ));
    }
    Ok(StepExecutionRequest {
        run_id,
        step,
        execution: StepExecution {
            name,
            status: execution.status,
            error: execution.error.map(|e| truncate_utf8(&e, ERROR_ECHO_MAX)),
            cause: execution.cause.map(|c| truncate_utf8(&c, CAUSE_ECHO_MAX)),
        },
        redriven: body.redriven.ok_or(RequestError::Missing("redriven"))?,
        stale: body.stale.unwrap_or(false),
        polls: body.polls.unwrap_or(0),
        attempt_polls: body.attempt_polls.or(body.polls).unwrap_or(0),
        redrive_refused: body.redrive_refused.map(|r| {
            (
                truncate_utf8(&r.error.unwrap_or_default(), ERROR_ECHO_MAX),
                truncate_utf8(&r.cause.unwrap_or_default(), CAUSE_ECHO_MAX),
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(changes: Value) -> Value {
        let mut body = json!({"action": "stepExecution", "runId": "wave-1", "step": "db",
            "execution": {"name": "drs-0123abcd-s0-p1", "status": "FAILED", "error": "DrsReadFailed", "cause": "c"},
            "redriven": false, "polls": 0});
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn reads_what_the_plan_sends() {
        let request = parse_step_execution(&body(json!({}))).unwrap();
        assert_eq!(request.step, "db");
        assert_eq!(request.execution.status, Some(ExecutionStatus::Failed));
        assert_eq!(request.execution.error.as_deref(), Some("DrsReadFailed"));
        assert!(!request.redriven);
        let unread = body(json!({"execution": {"name": "drs-x-s1-p2", "status": null,
            "error": "Sfn.ExecutionDoesNotExistException", "cause": null}}));
        assert_eq!(
            parse_step_execution(&unread).unwrap().execution.status,
            None
        );
    }

    #[test]
    fn refuses_what_it_cannot_decide_on() {
        for (changes, words) in [
            (json!({"runId": null}), "runId"),
            (json!({"step": null}), "step"),
            (json!({"redriven": null}), "redriven"),
            (
                json!({"execution": {"status": "RUNNING"}}),
                "execution.name",
            ),
            (
                json!({"execution": {"name": "a b", "status": "RUNNING"}}),
                "execution.name",
            ),
            (
                json!({"execution": {"name": "n", "status": "PAUSED"}}),
                "execution.status",
            ),
            (json!({"extra": 1}), "extra"),
        ] {
            let error = parse_step_execution(&body(changes.clone()))
                .unwrap_err()
                .to_string();
            assert!(error.contains(words), "{changes}: {error}");
        }
    }
}
