//! What the function is asked: both envelopes, the four actions (a launch request, in `launch`;
//! a track request, in `track`; a plan, in `plan`; what comes of a step execution, in
//! `step_execution`), validation, de-duplication.
//!
//! Each action's body is a `#[derive(Deserialize)]` struct that denies unknown fields, read
//! through `serde_path_to_error` so that a refusal knows the path of the field at fault;
//! `refusal` puts serde's error in a runbook author's words. What serde cannot say — id
//! patterns, limits, the rules between fields — is checked on the typed body after.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::de::Deserialize;
use serde_json::Value;
use serde_path_to_error::Segment;
use thiserror::Error;

use crate::drs::tags::MAX_USER_TAGS;

mod ended;
mod finish;
mod groups;
mod launch;
mod not_launched;
mod plan;
mod rehearsal;
mod rules;
mod selector;
mod step_execution;
mod step_loop;
mod step_sum;
mod tags;
mod track;

pub use ended::{EXECUTION_STATUS_CHANGE, EndStatus, ExecutionEnd, STATES_SOURCE};
use ended::{is_status_event, parse_execution_end};
use finish::parse_finish;
pub use finish::{FinishRequest, Finishing};
pub use groups::{MAX_PLACES_PER_PLAN, StepGroup, bind_critical};
use launch::parse_body;
pub use launch::{Ids, LaunchRequest, OtherStep, TargetIds, Waiting};
pub use not_launched::{GivenGroup, NotLaunched, NotLaunchedAs};
pub(crate) use plan::label;
pub use plan::{
    MAX_FINISHING_STEPS, MAX_PLAN_STEPS, MAX_WAIT_AFTER_SECONDS, PLAIN_STEP_NAME, PlanLimits,
    PlanRequest, PlanStep,
};
use plan::{WAIT_AFTER_EXPECTED, parse_plan};
use rehearsal::parse_rehearsal;
pub use rehearsal::{
    MAX_PLAN_TEXT_BYTES, RehearsalRequest, RehearsedGroup, RehearsedStep, dry_run_steps,
};
pub use rules::{Critical, STEP_NAME_MAX_LEN};
pub(crate) use rules::{invalid, within};
pub use selector::{MAX_TARGETS_PER_STEP, Selector};
use step_execution::parse_step_execution;
pub use step_execution::{ExecutionStatus, StepExecution, StepExecutionRequest};
#[cfg(test)]
pub(crate) use step_loop::for_test as step_loop_for_test;
pub use step_loop::{Limits, StepLoop, WaitingSummary};
use step_sum::parse_step_sum;
pub use step_sum::{GroupResult, GroupVerdict, StepSumRequest};
use track::parse_track;
pub use track::{HeldGroup, MAX_TRACKED_JOBS, TrackRequest};

pub const RUN_ID_MAX_LEN: usize = 128;
/// A malformed id is echoed back only this far: the answer must stay small whatever was sent.
pub const MALFORMED_ECHO_MAX_BYTES: usize = 32;

