//! The plan request: `{"action": "plan", "runId", "tags"?, "dryRun"?, "steps": [...]}` — ordered
//! steps, each with its instances (ids or a tag `selector`), which of them are `critical`, how
//! many may fail (`maxFailed`), a wait after it and an operator's approval before the next. A
//! plain launch request is a plan of one step named [`PLAIN_STEP_NAME`].
//!
//! Everything that can be checked without DRS is checked here, so a bad plan is refused before
//! any step starts; what needs DRS (selectors, unknown ids, one instance reached by two steps)
//! is checked by [`crate::plan`].

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::finish::Finishing;
use super::groups::StepGroup;
use super::launch::{Ids, LaunchRequest, parse_body, parse_run_id};
use super::rules::{
    Critical, invalid, is_valid_step_name, parse_critical, parse_step_name, parse_wait_for_ready,
    within,
};
use super::selector::{Selector, parse_selector};
use super::tags::parse_tags;
use super::{RequestError, deserialize, deserialize_at, wrong};
use crate::drs::Tags;

/// AWS's own DRS recovery plans stop at 20 steps; a failback plan may have more, within what a
/// state machine execution carries comfortably.
pub const MAX_PLAN_STEPS: usize = 50;
/// A day: longer pauses are what `approval` is for.
pub const MAX_WAIT_AFTER_SECONDS: u64 = 86_400;
pub(super) const WAIT_AFTER_EXPECTED: &str = "a whole number of seconds from 0 to 86400";
/// Steps that may each be followed by a finishing (its list, its approval): each adds to the plan
/// execution's history, whose bound tests/history.rs proves with this many.
pub const MAX_FINISHING_STEPS: usize = 4;
/// The one step a plain launch request becomes.
pub const PLAIN_STEP_NAME: &str = "failback";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanStep {
    pub name: String,
    /// The ids as given (a plain request's malformed ones included: its launch rejects them).
    pub ids: Ids,
    pub selector: Option<Selector>,
    pub critical: Critical,
    /// Failures (failed, skipped or rejected instances) tolerated before the plan stops; `None`
    /// tolerates any number.
    pub max_failed: Option<u64>,
    pub wait_after_seconds: u64,
    pub approval: bool,
    /// How long the step waits for its instances on their way to become ready.
    pub wait_for_ready_seconds: u64,
    /// Right after the step (unless it halts the plan), once an operator approved it, what is
    /// done with the recovery instances the step brought back.
    pub finish: Option<Finishing>,
    /// The step's instances in other accounts and regions, one group each ([`PlanRequest::bind`]);
    /// `ids`, `selector` and `critical` above are those of the function's own.
    pub elsewhere: Vec<StepGroup>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    pub run_id: String,
    pub tags: Tags,
    pub dry_run: bool,
    pub steps: Vec<PlanStep>,
    /// A plain launch request, made a plan of one step.
    pub plain: bool,
    /// The state machines' settings, from the plan's execution: a plan that could outlast it is
    /// refused ([`crate::plan::duration`]).
    pub limits: Option<PlanLimits>,
    /// After the last step, what is done (once an operator approved it) with the recovery
    /// instances the run brought back.
    pub finish: Option<Finishing>,
}

/// `limits`: what bounds a run's length, as the plan's execution passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanLimits {
    /// A step's TimeLimitSeconds.
    pub time_limit_seconds: u64,
    /// How long an approval is waited for (ApprovalTimeoutSeconds).
    pub approval_timeout_seconds: u64,
    /// How long the plan's execution may run (its TimeoutSeconds).
    pub run_timeout_seconds: u64,
    /// Between two tracking calls (and a finishing's calls): TrackIntervalSeconds.
    #[serde(default = "default_interval")]
    pub track_interval_seconds: u64,
}

