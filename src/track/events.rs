//! The events of tracking: one per job DRS finished, with every instance's result, and those
//! that close a run or a plan step.

use serde::Serialize;

use super::results::{ResultGroup, ResultKind, RunCounts, TrackedJob};
use super::verdict::Verdict;
use crate::drs::Target;
use crate::events::{
    DETAIL_TARGET_BYTES, DETAIL_TYPE_JOB_COMPLETED, DETAIL_TYPE_RUN_FINISHED,
    DETAIL_TYPE_STEP_FINISHED, EventEntry, GROUPS_ENVELOPE_BYTES, IdGroup, split_groups, to_json,
};
use crate::request::{EndStatus, ExecutionEnd, HeldGroup};

/// The event of a job DRS finished: every instance's result, one by one when that fits the
/// detail budget, else grouped by result and reason.
pub fn job_completed(
    source: &str,
    run_id: &str,
    step: Option<&str>,
    target: Option<&Target>,
    job: &TrackedJob,
) -> EventEntry {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct JobCompleted<'a> {
        run_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<&'a str>,
        /// The account and region the job ran in, when not the function's own.
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<&'a Target>,
        #[serde(flatten)]
        job: &'a TrackedJob,
    }
    let mut detail = to_json(&JobCompleted {
        run_id,
        step,
        target,
        job,
    });
    if detail.len() > DETAIL_TARGET_BYTES {
        let grouped = job.grouped();
        detail = to_json(&JobCompleted {
            run_id,
            step,
            target,
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

/// A step's close: its name, its verdict, and the instances its selector matched that other steps
/// hold.
#[derive(Clone, Copy)]
pub struct StepClose<'a> {
    pub name: &'a str,
    /// The account and region of this part of the step, when not the function's own.
    pub target: Option<&'a Target>,
    pub verdict: &'a Verdict,
    pub held: &'a [HeldGroup],
}

/// Held instances a Step Finished event names (in all; `count` says how many each step holds).
pub const HELD_LISTED_MAX: usize = 100;

/// Instances another step holds, as Step Finished names them: how many, and the first ids.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Held<'a> {
    step: &'a str,
    count: usize,
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: &'a [String],
}

fn held_listed(held: &[HeldGroup]) -> Vec<Held<'_>> {
    let mut left = HELD_LISTED_MAX;
    held.iter()
        .map(|group| {
            let listed = group.recovery_instance_ids.len().min(left);
            left -= listed;
            Held {
                step: &group.step,
                count: group.recovery_instance_ids.len(),
                recovery_instance_ids: &group.recovery_instance_ids[..listed],
            }
        })
        .collect()
}

/// The events that close a run — its counts, the failed instances with their reasons and the
/// instances still running when it ended (with the jobs not done) — or, for a plan step
/// (`step`, with its verdict), every instance's result: split into parts that each stay under
/// the detail budget.
pub fn finished_events(
    source: &str,
    run_id: &str,
    step: Option<StepClose<'_>>,
    counts: RunCounts,
    groups: &[ResultGroup],
    running_job_ids: &[&str],
    ended: Option<&ExecutionEnd>,
) -> Vec<EventEntry> {
    /// How an execution that could not sum its run up ended: the run is not complete.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Ended<'a> {
        status: EndStatus,
        execution_arn: &'a str,
        complete: bool,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Finished<'a> {
        run_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<&'a Target>,
        #[serde(skip_serializing_if = "Option::is_none")]
        verdict: Option<&'a Verdict>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        held_by_other_steps: Vec<Held<'a>>,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        ended: Option<Ended<'a>>,
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
        + step.map_or(0, |close| {
            close.name.len()
                + 256
                + close
                    .verdict
                    .critical_failed
                    .iter()
                    .map(|id| id.len() + 3)
                    .sum::<usize>()
                + held_listed(close.held)
                    .iter()
                    .map(|h| {
                        h.step.len()
                            + 64
                            + h.recovery_instance_ids
                                .iter()
                                .map(|id| id.len() + 3)
                                .sum::<usize>()
                    })
                    .sum::<usize>()
        });
    let budget = (DETAIL_TARGET_BYTES - GROUPS_ENVELOPE_BYTES).saturating_sub(ids_bytes);
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
                step: step.map(|close| close.name),
                target: step.and_then(|close| close.target),
                verdict: step.map(|close| close.verdict),
                held_by_other_steps: match step {
                    Some(close) if index == 0 => held_listed(close.held),
                    _ => Vec::new(),
                },
                ended: ended.map(|end| Ended {
                    status: end.status,
                    execution_arn: &end.execution_arn,
                    complete: false,
                }),
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

impl IdGroup for ResultGroup {
    fn ids(&self) -> &[String] {
        &self.recovery_instance_ids
    }
    fn ids_mut(&mut self) -> &mut Vec<String> {
        &mut self.recovery_instance_ids
    }
}