#[derive(Debug, Error, PartialEq)]
pub enum RequestError {
    #[error("the EventBridge envelope is malformed: {0}")]
    Envelope(String),
    #[error(
        "recoveryInstanceIDs is missing: list the recovery instances to fail back (or their sourceServerIDs)"
    )]
    MissingInstances,
    #[error("recoveryInstanceIDs is empty: list at least one recovery instance")]
    NoInstances,
    #[error(
        "recoveryInstanceIDs and sourceServerIDs have {count} entries, more than MAX_REQUEST_INSTANCES ({max}); split the request"
    )]
    TooManyInstances { count: usize, max: usize },
    #[error("{field} must be {expected}, got {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("unknown field {field:?}{hint}")]
    UnknownField { field: String, hint: String },
    #[error("tags key {key:?}: {problem}")]
    Tag { key: String, problem: &'static str },
    #[error(
        "tags has {0} entries; at most {MAX_USER_TAGS} are allowed (two more are the run id and the plan step)"
    )]
    TooManyTags(usize),
    #[error("runId must be 1-{RUN_ID_MAX_LEN} characters of letters, digits and . _ - : / = + @")]
    BadRunId,
    #[error(
        "action {0:?} is not one of \"launch\", \"track\", \"plan\", \"finish\", \"stepExecution\", \"stepSum\", \"rehearsal\""
    )]
    UnknownAction(String),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{field} is not a DRS job id (drsjob- and 17 letters or digits)")]
    BadJobId { field: String },
    #[error("{field} has {count} entries; at most {max} are allowed")]
    TooMany {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{at}: {error}")]
    Within {
        at: String,
        error: Box<RequestError>,
    },
    #[error("{field} {problem}")]
    Invalid { field: String, problem: String },
    #[error("steps is empty: list at least one step")]
    NoSteps,
    #[error(
        "a plan names its instances inside its steps: move recoveryInstanceIDs, sourceServerIDs and selector into a step"
    )]
    InstancesOutsideSteps,
    #[error("{0} must be 1-64 letters, digits, spaces and . _ -, with a letter or digit")]
    BadStepName(&'static str),
    #[error("the step lists no instances: give recoveryInstanceIDs, sourceServerIDs or a selector")]
    NoStepInstances,
    #[error("{field} {id:?} is not a well-formed id (recovery instance i-…, source server s-…)")]
    BadId { field: String, id: String },
    #[error("steps[{first}] and steps[{second}] are both named {name:?}: step names must differ")]
    DuplicateStepName {
        name: String,
        first: usize,
        second: usize,
    },
    #[error("{id} is in {first} and in {second}: an instance belongs to one step")]
    InTwoSteps {
        id: String,
        first: String,
        second: String,
    },
    #[error(
        "the plan's steps have {count} instances, more than MAX_REQUEST_INSTANCES ({max}); split the plan"
    )]
    PlanTooLarge { count: usize, max: usize },
    #[error(
        "steps: this is a failback plan, which the state machine runs step by step; start an execution with it (or send it with \"action\": \"plan\" to check it)"
    )]
    PlanNotALaunch,
    #[error(
        "{id} in {target} is named twice, by its id and by its ARN (or by two ARNs): name each instance once"
    )]
    NamedTwice { id: String, target: String },
    #[error(
        "an ARN names {target}, but this call launches in {here}: one call acts in one account and region (a plan groups its instances by account and region)"
    )]
    Elsewhere { target: String, here: String },
    #[error(
        "instances named by ARN need the function's own account (HOME_ACCOUNT_ID, which the stack sets) or the call's target"
    )]
    NoHomeAccount,
}

/// `field` is not what it must be: the refusal names what it is instead, never its value.
fn wrong(field: &str, expected: &'static str, found: &Value) -> RequestError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let field = field.to_owned();
    RequestError::WrongType {
        field,
        expected,
        found,
    }
}

pub(crate) fn is_valid_run_id(run_id: &str) -> bool {
    (1..=RUN_ID_MAX_LEN).contains(&run_id.len())
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/=+@".contains(c))
}

