//! What a tracking call reads from DRS — the jobs' recovery instances and the logs of finished
//! jobs with a failure — and the results it makes of them ([`results`](super::results) decides).

use std::collections::HashMap;

use futures_util::future::join;
use futures_util::{StreamExt, stream};
use tracing::warn;

use super::results::{
    Failures, InstanceResult, ResultCounts, ResultKind, TrackedJob, TrackedStatus, decide,
    failures, reason,
};
use crate::drs::reads::{DrsReads, ReadFailure};
use crate::drs::{Drs, JobRecord, JobStatus, RecoveryInstance};
use crate::error::HandlerError;

/// Whether a read that failed ends the call: always when DRS cannot be used; on the run's last
/// call whenever it fails, because the run's summary must not count what could not be read
/// (`DrsReadFailed`, which the state machine retries).
pub(super) fn unreadable(
    failure: &ReadFailure,
    final_call: bool,
    what: &str,
) -> Result<(), HandlerError> {
    if final_call || failure.unusable().is_some() {
        return Err(HandlerError::read_failed(failure, what));
    }
    Ok(())
}

/// The recovery instances of the jobs' servers: by recovery instance id, and by source server
/// for servers listed without one. What cannot be read is left out (its results stay running).
pub(super) async fn read_instances<D: Drs>(
    reads: &DrsReads<'_, D>,
    jobs: &[&JobRecord],
    final_call: bool,
) -> Result<Vec<RecoveryInstance>, HandlerError> {
    let participants = jobs.iter().flat_map(|job| &job.participants);
    let mut by_recovery = Vec::new();
    let mut by_source = Vec::new();
    for participant in participants {
        match (
            &participant.recovery_instance_id,
            &participant.source_server_id,
        ) {
            (Some(id), _) => by_recovery.push(id.clone()),
            (None, Some(source)) => by_source.push(source.clone()),
            (None, None) => {}
        }
    }
    by_recovery.sort();
    by_recovery.dedup();
    by_source.sort();
    by_source.dedup();
    let (found, of_sources) = join(
        reads.instances(&by_recovery),
        reads.instances_of_source_servers(&by_source),
    )
    .await;
    let mut instances = Vec::new();
    for read in [found, of_sources] {
        match read {
            Ok(list) => instances.extend(list),
            Err(failure) => {
                unreadable(&failure, final_call, "recovery instances")?;
                warn!(error = %failure, "recovery instances could not be read: results stay running");
            }
        }
    }
    Ok(instances)
}

/// Each server of the job with its result.
/// `later` says whether a job id is one this run made after `job` (listed later in the request):
/// an instance of a finished job that names a later job of the run was launched again — DRS had
/// made it ready for another launch, so this attempt did not bring it back.
pub(super) fn results_of(
    job: &JobRecord,
    instances: &[RecoveryInstance],
    later: impl Fn(&str) -> bool,
) -> Vec<InstanceResult> {
    job.participants
        .iter()
        .map(|participant| {
            let matches = |i: &&RecoveryInstance| {
                participant.recovery_instance_id.as_deref() == Some(&i.recovery_instance_id)
                    || (participant.recovery_instance_id.is_none()
                        && participant.source_server_id.is_some()
                        && i.source_server_id == participant.source_server_id)
            };
            // A source server may have had other recovery instances: the one this job failed
            // back names the job.
            let of_this_job =
                |i: &&RecoveryInstance| i.failback_job_id.as_deref() == Some(job.job_id.as_str());
            let instance = instances
                .iter()
                .filter(matches)
                .find(of_this_job)
                .or_else(|| instances.iter().find(matches));
            // The instance's state speaks for this job only if it names this job.
            let state = instance
                .filter(|i| i.failback_job_id.as_deref() == Some(job.job_id.as_str()))
                .map(|i| i.failback_state.clone());
            // A server the job lists by source server only, whose recovery instance could not be
            // read, cannot be told apart yet: its result waits until it can.
            let unidentified = participant.recovery_instance_id.is_none() && instance.is_none();
            let mut result = if unidentified {
                ResultKind::Running
            } else {
                decide(participant.launch_status.as_ref(), state.as_ref())
            };
            let relaunched = job.status == JobStatus::Completed
                && instance
                    .and_then(|i| i.failback_job_id.as_deref())
                    .is_some_and(&later);
            let mut reason = None;
            if relaunched && result == ResultKind::Running {
                result = ResultKind::Failed;
                reason = Some(RELAUNCHED.to_owned());
            }
            InstanceResult {
                recovery_instance_id: participant
                    .recovery_instance_id
                    .clone()
                    .or_else(|| instance.map(|i| i.recovery_instance_id.clone())),
                source_server_id: participant
                    .source_server_id
                    .clone()
                    .or_else(|| instance.and_then(|i| i.source_server_id.clone())),
                result,
                launch_status: participant.launch_status.clone(),
                failback_state: state,
                reason,
                message: None,
            }
        })
        .collect()
}

/// The logs of these jobs, read a few at a time, as failures by source server; a log that could
/// not be read is `None`.
pub(super) async fn read_logs<'j, D: Drs>(
    reads: &DrsReads<'_, D>,
    job_ids: &[&'j str],
) -> Result<HashMap<&'j str, Option<Failures>>, HandlerError> {
    let logs: Vec<(&str, Result<Failures, ReadFailure>)> = stream::iter(job_ids.iter().copied())
        .map(|job_id| async move {
            let log = reads.job_log(job_id).await.map(|log| failures(&log));
            (job_id, log)
        })
        .buffer_unordered(reads.max_concurrent.max(1))
        .collect()
        .await;
    let mut found = HashMap::new();
    for (job_id, log) in logs {
        match log {
            Ok(failures) => {
                found.insert(job_id, Some(failures));
            }
            Err(failure) => {
                unreadable(&failure, false, "job log")?;
                warn!(job_id, error = %failure, "job log could not be read");
                found.insert(job_id, None);
            }
        }
    }
    Ok(found)
}

/// Gives each failed instance its reason: the job log's event for its source server, else the
/// failback state or launch status.
/// The reason of an attempt the run superseded by launching the instance again.
pub const RELAUNCHED: &str = "RELAUNCHED";

pub(super) fn explain_failures(logged: Option<&Failures>, results: &mut [InstanceResult]) {
    for result in results
        .iter_mut()
        .filter(|r| r.result == ResultKind::Failed)
    {
        let logged = result
            .source_server_id
            .as_deref()
            .and_then(|source| logged.and_then(|log| log.get(source)));
        let (why, message) = match (logged, &result.reason) {
            (None, Some(known)) => (known.clone(), None),
            _ => reason(
                logged,
                result.failback_state.as_ref(),
                result.launch_status.as_ref(),
            ),
        };
        result.reason = Some(why);
        result.message = message;
    }
}

pub(super) fn tracked_job(job: &JobRecord, results: Vec<InstanceResult>) -> TrackedJob {
    let counts = ResultCounts::of(&results);
    TrackedJob {
        job_id: job.job_id.clone(),
        arn: job.arn.clone(),
        status: TrackedStatus::Drs(job.status.clone()),
        done: job.status == JobStatus::Completed && counts.running == 0,
        counts,
        instances: Some(results),
        groups: None,
    }
}
