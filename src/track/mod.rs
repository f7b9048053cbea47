//! Following a run's jobs to the end. One tracking call reads the jobs and their instances,
//! decides each instance's result ([`crate::results`]), announces each job DRS has finished —
//! once: nothing is kept between calls, the caller passes back what was already reported — and,
//! on the run's last call, the run's summary.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::drs::{Drs, JobRecord};
use crate::error::HandlerError;
use crate::events::{finished_events, job_completed};
use crate::finish::{Listing, fit_jobs, merge_not_launched, size};
use crate::metrics::CallStats;
use crate::outcome::{EventDelivery, NotLaunchedGroup};
use crate::publish::EventPublisher;
use crate::request::TrackRequest;
use crate::results::{
    InstanceResult, ResultCounts, ResultGroup, ResultKind, RunCounts, TrackedJob, group,
};
use crate::retry::RetryPolicy;
use crate::run::Failback;
use crate::verdict::{Verdict, latest_results, verdict as decide_step};

mod read;
use read::{explain_failures, read_instances, read_logs, results_of, tracked_job, unreadable};

/// The answer is a Step Functions task output (256 KB): it is fitted into this ([`fit_jobs`]).
const ANSWER_BUDGET_BYTES: usize = 200 * 1024;

/// The answer to a track request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackAnswer {
    pub run_id: String,
    /// Every listed job is done.
    pub complete: bool,
    pub counts: ResultCounts,
    pub jobs: Vec<TrackedJob>,
    /// The request's, and the jobs whose `Failback Launch Job Completed` event this call delivered.
    #[serde(rename = "reportedJobIDs")]
    pub reported_job_ids: Vec<String>,
    /// The listed jobs not done yet: what the next tracking call asks after.
    #[serde(rename = "runningJobIDs")]
    pub running_job_ids: Vec<String>,
    /// How the instances are listed: one by one in `jobs`, grouped per job, or — when only that
    /// fits — grouped for the whole run in `groups`, `jobs` then empty.
    pub listing: Listing,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<ResultGroup>>,
    /// A final call: the instances the caller said were never launched, merged into groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_launched: Vec<NotLaunchedGroup>,
    /// A final call: the run's counts, as its `Failback Run Finished` event says them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<RunCounts>,
    /// How long the run (or step) has been going since its first job: for its metrics.
    #[serde(skip)]
    pub since_first_job: Option<Duration>,
    /// The plan step tracked, when the request named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// A step's final call: whether the plan goes on ([`crate::verdict`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    pub events: EventDelivery,
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    /// Tracks the requested jobs before `deadline`: reads, results, events, answer.
    pub async fn track(
        &self,
        request: &TrackRequest,
        deadline: Instant,
        stats: &CallStats,
    ) -> Result<TrackAnswer, HandlerError> {
        let policy = RetryPolicy::from_config(&self.config);
        let reads = self.reads(&policy, deadline, stats);
        let final_call = request.final_call;
        let jobs = match reads.jobs(&request.job_ids).await {
            Ok(jobs) => jobs,
            Err(failure) => {
                unreadable(&failure, final_call, "jobs")?;
                warn!(error = %failure, "jobs could not be read: tracked as unknown");
                Vec::new()
            }
        };
        let jobs: HashMap<&str, &JobRecord> =
            jobs.iter().map(|job| (job.job_id.as_str(), job)).collect();
        let ours: Vec<&JobRecord> = request
            .job_ids
            .iter()
            .filter_map(|id| jobs.get(id.as_str()).copied())
            .filter(|job| job.run_id.as_deref() == Some(request.run_id.as_str()))
            .collect();
        let instances = read_instances(&reads, &ours, final_call).await?;
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
                job.status == "COMPLETED"
                    && results[job.job_id.as_str()]
                        .iter()
                        .any(|r| r.result == ResultKind::Failed)
            })
            .map(|job| job.job_id.as_str())
            .collect();
        let logs = read_logs(&reads, &with_failures).await?;

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
                    status: "NOT_THIS_RUN".into(),
                    done: true,
                    ..tracked_job(job, Vec::new())
                },
                (None, _) => TrackedJob {
                    job_id: job_id.clone(),
                    arn: None,
                    status: "UNKNOWN".into(),
                    done: false,
                    counts: ResultCounts::default(),
                    instances: Some(Vec::new()),
                    groups: None,
                },
            });
        }
        // How long the run (or step) has been going: since its first job.
        let since_first_job = ours
            .iter()
            .filter_map(|job| job.created)
            .min()
            .and_then(|first| reads.budget.wall_now().duration_since(first).ok());
        let mut answer = self.answer(request, tracked, deadline).await?;
        answer.since_first_job = since_first_job;
        Ok(answer)
    }

    /// Announces what is newly done (and the run, on a final call), and answers.
    async fn answer(
        &self,
        request: &TrackRequest,
        tracked: Vec<TrackedJob>,
        deadline: Instant,
    ) -> Result<TrackAnswer, HandlerError> {
        let source = &self.config.event_source;
        let run_id = request.run_id.as_str();
        let mut reported = request.reported_job_ids.clone();
        let already: HashSet<String> = reported.iter().cloned().collect();
        let mut entries = Vec::new();
        let mut announced = Vec::new();
        // A job is announced once its instances are final; the run's last call announces every
        // job DRS has finished, final or not, so no job goes unannounced.
        let announce = |j: &&TrackedJob| j.status == "COMPLETED" && (j.done || request.final_call);
        for job in tracked.iter().filter(announce) {
            if !already.contains(&job.job_id) {
                let entry = job_completed(source, run_id, request.step.as_deref(), job);
                announced.push((job.job_id.clone(), entry.detail.clone()));
                entries.push(entry);
            }
        }
        let all: Vec<&InstanceResult> = tracked.iter().flat_map(|j| j.results()).collect();
        // A plan step counts each instance once, by its latest attempt (one launched again after
        // a failed attempt is in two jobs); a run's jobs hold each instance once anyway.
        let counted: Vec<&InstanceResult> = match &request.step {
            Some(_) => latest_results(all.iter().copied()),
            None => all.clone(),
        };
        let counts = ResultCounts::of(counted.iter().copied());
        let finished = request.final_call.then_some(RunCounts {
            succeeded: counts.succeeded,
            failed: counts.failed,
            running: counts.running,
            not_launched: request.not_launched.count,
        });
        let mut verdict = None;
        if let Some(run) = finished {
            let running_jobs: Vec<&str> = tracked
                .iter()
                .filter(|j| !j.done)
                .map(|j| j.job_id.as_str())
                .collect();
            let closing = match &request.step {
                // A step lists every instance's result; a run, the ones that did not succeed.
                Some(step) => {
                    let decided = decide_step(
                        &counted,
                        &request.not_launched.groups,
                        request.not_launched.count,
                        &request.critical,
                        request.max_failed,
                    );
                    let groups = group(&counted.iter().map(|r| (*r).clone()).collect::<Vec<_>>());
                    let entries = finished_events(
                        source,
                        run_id,
                        Some((step, &decided)),
                        run,
                        &groups,
                        &running_jobs,
                    );
                    verdict = Some(decided);
                    entries
                }
                None => {
                    let unfinished: Vec<InstanceResult> = all
                        .iter()
                        .filter(|r| r.result != ResultKind::Succeeded)
                        .map(|r| (*r).clone())
                        .collect();
                    finished_events(
                        source,
                        run_id,
                        None,
                        run,
                        &group(&unfinished),
                        &running_jobs,
                    )
                }
            };
            entries.extend(closing);
        }
        let report = self.publish(entries, deadline).await;
        // A job is reported once its event is delivered: one that was not is announced again by
        // the next call, so a fault never loses a job's result.
        reported.extend(
            announced
                .into_iter()
                .filter(|(_, detail)| {
                    !report
                        .undelivered_entries
                        .iter()
                        .any(|e| &e.detail == detail)
                })
                .map(|(job_id, _)| job_id),
        );

        let not_launched = merge_not_launched(&request.not_launched.groups);
        let mut answer = TrackAnswer {
            run_id: run_id.to_owned(),
            complete: tracked.iter().all(|j| j.done),
            counts,
            // Not done, or done but its event not delivered: the next call asks again.
            running_job_ids: tracked
                .iter()
                .filter(|j| !j.done || (j.status == "COMPLETED" && !reported.contains(&j.job_id)))
                .map(|j| j.job_id.clone())
                .collect(),
            jobs: Vec::new(),
            reported_job_ids: Vec::new(),
            listing: Listing::Instances,
            groups: None,
            not_launched,
            finished,
            step: request.step.clone(),
            verdict,
            since_first_job: None,
            events: EventDelivery {
                published: report.published,
                undelivered: report.undelivered,
            },
        };
        answer.reported_job_ids = reported;
        let budget = ANSWER_BUDGET_BYTES.saturating_sub(size(&answer));
        (answer.listing, answer.jobs, answer.groups) = fit_jobs(tracked, budget);
        info!(
            jobs = answer.jobs.len(),
            succeeded = counts.succeeded,
            failed = counts.failed,
            running = counts.running,
            complete = answer.complete,
            final_call = request.final_call,
            events_published = report.published,
            events_undelivered = report.undelivered,
            "tracked"
        );
        Ok(answer)
    }
}
