//! The plan request: `{"action": "plan", "runId", "tags"?, "dryRun"?, "steps": [...]}` — ordered
//! steps, each with its instances (ids or a tag `selector`), which of them are `critical`, how
//! many may fail (`maxFailed`), a wait after it and an operator's approval before the next. A
//! plain launch request is a plan of one step named [`PLAIN_STEP_NAME`].
//!
//! Everything that can be checked without DRS is checked here, so a bad plan is refused before
//! any step starts; what needs DRS (selectors, unknown ids, one instance reached by two steps)
//! is checked by [`crate::plan`].

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::launch::{FailbackRequest, Ids, parse_body, parse_dry_run, parse_ids, parse_run_id};
use super::rules::{
    Critical, invalid, is_valid_step_name, parse_critical, parse_max_failed, parse_step_name,
    within, wrong,
};
use super::selector::{Selector, parse_selector};
use super::tags::parse_tags;
use super::{
    RequestError, check_fields, is_valid_instance_id, is_valid_source_server_id, truncate_utf8,
};
use crate::drs::Tags;

/// AWS's own DRS recovery plans stop at 20 steps; a failback plan may have more, within what a
/// state machine execution carries comfortably.
pub const MAX_PLAN_STEPS: usize = 50;
/// A day: longer pauses are what `approval` is for.
pub const MAX_WAIT_AFTER_SECONDS: u64 = 86_400;
/// The one step a plain launch request becomes.
pub const PLAIN_STEP_NAME: &str = "failback";

const PLAN_FIELDS: [&str; 5] = ["action", "runId", "tags", "dryRun", "steps"];
const STEP_FIELDS: [&str; 8] = [
    "name",
    "recoveryInstanceIDs",
    "sourceServerIDs",
    "selector",
    "critical",
    "maxFailed",
    "waitAfterSeconds",
    "approval",
];

#[derive(Debug, Clone, PartialEq)]
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    pub run_id: String,
    pub tags: Tags,
    pub dry_run: bool,
    pub steps: Vec<PlanStep>,
    /// A plain launch request, made a plan of one step.
    pub plain: bool,
}

impl PlanRequest {
    /// The launch request of one step's first round.
    pub fn launch_of(&self, step: &PlanStep, ids: Ids, dry_run: bool) -> FailbackRequest {
        FailbackRequest {
            run_id: self.run_id.clone(),
            dry_run,
            tags: self.tags.clone(),
            step: Some(step.name.clone()),
            selector: None,
            recovery_instance_ids: ids.recovery_instance_ids,
            source_server_ids: ids.source_server_ids,
            malformed_ids: ids.malformed_ids,
            duplicates_collapsed: ids.duplicates_collapsed,
        }
    }
}

