//! The plan stage: a failback plan checked against DRS before its first step starts — every
//! selector matches something, every id names a recovery instance (or a source server with one),
//! no instance is reached by two steps ([`resolve`]) — and answered with its steps normalized for
//! the state machine, which runs them in order (each step a launch, then tracking to its
//! verdict). A dry run adds, per step, what a launch would do now.

use serde::Serialize;
use tracing::info;

pub mod duration;
pub mod follow;
pub mod resolve;

use resolve::{Resolved, resolve};

use crate::config::Config;
use crate::drs::Drs;
use crate::drs::reads::DrsReads;
use crate::error::HandlerError;
use crate::launch::answer::NotLaunchedGroup;
use crate::launch::outcome::{Counts, DeferReason};
use crate::request::{
    Critical, Finishing, Ids, LaunchRequest, PlanRequest, PlanStep, RequestError, Selector,
    invalid, label, within,
};

/// The answer to a plan request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanAnswer {
    pub run_id: String,
    pub dry_run: bool,
    pub steps: Vec<StepPlan>,
    /// What is done, once approved, with what the run brought back after its last step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish: Option<Finishing>,
}

/// One step as the state machine runs it: its instances as given (a selector is resolved again
/// when the step starts), its rules with their defaults, and how many instances it has now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepPlan {
    pub name: String,
    #[serde(
        rename = "recoveryInstanceIDs",
        skip_serializing_if = "Option::is_none"
    )]
    pub recovery_instance_ids: Option<Vec<String>>,
    #[serde(rename = "sourceServerIDs", skip_serializing_if = "Option::is_none")]
    pub source_server_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    pub critical: Critical,
    pub max_failed: Option<u64>,
    pub wait_after_seconds: u64,
    pub approval: bool,
    pub wait_for_ready_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish: Option<Finishing>,
    /// Recovery instances the step reaches now (a plain request: the ids it names).
    pub instances: usize,
    /// Dry run: what a launch of the step would do now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_job_sizes: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_launched: Option<Vec<NotLaunchedGroup>>,
}

/// Checks a plan against DRS and answers its steps; a dry run adds each step's launch plan.
pub async fn check<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    request: &PlanRequest,
) -> Result<PlanAnswer, HandlerError> {
    duration::check(request)?;
    check_finish(config, request)?;
    // A plain request names its instances only: nothing to resolve before it launches (its
    // launch reports unknown ids as skipped, as it always has).
    let needs_drs = !request.plain || request.steps.iter().any(|s| s.selector.is_some());
    let resolved = if needs_drs {
        let all = reads
            .all_instances()
            .await
            .map_err(|failure| HandlerError::read_failed(&failure, "recovery instances"))?;
        Some(resolve(&request.steps, &all, config.max_request_instances)?)
    } else {
        None
    };
    let mut steps = Vec::with_capacity(request.steps.len());
    for (index, step) in request.steps.iter().enumerate() {
        let resolved = resolved.as_ref().map(|r| &r[index]);
        let instances = resolved.map_or(step.ids.entries, |r| r.ids.len());
        let mut plan = step_plan(step, request.plain, instances);
        if let Some(resolved) = resolved {
            plan.critical = resolved.critical.clone();
        }
        if request.dry_run {
            Box::pin(dry_run(config, reads, request, step, resolved, &mut plan)).await?;
        }
        steps.push(plan);
    }
    info!(
        steps = steps.len(),
        instances = steps.iter().map(|s| s.instances).sum::<usize>(),
        dry_run = request.dry_run,
        "plan checked"
    );
    Ok(PlanAnswer {
        run_id: request.run_id.clone(),
        dry_run: request.dry_run,
        steps,
        finish: request.finish,
    })
}