/// TrackIntervalSeconds' default, for a caller that does not say.
fn default_interval() -> u64 {
    60
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PlanBody {
    #[serde(rename = "action")]
    _action: Option<IgnoredAny>,
    run_id: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    dry_run: Option<bool>,
    // Read one by one, so that a refusal names the step by its index and name.
    steps: Vec<Value>,
    finish: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StepBody {
    name: Option<String>,
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Option<Vec<String>>,
    #[serde(rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
    selector: Option<Value>,
    critical: Option<Value>,
    max_failed: Option<u64>,
    wait_after_seconds: Option<u64>,
    approval: Option<bool>,
    wait_for_ready_seconds: Option<u64>,
    finish: Option<Value>,
}

/// Parses a plan, or a plain launch request as a plan of one step.
pub(crate) fn parse_plan(
    body: &Value,
    envelope_id: Option<String>,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<PlanRequest, RequestError> {
    // The plan's execution adds its settings to whatever it was asked (a plan or a plain request).
    let mut body = body.clone();
    let limits = match body.as_object_mut().and_then(|m| m.remove("limits")) {
        Some(raw) => Some(deserialize_at::<PlanLimits>(&raw, "limits", &["limits"])?),
        None => None,
    };
    let body = &body;
    if body.get("steps").is_none() {
        let request = parse_body(body, envelope_id, max_instances, new_run_id)?;
        return Ok(PlanRequest {
            limits,
            ..plain(request)
        });
    }
    let body: PlanBody = deserialize(body).map_err(|error| match error {
        RequestError::UnknownField { field, .. }
            if ["recoveryInstanceIDs", "sourceServerIDs", "selector"].contains(&field.as_str()) =>
        {
            RequestError::InstancesOutsideSteps
        }
        error => error,
    })?;
    let run_id = parse_run_id(body.run_id, envelope_id, new_run_id)?;
    let tags = parse_tags(body.tags)?;
    let count = body.steps.len();
    if count == 0 {
        return Err(RequestError::NoSteps);
    }
    if count > MAX_PLAN_STEPS {
        let (field, max) = ("steps", MAX_PLAN_STEPS);
        return Err(RequestError::TooMany { field, count, max });
    }
    let mut steps = Vec::with_capacity(count);
    for (index, raw) in body.steps.iter().enumerate() {
        let step = parse_step(raw, index + 1 == count, max_instances)
            .map_err(|error| within(&step_label(index, raw), error))?;
        steps.push(step);
    }
    let entries = steps.iter().map(|step| step.ids.entries).sum();
    if entries > max_instances {
        let (count, max) = (entries, max_instances);
        return Err(RequestError::PlanTooLarge { count, max });
    }
    check_distinct(&steps)?;
    let finishing = steps.iter().filter(|s| s.finish.is_some()).count();
    if finishing > MAX_FINISHING_STEPS {
        return Err(invalid(
            "finish",
            &format!(
                "is set on {finishing} steps; at most {MAX_FINISHING_STEPS} steps may each be \
                 followed by a finishing (or finish the whole run once: the plan's own finish)"
            ),
        ));
    }
    let dry_run = body.dry_run.unwrap_or(false);
    let finish = match &body.finish {
        None => None,
        Some(given) => Some(Finishing::parse("finish", given)?),
    };
    Ok(PlanRequest {
        run_id,
        tags,
        dry_run,
        steps,
        plain: false,
        limits,
        finish,
    })
}

fn plain(request: LaunchRequest) -> PlanRequest {
    let step = PlanStep {
        name: request
            .step
            .clone()
            .unwrap_or_else(|| PLAIN_STEP_NAME.to_owned()),
        ids: Ids {
            entries: request.distinct_ids(),
            recovery_instance_ids: request.recovery_instance_ids,
            source_server_ids: request.source_server_ids,
            malformed_ids: request.malformed_ids,
            duplicates_collapsed: request.duplicates_collapsed,
            by_arn: request.by_arn,
        },
        selector: request.selector,
        wait_for_ready_seconds: request.wait_for_ready_seconds,
        ..PlanStep::default()
    };
    PlanRequest {
        run_id: request.run_id,
        tags: request.tags,
        dry_run: request.dry_run,
        steps: vec![step],
        plain: true,
        limits: None,
        finish: None,
    }
}

/// `steps[1] (app-servers)`, or `steps[1]` while the name is not known to be good.
pub(crate) fn step_label(index: usize, raw: &Value) -> String {
    match raw.get("name") {
        Some(Value::String(name)) if is_valid_step_name(name) => format!("steps[{index}] ({name})"),
        _ => format!("steps[{index}]"),
    }
}

fn parse_step(raw: &Value, last: bool, max_instances: usize) -> Result<PlanStep, RequestError> {
    if !raw.is_object() {
        return Err(wrong("the step", "an object", raw));
    }
    let body: StepBody = deserialize(raw)?;
    let name = parse_step_name("name", body.name)?.ok_or(RequestError::Missing("name"))?;
    // A plan is checked up front: an id that can never be valid is an error here, not an
    // instance rejected halfway through the failback.
    let (instances, sources) = (body.recovery_instance_ids, body.source_server_ids);
    let ids = Ids::collect(instances, sources, max_instances, true)?;
    let selector = parse_selector(body.selector)?;
    if ids.entries == 0 && selector.is_none() {
        return Err(RequestError::NoStepInstances);
    }
    // Whether a critical id is one of the step's instances needs DRS (a source server's recovery
    // instance, a selector's matches): checked when the plan is resolved.
    let critical = parse_critical(body.critical)?;
    let wait_after_seconds = body.wait_after_seconds.unwrap_or(0);
    if wait_after_seconds > MAX_WAIT_AFTER_SECONDS {
        return Err(wrong(
            "waitAfterSeconds",
            WAIT_AFTER_EXPECTED,
            &wait_after_seconds.into(),
        ));
    }
    let approval = body.approval.unwrap_or(false);
    if last && approval {
        let problem = "is set on the last step: there is no next step to approve";
        return Err(invalid("approval", problem));
    }
    if last && wait_after_seconds > 0 {
        let problem = "is set on the last step: there is no next step to wait for";
        return Err(invalid("waitAfterSeconds", problem));
    }
    let max_failed = body.max_failed;
    Ok(PlanStep {
        name,
        ids,
        selector,
        critical,
        max_failed,
        wait_after_seconds,
        approval,
        wait_for_ready_seconds: parse_wait_for_ready(body.wait_for_ready_seconds)?,
        finish: match &body.finish {
            None => None,
            Some(given) => Some(Finishing::parse("finish", given)?),
        },
        elsewhere: Vec::new(),
    })
}

/// Step names are how events and answers tell steps apart; an id named by two steps would be
/// launched by the first and reported launched by the second.
fn check_distinct(steps: &[PlanStep]) -> Result<(), RequestError> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<&str, (usize, &str)> = HashMap::new();
    for (index, step) in steps.iter().enumerate() {
        if let Some(first) = names.insert(&step.name, index) {
            return Err(RequestError::DuplicateStepName {
                name: step.name.clone(),
                first,
                second: index,
            });
        }
        let named = [
            ("recoveryInstanceIDs", &step.ids.recovery_instance_ids),
            ("sourceServerIDs", &step.ids.source_server_ids),
        ];
        for (field, list) in named {
            for id in list {
                match ids.get(id.as_str()) {
                    Some(&(first, first_field)) if first != index => {
                        return Err(RequestError::InTwoSteps {
                            id: id.clone(),
                            first: format!("{} {first_field}", label(steps, first)),
                            second: format!("{} {field}", label(steps, index)),
                        });
                    }
                    _ => {
                        ids.insert(id, (index, field));
                    }
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn label(steps: &[PlanStep], index: usize) -> String {
    format!("steps[{index}] ({})", steps[index].name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn parse(body: Value) -> Result<PlanRequest, RequestError> {
        assert!(body.is_object(), "an object");
        parse_plan(&body, None, 5000, || "generated".into())
    }

    proptest! {
        /// A plan of random steps is accepted exactly when its names differ, every step names an
        /// instance and no instance is in two steps — and then kept in order, each id once.
        #[test]
        fn a_plan_is_accepted_exactly_when_it_is_consistent(
            steps in proptest::collection::vec(
                (0usize..4, proptest::collection::vec(0usize..8, 0..5)), 1..6)
        ) {
            let id = |n: usize| format!("i-{n:017x}");
            let body = json!({"runId": "r", "steps": steps.iter().map(|(name, ids)| json!({
                "name": format!("step-{name}"),
                "recoveryInstanceIDs": ids.iter().map(|n| id(*n)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>()});
            let names_differ = steps.iter().map(|(n, _)| n).collect::<HashSet<_>>().len() == steps.len();
            let none_empty = steps.iter().all(|(_, ids)| !ids.is_empty());
            let mut owner = std::collections::HashMap::new();
            let disjoint = steps.iter().enumerate().all(|(index, (_, ids))| {
                ids.iter().all(|n| *owner.entry(*n).or_insert(index) == index)
            });
            match parse(body) {
                Ok(plan) => {
                    prop_assert!(names_differ && none_empty && disjoint);
                    for (step, (name, ids)) in plan.steps.iter().zip(&steps) {
                        prop_assert_eq!(&step.name, &format!("step-{name}"));
                        let mut expected: Vec<String> = Vec::new();
                        for n in ids {
                            if !expected.contains(&id(*n)) {
                                expected.push(id(*n));
                            }
                        }
                        prop_assert_eq!(&step.ids.recovery_instance_ids, &expected);
                    }
                }
                Err(error) => {
                    prop_assert!(!(names_differ && none_empty && disjoint), "{}", error);
                    prop_assert!(error.to_string().contains("steps"), "{}", error);
                }
            }
        }

        #[test]
        fn arbitrary_steps_never_panic(text in "\\PC{0,300}") {
            if let Ok(steps) = serde_json::from_str::<Value>(&text) {
                let _ = parse(json!({"runId": "r", "steps": steps}));
            }
        }
    }
}
