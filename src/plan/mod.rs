//! The plan stage: a failback plan checked against DRS before its first step starts — every
//! selector matches something, every id names a recovery instance (or a source server with one),
//! no instance is reached by two steps ([`resolve`]) — and answered with its steps normalized for
//! the state machine, which runs them in order (each step a launch, then tracking to its
//! verdict). A dry run adds, per step, what a launch would do now.

use serde::Serialize;
use tracing::info;

pub mod duration;
pub mod follow;
pub mod rehearsal;
pub mod resolve;
pub mod sum;

use resolve::{Resolved, resolve};

use crate::config::Config;
use crate::drs::reach::Unreachable;
use crate::drs::reads::DrsReads;
use crate::drs::{Drs, Target};
use crate::error::HandlerError;
use crate::launch::answer::NotLaunchedGroup;
use crate::launch::answer::Unreached;
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

/// One step as the state machine runs it: its rules with their defaults, how many instances it
/// has now, and its instances by account and region (`groups`: one child execution each when it
/// runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepPlan {
    pub name: String,
    pub max_failed: Option<u64>,
    pub wait_after_seconds: u64,
    pub approval: bool,
    pub wait_for_ready_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish: Option<Finishing>,
    /// Recovery instances the step reaches now, in all its accounts and regions (a plain
    /// request: the ids it names).
    pub instances: usize,
    /// Dry run: what a launch of the step would do now, its groups added up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    pub groups: Vec<GroupPlan>,
}

/// A step's instances in one account and region: its ids as given (a selector is resolved again
/// when the step starts), its critical ones there, how many it has now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPlan {
    /// Where: absent for the function's own when it does not know its account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
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
    pub instances: usize,
    /// It could not be reached when the plan was checked: its launch will skip its instances
    /// `TARGET_UNREACHABLE` unless it can be by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Unreached>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_job_sizes: Option<Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_launched: Option<Vec<NotLaunchedGroup>>,
}

/// Another account and region a plan reaches: DRS there, or why not.
pub type Remote<'r, 'a, D> = (Target, Result<&'r DrsReads<'a, D>, Unreachable>);

