//! The launch stage: one launch request to its answer — source servers and selector resolved,
//! pre-flight, chunks planned within the quotas free, chunks sent (waiting for capacity when
//! asked), one outcome per instance, the events published.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::sleep;
use tracing::{info, warn};

pub mod answer;
pub mod capacity;
mod confirm;
pub mod events;
pub mod isolate;
pub mod next;
pub mod outcome;
pub mod pacing;
pub mod preflight;
pub mod readiness;
pub mod reconcile;
mod report;
mod send;
pub mod unreachable;

use answer::{LaunchAnswer, RunResult};
use capacity::Capacity;
use outcome::{DeferReason, Outcome};
use pacing::Pacer;
use preflight::{Preflight, RunScope, preflight, resolve_ids};
use readiness::Wait;
use reconcile::Looker;
use send::Launcher;

use crate::config::Config;
use crate::drs::Drs;
use crate::drs::reads::{DrsReads, JOBS_LOOKBACK};
use crate::error::HandlerError;
use crate::events::EventPublisher;
use crate::events::publish::Bus;
use crate::request::LaunchRequest;
use crate::retry::deadline::AnswerTimes;

/// Runs a launch request to its answer, publishing its events on the way out.
pub async fn run<D: Drs, P: EventPublisher>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    bus: &Bus<'_, P>,
    request: &LaunchRequest,
) -> Result<LaunchAnswer, HandlerError> {
    let mut answer = answer(config, reads, request).await?;
    publish(config, bus, &mut answer).await;
    Ok(answer)
}

/// A launch's events published, the answer told how they went.
async fn publish<P: EventPublisher>(config: &Config, bus: &Bus<'_, P>, answer: &mut LaunchAnswer) {
    let report = bus
        .publish(events::run_events(&config.event_source, answer))
        .await;
    answer.events = report.delivery();
    info!(
        launched = answer.counts.launched,
        skipped = answer.counts.skipped,
        rejected = answer.counts.rejected,
        deferred = answer.counts.deferred,
        jobs = answer.jobs.len(),
        events_published = report.published,
        events_undelivered = report.undelivered,
        complete = answer.complete,
        "run finished"
    );
}

/// The answer to a launch request, before any event is published (a plan's dry run publishes
/// none).
pub async fn answer<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    request: &LaunchRequest,
) -> Result<LaunchAnswer, HandlerError> {
    let mut result = launch(config, reads, request).await?;
    // Outcomes in request order, whatever order the chunks finished in.
    let position: HashMap<&String, usize> = request
        .recovery_instance_ids
        .iter()
        .enumerate()
        .map(|(index, id)| (id, index))
        .collect();
    result
        .outcomes
        .sort_by_key(|(id, _)| position.get(id).copied().unwrap_or(usize::MAX));
    result.outcomes.extend(
        request
            .malformed_ids
            .iter()
            .map(|id| (id.clone(), Outcome::malformed_id())),
    );
    let mut answer = result.answer(request, Default::default());
    let home = crate::drs::target::home(config);
    answer.target = request.here(home.as_ref()).cloned();
    Ok(answer)
}

/// Every requested instance to an outcome, and the jobs made.
async fn launch<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    request: &LaunchRequest,
) -> Result<RunResult, HandlerError> {
    let mut result = RunResult::default();
    let (ids, selected) =
        resolve_ids(reads, request, &mut result, config.max_request_instances).await?;
    let Some((found, capacity)) =
        read_state(config, reads, request, &ids, &selected, &mut result).await?
    else {
        return Ok(result);
    };
    for (step, id) in found.held {
        result.hold(&step, id);
    }
    for job in found.existing_jobs {
        result.add_job(job);
    }
    result.outcomes.extend(found.settled);
    result.progress = found.progress;
    let queue: VecDeque<String> = found.launchable.into();
    if request.dry_run {
        dry_run(config, capacity, queue, &mut result);
        return Ok(result);
    }
    let looker = Looker {
        reads,
        run_id: &request.run_id,
        sources: &found.sources,
        since: reads.budget.wall_now() - JOBS_LOOKBACK,
        window: config.settle_window,
    };
    let launcher = Launcher {
        drs: reads.drs,
        looker: &looker,
        policy: &reads.policy,
        jitter: reads.jitter,
        pacer: &Pacer::new(config.adaptive_pacing),
        answers: &AnswerTimes::default(),
        max_concurrent: config.max_concurrent_launches,
        per_job: &AtomicUsize::new(config.max_instances_per_job),
    };
    launch_rounds(config, reads, request, &launcher, capacity, queue, result).await
}

