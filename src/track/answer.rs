//! A tracking call's answer, and the announcing that comes before it: the Job Completed events
//! of the jobs newly done, the closing events of a final call, and which jobs now count as
//! reported.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use tracing::info;

use super::end::StepEnd;
use super::events::{StepClose, finished_events, job_completed};
use super::finish::{Listing, fit_jobs, merge_not_launched, size};
use super::results::{
    InstanceResult, ResultCounts, ResultGroup, ResultKind, RunCounts, TrackedJob, group,
};
use super::verdict::{Verdict, latest_results, verdict as decide_step};
use crate::events::publish::Bus;
use crate::events::{EventDelivery, EventEntry, EventPublisher};
use crate::launch::answer::NotLaunchedGroup;
use crate::launch::next::Next;
use crate::request::TrackRequest;
use crate::request::WaitingSummary;

/// The answer is a Step Functions task output (256 KB): it is fitted into this ([`fit_jobs`]).
const ANSWER_BUDGET_BYTES: usize = 200 * 1024;

/// The answer to a track request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackAnswer {
    pub run_id: String,
    /// The account and region its jobs are in, when not the function's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::drs::Target>,
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
    /// A step's final call: whether the plan goes on ([`verdict`](super::verdict)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// What the step does next, when the request said where its loop stands (not on a last call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
    /// The step's instances waiting for readiness, as its last launch round found them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingSummary>,
    /// The shortest job of the step so far, in seconds (DRS's creation to end dates): the step's
    /// loop carries it to the next call ([`super::expect`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_seconds: Option<u64>,
    /// A step's last call, with its loop: how the step ended and whether the plan goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_end: Option<StepEnd>,
    pub events: EventDelivery,
}

/// Announces what is newly done (and the run, or the step, on a final call), then answers: a
/// job counts as reported only once its event was delivered.
pub(super) async fn announce<P: EventPublisher>(
    source: &str,
    bus: &Bus<'_, P>,
    request: &TrackRequest,
    tracked: Vec<TrackedJob>,
) -> TrackAnswer {
    let (mut entries, announced) = jobs_completed(source, request, &tracked);
    let all: Vec<&InstanceResult> = tracked.iter().flat_map(|j| j.results()).collect();
    // A plan step counts each instance once, by its latest attempt (one launched again after a
    // failed attempt is in two jobs); a run's jobs hold each instance once anyway.
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
        let (closing, decided) = closing(source, request, &tracked, &all, &counted, run);
        entries.extend(closing);
        verdict = decided;
    }
    let report = bus.publish(entries).await;
    let reported = reported(request, announced, &report.undelivered_entries);
    let mut answer = TrackAnswer {
        target: request.target.clone(),
        run_id: request.run_id.clone(),
        complete: tracked.iter().all(|j| j.done),
        counts,
        // Not done, or done but its event not delivered: the next call asks again.
        running_job_ids: tracked
            .iter()
            .filter(|j| !j.done || (j.status.is_completed() && !reported.contains(&j.job_id)))
            .map(|j| j.job_id.clone())
            .collect(),
        jobs: Vec::new(),
        reported_job_ids: reported,
        listing: Listing::Instances,
        groups: None,
        not_launched: merge_not_launched(&request.not_launched.groups),
        finished,
        step: request.step.clone(),
        verdict,
        next: None,
        waiting: None,
        job_seconds: None,
        step_end: None,
        since_first_job: None,
        events: report.delivery(),
    };
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
    answer
}

/// The Job Completed events of the jobs newly done, with each one's job id and detail. A job is
/// announced once its instances are final; the run's last call announces every job DRS has
/// finished, final or not, so no job goes unannounced.
fn jobs_completed(
    source: &str,
    request: &TrackRequest,
    tracked: &[TrackedJob],
) -> (Vec<EventEntry>, Vec<(String, String)>) {
    let already: HashSet<&String> = request.reported_job_ids.iter().collect();
    let mut entries = Vec::new();
    let mut announced = Vec::new();
    for job in tracked {
        let due = job.status.is_completed() && (job.done || request.final_call);
        if due && !already.contains(&job.job_id) {
            let entry = job_completed(
                source,
                &request.run_id,
                request.step.as_deref(),
                request.target.as_ref(),
                job,
            );
            announced.push((job.job_id.clone(), entry.detail.clone()));
            entries.push(entry);
        }
    }
    (entries, announced)
}

/// The events that close a run — or a plan step, with its verdict: a step lists every
/// instance's result, a run the ones that did not succeed.
fn closing(
    source: &str,
    request: &TrackRequest,
    tracked: &[TrackedJob],
    all: &[&InstanceResult],
    counted: &[&InstanceResult],
    run: RunCounts,
) -> (Vec<EventEntry>, Option<Verdict>) {
    let running_jobs: Vec<&str> = tracked
        .iter()
        .filter(|j| !j.done)
        .map(|j| j.job_id.as_str())
        .collect();
    let run_id = request.run_id.as_str();
    match &request.step {
        Some(step) => {
            let decided = decide_step(
                counted,
                &request.not_launched.groups,
                request.not_launched.count,
                &request.critical,
                request.max_failed,
            );
            let groups = group(&counted.iter().map(|r| (*r).clone()).collect::<Vec<_>>());
            let close = StepClose {
                name: step,
                target: request.target.as_ref(),
                verdict: &decided,
                held: &request.held_by_other_steps,
            };
            let entries = finished_events(
                source,
                run_id,
                Some(close),
                run,
                &groups,
                &running_jobs,
                None,
            );
            (entries, Some(decided))
        }
        None => {
            let unfinished: Vec<InstanceResult> = all
                .iter()
                .filter(|r| r.result != ResultKind::Succeeded)
                .map(|r| (*r).clone())
                .collect();
            let groups = group(&unfinished);
            let ended = request.ended.as_ref();
            let entries = finished_events(source, run_id, None, run, &groups, &running_jobs, ended);
            (entries, None)
        }
    }
}

/// The request's reported jobs, and those announced now whose event was delivered: one that was
/// not is announced again by the next call, so a fault never loses a job's result.
fn reported(
    request: &TrackRequest,
    announced: Vec<(String, String)>,
    undelivered: &[EventEntry],
) -> Vec<String> {
    let mut reported = request.reported_job_ids.clone();
    reported.extend(
        announced
            .into_iter()
            .filter(|(_, detail)| !undelivered.iter().any(|e| &e.detail == detail))
            .map(|(job_id, _)| job_id),
    );
    reported
}
