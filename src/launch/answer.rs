//! A launch's answer: every requested instance's outcome, the jobs made, the not-launched
//! instances grouped, and what to send again.

use std::collections::HashMap;

use serde::Serialize;

use super::next::{Next, after_launch};
use super::outcome::{Counts, Outcome, OutcomeKind};
use super::readiness::{Progress, WaitingSummary, to_announce};
use crate::drs::ids::is_valid_source_server_id;
use crate::drs::{JobStatus, LaunchedJob, Target};
use crate::events::EventDelivery;
use crate::request::{HeldGroup, LaunchRequest};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    #[serde(rename = "jobID")]
    pub job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub status: JobStatus,
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
}

impl From<&LaunchedJob> for JobSummary {
    fn from(job: &LaunchedJob) -> Self {
        JobSummary {
            job_id: job.job_id.clone(),
            arn: job.arn.clone(),
            status: job.status.clone(),
            recovery_instance_ids: job.recovery_instance_ids.clone(),
        }
    }
}

/// Instances that share an outcome, reason and message. Grouping keeps the answer small: a
/// refused chunk shares one DRS message, a deadline deferral one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotLaunchedGroup {
    pub outcome: OutcomeKind,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `ALREADY_IN_JOB`: the job the instances are already in.
    #[serde(rename = "jobID", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
}

/// The function's answer: the Step Functions task output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchAnswer {
    pub run_id: String,
    /// The plan step this launch was part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The account and region it launched in, when the function knows its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The account and region could not be reached (role missing, region not enabled, DRS not
    /// usable there): every instance named is skipped `TARGET_UNREACHABLE`, and a selector there
    /// was not resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Unreached>,
    pub dry_run: bool,
    /// False when anything was deferred: send `deferredRecoveryInstanceIDs` again.
    pub complete: bool,
    /// Distinct ids with an outcome: the recovery instances named or resolved from the source
    /// servers named, plus malformed ids and source servers without a recovery instance.
    pub requested: usize,
    pub duplicates_collapsed: usize,
    pub counts: Counts,
    pub jobs: Vec<JobSummary>,
    pub not_launched: Vec<NotLaunchedGroup>,
    #[serde(rename = "deferredRecoveryInstanceIDs")]
    pub deferred_recovery_instance_ids: Vec<String>,
    /// Source servers named in the request whose recovery instances could not be read: send them
    /// again as `sourceServerIDs`.
    #[serde(rename = "deferredSourceServerIDs")]
    pub deferred_source_server_ids: Vec<String>,
    /// `dryRun` only: the sizes of the jobs a real run would start, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_job_sizes: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_by_other_steps: Vec<HeldGroup>,
    /// The instances waiting for readiness (deferred `REPLICATING`): how many, in which state,
    /// the bytes left, the latest ETA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingSummary>,
    /// What the step does next, when the request said where its loop stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
    pub events: EventDelivery,
    /// The instances whose waiting is news ([`to_announce`]), for the `Failback Instances
    /// Waiting` events (not answered).
    #[serde(skip)]
    pub announce: Vec<Progress>,
}

/// Why an account and region could not be reached: the error's name and message, as STS or
/// DRS gave them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreached {
    pub code: String,
    pub message: String,
}

/// Distinct messages (or job ids) listed per outcome, reason and code; beyond this they are
/// merged, so that 5000 instances refused each with its own message still fit the answer.
pub const MAX_DISTINCT_DETAILS: usize = 16;
pub const DETAILS_OMITTED: &str = "(further distinct messages omitted to keep the answer small)";

/// Outcome, reason, code, message, job id: instances sharing all five are listed together.
pub type GroupKey = (
    OutcomeKind,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Lists instances that share a key together, in the order each key first appears; past
/// [`MAX_DISTINCT_DETAILS`] messages (or job ids) per outcome, reason and code, the rest share one
/// group whose message says so.
pub fn group_not_launched(
    items: impl IntoIterator<Item = (String, GroupKey)>,
) -> Vec<NotLaunchedGroup> {
    let mut groups: Vec<NotLaunchedGroup> = Vec::new();
    let mut index: HashMap<GroupKey, usize> = HashMap::new();
    let mut details: HashMap<(OutcomeKind, String, Option<String>), usize> = HashMap::new();
    for (id, mut key) in items {
        if !index.contains_key(&key) {
            let seen = details
                .entry((key.0, key.1.clone(), key.2.clone()))
                .or_default();
            if *seen >= MAX_DISTINCT_DETAILS {
                key.3 = Some(DETAILS_OMITTED.to_owned());
                key.4 = None;
            } else {
                *seen += 1;
            }
        }
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(NotLaunchedGroup {
                outcome: key.0,
                reason: key.1,
                code: key.2,
                message: key.3,
                job_id: key.4,
                recovery_instance_ids: Vec::new(),
            });
            groups.len() - 1
        });
        groups[slot].recovery_instance_ids.push(id);
    }
    groups
}

/// Every requested instance with its outcome, and the jobs created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunResult {
    pub jobs: Vec<LaunchedJob>,
    pub outcomes: Vec<(String, Outcome)>,
    pub planned_job_sizes: Option<Vec<usize>>,
    /// Matched by the selector, held by another step: no outcome here.
    pub held: Vec<HeldGroup>,
    /// The instances waited for, or that stopped waiting, as DRS showed them.
    pub progress: Vec<Progress>,
}