/// Pre-flight, and the quota room it found free; `None` (every instance then deferred in
/// `result`) when DRS could not be read.
async fn read_state<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    request: &LaunchRequest,
    ids: &[String],
    selected: &HashSet<String>,
    result: &mut RunResult,
) -> Result<Option<(Preflight, Capacity)>, HandlerError> {
    let scope = RunScope {
        run_id: &request.run_id,
        step: request.step.as_deref(),
        selected,
        wait: Wait::of(request),
    };
    let (found, active) = match preflight(reads, ids, &scope).await {
        Ok(found) => found,
        Err(failure) => {
            if let Some((kind, message)) = failure.unusable() {
                return Err(HandlerError::DrsUnusable { kind, message });
            }
            warn!(error = %failure, "pre-flight read failed: nothing launched");
            let outcome = Outcome::unread(&failure);
            result
                .outcomes
                .extend(ids.iter().map(|id| (id.clone(), outcome.clone())));
            return Ok(None);
        }
    };
    let capacity = Capacity::left(&active, config);
    info!(
        launchable = found.launchable.len(),
        settled = found.settled.len(),
        jobs_of_this_run = found.existing_jobs.len(),
        held_by_other_steps = found.held.len(),
        servers_in_active_jobs = capacity.servers_in_flight,
        active_jobs = capacity.active_jobs,
        "pre-flight done"
    );
    Ok(Some((found, capacity)))
}

/// A dry run plans with the same planner as a real run: what would start now, within the quotas.
fn dry_run(
    config: &Config,
    mut capacity: Capacity,
    queue: VecDeque<String>,
    result: &mut RunResult,
) {
    let planned = capacity.admit(&mut queue.clone(), config.max_instances_per_job, &mut 0);
    result.planned_job_sizes = Some(
        planned
            .iter()
            .map(|c| c.recovery_instance_ids.len())
            .collect(),
    );
    let dry = Outcome::deferred(DeferReason::DryRun, None);
    result
        .outcomes
        .extend(queue.into_iter().map(|id| (id, dry.clone())));
}

/// Launches what fits, round after round while the run waits for capacity; what is left when
/// it stops is deferred (or halted with the reason DRS gave).
async fn launch_rounds<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    request: &LaunchRequest,
    launcher: &Launcher<'_, D>,
    mut capacity: Capacity,
    mut queue: VecDeque<String>,
    mut result: RunResult,
) -> Result<RunResult, HandlerError> {
    let tags = request
        .tags
        .with_run_id(&request.run_id)
        .with_step(request.step.as_deref());
    let mut stopped = None;
    let mut next_index = 0;
    loop {
        let size = launcher.per_job.load(Ordering::Relaxed);
        let chunks = capacity.admit(&mut queue, size, &mut next_index);
        if !chunks.is_empty() {
            let report = launcher.launch_all(chunks, &tags).await;
            for job in report.jobs {
                result.add_job(job);
            }
            result.outcomes.extend(report.outcomes);
            if report.unusable.is_some() || report.refused_request.is_some() {
                stopped = Some((report.halted, report.unusable, report.refused_request));
                break;
            }
            if report.quota_full {
                capacity.exhaust();
            }
        }
        if queue.is_empty() || !config.wait_for_capacity {
            break;
        }
        match wait_for_capacity(config, reads, queue.len()).await {
            Some(left) => capacity = left,
            None => break,
        }
    }
    let (halted, unusable, refused_request) = stopped.unwrap_or_default();
    let rest = halted
        .unwrap_or_else(|| Outcome::deferred(DeferReason::Quota, Some(capacity.describe(config))));
    if !queue.is_empty() {
        info!(
            instances = queue.len(),
            "deferred: no capacity left in this run"
        );
    }
    result
        .outcomes
        .extend(queue.into_iter().map(|id| (id, rest.clone())));
    // DRS cannot be used, or refused the request itself: the call ends on it only when nothing
    // can have been launched. A job DRS may have made (an instance AMBIGUOUS) keeps the answer,
    // so the run's next call looks for it instead of the run losing it.
    let maybe_launched = result.outcomes.iter().any(|(_, outcome)| {
        matches!(
            outcome,
            Outcome::Deferred {
                reason: DeferReason::Ambiguous,
                ..
            }
        )
    });
    if result.jobs.is_empty() && !maybe_launched {
        if let Some((kind, message)) = unusable {
            return Err(HandlerError::DrsUnusable { kind, message });
        }
        if let Some((field, message)) = refused_request {
            return Err(HandlerError::RefusedByDrs { field, message });
        }
    }
    Ok(result)
}

/// Jobs free capacity as they finish: wait one poll and read the active jobs again, only while a
/// poll and a launch still fit before the deadline. `None` when not waiting longer.
async fn wait_for_capacity<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    waiting: usize,
) -> Option<Capacity> {
    let poll = config.capacity_poll_interval;
    if !reads.budget.fits(poll, 2) {
        return None;
    }
    info!(
        waiting,
        poll_s = poll.as_secs(),
        "quota full: waiting for jobs to finish"
    );
    sleep(poll).await;
    match reads.active_jobs().await {
        Ok(active) => Some(Capacity::left(&active, config)),
        Err(failure) => {
            warn!(error = %failure, "could not read the active jobs; not waiting longer");
            None
        }
    }
}
