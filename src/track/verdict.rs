//! Whether a finished plan step lets the plan go on: decided once, here, from the step's final
//! results and the instances it never launched — for the state machine (through the final track
//! answer) and the local run alike.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::results::{InstanceResult, ResultKind};
use crate::drs::FailbackState;
use crate::request::{Critical, GivenGroup, NotLaunchedAs};

/// The critical instances a verdict names; the count says how many there were in all.
pub const CRITICAL_LISTED_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum HaltReason {
    /// A critical instance failed, or was skipped or rejected: it did not come back.
    CriticalFailed,
    /// More instances failed (or were skipped or rejected) than `maxFailed` tolerates.
    TooManyFailed,
    /// Instances were still running, or never launched for want of time or quota, when the step
    /// ended: what depends on them cannot start yet.
    StepIncomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub halt: bool,
    pub reason: Option<HaltReason>,
    /// Instances that did not come back: failed after launch, skipped or rejected.
    pub failed: usize,
    pub max_failed: Option<u64>,
    /// Critical instances among `failed` (at most [`CRITICAL_LISTED_MAX`] listed).
    pub critical_failed: Vec<String>,
    pub critical_failed_count: usize,
    /// Instances still running or deferred.
    pub unfinished: usize,
}

impl HaltReason {
    /// Its name, as the verdict and the step's end spell it.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One result per instance: an instance met in two jobs of the run (launched again after its
/// first attempt failed) counts by the job it names now — the later attempt — else by the later
/// job listed.
pub fn latest_results<'a>(
    results: impl IntoIterator<Item = &'a InstanceResult>,
) -> Vec<&'a InstanceResult> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_id: HashMap<&str, &InstanceResult> = HashMap::new();
    for result in results {
        let id = result.id();
        match by_id.get(id) {
            Some(kept) if kept.failback_state.is_some() && result.failback_state.is_none() => {}
            Some(_) => {
                by_id.insert(id, result);
            }
            None => {
                order.push(id);
                by_id.insert(id, result);
            }
        }
    }
    order.into_iter().map(|id| by_id[id]).collect()
}

/// Whether the instance known by these ids is one of the step's critical ones.
fn covers(critical: &Critical, recovery_instance_id: &str, source_server_id: Option<&str>) -> bool {
    match critical {
        Critical::None => false,
        Critical::All => true,
        Critical::Ids(ids) => ids
            .iter()
            .any(|id| id == recovery_instance_id || Some(id.as_str()) == source_server_id),
    }
}

