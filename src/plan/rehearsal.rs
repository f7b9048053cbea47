//! A rehearsal judged: the dry run of a stored plan, made on a schedule while no failback is due,
//! says whether a failback now would stumble on something an operator must mend first — a place
//! (account and region) the function cannot reach (a role deleted or changed, a region
//! disabled), instances that are gone or that DRS refuses, DRS that cannot be read. What only
//! says that the failback is not due yet (instances not replicating back yet, quota in use, a
//! throttled read) is not a finding. A refused plan (a selector matching nothing once tags
//! changed, a finishing the stack does not allow) never gets here: the plan check refuses it and
//! the rehearsal counts that as a failure itself.

use serde::Serialize;

use tracing::info;

use crate::drs::Target;
use crate::error::HandlerError;
use crate::launch::outcome::{DeferReason, REJECTED_MALFORMED_ID, SKIPPED_NOT_FOUND};
use crate::launch::unreachable::SKIPPED_TARGET_UNREACHABLE;
use crate::request::{NotLaunchedAs, RehearsalRequest, RehearsedGroup, dry_run_steps};

use super::PlanAnswer;

/// Ids listed per finding; past them only the count (the answer is an event's detail).
pub const MAX_IDS_PER_FINDING: usize = 20;
/// Findings listed; past them only the count.
pub const MAX_FINDINGS: usize = 100;

/// What the rehearsal found: `ready` when nothing needs mending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RehearsalAnswer {
    pub run_id: String,
    pub ready: bool,
    pub steps: usize,
    /// Recovery instances the plan reaches now, over its steps and places.
    pub instances: usize,
    pub findings: Vec<Finding>,
    /// Findings past [`MAX_FINDINGS`], not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub findings_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Something a failback now would stumble on, in one step's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub step: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub problem: Problem,
    /// The dry run's reason (the outcome's, or the unreachable place's error name).
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub instances: usize,
    #[serde(rename = "recoveryInstanceIDs", skip_serializing_if = "Vec::is_empty")]
    pub recovery_instance_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Problem {
    /// The account and region cannot be reached: the function's role there, or the region.
    PlaceUnreachable,
    /// Named instances DRS does not know (any more), or ids that are no recovery instance's.
    InstancesGone,
    /// DRS refuses the instances, or the request, by name.
    InstancesRefused,
    /// DRS could not be read for them (kept failing, or the call never got through).
    DrsUnreadable,
}

/// The function's own dry run, judged as its answer reads (the same reading the tests' fake
/// function's dry runs get).
pub fn rehearse(dry_run: &PlanAnswer) -> Result<RehearsalAnswer, HandlerError> {
    // Plain data: serializing it cannot fail (were it to, the reading refuses it, naming steps).
    let steps = serde_json::to_value(&dry_run.steps).unwrap_or_default();
    let request = dry_run_steps(&dry_run.run_id, &steps)?;
    let answer = judge(&request);
    info!(
        steps = answer.steps,
        instances = answer.instances,
        ready = answer.ready,
        findings = answer.findings.len() + answer.findings_omitted,
        "rehearsal judged"
    );
    Ok(answer)
}

/// The dry run's steps judged.
pub fn judge(request: &RehearsalRequest) -> RehearsalAnswer {
    let mut findings = Vec::new();
    let mut instances = 0;
    for step in &request.steps {
        for group in &step.groups {
            instances += group.instances;
            findings.extend(in_place(&step.name, group));
        }
    }
    let omitted = findings.len().saturating_sub(MAX_FINDINGS);
    findings.truncate(MAX_FINDINGS);
    RehearsalAnswer {
        run_id: request.run_id.clone(),
        ready: findings.is_empty() && omitted == 0,
        steps: request.steps.len(),
        instances,
        findings,
        findings_omitted: omitted,
    }
}

fn in_place(step: &str, group: &RehearsedGroup) -> Vec<Finding> {
    let finding = |problem, reason: &str, message: Option<&str>, ids: &[String]| Finding {
        step: step.to_owned(),
        target: group.target.clone(),
        problem,
        reason: reason.to_owned(),
        message: message.map(str::to_owned),
        instances: ids.len(),
        recovery_instance_ids: ids.iter().take(MAX_IDS_PER_FINDING).cloned().collect(),
    };
    // A place not reached: one finding for it (its instances are all skipped
    // TARGET_UNREACHABLE, which would say it again).
    if let Some(unreached) = &group.unreachable {
        let ids: Vec<String> = group
            .not_launched
            .iter()
            .filter(|n| n.reason == SKIPPED_TARGET_UNREACHABLE)
            .flat_map(|n| n.ids.iter().cloned())
            .collect();
        let mut place = finding(
            Problem::PlaceUnreachable,
            &unreached.code,
            Some(&unreached.message),
            &ids,
        );
        place.instances = ids.len().max(group.instances);
        return vec![place];
    }
    group
        .not_launched
        .iter()
        .filter_map(|n| {
            problem(n.outcome, &n.reason)
                .map(|problem| finding(problem, &n.reason, n.message.as_deref(), &n.ids))
        })
        .collect()
}