/// Parses a plan, or a plain launch request as a plan of one step.
pub(crate) fn parse_plan(
    body: Map<String, Value>,
    envelope_id: Option<String>,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<PlanRequest, RequestError> {
    if !body.contains_key("steps") {
        let request = parse_body(body, envelope_id, max_instances, new_run_id)?;
        return Ok(plain(request));
    }
    check_fields(&body, &PLAN_FIELDS).map_err(|error| {
        if let RequestError::UnknownField { field, .. } = &error
            && ["recoveryInstanceIDs", "sourceServerIDs", "selector"].contains(&field.as_str())
        {
            return RequestError::InstancesOutsideSteps;
        }
        error
    })?;
    let run_id = parse_run_id(&body, envelope_id, new_run_id)?;
    let tags = parse_tags(body.get("tags"))?;
    let dry_run = parse_dry_run(&body)?;
    let list = match body.get("steps") {
        Some(Value::Array(list)) => list,
        Some(other) => return Err(wrong("steps", "an array of steps", other)),
        None => unreachable!("checked above"),
    };
    if list.is_empty() {
        return Err(RequestError::NoSteps);
    }
    if list.len() > MAX_PLAN_STEPS {
        return Err(RequestError::TooMany {
            field: "steps",
            count: list.len(),
            max: MAX_PLAN_STEPS,
        });
    }
    let mut steps = Vec::with_capacity(list.len());
    let mut entries = 0;
    for (index, raw) in list.iter().enumerate() {
        let last = index + 1 == list.len();
        let step = parse_step(raw, last, max_instances)
            .map_err(|error| within(&step_label(index, raw), error))?;
        entries += step.ids.entries;
        steps.push(step);
    }
    if entries > max_instances {
        return Err(RequestError::PlanTooLarge {
            count: entries,
            max: max_instances,
        });
    }
    check_distinct(&steps)?;
    Ok(PlanRequest {
        run_id,
        tags,
        dry_run,
        steps,
        plain: false,
    })
}

fn plain(request: FailbackRequest) -> PlanRequest {
    let step = PlanStep {
        name: request
            .step
            .clone()
            .unwrap_or_else(|| PLAIN_STEP_NAME.to_owned()),
        ids: Ids {
            given: true,
            entries: request.distinct_ids(),
            recovery_instance_ids: request.recovery_instance_ids,
            source_server_ids: request.source_server_ids,
            malformed_ids: request.malformed_ids,
            duplicates_collapsed: request.duplicates_collapsed,
        },
        selector: request.selector,
        critical: Critical::None,
        max_failed: None,
        wait_after_seconds: 0,
        approval: false,
    };
    PlanRequest {
        run_id: request.run_id,
        tags: request.tags,
        dry_run: request.dry_run,
        steps: vec![step],
        plain: true,
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
    let Value::Object(body) = raw else {
        return Err(wrong("the step", "an object", raw));
    };
    check_fields(body, &STEP_FIELDS)?;
    let name = match body.get("name") {
        None | Some(Value::Null) => return Err(RequestError::Missing("name")),
        Some(raw) => parse_step_name(Some(raw))
            .map_err(|error| match error {
                RequestError::WrongType { found, .. } => RequestError::WrongType {
                    field: "name".into(),
                    expected: "a string",
                    found,
                },
                _ => invalid(
                    "name",
                    "must be 1-64 letters, digits, spaces and . _ -, with a letter or digit",
                ),
            })?
            .unwrap_or_default(),
    };
    let ids = parse_ids(body, max_instances)?;
    // A plan is checked up front: an id that can never be valid is an error here, not an
    // instance rejected halfway through the failback.
    for field in ["recoveryInstanceIDs", "sourceServerIDs"] {
        if let Some(Value::Array(list)) = body.get(field) {
            let valid: fn(&str) -> bool = if field == "recoveryInstanceIDs" {
                is_valid_instance_id
            } else {
                is_valid_source_server_id
            };
            if let Some((at, id)) = list
                .iter()
                .enumerate()
                .find_map(|(at, id)| id.as_str().filter(|id| !valid(id)).map(|id| (at, id)))
            {
                return Err(RequestError::BadId {
                    field: format!("{field}[{at}]"),
                    id: truncate_utf8(id, 32),
                });
            }
        }
    }
    let selector = parse_selector(body.get("selector"))?;
    if ids.entries == 0 && selector.is_none() {
        return Err(RequestError::NoStepInstances);
    }
    // Whether a critical id is one of the step's instances needs DRS (a source server's recovery
    // instance, a selector's matches): checked when the plan is resolved.
    let critical = parse_critical(body.get("critical"))?;
    let max_failed = parse_max_failed(body.get("maxFailed"))?;
    let wait_after_seconds = match body.get("waitAfterSeconds") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|s| s <= MAX_WAIT_AFTER_SECONDS) => {
            n.as_u64().unwrap_or_default()
        }
        Some(other) => {
            return Err(wrong(
                "waitAfterSeconds",
                "a whole number of seconds from 0 to 86400",
                other,
            ));
        }
    };
    let approval = match body.get("approval") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => return Err(wrong("approval", "true or false", other)),
    };
    if last && approval {
        return Err(invalid(
            "approval",
            "is set on the last step: there is no next step to approve",
        ));
    }
    if last && wait_after_seconds > 0 {
        return Err(invalid(
            "waitAfterSeconds",
            "is set on the last step: there is no next step to wait for",
        ));
    }
    Ok(PlanStep {
        name,
        ids,
        selector,
        critical,
        max_failed,
        wait_after_seconds,
        approval,
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
        let Value::Object(map) = body else {
            panic!("an object")
        };
        parse_plan(map, None, 5000, || "generated".into())
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
