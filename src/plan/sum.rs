//! A step in several accounts and regions, summed up: each ran as its own child execution and
//! ended with its group's summary; the step's summary adds them up and decides the verdict across
//! all of them — a critical instance that failed in any account and region halts the plan, and
//! `maxFailed` counts the failures of all of them (the groups decide without it). Pure: the
//! plan's execution and the local runner carry it out as it is.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::drs::Target;
use crate::request::{GroupResult, StepSumRequest};
use crate::track::end::{StoppedBy, end_status};
use crate::track::verdict::{CRITICAL_LISTED_MAX, HaltReason};

/// The step's summary, in the shape each group's has, with each group's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSum {
    pub name: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub stopped_by: Option<String>,
    pub complete: bool,
    pub counts: BTreeMap<String, u64>,
    pub rounds: u64,
    pub tracking_calls: u64,
    pub verdict: SumVerdict,
    /// The error that stopped a place (a launch or tracking error), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Each account and region: how its part ended (when the step has more than one).
    #[serde(skip_serializing_if = "one_or_none")]
    pub targets: Vec<TargetPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SumVerdict {
    pub halt: bool,
    pub reason: Option<HaltReason>,
    pub failed: u64,
    pub max_failed: Option<u64>,
    pub critical_failed: Vec<String>,
    pub critical_failed_count: u64,
    pub unfinished: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetPart {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub status: String,
    pub reason: Option<String>,
    pub complete: bool,
    pub counts: BTreeMap<String, u64>,
}

/// The step's summary from its groups'.
pub fn sum(request: &StepSumRequest) -> StepSum {
    let groups = &request.groups;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for group in groups {
        for (key, value) in &group.counts {
            *counts.entry(key.clone()).or_default() += value;
        }
    }
    let failed: u64 = groups.iter().map(|g| g.verdict.failed).sum();
    let unfinished: u64 = groups.iter().map(|g| g.verdict.unfinished).sum();
    let critical_failed_count: u64 = groups.iter().map(|g| g.verdict.critical_failed_count).sum();
    let critical_failed: Vec<String> = groups
        .iter()
        .flat_map(|g| g.verdict.critical_failed.iter().cloned())
        .take(CRITICAL_LISTED_MAX)
        .collect();
    // The same order a single verdict decides in (src/track/verdict.rs).
    let verdict_reason = if critical_failed_count > 0 {
        Some(HaltReason::CriticalFailed)
    } else if request.max_failed.is_some_and(|max| failed > max) {
        Some(HaltReason::TooManyFailed)
    } else if unfinished > 0 {
        Some(HaltReason::StepIncomplete)
    } else {
        None
    };
    let error_stop = groups.iter().find(|g| {
        g.stopped_by
            .as_deref()
            .is_some_and(|s| StoppedBy::ERRORS.iter().any(|e| e.name() == s))
    });
    let stopped_by = error_stop
        .or_else(|| groups.iter().find(|g| g.stopped_by.is_some()))
        .and_then(|g| g.stopped_by.clone());
    let reason = match error_stop {
        Some(group) => group.stopped_by.clone(),
        None => verdict_reason.map(|r| r.name().to_owned()),
    };
    StepSum {
        name: request.step.clone(),
        status: end_status(reason.as_deref()),
        reason,
        stopped_by,
        complete: groups.iter().all(|g| g.complete),
        counts,
        rounds: groups.iter().map(|g| g.rounds).max().unwrap_or(0),
        tracking_calls: groups.iter().map(|g| g.tracking_calls).sum(),
        verdict: SumVerdict {
            halt: verdict_reason.is_some(),
            reason: verdict_reason,
            failed,
            max_failed: request.max_failed,
            critical_failed,
            critical_failed_count,
            unfinished,
        },
        error: error_stop
            .or_else(|| groups.iter().find(|g| g.error.is_some()))
            .and_then(|g| g.error.clone()),
        targets: groups.iter().map(part).collect(),
    }
}

fn one_or_none(parts: &[TargetPart]) -> bool {
    parts.len() <= 1
}

fn part(group: &GroupResult) -> TargetPart {
    TargetPart {
        target: group.target.clone(),
        status: group.status.clone(),
        reason: group.reason.clone(),
        complete: group.complete,
        counts: group.counts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::GroupVerdict;
    use serde_json::json;

    fn group(
        account: &str,
        failed: u64,
        critical: &[&str],
        unfinished: u64,
        stopped_by: Option<&str>,
    ) -> GroupResult {
        GroupResult {
            target: Some(Target::new(account, "us-east-1")),
            status: "finished".into(),
            reason: None,
            stopped_by: stopped_by.map(str::to_owned),
            complete: unfinished == 0 && stopped_by.is_none(),
            counts: [("failed".to_owned(), failed), ("succeeded".to_owned(), 2)].into(),
            rounds: 1,
            tracking_calls: 3,
            verdict: GroupVerdict {
                failed,
                critical_failed: critical.iter().map(|s| s.to_string()).collect(),
                critical_failed_count: critical.len() as u64,
                unfinished,
            },
            error: stopped_by.map(|s| json!({"Error": s})),
        }
    }

    fn request(max_failed: Option<u64>, groups: Vec<GroupResult>) -> StepSumRequest {
        StepSumRequest {
            run_id: "r".into(),
            step: "apps".into(),
            max_failed,
            groups,
        }
    }

    /// (maxFailed, groups) → (status, reason, verdict reason, failed).
    type Case = (
        Option<u64>,
        Vec<GroupResult>,
        (&'static str, Option<&'static str>, Option<HaltReason>, u64),
    );

    #[test]
    fn every_way_a_step_across_places_ends() {
        use HaltReason::*;
        let a = "111122223333";
        let b = "222233334444";
        let cases: Vec<Case> = vec![
            (
                None,
                vec![group(a, 0, &[], 0, None), group(b, 0, &[], 0, None)],
                ("finished", None, None, 0),
            ),
            // Each place within maxFailed alone, not together.
            (
                Some(1),
                vec![group(a, 1, &[], 0, None), group(b, 1, &[], 0, None)],
                ("halted", Some("TOO_MANY_FAILED"), Some(TooManyFailed), 2),
            ),
            (
                Some(2),
                vec![group(a, 1, &[], 0, None), group(b, 1, &[], 0, None)],
                ("finished", None, None, 2),
            ),
            // A critical instance failed in one place halts the step whatever the others did.
            (
                None,
                vec![group(a, 0, &[], 0, None), group(b, 1, &["i-0b1"], 0, None)],
                ("halted", Some("CRITICAL_FAILED"), Some(CriticalFailed), 1),
            ),
            (
                None,
                vec![group(a, 0, &[], 2, None), group(b, 0, &[], 0, None)],
                ("halted", Some("STEP_INCOMPLETE"), Some(StepIncomplete), 0),
            ),
            // An error that stopped one place is the step's reason, before its verdict.
            (
                None,
                vec![
                    group(a, 0, &["i-0a1"], 0, None),
                    group(b, 0, &[], 1, Some("TRACKING_ERROR")),
                ],
                ("halted", Some("TRACKING_ERROR"), Some(CriticalFailed), 0),
            ),
        ];
        for (max_failed, groups, (status, reason, verdict, failed)) in cases {
            let summed = sum(&request(max_failed, groups));
            assert_eq!(summed.status, status);
            assert_eq!(summed.reason.as_deref(), reason);
            assert_eq!(summed.verdict.reason, verdict);
            assert_eq!(summed.verdict.failed, failed);
            assert_eq!(summed.targets.len(), 2);
        }
    }

    #[test]
    fn counts_add_up_and_critical_ones_are_listed_up_to_the_cap() {
        let many: Vec<String> = (0..80).map(|i| format!("i-0a{i:03}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let summed = sum(&request(
            None,
            vec![
                group("111122223333", 80, &many, 0, None),
                group("222233334444", 80, &many, 0, None),
            ],
        ));
        assert_eq!(summed.counts["failed"], 160);
        assert_eq!(summed.counts["succeeded"], 4);
        assert_eq!(summed.verdict.critical_failed.len(), CRITICAL_LISTED_MAX);
        assert_eq!(summed.verdict.critical_failed_count, 160);
        assert_eq!(summed.tracking_calls, 6);
        assert!(summed.complete);
    }
}