/// Whether instances the dry run would not launch, for this outcome and reason, need mending.
fn problem(outcome: NotLaunchedAs, reason: &str) -> Option<Problem> {
    let unreadable = [DeferReason::ServerError, DeferReason::Unreachable];
    match outcome {
        NotLaunchedAs::Rejected if reason == REJECTED_MALFORMED_ID => Some(Problem::InstancesGone),
        NotLaunchedAs::Rejected => Some(Problem::InstancesRefused),
        NotLaunchedAs::Skipped if reason == SKIPPED_NOT_FOUND => Some(Problem::InstancesGone),
        NotLaunchedAs::Skipped if reason == SKIPPED_TARGET_UNREACHABLE => {
            Some(Problem::PlaceUnreachable)
        }
        NotLaunchedAs::Deferred if unreadable.iter().any(|r| r.name() == reason) => {
            Some(Problem::DrsUnreadable)
        }
        // Not due yet: a failback state other than ready (replication back not started, already
        // failed back), an instance in another job, quota in use, throttling, the dry run itself.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn judged(steps: Value) -> RehearsalAnswer {
        judge(&dry_run_steps("rehearsal-2026-12-04", &steps).unwrap())
    }

    fn group(not_launched: Value) -> Value {
        json!({"instances": 3, "critical": [], "notLaunched": not_launched})
    }

    const ID: &str = "i-0123456789abcdef0";

    #[test]
    fn a_plan_that_would_launch_or_is_not_due_yet_is_ready() {
        let answer = judged(json!([
            {"name": "db", "groups": [group(json!([]))]},
            {"name": "app", "groups": [group(json!([
                {"outcome": "skipped", "reason": "FAILBACK_NOT_STARTED", "recoveryInstanceIDs": [ID]},
                {"outcome": "skipped", "reason": "ALREADY_IN_JOB", "jobID": "drsjob-0123456789abcdefg", "recoveryInstanceIDs": [ID]},
                {"outcome": "deferred", "reason": "QUOTA", "recoveryInstanceIDs": [ID]},
                {"outcome": "deferred", "reason": "THROTTLED", "recoveryInstanceIDs": [ID]},
                {"outcome": "deferred", "reason": "REPLICATING", "recoveryInstanceIDs": [ID]},
            ]))]},
        ]));
        assert!(answer.ready, "{answer:?}");
        assert_eq!((answer.steps, answer.instances), (2, 6));
        assert!(answer.findings.is_empty());
    }

    #[test]
    fn each_kind_of_trouble_is_a_finding_naming_the_step_place_and_instances() {
        let cases = [
            ("skipped", "NOT_FOUND", Problem::InstancesGone),
            ("rejected", "MALFORMED_ID", Problem::InstancesGone),
            ("rejected", "REFUSED_BY_DRS", Problem::InstancesRefused),
            ("rejected", "REQUEST_REFUSED", Problem::InstancesRefused),
            ("deferred", "SERVER_ERROR", Problem::DrsUnreadable),
            ("deferred", "UNREACHABLE", Problem::DrsUnreadable),
            ("skipped", "TARGET_UNREACHABLE", Problem::PlaceUnreachable),
        ];
        for (outcome, reason, problem) in cases {
            let answer = judged(json!([{"name": "db", "groups": [{
                "target": {"account": "111122223333", "region": "eu-west-1"}, "instances": 1,
                "notLaunched": [{"outcome": outcome, "reason": reason, "message": "why",
                    "recoveryInstanceIDs": [ID]}]}]}]));
            assert!(!answer.ready, "{outcome} {reason}");
            assert_eq!(
                answer.findings,
                [Finding {
                    step: "db".into(),
                    target: Some(Target {
                        account: "111122223333".into(),
                        region: "eu-west-1".into()
                    }),
                    problem,
                    reason: reason.into(),
                    message: Some("why".into()),
                    instances: 1,
                    recovery_instance_ids: vec![ID.into()],
                }],
                "{outcome} {reason}"
            );
        }
    }

    #[test]
    fn an_unreachable_place_is_one_finding_with_its_error() {
        let ids: Vec<String> = (0..30).map(|n| format!("i-0123456789abc{n:04}")).collect();
        let answer = judged(json!([{"name": "web", "groups": [{
            "target": {"account": "444455556666", "region": "us-west-2"}, "instances": 0,
            "unreachable": {"code": "AccessDenied", "message": "not authorized to perform sts:AssumeRole"},
            "notLaunched": [{"outcome": "skipped", "reason": "TARGET_UNREACHABLE", "recoveryInstanceIDs": ids}]}]}]));
        assert!(!answer.ready);
        assert_eq!(answer.findings.len(), 1);
        let finding = &answer.findings[0];
        assert_eq!(finding.problem, Problem::PlaceUnreachable);
        assert_eq!(finding.reason, "AccessDenied");
        assert_eq!(finding.instances, 30);
        assert_eq!(finding.recovery_instance_ids.len(), MAX_IDS_PER_FINDING);
    }

    #[test]
    fn findings_past_the_cap_are_counted_not_listed() {
        let steps: Vec<Value> = (0..50)
            .map(|s| {
                json!({"name": format!("s{s}"), "groups": [group(json!([
                    {"outcome": "skipped", "reason": "NOT_FOUND", "recoveryInstanceIDs": [ID]},
                    {"outcome": "rejected", "reason": "REFUSED_BY_DRS", "recoveryInstanceIDs": [ID]},
                    {"outcome": "deferred", "reason": "SERVER_ERROR", "recoveryInstanceIDs": [ID]},
                ]))]})
            })
            .collect();
        let answer = judged(Value::Array(steps));
        assert!(!answer.ready);
        assert_eq!(answer.findings.len(), MAX_FINDINGS);
        assert_eq!(answer.findings_omitted, 150 - MAX_FINDINGS);
    }
}
