//! What the function is asked: both envelopes, both actions (a launch request, in `launch`, and a
//! track request, in `track`), validation, de-duplication.
//!
//! Parsing works on `serde_json::Value` by hand (not `#[derive(Deserialize)]` on the request) so
//! every refusal names the field at fault in words a runbook author can act on.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::drs::tags::MAX_USER_TAGS;

mod launch;
mod not_launched;
mod plan;
mod rules;
mod selector;
mod tags;
mod track;

pub use launch::FailbackRequest;
pub use launch::Ids;
use launch::parse_body;
pub use not_launched::{GivenGroup, NOT_LAUNCHED_OUTCOMES, NotLaunched};
pub(crate) use plan::label;
use plan::parse_plan;
pub use plan::{MAX_PLAN_STEPS, MAX_WAIT_AFTER_SECONDS, PLAIN_STEP_NAME, PlanRequest, PlanStep};
pub use rules::{Critical, STEP_NAME_MAX_LEN};
pub(crate) use rules::{invalid, within};
pub use selector::Selector;
use track::parse_track;
pub use track::{MAX_TRACKED_JOBS, TrackRequest, is_valid_job_id};

/// Pattern and lengths of `RecoveryInstanceID` in the DRS API model.
pub const INSTANCE_ID_MIN_LEN: usize = 10;
pub const INSTANCE_ID_MAX_LEN: usize = 19;
pub const RUN_ID_MAX_LEN: usize = 128;
/// A malformed id is echoed back only this far: the answer must stay small whatever was sent.
pub const MALFORMED_ECHO_MAX_BYTES: usize = 32;

#[derive(Debug, Error, PartialEq)]
pub enum RequestError {
    #[error("the request must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("the EventBridge envelope is malformed: {0}")]
    Envelope(String),
    #[error("detail must be a JSON object holding the failback request, got {0}")]
    DetailNotAnObject(&'static str),
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
    #[error("action {0:?} is not one of \"launch\", \"track\", \"plan\"")]
    UnknownAction(String),
    #[error("this is a track request, not a launch request")]
    NotALaunch,
    #[error("this is a launch request, not a track request")]
    NotATrack,
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
    #[error("step must be 1-64 letters, digits, spaces and . _ -, with a letter or digit")]
    BadStepName,
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
    #[error("this is not a plan request")]
    NotAPlan,
    #[error(
        "steps: this is a failback plan, which the state machine runs step by step; start an execution with it (or send it with \"action\": \"plan\" to check it)"
    )]
    PlanNotALaunch,
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `s-[0-9a-zA-Z]{17}`, as the DRS API model states.
pub fn is_valid_source_server_id(id: &str) -> bool {
    id.len() == 19 && id.starts_with("s-") && id[2..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `i-[0-9a-fA-F]{8,}` with 10–19 characters, as the DRS API model states.
pub fn is_valid_instance_id(id: &str) -> bool {
    (INSTANCE_ID_MIN_LEN..=INSTANCE_ID_MAX_LEN).contains(&id.len())
        && id.starts_with("i-")
        && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
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
) -> Result<FailbackRequest, RequestError> {
    match parse_action(payload, max_instances, new_run_id)? {
        Action::Launch(request) => Ok(request),
        Action::Track(_) | Action::Plan(_) => Err(RequestError::NotALaunch),
    }
}

/// What the function is asked to do: launch (`"action"` absent or `"launch"`), or track the jobs
/// of a run (`"action": "track"`).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Launch(FailbackRequest),
    Track(TrackRequest),
    Plan(PlanRequest),
}

impl Action {
    pub fn run_id(&self) -> &str {
        match self {
            Action::Launch(request) => &request.run_id,
            Action::Track(request) => &request.run_id,
            Action::Plan(request) => &request.run_id,
        }
    }

    /// The plan step it is for: a plan's own check is the run's, no step's.
    pub fn step(&self) -> Option<&str> {
        match self {
            Action::Launch(request) => request.step.as_deref(),
            Action::Track(request) => request.step.as_deref(),
            Action::Plan(_) => None,
        }
    }
}

/// Parses either envelope and any action.
pub fn parse_action(
    payload: Value,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<Action, RequestError> {
    let (body, envelope_id) = unwrap_envelope(payload)?;
    match body.get("action") {
        None | Some(Value::Null) => {}
        Some(Value::String(action)) if action == "launch" => {}
        Some(Value::String(action)) if action == "track" => {
            return parse_track(&body).map(Action::Track);
        }
        Some(Value::String(action)) if action == "plan" => {
            return parse_plan(body, envelope_id, max_instances, new_run_id).map(Action::Plan);
        }
        Some(Value::String(action)) => {
            return Err(RequestError::UnknownAction(truncate_utf8(action, 64)));
        }
        Some(other) => {
            return Err(RequestError::WrongType {
                field: "action".into(),
                expected: "\"launch\", \"track\" or \"plan\"",
                found: json_kind(other),
            });
        }
    }
    parse_body(body, envelope_id, max_instances, new_run_id).map(Action::Launch)
}

/// The request object and, from an EventBridge envelope, the event id.
fn unwrap_envelope(payload: Value) -> Result<(Map<String, Value>, Option<String>), RequestError> {
    let top = match payload {
        Value::Object(top) => top,
        other => return Err(RequestError::NotAnObject(json_kind(&other))),
    };
    if !(top.contains_key("detail-type") && top.contains_key("detail")) {
        return Ok((top, None));
    }
    let event: EventBridgeEvent<Value> = serde_json::from_value(Value::Object(top))
        .map_err(|e| RequestError::Envelope(e.to_string()))?;
    match event.detail {
        Value::Object(detail) => Ok((detail, event.id)),
        other => Err(RequestError::DetailNotAnObject(json_kind(&other))),
    }
}

/// Refuses a field not in `known`, pointing out a misspelling of one that is.
pub(crate) fn check_fields(body: &Map<String, Value>, known: &[&str]) -> Result<(), RequestError> {
    check_fields_at(body, known, "")
}

/// As [`check_fields`], for an object inside the request: `at` (e.g. `notLaunched[2].`) prefixes
/// the field named in the refusal.
pub(crate) fn check_fields_at(
    body: &Map<String, Value>,
    known: &[&str],
    at: &str,
) -> Result<(), RequestError> {
    for field in body.keys() {
        if !known.contains(&field.as_str()) {
            let hint = known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(field))
                .map(|k| format!(" (did you mean {at}{k}?)"))
                .unwrap_or_default();
            return Err(RequestError::UnknownField {
                field: format!("{at}{}", truncate_utf8(field, 64)),
                hint,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn parse(payload: Value) -> Result<FailbackRequest, RequestError> {
        parse_request(payload, 5000, || "generated".into())
    }

    #[test]
    fn instance_id_rules_follow_the_api_model() {
        assert!(is_valid_instance_id("i-12345678"));
        assert!(is_valid_instance_id("i-0123456789abcdef0"));
        assert!(is_valid_instance_id("i-ABCDEF0123"));
        assert!(!is_valid_instance_id("i-1234567"), "too short");
        assert!(
            !is_valid_instance_id("i-0123456789abcdef01"),
            "20 characters"
        );
        assert!(!is_valid_instance_id("i-0123456z"), "not hex");
        assert!(!is_valid_instance_id("x-01234567"));
        assert!(
            !is_valid_instance_id("i-０１２３４５６７"),
            "non-ASCII digits"
        );
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
