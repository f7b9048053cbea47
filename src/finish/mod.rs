//! The finish stage: once an operator approved it, the recovery instances a run (or a step of it)
//! brought back are disconnected from DRS or terminated — the failback's cleanup, which AWS's
//! guide asks for and which cannot be undone. The instances come from the run's own jobs (their
//! run id tag), each is decided from what DRS shows ([`decide`]), terminations go in jobs of at
//! most 200 (the API's limit) that later calls follow to the end, and the call that ends the
//! finishing publishes every instance's result (`Failback Instances Finished`).

pub mod answer;
pub mod decide;
pub mod events;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep, timeout};
use tracing::{info, warn};

use answer::{FinishAnswer, FinishNext, Finished, group};
use decide::{FinishResult, Seen, Verdict, again, decide};

use crate::config::Config;
use crate::drs::reads::{DrsReads, JOBS_LOOKBACK};
use crate::drs::{Drs, JobRecord, JobType};
use crate::error::HandlerError;
use crate::events::EventPublisher;
use crate::events::publish::Bus;
use crate::launch::outcome::MESSAGE_MAX_BYTES;
use crate::request::{FinishRequest, Finishing, RequestError, truncate_utf8};
use crate::retry::LaunchError;

/// TerminateRecoveryInstances takes at most this many ids.
pub const TERMINATE_MAX_IDS: usize = 200;

/// Runs one finishing call to its answer, publishing the results when it ends the finishing.
pub async fn run<D: Drs, P: EventPublisher>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    bus: &Bus<'_, P>,
    request: &FinishRequest,
) -> Result<FinishAnswer, HandlerError> {
    let allowed = match request.finishing {
        Finishing::Disconnect => config.finishing.disconnect,
        Finishing::Terminate => config.finishing.terminate,
    };
    if !allowed {
        return Err(RequestError::Invalid {
            field: "finishing".into(),
            problem: format!(
                "\"{}\" is not enabled for this deployment (FINISHING_ACTIONS)",
                request.finishing.name()
            ),
        }
        .into());
    }
    let source = config.event_source.as_str();
    let since = request
        .since
        .checked_sub(JOBS_LOOKBACK)
        .unwrap_or(request.since);
    let jobs = reads
        .jobs_since(since)
        .await
        .map_err(|failure| HandlerError::read_failed(&failure, "the run's jobs"))?;
    let mut ours: Vec<&JobRecord> = jobs
        .iter()
        .filter(|job| job.kind == JobType::Launch)
        .filter(|job| job.run_id.as_deref() == Some(request.run_id.as_str()))
        .filter(|job| request.step.is_none() || job.step == request.step)
        .collect();
    ours.sort_by_key(|job| job.created);
    let our_ids: HashSet<String> = ours.iter().map(|job| job.job_id.clone()).collect();
    let candidates = candidates(reads, &ours).await?;
    let listed = reads
        .instances(&candidates)
        .await
        .map_err(|failure| HandlerError::read_failed(&failure, "the run's recovery instances"))?;
    let listed: HashMap<&str, _> = listed
        .iter()
        .map(|i| (i.recovery_instance_id.as_str(), i))
        .collect();
    // The newest terminate job holding each instance (DescribeJobs lists the newest first).
    let mut terminate_jobs: HashMap<&str, &JobRecord> = HashMap::new();
    for job in jobs.iter().filter(|job| job.kind == JobType::Terminate) {
        for id in job
            .participants
            .iter()
            .filter_map(|p| p.recovery_instance_id.as_deref())
        {
            let newest = terminate_jobs.entry(id).or_insert(job);
            if job.created > newest.created {
                *newest = job;
            }
        }
    }
    let approved: HashSet<&str> = request.approved.iter().map(String::as_str).collect();
    let mut results: Vec<Finished> = Vec::new();
    let mut to_finish: Vec<String> = Vec::new();
    for id in &candidates {
        let seen = Seen {
            instance: listed.get(id.as_str()).copied(),
            ours: &our_ids,
            terminate_job: terminate_jobs.get(id.as_str()).copied(),
            approved: request.dry_run || approved.contains(id.as_str()),
        };
        match decide(id, request.finishing, seen) {
            Verdict::Finish => to_finish.push(id.clone()),
            Verdict::Settled {
                result,
                reason,
                job_id,
            } => results.push((id.clone(), result, reason, job_id)),
        }
    }
    info!(
        instances = candidates.len(),
        eligible = to_finish.len(),
        finishing = request.finishing.name(),
        dry_run = request.dry_run,
        "finishing decided"
    );
    if request.dry_run {
        let would = format!("would {}", request.finishing.name());
        results.extend(
            to_finish
                .into_iter()
                .map(|id| (id, FinishResult::Planned, would.clone(), None)),
        );
    } else {
        match request.finishing {
            Finishing::Disconnect => disconnect(reads, to_finish, &mut results).await,
            Finishing::Terminate => terminate(reads, to_finish, &mut results).await,
        }
    }
    let mut answer = answer(request, &results);
    let last = answer.next == FinishNext::Done;
    let report = bus
        .publish(events::finished_events(source, &answer, last))
        .await;
    answer.events = report.delivery();
    info!(
        done = answer.counts.done,
        failed = answer.counts.failed,
        running = answer.counts.running,
        not_eligible = answer.counts.not_eligible,
        deferred = answer.counts.deferred,
        complete = answer.complete,
        "finishing answered"
    );
    Ok(answer)
}