/// A finishing action the deployment does not allow is refused before anything launches: its role
/// lacks the permission, and the run would end with every instance's finishing failed.
fn check_finish(config: &Config, request: &PlanRequest) -> Result<(), RequestError> {
    let refusal = |finishing: Finishing| {
        let allowed = match finishing {
            Finishing::Disconnect => config.finishing.disconnect,
            Finishing::Terminate => config.finishing.terminate,
        };
        let name = finishing.name();
        (!allowed).then(|| {
            invalid(
                "finish",
                &format!(
                    "\"{name}\" is not enabled for this deployment: deploy the stack with \
                     FinishingActions {name} (or disconnect-and-terminate), which gives the \
                     function's role that permission"
                ),
            )
        })
    };
    if let Some(error) = request.finish.and_then(refusal) {
        return Err(error);
    }
    for (index, step) in request.steps.iter().enumerate() {
        if let Some(error) = step.finish.and_then(refusal) {
            return Err(within(&label(&request.steps, index), error));
        }
    }
    Ok(())
}

/// A step's launch as it would go now, the resolved ids named outright.
async fn dry_run<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    request: &PlanRequest,
    step: &PlanStep,
    resolved: Option<&Resolved>,
    plan: &mut StepPlan,
) -> Result<(), HandlerError> {
    let launch_ids = match resolved {
        Some(resolved) if !request.plain => Ids {
            recovery_instance_ids: resolved.ids.clone(),
            ..Ids::default()
        },
        _ => step.ids.clone(),
    };
    let launch = LaunchRequest {
        run_id: request.run_id.clone(),
        dry_run: true,
        tags: request.tags.clone(),
        step: Some(step.name.clone()),
        target: None,
        by_arn: launch_ids.by_arn,
        // A plain request's selector is resolved by its launch; a plan's, above.
        selector: step.selector.clone().filter(|_| request.plain),
        recovery_instance_ids: launch_ids.recovery_instance_ids,
        source_server_ids: launch_ids.source_server_ids,
        malformed_ids: launch_ids.malformed_ids,
        duplicates_collapsed: launch_ids.duplicates_collapsed,
        // The plan was just checked: no instance is reached by two steps.
        other_steps: Vec::new(),
        step_loop: None,
        wait_for_ready_seconds: step.wait_for_ready_seconds,
        waiting: Vec::new(),
    };
    let answer = crate::launch::answer(config, reads, &launch).await?;
    plan.instances = answer.requested;
    plan.counts = Some(answer.counts);
    plan.planned_job_sizes = answer.planned_job_sizes;
    // A dry run's answer is the execution's output: what would be skipped or rejected, not every
    // id again (the step's lists and the DRY_RUN group would repeat them, past 256 KB for the
    // largest plan).
    let dry_run = DeferReason::DryRun.name();
    plan.not_launched = Some(
        answer
            .not_launched
            .into_iter()
            .filter(|g| g.reason != dry_run)
            .collect(),
    );
    plan.recovery_instance_ids = None;
    plan.source_server_ids = None;
    Ok(())
}

fn step_plan(step: &PlanStep, plain: bool, instances: usize) -> StepPlan {
    let listed = |ids: &[String]| (!ids.is_empty()).then(|| ids.to_vec());
    // A plain request's malformed ids travel with the step: its launch rejects them, so each
    // still gets its outcome.
    let mut recovery_instance_ids = step.ids.recovery_instance_ids.clone();
    if plain {
        recovery_instance_ids.extend(step.ids.malformed_ids.iter().cloned());
    }
    StepPlan {
        name: step.name.clone(),
        recovery_instance_ids: listed(&recovery_instance_ids),
        source_server_ids: listed(&step.ids.source_server_ids),
        selector: step.selector.clone(),
        critical: step.critical.clone(),
        max_failed: step.max_failed,
        wait_after_seconds: step.wait_after_seconds,
        approval: step.approval,
        wait_for_ready_seconds: step.wait_for_ready_seconds,
        finish: step.finish,
        instances,
        counts: None,
        planned_job_sizes: None,
        not_launched: None,
    }
}
