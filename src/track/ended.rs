//! A run whose execution ended without summing it up (aborted, timed out, failed): its jobs are
//! found by the run id DRS tagged them with, since the execution started, and tracked in one last
//! call whose `Failback Run Finished` says how the execution ended.

use tracing::info;

use crate::drs::reads::{DrsReads, JOBS_LOOKBACK};
use crate::drs::{Drs, JobRecord};
use crate::error::HandlerError;
use crate::request::{ExecutionEnd, TrackRequest};

/// The run's last call with every job of the run DRS shows, oldest first, and those jobs as read.
/// They count as already announced: the execution may have published their `Failback Launch Job
/// Completed` events, and none is published twice; the run's summary carries every result.
pub(super) async fn with_run_jobs<D: Drs>(
    reads: &DrsReads<'_, D>,
    request: &TrackRequest,
    end: &ExecutionEnd,
) -> Result<(TrackRequest, Vec<JobRecord>), HandlerError> {
    let since = end
        .started
        .checked_sub(JOBS_LOOKBACK)
        .unwrap_or(end.started);
    let mut jobs = reads
        .jobs_since(since)
        .await
        .map_err(|failure| HandlerError::read_failed(&failure, "the run's jobs"))?;
    jobs.retain(|job| job.run_id.as_deref() == Some(request.run_id.as_str()));
    jobs.sort_by_key(|job| job.created);
    let job_ids: Vec<String> = jobs.iter().map(|job| job.job_id.clone()).collect();
    info!(
        status = ?end.status,
        jobs = job_ids.len(),
        "execution ended without its summary: summing the run up"
    );
    let request = TrackRequest {
        target: None,
        reported_job_ids: job_ids.clone(),
        job_ids,
        ..request.clone()
    };
    Ok((request, jobs))
}