/// Cuts `text` to at most `max` bytes on a character boundary: whatever an outside party sent
/// (ids, DRS messages) is echoed only this far, so answers and events keep a size bound.
pub fn truncate_utf8(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Parses either envelope: a direct payload (Step Functions, console, `cargo lambda invoke`) or an
/// EventBridge event whose `detail` is that payload. `new_run_id` is called only when neither the
/// request nor the envelope supplies one.
pub fn parse_request(
    payload: Value,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<LaunchRequest, RequestError> {
    match parse_action(payload, max_instances, new_run_id)? {
        Action::Launch(request) => Ok(request),
        _ => Err(RequestError::Invalid {
            field: "action".into(),
            problem: "is not \"launch\": this is not a launch request".into(),
        }),
    }
}

/// What the function is asked to do: launch (`"action"` absent or `"launch"`), track the jobs of
/// a run (`"action": "track"`), check a plan (`"action": "plan"`), or say what comes of a step
/// execution that did not answer the plan (`"action": "stepExecution"`).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Launch(LaunchRequest),
    Track(TrackRequest),
    Plan(PlanRequest),
    StepExecution(StepExecutionRequest),
    Finish(FinishRequest),
    StepSum(StepSumRequest),
    /// A stored plan's dry run, judged (`"action": "rehearsal"`).
    Rehearsal(PlanRequest),
}

impl Action {
    /// The account and region the call acts in, when it names one.
    pub fn target(&self) -> Option<&crate::drs::Target> {
        match self {
            Action::Launch(r) => r.target.as_ref(),
            Action::Track(r) => r.target.as_ref(),
            Action::Finish(r) => r.target.as_ref(),
            Self::Plan(_) | Self::StepExecution(_) | Self::StepSum(_) | Self::Rehearsal(_) => None,
        }
    }
}

/// Parses either envelope and any action. The action is read first, so that the body is checked
/// against that action's fields alone.
pub fn parse_action(
    payload: Value,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<Action, RequestError> {
    if is_status_event(&payload) {
        return parse_execution_end(&payload).map(Action::Track);
    }
    let (body, envelope_id) = unwrap_envelope(payload)?;
    let action = match body.get("action") {
        None | Some(Value::Null) => "launch",
        Some(Value::String(action)) => action,
        Some(other) => {
            return Err(wrong(
                "action",
                "\"launch\", \"track\", \"plan\", \"finish\", \"stepExecution\", \"stepSum\" or \"rehearsal\"",
                other,
            ));
        }
    };
    match action {
        "launch" => parse_body(&body, envelope_id, max_instances, new_run_id).map(Action::Launch),
        "track" => parse_track(&body).map(Action::Track),
        "plan" => parse_plan(&body, envelope_id, max_instances, new_run_id).map(Action::Plan),
        "stepExecution" => parse_step_execution(&body).map(Action::StepExecution),
        "stepSum" => parse_step_sum(&body).map(Action::StepSum),
        "rehearsal" => parse_rehearsal(&body, max_instances).map(Action::Rehearsal),
        // Finishing is irreversible and comes only after an operator's approval: from the plan's
        // execution, invoking the function directly — never from an event, which anyone allowed
        // to ask for a failback may put on the bus.
        "finish" if envelope_id.is_some() => Err(RequestError::Invalid {
            field: "action".into(),
            problem: "\"finish\" is not accepted in an event: the plan's execution asks for it after an operator's approval (a plan's \"finish\")".into(),
        }),
        "finish" => parse_finish(&body).map(Action::Finish),
        other => Err(RequestError::UnknownAction(truncate_utf8(other, 64))),
    }
}

/// The request object and, from an EventBridge envelope, the event id.
fn unwrap_envelope(payload: Value) -> Result<(Value, Option<String>), RequestError> {
    let Value::Object(top) = &payload else {
        return Err(wrong("the request", "a JSON object", &payload));
    };
    if !(top.contains_key("detail-type") && top.contains_key("detail")) {
        return Ok((payload, None));
    }
    let event: EventBridgeEvent<Value> =
        serde_json::from_value(payload).map_err(|e| RequestError::Envelope(e.to_string()))?;
    let expected = "a JSON object holding the failback request";
    match event.detail {
        detail @ Value::Object(_) => Ok((detail, event.id)),
        other => Err(wrong("detail", expected, &other)),
    }
}

/// The run id a call of the state machine's must carry, well-formed.
fn required_run_id(given: Option<String>) -> Result<String, RequestError> {
    let run_id = given.ok_or(RequestError::Missing("runId"))?;
    if !is_valid_run_id(&run_id) {
        return Err(RequestError::BadRunId);
    }
    Ok(run_id)
}

/// Reads `raw` as `T`; a refusal names the field at fault by its path.
fn deserialize<'de, T: Deserialize<'de>>(raw: &'de Value) -> Result<T, RequestError> {
    deserialize_at(raw, "", &[])
}

/// Reads `raw`, found at `field` (its path in the request; `shape` the same with each index as
/// `[]`), as `T`. An object inside the request is read this way once it is known to be one:
/// serde derive would also read a struct from an array (its fields in order).
fn deserialize_at<'de, T: Deserialize<'de>>(
    raw: &'de Value,
    field: &str,
    shape: &[&'static str],
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(raw).map_err(|error| refusal(&error, raw, field, shape))
}

/// serde's error in the request's own terms. serde words an unknown field "unknown field `x`,
/// expected one of `a`, `b`": its list of the known fields gives the hint for a misspelling. Any
/// other error is a value of the wrong type (or out of range): what the field must be is this
/// module's wording, not serde's, and the value is never echoed (it may be a tag value).
fn refusal(
    error: &serde_path_to_error::Error<serde_json::Error>,
    raw: &Value,
    at: &str,
    at_shape: &[&'static str],
) -> RequestError {
    let (mut found, mut field, mut name_at) = (raw, at.to_owned(), 0);
    let mut shape: Vec<&str> = at_shape.to_vec();
    for segment in error.path() {
        match segment {
            Segment::Seq { index } => {
                (found, field) = (&found[*index], format!("{field}[{index}]"));
                shape.push("[]");
            }
            Segment::Map { key } => {
                let dot = if field.is_empty() { "" } else { "." };
                name_at = field.len() + dot.len();
                (found, field) = (
                    &found[key],
                    format!("{field}{dot}{}", truncate_utf8(key, 64)),
                );
                shape.push(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    let name = shape.last().copied().unwrap_or_default();
    let message = error.inner().to_string();
    let Some(known) = message.strip_prefix(&format!("unknown field `{name}`, expected ")) else {
        return wrong(&field, expected(&shape), found);
    };
    let hint = known
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|known| known.eq_ignore_ascii_case(name))
        .map(|known| format!(" (did you mean {}{known}?)", &field[..name_at]))
        .unwrap_or_default();
    RequestError::UnknownField { field, hint }
}

/// What the field at `shape` (its path, each index as `[]`) must be, as a refusal says it.
fn expected(shape: &[&str]) -> &'static str {
    match shape {
        // Tag keys are the user's: matched before any field name they could spell.
        [.., "tags", _] => "a string",
        ["notLaunched", "[]", "recoveryInstanceIDs"] => "an array of ids",
        ["notLaunched", "[]", "outcome"] => "one of \"skipped\", \"rejected\", \"deferred\"",
        [.., "[]"] => "a string",
        ["recoveryInstanceIDs" | "sourceServerIDs"] => "an array of strings",
        ["jobIDs" | "reportedJobIDs"] => "an array of job ids",
        ["tags"] | ["selector", "tags"] => "an object of string values",
        ["dryRun" | "final" | "approval"] => "true or false",
        ["maxFailed"] => "a whole number of instances",
        ["waitAfterSeconds"] => WAIT_AFTER_EXPECTED,
        ["sinceMillis"] => "a whole number of milliseconds since 1970",
        ["calls" | "intervalSeconds"] => "a whole number",
        ["waitForReadySeconds"] => rules::WAIT_FOR_READY_EXPECTED,
        ["waiting", "[]", "recoveryInstanceIDs"] => "an array of ids",
        ["waiting"] => "an array of groups",
        ["steps"] => "an array of steps",
        _ => "a string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::ids::is_valid_instance_id;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn parse(payload: Value) -> Result<LaunchRequest, RequestError> {
        parse_request(payload, 5000, || "generated".into())
    }

    #[test]
    fn duplicates_collapse_keeping_first_order() {
        let req = parse(json!({"recoveryInstanceIDs": [
            "i-22222222", "i-11111111", "i-22222222", "bad", "bad", "i-11111111"
        ]}))
        .unwrap();
        assert_eq!(req.recovery_instance_ids, ["i-22222222", "i-11111111"]);
        assert_eq!(req.malformed_ids, ["bad"]);
        assert_eq!(req.duplicates_collapsed, 3);
        assert_eq!(req.distinct_ids(), 3);
    }

    #[test]
    fn source_servers_may_be_named_instead_or_as_well() {
        let req = parse(json!({
            "sourceServerIDs": ["s-0123456789abcdefA", "s-short", "s-0123456789abcdefA"],
            "recoveryInstanceIDs": ["i-11111111"]
        }))
        .unwrap();
        assert_eq!(req.source_server_ids, ["s-0123456789abcdefA"]);
        assert_eq!(req.recovery_instance_ids, ["i-11111111"]);
        assert_eq!(req.malformed_ids, ["s-short"]);
        assert_eq!(req.duplicates_collapsed, 1);
        let only_sources = parse(json!({"sourceServerIDs": ["s-0123456789abcdefA"]})).unwrap();
        assert!(only_sources.recovery_instance_ids.is_empty());
    }

    #[test]
    fn run_id_comes_from_request_then_envelope_then_generator() {
        let direct = parse(json!({"recoveryInstanceIDs": ["i-11111111"]})).unwrap();
        assert_eq!(direct.run_id, "generated");
        let given =
            parse(json!({"recoveryInstanceIDs": ["i-11111111"], "runId": "wave-1"})).unwrap();
        assert_eq!(given.run_id, "wave-1");
        let event = parse(json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "Failback Launch Requested", "source": "runbook",
            "account": "111122223333", "time": "2026-11-27T10:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {"recoveryInstanceIDs": ["i-11111111"]}
        }))
        .unwrap();
        assert_eq!(event.run_id, "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({}), "recoveryInstanceIDs is missing"),
            (
                json!({"recoveryInstanceIDs": []}),
                "recoveryInstanceIDs is empty",
            ),
            (
                json!({"recoveryInstanceIDs": "i-11111111"}),
                "recoveryInstanceIDs must be",
            ),
            (
                json!({"recoveryInstanceIDs": [42]}),
                "recoveryInstanceIDs[0]",
            ),
            (
                json!({"recoveryInstanceIds": ["i-11111111"]}),
                "did you mean recoveryInstanceIDs",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "tags": []}),
                "tags must be",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"aws:x": "1"}}),
                "aws:",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"Wave": 1}}),
                "tags.Wave",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "dryRun": "yes"}),
                "dryRun",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "runId": ""}),
                "runId",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "runId": 7}),
                "runId",
            ),
            (
                json!({"detail-type": "x", "source": "y", "detail": []}),
                "detail must be",
            ),
        ];
        for (payload, expected) in cases {
            let err = parse(payload.clone()).expect_err(&payload.to_string());
            assert!(err.to_string().contains(expected), "{payload} -> {err}");
        }
    }

    #[test]
    fn tag_values_are_checked_but_never_shown() {
        let long = "v".repeat(257);
        let err = parse(json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"Wave": long}}))
            .unwrap_err();
        assert!(!err.to_string().contains("vvvv"), "{err}");
        let req =
            parse(json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"Secret": "hunter2"}}))
                .unwrap();
        assert!(!format!("{req:?}").contains("hunter2"));
    }

    #[test]
    fn too_many_ids_are_refused_before_any_work() {
        let ids: Vec<String> = (0..11).map(|n| format!("i-{n:08x}")).collect();
        let err =
            parse_request(json!({"recoveryInstanceIDs": ids}), 10, || "r".into()).unwrap_err();
        assert_eq!(err, RequestError::TooManyInstances { count: 11, max: 10 });
    }

    proptest! {
        #[test]
        fn every_distinct_id_is_kept_once(ids in proptest::collection::vec(
            prop_oneof!["i-[0-9a-f]{8,17}", "i-[0-9a-f]{1,7}", "[a-z0-9-]{0,25}"], 1..60)) {
            let req = parse(json!({"recoveryInstanceIDs": ids.clone()})).unwrap();
            let distinct: HashSet<&String> = ids.iter().collect();
            prop_assert_eq!(req.distinct_ids(), distinct.len());
            prop_assert_eq!(req.duplicates_collapsed, ids.len() - distinct.len());
            for id in &req.recovery_instance_ids {
                prop_assert!(is_valid_instance_id(id));
            }
            for id in &req.malformed_ids {
                prop_assert!(!is_valid_instance_id(id));
            }
        }

        #[test]
        fn arbitrary_json_never_panics(text in "\\PC{0,200}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = parse(value);
            }
        }
    }
}
