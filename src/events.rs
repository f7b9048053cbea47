//! The result events: what a run publishes to EventBridge.

use serde::Serialize;
use serde_json::json;

use crate::outcome::{Answer, Counts, JobSummary, NotLaunchedGroup};
use crate::publish::EventEntry;
use crate::results::{ResultGroup, ResultKind, RunCounts, TrackedJob};
use crate::verdict::Verdict;

/// The detail-type the function's EventBridge rule listens for.
pub const DETAIL_TYPE_REQUESTED: &str = "Failback Launch Requested";
pub const DETAIL_TYPE_JOB_STARTED: &str = "Failback Launch Job Started";
pub const DETAIL_TYPE_NOT_LAUNCHED: &str = "Failback Launch Instances Not Launched";
pub const DETAIL_TYPE_RUN_COMPLETED: &str = "Failback Launch Run Completed";
pub const DETAIL_TYPE_JOB_COMPLETED: &str = "Failback Launch Job Completed";
pub const DETAIL_TYPE_RUN_FINISHED: &str = "Failback Run Finished";
pub const DETAIL_TYPE_STEP_FINISHED: &str = "Failback Step Finished";

/// Every event detail is kept under this, so ten events fit one 256 KB PutEvents call.
pub const DETAIL_TARGET_BYTES: usize = 24 * 1024;
/// Room for the fields around the instance groups of a Not Launched event.
const NOT_LAUNCHED_ENVELOPE_BYTES: usize = 256;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobStarted<'a> {
    run_id: &'a str,
    #[serde(flatten)]
    job: &'a JobSummary,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotLaunched<'a> {
    run_id: &'a str,
    part: usize,
    parts: usize,
    not_launched: &'a [NotLaunchedGroup],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunCompleted<'a> {
    run_id: &'a str,
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
/// stays under `DETAIL_TARGET_BYTES`), and the run summary, last. A dry run publishes only the
/// summary: nothing was launched and nothing failed.
pub fn run_events(source: &str, answer: &Answer) -> Vec<EventEntry> {
    let entry = |detail_type: &str, detail: String, resources: Vec<String>| EventEntry {
        source: source.to_owned(),
        detail_type: detail_type.to_owned(),
        detail,
        resources,
    };
    let mut entries = Vec::new();
    if !answer.dry_run {
        for job in &answer.jobs {
            let detail = JobStarted {
                run_id: &answer.run_id,
                job,
            };
            entries.push(entry(
                DETAIL_TYPE_JOB_STARTED,
                to_json(&detail),
                job.arn.iter().cloned().collect(),
            ));
        }
        let parts = split_groups(
            &answer.not_launched,
            DETAIL_TARGET_BYTES - NOT_LAUNCHED_ENVELOPE_BYTES,
        );
        let count = parts.len();
        for (index, groups) in parts.iter().enumerate() {
            let detail = NotLaunched {
                run_id: &answer.run_id,
                part: index + 1,
                parts: count,
                not_launched: groups,
            };
            entries.push(entry(DETAIL_TYPE_NOT_LAUNCHED, to_json(&detail), vec![]));
        }
    }
    let summary = RunCompleted {
        run_id: &answer.run_id,
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

/// The event of a job DRS finished: every instance's result, one by one when that fits the
/// detail budget, else grouped by result and reason.
pub fn job_completed(
    source: &str,
    run_id: &str,
    step: Option<&str>,
    job: &TrackedJob,
) -> EventEntry {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct JobCompleted<'a> {
        run_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<&'a str>,
        #[serde(flatten)]
        job: &'a TrackedJob,
    }
    let mut detail = to_json(&JobCompleted { run_id, step, job });
    if detail.len() > DETAIL_TARGET_BYTES {
        let grouped = job.grouped();
        detail = to_json(&JobCompleted {
            run_id,
            step,
            job: &grouped,
        });
    }
    EventEntry {
        source: source.to_owned(),
        detail_type: DETAIL_TYPE_JOB_COMPLETED.to_owned(),
        detail,
        resources: job.arn.iter().cloned().collect(),
    }
}

/// The events that close a run — its counts, the failed instances with their reasons and the
/// instances still running when it ended (with the jobs not done) — or, for a plan step
/// (`step`, with its verdict), every instance's result: split into parts that each stay under
/// the detail budget.
pub fn finished_events(
    source: &str,
    run_id: &str,
    step: Option<(&str, &Verdict)>,
    counts: RunCounts,
    groups: &[ResultGroup],
    running_job_ids: &[&str],
) -> Vec<EventEntry> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Finished<'a> {
        run_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        verdict: Option<&'a Verdict>,
        part: usize,
        parts: usize,
        counts: RunCounts,
        #[serde(skip_serializing_if = "Option::is_none")]
        succeeded: Option<Vec<&'a ResultGroup>>,
        failed: Vec<&'a ResultGroup>,
        running: Vec<&'a ResultGroup>,
        #[serde(rename = "runningJobIDs")]
        running_job_ids: &'a [&'a str],
    }
    // The running jobs' ids (and a verdict's critical ids) ride on the first part; the groups
    // fill the rest of the budget.
    let ids_bytes = running_job_ids.iter().map(|id| id.len() + 3).sum::<usize>()
        + step.map_or(0, |(name, verdict)| {
            name.len()
                + 256
                + verdict
                    .critical_failed
                    .iter()
                    .map(|id| id.len() + 3)
                    .sum::<usize>()
        });
    let budget = (DETAIL_TARGET_BYTES - NOT_LAUNCHED_ENVELOPE_BYTES).saturating_sub(ids_bytes);
    let mut parts = split_groups(groups, budget);
    if parts.is_empty() {
        parts.push(Vec::new());
    }
    let count = parts.len();
    fn of(groups: &[ResultGroup], kind: ResultKind) -> Vec<&ResultGroup> {
        groups.iter().filter(|g| g.result == kind).collect()
    }
    parts
        .iter()
        .enumerate()
        .map(|(index, groups)| EventEntry {
            source: source.to_owned(),
            detail_type: match step {
                Some(_) => DETAIL_TYPE_STEP_FINISHED,
                None => DETAIL_TYPE_RUN_FINISHED,
            }
            .to_owned(),
            detail: to_json(&Finished {
                run_id,
                step: step.map(|(name, _)| name),
                verdict: step.map(|(_, verdict)| verdict),
                part: index + 1,
                parts: count,
                counts,
                succeeded: step.map(|_| of(groups, ResultKind::Succeeded)),
                failed: of(groups, ResultKind::Failed),
                running: of(groups, ResultKind::Running),
                running_job_ids: if index == 0 { running_job_ids } else { &[] },
            }),
            resources: vec![],
        })
        .collect()
}

