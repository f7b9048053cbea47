//! Pre-flight: read every requested instance (and the jobs they are in) before launching, so only
//! launchable instances are sent, and a redelivered request finds the jobs its first delivery made.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures_util::future::join;

use tracing::{info, warn};

use super::answer::RunResult;
use super::outcome::{Outcome, OutcomeKind, SKIPPED_ALREADY_IN_JOB, SKIPPED_NOT_FOUND};
use super::readiness::{Progress, Readiness, Wait, not_ready, readiness};
use crate::drs::reads::{DrsReads, ReadFailure};
use crate::drs::{Drs, FailbackState, JobRecord, JobStatus, LaunchedJob, RecoveryInstance};
use crate::error::HandlerError;
use crate::request::{LaunchRequest, RequestError};

/// A finished job of this run holding an instance DRS shows ready for launch again: that attempt
/// did not bring the instance back (a succeeded one is FAILBACK_COMPLETED), and whoever fixed the
/// cause may launch it again with the same run id — resuming a halted plan does.
pub fn earlier_attempt(job: &JobRecord, instance: Option<&RecoveryInstance>) -> bool {
    job.status == JobStatus::Completed
        && instance.is_some_and(|i| i.failback_state == FailbackState::ReadyForLaunch)
}

#[derive(Debug, Default)]
pub struct Preflight {
    /// Ready instances, in request order.
    pub launchable: Vec<String>,
    /// Instances whose outcome pre-flight already knows: skipped, or launched by this run before.
    pub settled: Vec<(String, Outcome)>,
    /// This run's jobs found (a redelivered request): reported again, not launched again.
    pub existing_jobs: Vec<LaunchedJob>,
    /// Each instance's source server: a job may list a server by that id only.
    pub sources: HashMap<String, String>,
    /// Selected by tag, yet launched by another step of this run (step, instance): that step's.
    pub held: Vec<(String, String)>,
    /// While the step waits for readiness: the instances on their way, and those that stopped
    /// waiting (or were not worth waiting for), as DRS shows them.
    pub progress: Vec<Progress>,
}

/// Which run (and plan step) a pre-flight is for, and which ids only its selector chose.
#[derive(Debug, Clone, Copy)]
pub struct RunScope<'a> {
    pub run_id: &'a str,
    pub step: Option<&'a str>,
    pub selected: &'a HashSet<String>,
    pub wait: Wait,
}

/// The recovery instances of the named source servers, in the order the source servers were
/// named, and the source servers that have none.
pub async fn resolve_source_servers<D: Drs>(
    reads: &DrsReads<'_, D>,
    source_server_ids: &[String],
) -> Result<(Vec<String>, Vec<String>), ReadFailure> {
    let mut by_source: HashMap<String, Vec<String>> = HashMap::new();
    let found = reads.instances_of_source_servers(source_server_ids).await?;
    for instance in found {
        if let Some(source) = instance.source_server_id {
            by_source
                .entry(source)
                .or_default()
                .push(instance.recovery_instance_id);
        }
    }
    let mut resolved = Vec::new();
    let mut unknown = Vec::new();
    for source in source_server_ids {
        match by_source.remove(source) {
            Some(instances) => resolved.extend(instances),
            None => unknown.push(source.clone()),
        }
    }
    Ok((resolved, unknown))
}

/// The step of the plan that names `instance` (by its id or its source server's), if another does.
fn named_elsewhere<'a>(request: &'a LaunchRequest, instance: &RecoveryInstance) -> Option<&'a str> {
    let source = instance.source_server_id.as_deref();
    request
        .other_steps
        .iter()
        .find(|other| {
            other
                .recovery_instance_ids
                .contains(&instance.recovery_instance_id)
                || source.is_some_and(|s| other.source_server_ids.iter().any(|o| o == s))
        })
        .map(|other| other.step.as_str())
}