/// Checks a plan against DRS — in the function's own account and region (`reads`) and in each
/// other it reaches (`remote`) — and answers its steps; a dry run adds each group's launch plan.
pub async fn check<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    remote: &[Remote<'_, '_, D>],
    request: &PlanRequest,
) -> Result<PlanAnswer, HandlerError> {
    duration::check(request)?;
    check_finish(config, request)?;
    let home = crate::drs::target::home(config);
    // A plain request names its instances only: nothing to resolve before it launches (its
    // launch reports unknown ids as skipped, as it always has).
    let needs_drs = |steps: &[PlanStep]| {
        (!request.plain && steps.iter().any(PlanStep::here))
            || steps.iter().any(|s| s.selector.is_some())
    };
    let resolved_home = if needs_drs(&request.steps) {
        let all = reads
            .all_instances()
            .await
            .map_err(|failure| HandlerError::read_failed(&failure, "recovery instances"))?;
        Some(resolve(&request.steps, &all, config.max_request_instances)?)
    } else {
        None
    };
    let mut resolved_remote = Vec::with_capacity(remote.len());
    for (target, reads) in remote {
        let steps = steps_in(&request.steps, target);
        let resolved = match reads {
            Ok(reads) if needs_drs(&steps) => match reads.all_instances().await {
                Ok(all) => {
                    let resolved = resolve(&steps, &all, config.max_request_instances)
                        .map_err(|e| within(&format!("in {target}"), e))?;
                    Ok(Some(resolved))
                }
                // DRS there refuses the role's keys or is not set up (a region not enabled):
                // that place is planned unreachable, the plan not refused for it. A read that
                // failed for now fails the check, to be asked again.
                Err(failure) => {
                    match HandlerError::read_failed(
                        &failure,
                        &format!("recovery instances in {target}"),
                    ) {
                        unusable @ HandlerError::DrsUnusable { .. } => Err(Unreachable {
                            code: unusable.error_type().to_owned(),
                            message: unusable.to_string(),
                            transient: false,
                        }),
                        other => return Err(other),
                    }
                }
            },
            Ok(_) => Ok(None),
            Err(why) => Err(why.clone()),
        };
        resolved_remote.push((target, steps, resolved));
    }
    let mut steps = Vec::with_capacity(request.steps.len());
    for (index, step) in request.steps.iter().enumerate() {
        let mut plan = step_plan(step);
        if step.here() || (step.elsewhere.is_empty()) {
            let resolved = resolved_home.as_ref().map(|r| &r[index]);
            let mut group = group_plan(home.clone(), step, request.plain, resolved, None);
            if request.dry_run {
                Box::pin(dry_run(config, reads, request, step, resolved, &mut group)).await?;
            }
            plan.groups.push(group);
        }
        for (target, steps_there, resolved) in &resolved_remote {
            let there = &steps_there[index];
            if !there.here() {
                continue;
            }
            let (resolved, unreachable) = match resolved {
                Ok(resolved) => (resolved.as_ref().map(|r| &r[index]), None),
                Err(why) => (None, Some(why)),
            };
            let mut group =
                group_plan(Some((*target).clone()), there, false, resolved, unreachable);
            let reads = remote.iter().find(|(t, _)| t == *target).map(|(_, r)| r);
            if let (true, Some(Ok(reads))) = (request.dry_run, reads) {
                Box::pin(dry_run(config, reads, request, there, resolved, &mut group)).await?;
            }
            plan.groups.push(group);
        }
        plan.instances = plan.groups.iter().map(|g| g.instances).sum();
        if request.dry_run {
            let mut counts = Counts::default();
            for group in plan.groups.iter().filter_map(|g| g.counts) {
                counts.add_all(group);
            }
            plan.counts = Some(counts);
        }
        steps.push(plan);
    }
    info!(
        steps = steps.len(),
        instances = steps.iter().map(|s| s.instances).sum::<usize>(),
        targets = remote.len() + 1,
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

/// The plan's steps as seen from one other account and region: each step's group there (its
/// ids, selector and critical ones), or nothing.
fn steps_in(steps: &[PlanStep], target: &Target) -> Vec<PlanStep> {
    steps
        .iter()
        .map(|step| {
            let group = step.elsewhere.iter().find(|g| g.target == *target);
            PlanStep {
                name: step.name.clone(),
                ids: Ids {
                    recovery_instance_ids: group
                        .map(|g| g.ids.recovery_instance_ids.clone())
                        .unwrap_or_default(),
                    source_server_ids: group
                        .map(|g| g.ids.source_server_ids.clone())
                        .unwrap_or_default(),
                    ..Ids::default()
                },
                selector: group.and_then(|g| g.selector.clone()),
                critical: group.map(|g| g.critical.clone()).unwrap_or_default(),
                wait_for_ready_seconds: step.wait_for_ready_seconds,
                ..PlanStep::default()
            }
        })
        .collect()
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
    // Finishing reads and acts in the function's own account and region only, for now.
    let elsewhere = |step: &PlanStep| !step.elsewhere.is_empty();
    if request.finish.is_some() && request.steps.iter().any(elsewhere) {
        return Err(invalid(
            "finish",
            "acts in the function's own account and region only: a plan whose steps reach others cannot finish",
        ));
    }
    for (index, step) in request.steps.iter().enumerate() {
        if let Some(error) = step.finish.and_then(refusal) {
            return Err(within(&label(&request.steps, index), error));
        }
        if step.finish.is_some() && elsewhere(step) {
            return Err(within(
                &label(&request.steps, index),
                invalid(
                    "finish",
                    "acts in the function's own account and region only: this step reaches others",
                ),
            ));
        }
    }
    Ok(())
}

/// A group's launch as it would go now, the resolved ids named outright.
async fn dry_run<D: Drs>(
    config: &Config,
    reads: &DrsReads<'_, D>,
    request: &PlanRequest,
    step: &PlanStep,
    resolved: Option<&Resolved>,
    group: &mut GroupPlan,
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
        target: group.target.clone(),
        by_arn: Vec::new(),
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
    group.instances = answer.requested;
    group.counts = Some(answer.counts);
    group.planned_job_sizes = answer.planned_job_sizes;
    // A dry run's answer is the execution's output: what would be skipped or rejected, not every
    // id again (the group's lists and the DRY_RUN group would repeat them, past 256 KB for the
    // largest plan).
    let dry_run = DeferReason::DryRun.name();
    group.not_launched = Some(
        answer
            .not_launched
            .into_iter()
            .filter(|g| g.reason != dry_run)
            .collect(),
    );
    group.recovery_instance_ids = None;
    group.source_server_ids = None;
    Ok(())
}

fn step_plan(step: &PlanStep) -> StepPlan {
    StepPlan {
        name: step.name.clone(),
        max_failed: step.max_failed,
        wait_after_seconds: step.wait_after_seconds,
        approval: step.approval,
        wait_for_ready_seconds: step.wait_for_ready_seconds,
        finish: step.finish,
        instances: 0,
        counts: None,
        groups: Vec::new(),
    }
}

/// A step's group in one account and region (`step` holds its ids, selector and critical
/// ones there).
fn group_plan(
    target: Option<Target>,
    step: &PlanStep,
    plain: bool,
    resolved: Option<&Resolved>,
    unreachable: Option<&Unreachable>,
) -> GroupPlan {
    let listed = |ids: &[String]| (!ids.is_empty()).then(|| ids.to_vec());
    // A plain request's malformed ids travel with the step: its launch rejects them, so each
    // still gets its outcome.
    let mut recovery_instance_ids = step.ids.recovery_instance_ids.clone();
    if plain {
        recovery_instance_ids.extend(step.ids.malformed_ids.iter().cloned());
    }
    GroupPlan {
        target,
        recovery_instance_ids: listed(&recovery_instance_ids),
        source_server_ids: listed(&step.ids.source_server_ids),
        selector: step.selector.clone(),
        critical: resolved.map_or_else(|| step.critical.clone(), |r| r.critical.clone()),
        instances: resolved.map_or(
            step.ids
                .entries
                .max(step.ids.recovery_instance_ids.len() + step.ids.source_server_ids.len()),
            |r| r.ids.len(),
        ),
        unreachable: unreachable.map(|why| Unreached {
            code: why.code.clone(),
            message: why.message.clone(),
        }),
        counts: None,
        planned_job_sizes: None,
        not_launched: None,
    }
}
