//! What becomes of one recovery instance when the run is finished — decided from what DRS shows
//! of it and of the run's jobs, nothing else: only an instance this run brought back
//! (FAILBACK_COMPLETED, its last failback job one of the run's) is ever disconnected or
//! terminated; one already finished is reported so, not finished twice.

use std::collections::HashSet;

use serde::Serialize;

use crate::drs::{FailbackState, JobRecord, LaunchStatus, RecoveryInstance, ReplicationState};
use crate::request::Finishing;

/// An instance's finishing result, as the answer and the `Failback Instances Finished` event
/// group them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::EnumIter)]
#[serde(rename_all = "camelCase")]
pub enum FinishResult {
    /// Disconnected, or terminated (its terminate job ended with it TERMINATED).
    Done,
    /// DRS refused it, or its terminate job ended without terminating it.
    Failed,
    /// In a terminate job that is still running.
    Running,
    /// Never finished: it did not come back, or not in this run (`reason` says which).
    NotEligible,
    /// Not attempted or not known yet (throttled, the call's outcome unknown, a quota full, the
    /// deadline): asked again.
    Deferred,
    /// A dry run: this would be done.
    Planned,
}

impl FinishResult {
    /// Final: nothing more will happen to it in this run.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            FinishResult::Done | FinishResult::Failed | FinishResult::NotEligible
        )
    }
}

/// The decision for one instance before any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Eligible: disconnect or terminate it now.
    Finish,
    Settled {
        result: FinishResult,
        reason: String,
        job_id: Option<String>,
    },
}

pub const NOT_FOUND: &str = "NOT_FOUND";
pub const NOT_THIS_RUN: &str = "NOT_THIS_RUN";
/// Eligible now, but not on the list the operator approved (it came back after the list).
pub const NOT_APPROVED: &str = "NOT_APPROVED";

/// The reason of a disconnected instance: the replication state DRS then shows.
pub fn disconnected() -> String {
    ReplicationState::Disconnected.to_string()
}

/// The reason of a terminated instance (or one being terminated): its status in the job.
pub fn terminated() -> String {
    LaunchStatus::Terminated.to_string()
}

/// What DRS shows of one instance of the run.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// As DescribeRecoveryInstances lists it; `None` when it does not (never was, or deleted).
    pub instance: Option<&'a RecoveryInstance>,
    /// The run's (or step's) failback jobs.
    pub ours: &'a HashSet<String>,
    /// The newest TERMINATE job since the run started that holds it.
    pub terminate_job: Option<&'a JobRecord>,
    /// On the list the operator approved (a dry run lists: everything counts as approved).
    pub approved: bool,
}

fn settled(result: FinishResult, reason: impl Into<String>, job: Option<&JobRecord>) -> Verdict {
    Verdict::Settled {
        result,
        reason: reason.into(),
        job_id: job.map(|j| j.job_id.clone()),
    }
}

/// One instance's verdict. A terminate job that holds it says how far terminating went; else it
/// must be listed, FAILBACK_COMPLETED (it came back: one that failed, critical or not, is never
/// finished), last launched by one of the run's jobs (a later run's launch makes it that run's)
/// and approved (on the list the operator saw). A disconnected one is done already.
pub fn decide(id: &str, finishing: Finishing, seen: Seen<'_>) -> Verdict {
    if finishing == Finishing::Terminate
        && let Some(job) = seen.terminate_job
    {
        if job.is_active() {
            return settled(FinishResult::Running, terminated(), Some(job));
        }
        let status = job
            .participants
            .iter()
            .find(|p| p.recovery_instance_id.as_deref() == Some(id))
            .and_then(|p| p.launch_status.clone());
        return match (status, seen.instance) {
            (Some(LaunchStatus::Terminated), _) | (None, None) => {
                settled(FinishResult::Done, terminated(), Some(job))
            }
            (Some(status), _) => settled(
                FinishResult::Failed,
                format!("its terminate job ended {status}"),
                Some(job),
            ),
            (None, Some(_)) => settled(
                FinishResult::Failed,
                "its terminate job ended and DRS still lists it",
                Some(job),
            ),
        };
    }
    let Some(instance) = seen.instance else {
        return settled(FinishResult::NotEligible, NOT_FOUND, None);
    };
    if instance.failback_state != FailbackState::Completed {
        return settled(
            FinishResult::NotEligible,
            instance.failback_state.to_string(),
            None,
        );
    }
    let this_run = instance
        .failback_job_id
        .as_ref()
        .is_some_and(|job| seen.ours.contains(job));
    if !this_run {
        return settled(FinishResult::NotEligible, NOT_THIS_RUN, None);
    }
    let already = instance
        .replication
        .as_ref()
        .is_some_and(|r| r.state == ReplicationState::Disconnected);
    if finishing == Finishing::Disconnect && already {
        return settled(FinishResult::Done, disconnected(), None);
    }
    if !seen.approved {
        return settled(FinishResult::NotEligible, NOT_APPROVED, None);
    }
    Verdict::Finish
}

/// Finish calls a run makes before it stops asking: with a tracking interval of a minute, an hour,
/// far more than a terminate job takes; the plan's history bound counts them (tests/history.rs).
pub const MAX_FINISH_CALLS: u32 = 60;