/// The recovery instances to work on: those named, those the selector matches now (less those
/// another step of the plan names: held for it in `result`), then those of the source servers
/// named. Source servers without one are skipped `NOT_FOUND`; if
/// they cannot be read, deferred. A selector that cannot be read, or matches nothing, fails
/// the launch: there is no instance to give an outcome to.
pub async fn resolve_ids<D: Drs>(
    reads: &DrsReads<'_, D>,
    request: &LaunchRequest,
    result: &mut RunResult,
    max_instances: usize,
) -> Result<(Vec<String>, HashSet<String>), HandlerError> {
    let mut ids = request.recovery_instance_ids.clone();
    let mut selected = HashSet::new();
    if let Some(selector) = &request.selector {
        let all = reads.all_instances().await.map_err(|failure| {
            HandlerError::read_failed(&failure, "recovery instances (for the selector)")
        })?;
        let matched = selector.tags.carried_by(&all);
        info!(matched = matched.len(), "selector resolved");
        if matched.is_empty() {
            return Err(RequestError::Invalid {
                field: "selector".into(),
                problem: "matches no recovery instance".into(),
            }
            .into());
        }
        let by_id: HashMap<&str, &RecoveryInstance> = all
            .iter()
            .map(|i| (i.recovery_instance_id.as_str(), i))
            .collect();
        let mut listed: HashSet<String> = ids.iter().cloned().collect();
        for id in matched {
            if !listed.insert(id.clone()) {
                continue;
            }
            let elsewhere = by_id
                .get(id.as_str())
                .and_then(|instance| named_elsewhere(request, instance));
            match elsewhere {
                Some(step) => result.hold(step, id),
                None => {
                    selected.insert(id.clone());
                    ids.push(id);
                }
            }
        }
        if !result.held.is_empty() {
            info!(
                held = result
                    .held
                    .iter()
                    .map(|g| g.recovery_instance_ids.len())
                    .sum::<usize>(),
                "selector matches instances other steps name: left to them"
            );
        }
        // The answer's size is proven for the largest request: a selector may not reach more.
        let reached = ids.len() + request.source_server_ids.len() + request.malformed_ids.len();
        if reached > max_instances {
            return Err(RequestError::Invalid {
                field: "selector".into(),
                problem: format!(
                    "reaches {reached} instances with the ids given, more than MAX_REQUEST_INSTANCES ({}); split the step",
                    max_instances
                ),
            }
            .into());
        }
    }
    if request.source_server_ids.is_empty() {
        return Ok((ids, selected));
    }
    match resolve_source_servers(reads, &request.source_server_ids).await {
        Ok((resolved, unknown)) => {
            info!(
                source_servers = request.source_server_ids.len(),
                recovery_instances = resolved.len(),
                unknown = unknown.len(),
                "source servers resolved"
            );
            let mut listed: HashSet<String> = ids.iter().cloned().collect();
            ids.extend(resolved.into_iter().filter(|id| listed.insert(id.clone())));
            let not_found = Outcome::skipped(SKIPPED_NOT_FOUND);
            result
                .outcomes
                .extend(unknown.into_iter().map(|id| (id, not_found.clone())));
        }
        Err(failure) => {
            if let Some((kind, message)) = failure.unusable() {
                return Err(HandlerError::DrsUnusable { kind, message });
            }
            warn!(error = %failure, "source servers could not be resolved");
            let outcome = Outcome::unread(&failure);
            result.outcomes.extend(
                request
                    .source_server_ids
                    .iter()
                    .map(|id| (id.clone(), outcome.clone())),
            );
        }
    }
    Ok((ids, selected))
}

