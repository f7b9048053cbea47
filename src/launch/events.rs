//! The events of a launch: one per job it created, its not-launched instances (split so each
//! event stays under the detail budget), and its summary.

use serde::Serialize;

use super::answer::{JobSummary, LaunchAnswer, NotLaunchedGroup};
use super::outcome::{Counts, DeferReason};
use super::readiness::{Progress, WaitingSummary};
use crate::drs::Target;
use crate::events::{
    DETAIL_TARGET_BYTES, DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_NOT_LAUNCHED,
    DETAIL_TYPE_RUN_COMPLETED, DETAIL_TYPE_WAITING, EventEntry, GROUPS_ENVELOPE_BYTES, IdGroup,
    entry, split_groups, to_json,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobStarted<'a> {
    run_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a Target>,
    #[serde(flatten)]
    job: &'a JobSummary,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotLaunched<'a> {
    run_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a Target>,
    part: usize,
    parts: usize,
    not_launched: &'a [NotLaunchedGroup],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstancesWaiting<'a> {
    run_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<&'a str>,
    part: usize,
    parts: usize,
    /// All the step's waiting instances added up, in every part.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting: Option<&'a WaitingSummary>,
    instances: &'a [Progress],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunCompleted<'a> {
    run_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a Target>,
    dry_run: bool,
    complete: bool,
    requested: usize,
    counts: Counts,
    #[serde(rename = "jobIDs")]
    job_ids: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_job_sizes: Option<&'a [usize]>,
}

/// The events for one run: one per created job, the not-launched instances (split so each event
/// stays under `DETAIL_TARGET_BYTES`), the instances whose waiting for readiness is news (split
/// likewise), and the run summary, last. A dry run publishes only the
/// summary: nothing was launched and nothing failed.
pub fn run_events(source: &str, answer: &LaunchAnswer) -> Vec<EventEntry> {
    let entry = |detail_type: &str, detail: String, resources: Vec<String>| {
        entry(source, detail_type, detail, resources)
    };
    let mut entries = Vec::new();
    if !answer.dry_run {
        for job in &answer.jobs {
            let detail = JobStarted {
                run_id: &answer.run_id,
                target: answer.target.as_ref(),
                job,
            };
            entries.push(entry(
                DETAIL_TYPE_JOB_STARTED,
                to_json(&detail),
                job.arn.iter().cloned().collect(),
            ));
        }
        // Instances waiting for readiness are announced by Failback Instances Waiting, when their
        // state changes: not again in every round's Not Launched.
        let replicating = DeferReason::Replicating.name();
        let not_launched: Vec<NotLaunchedGroup> = answer
            .not_launched
            .iter()
            .filter(|g| g.reason != replicating)
            .cloned()
            .collect();
        let parts = split_groups(&not_launched, DETAIL_TARGET_BYTES - GROUPS_ENVELOPE_BYTES);
        let count = parts.len();
        for (index, groups) in parts.iter().enumerate() {
            let detail = NotLaunched {
                run_id: &answer.run_id,
                target: answer.target.as_ref(),
                part: index + 1,
                parts: count,
                not_launched: groups,
            };
            entries.push(entry(DETAIL_TYPE_NOT_LAUNCHED, to_json(&detail), vec![]));
        }
        let parts = split_list(
            &answer.announce,
            DETAIL_TARGET_BYTES - WAITING_ENVELOPE_BYTES,
        );
        let count = parts.len();
        for (index, instances) in parts.iter().enumerate() {
            let detail = InstancesWaiting {
                run_id: &answer.run_id,
                target: answer.target.as_ref(),
                step: answer.step.as_deref(),
                part: index + 1,
                parts: count,
                waiting: answer.waiting.as_ref(),
                instances,
            };
            entries.push(entry(DETAIL_TYPE_WAITING, to_json(&detail), vec![]));
        }
    }
    let summary = RunCompleted {
        run_id: &answer.run_id,
        target: answer.target.as_ref(),
        dry_run: answer.dry_run,
        complete: answer.complete,
        requested: answer.requested,
        counts: answer.counts,
        job_ids: answer.jobs.iter().map(|job| job.job_id.as_str()).collect(),
        planned_job_sizes: answer.planned_job_sizes.as_deref(),
    };
    entries.push(entry(DETAIL_TYPE_RUN_COMPLETED, to_json(&summary), vec![]));
    entries
}

/// Room for a Waiting event's fields around its instances: the run id and step (at most 128 and
/// 64 characters), the counters and the summary (its states are DRS's words, at most a dozen).
const WAITING_ENVELOPE_BYTES: usize = 2048;

/// Cuts `items` into runs whose JSON array stays under `budget` bytes, in order.
fn split_list<T: Serialize + Clone>(items: &[T], budget: usize) -> Vec<Vec<T>> {
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut bytes = 2;
    for item in items {
        let size = to_json(item).len() + 1;
        match parts.last_mut() {
            Some(part) if bytes + size <= budget => part.push(item.clone()),
            _ => {
                parts.push(vec![item.clone()]);
                bytes = 2;
            }
        }
        bytes += size;
    }
    parts
}

impl IdGroup for NotLaunchedGroup {
    fn ids(&self) -> &[String] {
        &self.recovery_instance_ids
    }
    fn ids_mut(&mut self) -> &mut Vec<String> {
        &mut self.recovery_instance_ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::outcome::OutcomeKind;
    use proptest::prelude::*;

    fn group(reason: &str, message_len: usize, ids: usize, offset: usize) -> NotLaunchedGroup {
        NotLaunchedGroup {
            outcome: OutcomeKind::Deferred,
            reason: reason.into(),
            code: None,
            message: Some("m".repeat(message_len)),
            job_id: None,
            recovery_instance_ids: (0..ids).map(|n| format!("i-{:017x}", n + offset)).collect(),
        }
    }

    proptest! {
        #[test]
        fn parts_stay_under_budget_and_keep_every_id_in_order(
            sizes in proptest::collection::vec((0usize..300, 1usize..400), 1..20)
        ) {
            let mut offset = 0;
            let groups: Vec<NotLaunchedGroup> = sizes.iter().enumerate().map(|(i, (msg, ids))| {
                let g = group(&format!("R{i}"), *msg, *ids, offset);
                offset += ids;
                g
            }).collect();
            let budget = 4096;
            let parts = split_groups(&groups, budget);
            for part in &parts {
                prop_assert!(to_json(part).len() <= budget, "{} > {}", to_json(part).len(), budget);
            }
            let before: Vec<&String> = groups.iter().flat_map(|g| &g.recovery_instance_ids).collect();
            let after: Vec<&String> = parts.iter().flatten().flat_map(|g| &g.recovery_instance_ids).collect();
            prop_assert_eq!(before, after);
        }
    }
}
