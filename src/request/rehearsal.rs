//! The rehearsal request: `{"action": "rehearsal", "runId", "plan": "<the stored plan, as text>",
//! "limits"?}`. The rehearsal state machine reads the plan an operator stored with the stack (an
//! SSM parameter) and hands it over as it found it: the function reads it (a plan that is not
//! JSON is refused naming where), checks it as a dry run under the rehearsal's run id, and judges
//! the dry run's steps ([`crate::plan::rehearsal`]) — each with its `groups`: where, whether the
//! place could be reached, what a launch now would not launch and why ([`dry_run_steps`]).

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::not_launched::parse_not_launched;
use super::plan::MAX_PLAN_STEPS;
use super::rules::parse_step_name;
use super::selector::MAX_TARGETS_PER_STEP;
use super::{GivenGroup, within};
use super::{PlanRequest, RequestError, deserialize, deserialize_at, invalid, required_run_id};
use crate::drs::Target;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehearsalRequest {
    pub run_id: String,
    pub steps: Vec<RehearsedStep>,
}

/// One step of the dry run: its name and its places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehearsedStep {
    pub name: String,
    pub groups: Vec<RehearsedGroup>,
}

/// One account and region of a step, as the dry run found it: where, whether it could be
/// reached, and what a launch now would not launch — its `notLaunched` groups read as a final
/// track request reads a launch answer's ([`parse_not_launched`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehearsedGroup {
    pub target: Option<Target>,
    pub instances: usize,
    pub unreachable: Option<Unreached>,
    pub not_launched: Vec<GivenGroup>,
}

/// Why a place could not be reached, as the dry run's answer says (the launch answer's
/// `unreached`, read back here: the request stage depends on no later one).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Unreached {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// A group as the dry run answers it; its other fields (counts, planned job sizes, ids) are not
/// needed to judge it and are left unread.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    instances: usize,
    #[serde(default)]
    unreachable: Option<Unreached>,
    #[serde(default)]
    not_launched: Option<Value>,
}

/// The stored plan's text is at most this long (an SSM parameter's, advanced tier: 8 KB; a
/// standard one holds 4 KB).
pub const MAX_PLAN_TEXT_BYTES: usize = 8 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    #[serde(rename = "action")]
    _action: Option<IgnoredAny>,
    run_id: Option<String>,
    plan: Option<Value>,
    limits: Option<Value>,
}