/// Reads the active jobs (what counts against the quotas, returned as well) and every
/// instance, then classifies every id: ready → launchable; unknown → `NOT_FOUND`; in an
/// active job of another run → `ALREADY_IN_JOB`; in a job of this run → launched there (unless
/// that was an [`earlier_attempt`]); not ready → waiting or skipped ([`not_ready`]).
pub async fn preflight<D: Drs>(
    reads: &DrsReads<'_, D>,
    ids: &[String],
    run: &RunScope<'_>,
) -> Result<(Preflight, Vec<JobRecord>), ReadFailure> {
    let run_id = run.run_id;
    let (active, found) = join(reads.active_jobs(), reads.instances(ids)).await;
    let (known_jobs, found) = (active?, found?);
    let instances: HashMap<String, _> = found
        .into_iter()
        .map(|instance| (instance.recovery_instance_id.clone(), instance))
        .collect();

    let mut jobs: HashMap<String, JobRecord> = known_jobs
        .iter()
        .map(|job| (job.job_id.clone(), job.clone()))
        .collect();
    let unknown_job_ids: Vec<String> = instances
        .values()
        .filter_map(|instance| instance.failback_job_id.clone())
        .filter(|job_id| !jobs.contains_key(job_id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let found_jobs = reads.jobs(&unknown_job_ids).await?;
    for job in found_jobs {
        jobs.insert(job.job_id.clone(), job);
    }

    let mut preflight = Preflight {
        sources: instances
            .values()
            .filter_map(|i| Some((i.recovery_instance_id.clone(), i.source_server_id.clone()?)))
            .collect(),
        ..Preflight::default()
    };
    // This run's jobs, with the requested instances found in each: a job of an earlier round of
    // the same run may hold others, which have their outcome in that round's answer.
    let mut ours: Vec<(&JobRecord, Vec<String>)> = Vec::new();
    for id in ids {
        let Some(instance) = instances.get(id) else {
            preflight
                .settled
                .push((id.clone(), Outcome::skipped(SKIPPED_NOT_FOUND)));
            continue;
        };
        let job = instance
            .failback_job_id
            .as_ref()
            .and_then(|job_id| jobs.get(job_id))
            .filter(|job| job.holds(id, instance.source_server_id.as_deref()));
        if let Some(job) = job {
            if job.run_id.as_deref() == Some(run_id) && !earlier_attempt(job, Some(instance)) {
                // Matched by this step's selector, yet launched by another step of the plan
                // (tagged since): it is that step's, not this one's.
                if let Some(step) = job.step.as_deref()
                    && run.selected.contains(id)
                    && Some(step) != run.step
                {
                    preflight.held.push((step.to_owned(), id.clone()));
                    continue;
                }
                match ours.iter_mut().find(|(j, _)| j.job_id == job.job_id) {
                    Some((_, held)) => held.push(id.clone()),
                    None => ours.push((job, vec![id.clone()])),
                }
                preflight.settled.push((
                    id.clone(),
                    Outcome::Launched {
                        job_id: job.job_id.clone(),
                    },
                ));
                continue;
            }
            if job.is_active() {
                preflight.settled.push((
                    id.clone(),
                    Outcome::Skipped {
                        reason: SKIPPED_ALREADY_IN_JOB.into(),
                        job_id: Some(job.job_id.clone()),
                        code: None,
                        message: None,
                    },
                ));
                continue;
            }
        }
        let readiness = readiness(instance);
        if readiness == Readiness::Ready {
            preflight.launchable.push(id.clone());
            continue;
        }
        let outcome = not_ready(instance, run.wait);
        // Progress is news only of an instance on its way to its launch (or stuck on it): one
        // done, in error or launched elsewhere never waited.
        let before_launch = matches!(
            instance.failback_state,
            FailbackState::NotStarted | FailbackState::NotReadyForLaunch
        );
        if run.wait.seconds > 0 && before_launch {
            let waiting = outcome.kind() == OutcomeKind::Deferred;
            preflight.progress.push(Progress::of(instance, waiting));
        }
        preflight.settled.push((id.clone(), outcome));
    }
    preflight.existing_jobs = ours
        .into_iter()
        .map(|(job, held)| job.launched(held))
        .collect();
    Ok((preflight, known_jobs))
}
