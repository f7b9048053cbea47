//! The track stage: following a run's jobs to the end. One tracking call reads the jobs and their
//! instances, decides each instance's result ([`results`]), announces each job DRS has finished —
//! once: nothing is kept between calls, the caller passes back what was already reported — and,
//! on the run's last call, the run's summary (a plan step's with its [`verdict`]).

use std::collections::HashMap;

use tracing::warn;

pub mod answer;
pub mod end;
mod ended;
pub mod events;
pub mod expect;
pub mod finish;
mod read;
pub mod results;
pub mod verdict;

use answer::{TrackAnswer, announce};
use read::{explain_failures, read_instances, read_logs, results_of, tracked_job, unreadable};
use results::{InstanceResult, ResultCounts, ResultKind, TrackedJob, TrackedStatus};

use crate::config::Config;
use crate::drs::reads::DrsReads;
use crate::drs::{Drs, JobRecord, JobStatus};
use crate::error::HandlerError;
use crate::events::EventPublisher;
use crate::events::publish::Bus;
use crate::launch::next::after_track;
use crate::request::TrackRequest;
use end::step_end;

/// Tracks the requested jobs: reads, results, events, answer.
pub async fn track<D: Drs, P: EventPublisher>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    bus: &Bus<'_, P>,
    request: &TrackRequest,
) -> Result<TrackAnswer, HandlerError> {
    let found;
    let final_call = request.final_call;
    // An ended execution's call finds the run's jobs itself, already read.
    let (request, jobs) = match &request.ended {
        Some(end) => {
            let (with_jobs, jobs) = ended::with_run_jobs(reads, request, end).await?;
            found = with_jobs;
            (&found, jobs)
        }
        None => match reads.jobs(&request.job_ids).await {
            Ok(jobs) => (request, jobs),
            Err(failure) => {
                unreadable(&failure, final_call, "jobs")?;
                warn!(error = %failure, "jobs could not be read: tracked as unknown");
                (request, Vec::new())
            }
        },
    };
    let jobs: HashMap<&str, &JobRecord> =
        jobs.iter().map(|job| (job.job_id.as_str(), job)).collect();
    let ours: Vec<&JobRecord> = request
        .job_ids
        .iter()
        .filter_map(|id| jobs.get(id.as_str()).copied())
        .filter(|job| job.run_id.as_deref() == Some(request.run_id.as_str()))
        .collect();
    let tracked = track_jobs(reads, request, &jobs, &ours).await?;
    // How long the run (or step) has been going: since its first job.
    let since_first_job = ours
        .iter()
        .filter_map(|job| job.created)
        .min()
        .and_then(|first| reads.budget.wall_now().duration_since(first).ok());
    let mut answer = announce(&config.event_source, bus, request, tracked).await;
    answer.since_first_job = since_first_job;
    if let Some(step_loop) = &request.step_loop {
        answer.waiting = step_loop.waiting.clone();
        if final_call {
            let halt = answer
                .verdict
                .as_ref()
                .filter(|v| v.halt)
                .and_then(|v| v.reason);
            let end = step_end(step_loop, answer.complete, halt);
            answer.step_end = Some(end);
        } else {
            let expected = expect::expect(step_loop.job_seconds, &ours, reads.budget.wall_now());
            answer.job_seconds = expected.job_seconds;
            answer.next = Some(after_track(
                step_loop,
                answer.running_job_ids.len(),
                expected.until_end_seconds,
            ));
        }
    }
    Ok(answer)
}

/// Every requested job with its instances' results, in the order asked: this run's jobs read
/// and decided, the others said to be another run's or not (yet) shown by DRS.
async fn track_jobs<D: Drs>(
    reads: &DrsReads<'_, D>,
    request: &TrackRequest,
    jobs: &HashMap<&str, &JobRecord>,
    ours: &[&JobRecord],
) -> Result<Vec<TrackedJob>, HandlerError> {
    let final_call = request.final_call;
    let instances = read_instances(reads, ours, final_call).await?;
    let position: HashMap<&str, usize> = request
        .job_ids
        .iter()
        .enumerate()
        .map(|(index, id)| (id.as_str(), index))
        .collect();
    let mut results: HashMap<&str, Vec<InstanceResult>> = ours
        .iter()
        .map(|job| {
            let at = position[job.job_id.as_str()];
            let later = |named: &str| position.get(named).is_some_and(|&p| p > at);
            (job.job_id.as_str(), results_of(job, &instances, later))
        })
        .collect();
    // The logs of the finished jobs with a failure: the reasons.
    let with_failures: Vec<&str> = ours
        .iter()
        .filter(|job| {
            job.status == JobStatus::Completed
                && results[job.job_id.as_str()]
                    .iter()
                    .any(|r| r.result == ResultKind::Failed)
        })
        .map(|job| job.job_id.as_str())
        .collect();
    let logs = read_logs(reads, &with_failures).await?;

    let mut tracked: Vec<TrackedJob> = Vec::new();
    for job_id in &request.job_ids {
        let job = jobs.get(job_id.as_str()).copied();
        let ours = results.remove(job_id.as_str());
        tracked.push(match (job, ours) {
            (Some(job), Some(mut results)) => {
                let log = logs.get(job_id.as_str());
                explain_failures(log.and_then(Option::as_ref), &mut results);
                let mut tracked = tracked_job(job, results);
                // A failure's reason is the job log's: a job whose log could not be read is
                // not done yet (the run's last call takes the failback state's word).
                if matches!(log, Some(None)) && !final_call {
                    tracked.done = false;
                }
                tracked
            }
            (Some(job), None) => TrackedJob {
                status: TrackedStatus::NotThisRun,
                done: true,
                ..tracked_job(job, Vec::new())
            },
            (None, _) => TrackedJob {
                job_id: job_id.clone(),
                arn: None,
                status: TrackedStatus::Unknown,
                done: false,
                counts: ResultCounts::default(),
                instances: Some(Vec::new()),
                groups: None,
            },
        });
    }
    Ok(tracked)
}