/// Whether to ask again (after `interval`): while something is running or deferred, within
/// [`MAX_FINISH_CALLS`]. A dry run never asks again.
pub fn again(complete: bool, dry_run: bool, calls_before: u32) -> bool {
    !complete && !dry_run && calls_before + 1 < MAX_FINISH_CALLS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::{JobStatus, JobType, Participant, Replication};

    const ID: &str = "i-0123456789abcdef0";

    fn instance(
        state: &str,
        job: Option<&str>,
        replication: Option<ReplicationState>,
    ) -> RecoveryInstance {
        RecoveryInstance {
            recovery_instance_id: ID.into(),
            source_server_id: None,
            failback_state: FailbackState::from_name(state),
            failback_job_id: job.map(str::to_owned),
            tags: Default::default(),
            replication: replication.map(|state| Replication::new(state, [])),
        }
    }

    fn terminate_job(status: &str, launch: Option<&str>) -> JobRecord {
        JobRecord {
            job_id: "drsjob-terminate0000001".into(),
            arn: None,
            status: JobStatus::from_name(status),
            kind: JobType::Terminate,
            run_id: None,
            step: None,
            created: None,
            ended: None,
            participants: vec![Participant {
                recovery_instance_id: Some(ID.into()),
                source_server_id: None,
                launch_status: launch.map(LaunchStatus::from_name),
            }],
        }
    }

    fn result(verdict: Verdict) -> (FinishResult, String) {
        match verdict {
            Verdict::Finish => (FinishResult::Planned, "finish".into()),
            Verdict::Settled { result, reason, .. } => (result, reason),
        }
    }

    /// Every case, word for word: eligible only when it came back in this run; a terminate job
    /// holding it decides alone.
    #[test]
    fn only_what_this_run_brought_back_is_finished() {
        let ours: HashSet<String> = ["drsjob-ours0000000000001".to_owned()].into();
        let back = instance("FAILBACK_COMPLETED", Some("drsjob-ours0000000000001"), None);
        let failed = instance("FAILBACK_ERROR", Some("drsjob-ours0000000000001"), None);
        let elsewhere = instance("FAILBACK_COMPLETED", Some("drsjob-other000000000001"), None);
        let cut_off = instance(
            "FAILBACK_COMPLETED",
            Some("drsjob-ours0000000000001"),
            Some(ReplicationState::Disconnected),
        );
        fn seen<'a>(
            instance: Option<&'a RecoveryInstance>,
            terminate_job: Option<&'a JobRecord>,
            ours: &'a HashSet<String>,
        ) -> Seen<'a> {
            Seen {
                instance,
                ours,
                terminate_job,
                approved: true,
            }
        }
        let planned = (FinishResult::Planned, "finish".to_owned());
        let not = |reason: &str| (FinishResult::NotEligible, reason.to_owned());
        for finishing in [Finishing::Disconnect, Finishing::Terminate] {
            assert_eq!(
                result(decide(ID, finishing, seen(Some(&back), None, &ours))),
                planned
            );
            assert_eq!(
                result(decide(ID, finishing, seen(Some(&failed), None, &ours))),
                not("FAILBACK_ERROR")
            );
            assert_eq!(
                result(decide(ID, finishing, seen(Some(&elsewhere), None, &ours))),
                not(NOT_THIS_RUN)
            );
            assert_eq!(
                result(decide(ID, finishing, seen(None, None, &ours))),
                not(NOT_FOUND)
            );
            let unapproved = Seen {
                approved: false,
                ..seen(Some(&back), None, &ours)
            };
            assert_eq!(result(decide(ID, finishing, unapproved)), not(NOT_APPROVED));
        }
        assert_eq!(
            result(decide(
                ID,
                Finishing::Disconnect,
                seen(Some(&cut_off), None, &ours)
            )),
            (FinishResult::Done, disconnected())
        );
        let terminate = |job: &JobRecord, listed: Option<&RecoveryInstance>| {
            result(decide(
                ID,
                Finishing::Terminate,
                seen(listed, Some(job), &ours),
            ))
        };
        let running = terminate_job("STARTED", Some("IN_PROGRESS"));
        assert_eq!(
            terminate(&running, Some(&back)),
            (FinishResult::Running, terminated())
        );
        let done = terminate_job("COMPLETED", Some("TERMINATED"));
        assert_eq!(terminate(&done, None), (FinishResult::Done, terminated()));
        assert_eq!(
            terminate(&done, Some(&back)),
            (FinishResult::Done, terminated())
        );
        let failed_job = terminate_job("COMPLETED", Some("FAILED"));
        assert_eq!(
            terminate(&failed_job, Some(&back)),
            (
                FinishResult::Failed,
                "its terminate job ended FAILED".to_owned()
            )
        );
        let silent = terminate_job("COMPLETED", None);
        assert_eq!(terminate(&silent, None), (FinishResult::Done, terminated()));
        assert_eq!(
            terminate(&silent, Some(&back)),
            (
                FinishResult::Failed,
                "its terminate job ended and DRS still lists it".to_owned()
            )
        );
    }

    #[test]
    fn the_finishing_asks_again_while_something_runs_within_its_calls() {
        assert!(again(false, false, 0));
        assert!(!again(true, false, 0));
        assert!(!again(false, true, 0), "a dry run lists once");
        assert!(again(false, false, MAX_FINISH_CALLS - 2));
        assert!(!again(false, false, MAX_FINISH_CALLS - 1));
    }
}