/// The recovery instances of the run's jobs, oldest job first, each once; a participant DRS lists
/// by its source server only is found by that.
async fn candidates<D: Drs>(
    reads: &DrsReads<'_, D>,
    ours: &[&JobRecord],
) -> Result<Vec<String>, HandlerError> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    let mut sources = Vec::new();
    for participant in ours.iter().flat_map(|job| &job.participants) {
        match (
            &participant.recovery_instance_id,
            &participant.source_server_id,
        ) {
            (Some(id), _) => {
                if seen.insert(id.clone()) {
                    ids.push(id.clone());
                }
            }
            (None, Some(source)) => sources.push(source.clone()),
            (None, None) => {}
        }
    }
    if !sources.is_empty() {
        let found = reads
            .instances_of_source_servers(&sources)
            .await
            .map_err(|failure| HandlerError::read_failed(&failure, "the run's source servers"))?;
        for instance in found {
            if seen.insert(instance.recovery_instance_id.clone()) {
                ids.push(instance.recovery_instance_id);
            }
        }
    }
    Ok(ids)
}

async fn disconnect<D: Drs>(
    reads: &DrsReads<'_, D>,
    ids: Vec<String>,
    results: &mut Vec<Finished>,
) {
    for id in ids {
        let outcome = call(reads, || reads.drs.disconnect_recovery_instance(&id)).await;
        let (result, reason) = match outcome {
            Ok(()) => (FinishResult::Done, decide::disconnected()),
            Err(error) => unfinished(&error),
        };
        results.push((id, result, reason, None));
    }
}

/// Terminate jobs of at most [`TERMINATE_MAX_IDS`]. DRS refuses a whole request for one of its
/// instances (busy, gone): a refused piece is split in halves and each sent again, so only the
/// instance DRS refuses alone fails (at most twice as many calls as instances).
async fn terminate<D: Drs>(reads: &DrsReads<'_, D>, ids: Vec<String>, results: &mut Vec<Finished>) {
    let mut pieces: Vec<Vec<String>> = ids
        .chunks(TERMINATE_MAX_IDS)
        .rev()
        .map(<[String]>::to_vec)
        .collect();
    while let Some(piece) = pieces.pop() {
        match call(reads, || reads.drs.terminate_recovery_instances(&piece)).await {
            Ok(job) => {
                info!(job_id = %job.job_id, instances = piece.len(), "terminate job started");
                results.extend(piece.iter().map(|id| {
                    let job_id = Some(job.job_id.clone());
                    (
                        id.clone(),
                        FinishResult::Running,
                        decide::terminated(),
                        job_id,
                    )
                }));
            }
            Err(LaunchError::Refused { .. }) if piece.len() > 1 => {
                let (first, second) = piece.split_at(piece.len() / 2);
                pieces.push(second.to_vec());
                pieces.push(first.to_vec());
            }
            Err(error) => {
                warn!(error = ?error, instances = piece.len(), "terminate not started");
                let (result, reason) = unfinished(&error);
                results.extend(
                    piece
                        .iter()
                        .map(|id| (id.clone(), result, reason.clone(), None)),
                );
            }
        }
    }
}