impl RunResult {
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for (_, outcome) in &self.outcomes {
            counts.add(outcome.kind());
        }
        counts
    }

    /// Groups the instances that were not launched, in the order their first member appears.
    pub fn not_launched(&self) -> Vec<NotLaunchedGroup> {
        group_not_launched(self.outcomes.iter().filter_map(|(id, outcome)| {
            let key: GroupKey = match outcome {
                Outcome::Launched { .. } => return None,
                Outcome::Skipped {
                    reason,
                    job_id,
                    code,
                    message,
                } => (
                    OutcomeKind::Skipped,
                    reason.clone(),
                    code.clone(),
                    message.clone(),
                    job_id.clone(),
                ),
                Outcome::Rejected {
                    reason,
                    code,
                    message,
                } => (
                    OutcomeKind::Rejected,
                    reason.to_string(),
                    code.clone(),
                    Some(message.clone()),
                    None,
                ),
                Outcome::Deferred {
                    reason,
                    code,
                    error,
                } => (
                    OutcomeKind::Deferred,
                    reason.name().to_owned(),
                    code.clone(),
                    error.clone(),
                    None,
                ),
            };
            Some((id.clone(), key))
        }))
    }

    /// Deferred ids: recovery instances, then source servers (told apart by their `s-` form).
    pub fn deferred_ids(&self) -> (Vec<String>, Vec<String>) {
        self.outcomes
            .iter()
            .filter(|(_, outcome)| matches!(outcome, Outcome::Deferred { .. }))
            .map(|(id, _)| id.clone())
            .partition(|id| !is_valid_source_server_id(id))
    }

    /// Leaves `id` to `step`, which holds it.
    pub fn hold(&mut self, step: &str, id: String) {
        match self.held.iter_mut().find(|group| group.step == step) {
            Some(group) => group.recovery_instance_ids.push(id),
            None => self.held.push(HeldGroup {
                step: step.to_owned(),
                recovery_instance_ids: vec![id],
            }),
        }
    }

    /// Adds a job of this run; a job met again (found by two chunks) gets the new instances.
    pub fn add_job(&mut self, job: LaunchedJob) {
        match self.jobs.iter_mut().find(|j| j.job_id == job.job_id) {
            Some(known) => {
                for id in job.recovery_instance_ids {
                    if !known.recovery_instance_ids.contains(&id) {
                        known.recovery_instance_ids.push(id);
                    }
                }
            }
            None => self.jobs.push(job),
        }
    }

    pub fn answer(&self, request: &LaunchRequest, events: EventDelivery) -> LaunchAnswer {
        let counts = self.counts();
        let (deferred_recovery_instance_ids, deferred_source_server_ids) = self.deferred_ids();
        let not_launched = self.not_launched();
        let next = request
            .step_loop
            .as_ref()
            .filter(|_| !request.dry_run)
            .map(|step| {
                let reasons: Vec<&str> = not_launched
                    .iter()
                    .filter(|g| g.outcome == OutcomeKind::Deferred)
                    .map(|g| g.reason.as_str())
                    .collect();
                after_launch(step, self.jobs.len(), counts.deferred, &reasons)
            });
        LaunchAnswer {
            run_id: request.run_id.clone(),
            step: request.step.clone(),
            target: request.target.clone(),
            unreachable: None,
            dry_run: request.dry_run,
            complete: counts.deferred == 0,
            requested: counts.total(),
            duplicates_collapsed: request.duplicates_collapsed,
            counts,
            jobs: self.jobs.iter().map(JobSummary::from).collect(),
            not_launched,
            deferred_recovery_instance_ids,
            deferred_source_server_ids,
            planned_job_sizes: self.planned_job_sizes.clone(),
            held_by_other_steps: self.held.clone(),
            waiting: WaitingSummary::of(&self.progress),
            next,
            events,
            announce: to_announce(&self.progress, &request.waiting),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::outcome::{DeferReason, MESSAGE_MAX_BYTES};

    #[test]
    fn groups_share_reason_and_message() {
        let result = RunResult {
            jobs: vec![],
            outcomes: vec![
                (
                    "i-11111111".into(),
                    Outcome::deferred(DeferReason::Deadline, None),
                ),
                ("bad".into(), Outcome::malformed_id()),
                (
                    "i-22222222".into(),
                    Outcome::deferred(DeferReason::Deadline, None),
                ),
                (
                    "i-33333333".into(),
                    Outcome::refused_by_drs("ConflictException", "busy"),
                ),
            ],
            planned_job_sizes: None,
            held: vec![],
            progress: vec![],
        };
        let groups = result.not_launched();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].reason, "DEADLINE");
        assert_eq!(
            groups[0].recovery_instance_ids,
            ["i-11111111", "i-22222222"]
        );
        assert_eq!(groups[1].reason, "MALFORMED_ID");
        assert_eq!(groups[2].code.as_deref(), Some("ConflictException"));
        assert_eq!(
            result.deferred_ids(),
            (
                vec!["i-11111111".to_owned(), "i-22222222".to_owned()],
                vec![]
            )
        );
        let counts = result.counts();
        assert_eq!(
            (counts.deferred, counts.rejected, counts.total()),
            (2, 2, 4)
        );
    }

    #[test]
    fn long_drs_messages_are_cut() {
        let outcome = Outcome::refused_by_drs("ValidationException", &"é".repeat(1000));
        let Outcome::Rejected { message, .. } = outcome else {
            panic!("rejected expected")
        };
        assert!(message.len() <= MESSAGE_MAX_BYTES);
    }
}
