//! A tracking answer fitted to what a Step Functions state may hold (256 KB), and the run's
//! not-launched instances merged back into groups for its last answer. The largest run accepted
//! (5 000 instances) fits whatever its shape: one object per instance when that fits, else each
//! job's instances grouped by result and reason, else — a run of thousands of small jobs — the
//! whole run's instances grouped, the jobs then only counted.

use serde::Serialize;

use super::results::{InstanceResult, ResultGroup, TrackedJob, group};
use crate::launch::answer::{GroupKey, NotLaunchedGroup, group_not_launched};
use crate::launch::outcome::OutcomeKind;
use crate::request::{GivenGroup, NotLaunchedAs};

/// How an answer lists its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Listing {
    /// `jobs[].instances`: one object per instance.
    Instances,
    /// `jobs[].groups`: each job's instances grouped by result and reason.
    JobGroups,
    /// `groups`: the run's instances grouped by result and reason; `jobs` is left empty.
    RunGroups,
}

/// The jobs as they fit in `budget` bytes, and the run-level groups when only those fit.
pub fn fit_jobs(
    jobs: Vec<TrackedJob>,
    budget: usize,
) -> (Listing, Vec<TrackedJob>, Option<Vec<ResultGroup>>) {
    if size(&jobs) <= budget {
        return (Listing::Instances, jobs, None);
    }
    let grouped: Vec<TrackedJob> = jobs.iter().map(TrackedJob::grouped).collect();
    if size(&grouped) <= budget {
        return (Listing::JobGroups, grouped, None);
    }
    let all: Vec<InstanceResult> = jobs.iter().flat_map(|j| j.results()).cloned().collect();
    (Listing::RunGroups, Vec::new(), Some(group(&all)))
}

/// The not-launched groups the caller passed back, merged: instances sharing outcome, reason,
/// code, message and job listed together, distinct messages capped as in a launch answer.
pub fn merge_not_launched(given: &[GivenGroup]) -> Vec<NotLaunchedGroup> {
    group_not_launched(given.iter().flat_map(|group| {
        let key: GroupKey = (
            outcome_kind(group.outcome),
            group.reason.clone(),
            group.code.clone(),
            group.message.clone(),
            group.job_id.clone(),
        );
        group.ids.iter().map(move |id| (id.clone(), key.clone()))
    }))
}

fn outcome_kind(outcome: NotLaunchedAs) -> OutcomeKind {
    match outcome {
        NotLaunchedAs::Skipped => OutcomeKind::Skipped,
        NotLaunchedAs::Rejected => OutcomeKind::Rejected,
        NotLaunchedAs::Deferred => OutcomeKind::Deferred,
    }
}

pub fn size(value: &impl Serialize) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::{FailbackState, JobStatus, LaunchStatus};
    use crate::track::results::{ResultCounts, ResultKind, TrackedStatus};

    fn job(n: usize, instances: usize) -> TrackedJob {
        let results: Vec<InstanceResult> = (0..instances)
            .map(|i| InstanceResult {
                recovery_instance_id: Some(format!("i-{n:08}{i:09}")),
                source_server_id: Some(format!("s-{n:08}{i:09}")),
                result: ResultKind::Succeeded,
                launch_status: Some(LaunchStatus::Launched),
                failback_state: Some(FailbackState::Completed),
                reason: None,
                message: None,
            })
            .collect();
        TrackedJob {
            job_id: format!("drsjob-{n:017}"),
            arn: None,
            status: TrackedStatus::Drs(JobStatus::Completed),
            done: true,
            counts: ResultCounts::of(&results),
            instances: Some(results),
            groups: None,
        }
    }

    #[test]
    fn instances_then_job_groups_then_run_groups() {
        let (listing, jobs, groups) = fit_jobs(vec![job(1, 3)], 10_000);
        assert_eq!((listing, jobs.len(), groups), (Listing::Instances, 1, None));

        let (listing, jobs, _) = fit_jobs(vec![job(1, 100), job(2, 100)], 20_000);
        assert_eq!(listing, Listing::JobGroups);
        assert_eq!(
            jobs[0].groups.as_ref().unwrap()[0]
                .recovery_instance_ids
                .len(),
            100
        );

        // 5000 jobs of one instance: only the run's groups fit.
        let tiny: Vec<TrackedJob> = (0..5000).map(|n| job(n, 1)).collect();
        let (listing, jobs, groups) = fit_jobs(tiny, 200 * 1024);
        assert_eq!(listing, Listing::RunGroups);
        assert!(jobs.is_empty());
        let groups = groups.unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].recovery_instance_ids.len(), 5000);
        assert!(size(&groups) < 200 * 1024);
    }

    #[test]
    fn not_launched_groups_merge_and_cap_distinct_messages() {
        let given = |reason: &str, message: Option<String>, ids: &[&str]| GivenGroup {
            outcome: NotLaunchedAs::Rejected,
            reason: reason.into(),
            code: Some("ValidationException".into()),
            message,
            job_id: None,
            ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        let mut groups = vec![
            given("REFUSED_BY_DRS", Some("m".into()), &["i-1"]),
            given("REFUSED_BY_DRS", Some("m".into()), &["i-2"]),
        ];
        for n in 0..40 {
            let id = format!("i-x{n}");
            groups.push(given(
                "REFUSED_BY_DRS",
                Some(format!("m{n}")),
                &[id.as_str()],
            ));
        }
        let merged = merge_not_launched(&groups);
        assert_eq!(merged[0].recovery_instance_ids, ["i-1", "i-2"]);
        assert_eq!(
            merged.len(),
            crate::launch::answer::MAX_DISTINCT_DETAILS + 1
        );
        let total: usize = merged.iter().map(|g| g.recovery_instance_ids.len()).sum();
        assert_eq!(total, 42, "no instance lost in the merge");
    }
}