/// The verdict over a step's latest results and its never-launched groups. A count of
/// not-launched instances given without groups cannot be told apart: it counts as unfinished.
pub fn verdict(
    results: &[&InstanceResult],
    not_launched: &[GivenGroup],
    not_launched_count: usize,
    critical: &Critical,
    max_failed: Option<u64>,
) -> Verdict {
    let mut failed = 0;
    let mut unfinished = 0;
    let mut critical_failed: Vec<String> = Vec::new();
    let mut critical_failed_count = 0;
    let mut note_failed = |id: &str, source: Option<&str>| {
        failed += 1;
        if covers(critical, id, source) {
            critical_failed_count += 1;
            if critical_failed.len() < CRITICAL_LISTED_MAX {
                critical_failed.push(id.to_owned());
            }
        }
    };
    for result in results {
        match result.result {
            ResultKind::Succeeded => {}
            ResultKind::Failed => note_failed(result.id(), result.source_server_id.as_deref()),
            ResultKind::Running => unfinished += 1,
        }
    }
    let mut grouped = 0;
    for group in not_launched {
        grouped += group.ids.len();
        for id in &group.ids {
            // Skipped as already failed back (by hand, or by an earlier run): it came back.
            let came_back = FailbackState::from_name(&group.reason) == FailbackState::Completed;
            match group.outcome {
                NotLaunchedAs::Skipped if came_back => {}
                NotLaunchedAs::Skipped | NotLaunchedAs::Rejected => note_failed(id, None),
                NotLaunchedAs::Deferred => unfinished += 1,
            }
        }
    }
    unfinished += not_launched_count.saturating_sub(grouped);
    let reason = if critical_failed_count > 0 {
        Some(HaltReason::CriticalFailed)
    } else if max_failed.is_some_and(|max| failed as u64 > max) {
        Some(HaltReason::TooManyFailed)
    } else if unfinished > 0 {
        Some(HaltReason::StepIncomplete)
    } else {
        None
    };
    Verdict {
        halt: reason.is_some(),
        reason,
        failed,
        max_failed,
        critical_failed,
        critical_failed_count,
        unfinished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, kind: ResultKind, state: Option<&str>) -> InstanceResult {
        InstanceResult {
            recovery_instance_id: Some(id.into()),
            source_server_id: Some(format!("s-{id}")),
            result: kind,
            launch_status: None,
            failback_state: state.map(FailbackState::from_name),
            reason: None,
            message: None,
        }
    }

    fn group(outcome: NotLaunchedAs, ids: &[&str]) -> GivenGroup {
        GivenGroup {
            outcome,
            reason: "R".into(),
            code: None,
            message: None,
            job_id: None,
            ids: ids.iter().map(|id| id.to_string()).collect(),
        }
    }

    /// Results, not-launched groups and count, critical, maxFailed → reason, failed, unfinished.
    type Case<'a> = (
        Vec<&'a InstanceResult>,
        Vec<GivenGroup>,
        usize,
        Critical,
        Option<u64>,
        Option<HaltReason>,
        usize,
        usize,
    );

    fn completed(id: &str) -> GivenGroup {
        GivenGroup {
            reason: FailbackState::Completed.to_string(),
            ..group(NotLaunchedAs::Skipped, &[id])
        }
    }

    #[test]
    fn every_case_decided_exactly() {
        use ResultKind::*;
        let ok = result("i-1", Succeeded, Some("FAILBACK_COMPLETED"));
        let bad = result("i-2", Failed, Some("FAILBACK_ERROR"));
        let busy = result("i-3", Running, None);
        let ids = |ids: &[&str]| Critical::Ids(ids.iter().map(|s| s.to_string()).collect());
        let cases: Vec<Case> = vec![
            (vec![&ok], vec![], 0, Critical::All, Some(0), None, 0, 0),
            (vec![&ok, &bad], vec![], 0, Critical::None, None, None, 1, 0),
            (
                vec![&ok, &bad],
                vec![],
                0,
                Critical::None,
                Some(1),
                None,
                1,
                0,
            ),
            (
                vec![&ok, &bad],
                vec![],
                0,
                Critical::None,
                Some(0),
                Some(HaltReason::TooManyFailed),
                1,
                0,
            ),
            (
                vec![&ok, &bad],
                vec![],
                0,
                Critical::All,
                None,
                Some(HaltReason::CriticalFailed),
                1,
                0,
            ),
            (vec![&ok, &bad], vec![], 0, ids(&["i-1"]), None, None, 1, 0),
            // Skipped as already back (failed back by hand): not a failure, even critical.
            (
                vec![&ok],
                vec![completed("i-9")],
                0,
                ids(&["i-9"]),
                Some(0),
                None,
                0,
                0,
            ),
            (
                vec![&ok, &bad],
                vec![],
                0,
                ids(&["s-i-2"]),
                None,
                Some(HaltReason::CriticalFailed),
                1,
                0,
            ),
            (
                vec![&ok, &busy],
                vec![],
                0,
                Critical::None,
                None,
                Some(HaltReason::StepIncomplete),
                0,
                1,
            ),
            (
                vec![&ok],
                vec![group(NotLaunchedAs::Skipped, &["i-9"])],
                0,
                Critical::None,
                Some(0),
                Some(HaltReason::TooManyFailed),
                1,
                0,
            ),
            (
                vec![&ok],
                vec![group(NotLaunchedAs::Rejected, &["i-9"])],
                0,
                ids(&["i-9"]),
                None,
                Some(HaltReason::CriticalFailed),
                1,
                0,
            ),
            (
                vec![&ok],
                vec![group(NotLaunchedAs::Deferred, &["i-9"])],
                0,
                Critical::None,
                None,
                Some(HaltReason::StepIncomplete),
                0,
                1,
            ),
            (
                vec![&ok],
                vec![],
                2,
                Critical::None,
                None,
                Some(HaltReason::StepIncomplete),
                0,
                2,
            ),
            // Critical failure outranks too many failures, which outranks unfinished work.
            (
                vec![&bad, &busy],
                vec![],
                0,
                Critical::All,
                Some(0),
                Some(HaltReason::CriticalFailed),
                1,
                1,
            ),
            (
                vec![&bad, &busy],
                vec![],
                0,
                Critical::None,
                Some(0),
                Some(HaltReason::TooManyFailed),
                1,
                1,
            ),
        ];
        for (index, (results, groups, count, critical, max, reason, failed, unfinished)) in
            cases.into_iter().enumerate()
        {
            let v = verdict(&results, &groups, count, &critical, max);
            assert_eq!(v.reason, reason, "case {index}");
            assert_eq!(v.halt, reason.is_some(), "case {index}");
            assert_eq!(
                (v.failed, v.unfinished),
                (failed, unfinished),
                "case {index}"
            );
        }
    }

    #[test]
    fn a_relaunched_instance_counts_by_its_latest_attempt() {
        let first = result("i-1", ResultKind::Failed, None);
        let again = result("i-1", ResultKind::Succeeded, Some("FAILBACK_COMPLETED"));
        let other = result("i-2", ResultKind::Succeeded, Some("FAILBACK_COMPLETED"));
        let latest = latest_results([&first, &other, &again]);
        assert_eq!(latest, vec![&again, &other]);
        let latest = latest_results([&again, &first]);
        assert_eq!(latest, vec![&again], "the attempt the instance names wins");
    }

    #[test]
    fn critical_ids_listed_are_capped() {
        let failed: Vec<InstanceResult> = (0..150)
            .map(|n| result(&format!("i-{n}"), ResultKind::Failed, None))
            .collect();
        let refs: Vec<&InstanceResult> = failed.iter().collect();
        let v = verdict(&refs, &[], 0, &Critical::All, None);
        assert_eq!(v.critical_failed.len(), CRITICAL_LISTED_MAX);
        assert_eq!(v.critical_failed_count, 150);
    }
}