fn to_json(value: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail; an empty object keeps the event valid if it did.
    serde_json::to_string(value).unwrap_or_else(|_| json!({}).to_string())
}

/// A group of instances listed by id: what an event may split across parts.
pub trait IdGroup: Clone + Serialize {
    fn ids(&self) -> &[String];
    fn ids_mut(&mut self) -> &mut Vec<String>;
}

impl IdGroup for NotLaunchedGroup {
    fn ids(&self) -> &[String] {
        &self.recovery_instance_ids
    }
    fn ids_mut(&mut self) -> &mut Vec<String> {
        &mut self.recovery_instance_ids
    }
}

impl IdGroup for ResultGroup {
    fn ids(&self) -> &[String] {
        &self.recovery_instance_ids
    }
    fn ids_mut(&mut self) -> &mut Vec<String> {
        &mut self.recovery_instance_ids
    }
}

/// Splits the groups into parts whose serialised size stays under `budget`, keeping the order of
/// groups and of ids within them; a group may be cut across parts.
pub fn split_groups<G: IdGroup>(groups: &[G], budget: usize) -> Vec<Vec<G>> {
    let mut parts: Vec<Vec<G>> = Vec::new();
    let mut current: Vec<G> = Vec::new();
    let mut current_bytes = 2; // the enclosing [ ]
    for group in groups {
        let mut empty = group.clone();
        empty.ids_mut().clear();
        let header_bytes = to_json(&empty).len() + 1;
        let mut piece = empty.clone();
        for id in group.ids() {
            let id_bytes = id.len() + 3; // quotes and comma; ids are plain ASCII or cut short
            let extra = if piece.ids().is_empty() {
                header_bytes + id_bytes
            } else {
                id_bytes
            };
            let part_has_content = !current.is_empty() || !piece.ids().is_empty();
            if part_has_content && current_bytes + extra > budget {
                if !piece.ids().is_empty() {
                    current.push(std::mem::replace(&mut piece, empty.clone()));
                }
                parts.push(std::mem::take(&mut current));
                current_bytes = 2;
            }
            if piece.ids().is_empty() {
                current_bytes += header_bytes;
            }
            current_bytes += id_bytes;
            piece.ids_mut().push(id.clone());
        }
        if !piece.ids().is_empty() {
            current.push(piece);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::OutcomeKind;
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