/// The rehearsal's plan, as a dry run of the plan action under the rehearsal's run id (the stored
/// plan's own `runId`, `dryRun` and `action` do not count).
pub(super) fn parse_rehearsal(
    body: &Value,
    max_instances: usize,
) -> Result<PlanRequest, RequestError> {
    let body: Body = deserialize(body)?;
    let run_id = required_run_id(body.run_id)?;
    let text = match body.plan {
        Some(Value::String(text)) => text,
        Some(_) => return Err(invalid("plan", "must be the stored plan's text (a string)")),
        None => return Err(RequestError::Missing("plan")),
    };
    if text.len() > MAX_PLAN_TEXT_BYTES {
        return Err(invalid(
            "plan",
            &format!(
                "is {} bytes; a stored plan has at most {MAX_PLAN_TEXT_BYTES}",
                text.len()
            ),
        ));
    }
    let stored: Value = serde_json::from_str(&text).map_err(|e| {
        invalid(
            "plan",
            &format!(
                "is not JSON (line {}, column {}): store the plan as a JSON object",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Value::Object(mut stored) = stored else {
        return Err(invalid(
            "plan",
            "must be a JSON object: a plan or a plain request",
        ));
    };
    stored.insert("action".into(), Value::from("plan"));
    stored.insert("runId".into(), Value::from(run_id));
    stored.insert("dryRun".into(), Value::Bool(true));
    match body.limits {
        Some(limits) => stored.insert("limits".into(), limits),
        None => stored.remove("limits"),
    };
    match super::parse_action(Value::Object(stored), max_instances, String::new)
        .map_err(|e| super::within("plan", e))?
    {
        super::Action::Plan(request) => Ok(request),
        _ => Err(invalid("plan", "is not a plan")),
    }
}

#[derive(Deserialize)]
struct Step {
    name: Option<String>,
    groups: Option<Vec<Value>>,
}

/// A dry run's steps (the plan answer's `steps`, as JSON), read for judging. The function judges
/// its own dry run through here, and so does the state machine tests' fake function (through
/// drs-failback-decide): one reading, one judgment.
pub fn dry_run_steps(run_id: &str, steps: &Value) -> Result<RehearsalRequest, RequestError> {
    let Value::Array(raw) = steps else {
        return Err(invalid("steps", "must be the dry run's steps"));
    };
    if raw.is_empty() {
        return Err(invalid(
            "steps",
            "is empty: a dry run answers at least one step",
        ));
    }
    if raw.len() > MAX_PLAN_STEPS {
        return Err(RequestError::TooMany {
            field: "steps",
            count: raw.len(),
            max: MAX_PLAN_STEPS,
        });
    }
    let steps = raw
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let at = format!("steps[{index}]");
            if !step.is_object() {
                return Err(invalid(&at, "must be a step of the dry run's answer"));
            }
            let parsed: Step = deserialize_at(step, &at, &["steps"])?;
            let name = parse_step_name("name", parsed.name)
                .map_err(|e| super::within(&at, e))?
                .ok_or_else(|| invalid(&format!("{at}.name"), "is missing"))?;
            let groups = parsed
                .groups
                .ok_or_else(|| invalid(&format!("{at}.groups"), "is missing"))?;
            if groups.is_empty() || groups.len() > MAX_TARGETS_PER_STEP {
                return Err(invalid(
                    &format!("{at}.groups"),
                    &format!("must hold 1 to {MAX_TARGETS_PER_STEP} places"),
                ));
            }
            let groups = groups
                .iter()
                .enumerate()
                .map(|(g, group)| {
                    let at = format!("{at}.groups[{g}]");
                    if !group.is_object() {
                        return Err(invalid(&at, "must be a place of the dry run's answer"));
                    }
                    let parsed: GroupBody = deserialize_at(group, &at, &["steps", "groups"])?;
                    if let Some(problem) = parsed.target.as_ref().and_then(Target::problem) {
                        return Err(invalid(&format!("{at}.target"), &problem));
                    }
                    let not_launched =
                        parse_not_launched(parsed.not_launched).map_err(|e| within(&at, e))?;
                    Ok(RehearsedGroup {
                        target: parsed.target,
                        instances: parsed.instances,
                        unreachable: parsed.unreachable,
                        not_launched: not_launched.groups,
                    })
                })
                .collect::<Result<_, RequestError>>()?;
            Ok(RehearsedStep { name, groups })
        })
        .collect::<Result<_, RequestError>>()?;
    Ok(RehearsalRequest {
        run_id: run_id.to_owned(),
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dry_runs_steps_are_read_with_what_judging_them_needs() {
        let request = dry_run_steps(
            "rehearsal-1",
            &json!([{"name": "db", "instances": 2,
            "approval": false, "counts": {"launched": 0},
            "groups": [{"target": {"account": "111122223333", "region": "eu-west-1"},
                "instances": 2, "critical": [], "plannedJobSizes": [1],
                "notLaunched": [{"outcome": "skipped", "reason": "NOT_FOUND",
                    "recoveryInstanceIDs": ["i-0123456789abcdef0"]}]}]}]),
        )
        .unwrap();
        assert_eq!(request.run_id, "rehearsal-1");
        let group = &request.steps[0].groups[0];
        assert_eq!(request.steps[0].name, "db");
        assert_eq!(group.instances, 2);
        assert_eq!(group.not_launched[0].reason, "NOT_FOUND");
        assert_eq!(group.target.as_ref().unwrap().region, "eu-west-1");
    }

    #[test]
    fn what_is_not_a_dry_runs_answer_is_refused_naming_the_field() {
        for (steps, says) in [
            (json!({}), "steps"),
            (json!([]), "steps"),
            (json!([{"name": "db"}]), "steps[0].groups"),
            (json!([{"name": "db", "groups": [7]}]), "steps[0].groups[0]"),
            (
                json!([{"name": "db", "groups": [{"notLaunched": [{"outcome": 1}]}]}]),
                "steps[0].groups[0]",
            ),
            (json!([1]), "steps[0]"),
        ] {
            let error = dry_run_steps("r", &steps).unwrap_err().to_string();
            assert!(error.contains(says), "{steps}: {error}");
        }
    }

    fn rehearsal(plan: Value) -> Result<PlanRequest, RequestError> {
        parse_rehearsal(
            &json!({"action": "rehearsal", "runId": "rehearsal-2026-12-04T060000", "plan": plan}),
            5000,
        )
    }

    #[test]
    fn the_stored_plan_is_dry_run_under_the_rehearsals_run_id() {
        let stored = r#"{"runId": "wave-1", "dryRun": false, "action": "finish",
            "steps": [{"name": "db", "recoveryInstanceIDs": ["i-0123456789abcdef0"]}]}"#;
        let plan = rehearsal(json!(stored)).unwrap();
        assert_eq!(plan.run_id, "rehearsal-2026-12-04T060000");
        assert!(plan.dry_run);
        assert_eq!(plan.steps[0].name, "db");
    }

    #[test]
    fn a_stored_plan_that_is_not_one_is_refused_saying_why() {
        for (plan, says) in [
            (
                json!("{\"steps\": ["),
                "plan is not JSON (line 1, column 11)",
            ),
            (json!("[1, 2]"), "plan must be a JSON object"),
            (json!({"steps": []}), "plan must be the stored plan's text"),
            (
                json!("x".repeat(MAX_PLAN_TEXT_BYTES + 1)),
                "a stored plan has at most 8192",
            ),
            (json!("{\"steps\": []}"), "plan: steps"),
            (json!("{\"stepz\": []}"), "stepz"),
        ] {
            let error = rehearsal(plan.clone()).unwrap_err().to_string();
            assert!(error.contains(says), "{plan}: {error}");
        }
        let missing = parse_rehearsal(&json!({"action": "rehearsal", "runId": "r"}), 5000);
        assert!(missing.unwrap_err().to_string().contains("plan is missing"));
    }
}