/// A finishing call that did not do its work: refused is final (DRS's code and message); the rest
/// is asked again by the next call, which first reads what DRS did.
fn unfinished(error: &LaunchError) -> (FinishResult, String) {
    let deferred = |reason: &str| (FinishResult::Deferred, reason.to_owned());
    match error {
        // Busy: in a job — maybe the terminate job a call before this one started, which DRS does
        // not list yet. The next call reads the jobs again.
        LaunchError::Refused { code, .. } if code == "ConflictException" => deferred("BUSY"),
        LaunchError::Refused { code, message, .. } => (
            FinishResult::Failed,
            truncate_utf8(&format!("{code}: {message}"), MESSAGE_MAX_BYTES),
        ),
        LaunchError::Unusable { message, .. } => (
            FinishResult::Failed,
            truncate_utf8(message, MESSAGE_MAX_BYTES),
        ),
        LaunchError::Throttled { .. } => deferred("THROTTLED"),
        LaunchError::QuotaExceeded { .. } => deferred("QUOTA"),
        LaunchError::Ambiguous { .. } => deferred("AMBIGUOUS"),
        LaunchError::NotSent { .. } => deferred("UNREACHABLE"),
    }
}

/// One finishing call, resent while DRS throttles it (after `Retry-After` and the backoff),
/// each attempt within the invocation's time budget: an attempt that cannot fit is not started.
async fn call<T, F, Fut>(reads: &DrsReads<'_, impl Drs>, mut send: F) -> Result<T, LaunchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LaunchError>>,
{
    let deadline = || LaunchError::NotSent {
        error: "not enough time left before the deadline".into(),
    };
    let mut attempt = 0;
    let mut wait = Duration::ZERO;
    loop {
        let Some(limit) = reads.budget.timeout_for(wait, 1) else {
            return Err(deadline());
        };
        sleep(wait).await;
        let outcome = match timeout(limit, send()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(LaunchError::Ambiguous {
                error: format!("no answer within {} ms", limit.as_millis()),
            }),
        };
        match outcome {
            Err(LaunchError::Throttled { retry_after, .. })
                if attempt < reads.policy.throttle_max_retries =>
            {
                wait = reads
                    .policy
                    .backoff
                    .throttle_delay(attempt, retry_after, (reads.jitter)());
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn answer(request: &FinishRequest, results: &[Finished]) -> FinishAnswer {
    let (groups, counts) = group(results);
    let complete = results.iter().all(|(_, result, _, _)| result.is_final());
    let mut job_ids: Vec<String> = Vec::new();
    for job in results.iter().filter_map(|(_, _, _, job)| job.as_ref()) {
        if !job_ids.contains(job) {
            job_ids.push(job.clone());
        }
    }
    let next = if again(complete, request.dry_run, request.calls) {
        FinishNext::Finish {
            wait_seconds: request.interval_seconds,
        }
    } else {
        FinishNext::Done
    };
    FinishAnswer {
        run_id: request.run_id.clone(),
        step: request.step.clone(),
        finishing: request.finishing,
        dry_run: request.dry_run,
        complete,
        counts,
        groups,
        job_ids,
        next,
        events: Default::default(),
    }
}
