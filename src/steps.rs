//! The plan action: a failback plan checked against DRS before its first step starts — every
//! selector matches something, every id names a recovery instance (or a source server with one),
//! no instance is reached by two steps — and answered with its steps normalized for the state
//! machine, which runs them in order. A dry run adds, per step, what a launch would do now.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tokio::time::Instant;
use tracing::info;

use crate::drs::{Drs, RecoveryInstance};
use crate::error::HandlerError;
use crate::metrics::CallStats;
use crate::outcome::{Counts, DeferReason, NotLaunchedGroup, defer_reason_name};
use crate::preflight::matching;
use crate::publish::EventPublisher;
use crate::request::{
    Critical, Ids, PlanRequest, PlanStep, RequestError, Selector, invalid, label, within,
};
use crate::retry::RetryPolicy;
use crate::run::Failback;

/// The answer to a plan request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanAnswer {
    pub run_id: String,
    pub dry_run: bool,
    pub steps: Vec<StepPlan>,
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

/// A step's recovery instances as DRS shows them now, and its critical instances by both ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub ids: Vec<String>,
    /// The critical ids as given, plus the recovery instances of critical source servers: an
    /// instance never launched is reported by its recovery instance id alone.
    pub critical: Critical,
}

/// Every step's recovery instances, resolved against the account's instances: unknown ids,
/// selectors matching nothing, critical ids outside the step, instances reached by two steps
/// and more instances than a request may hold are refused, naming the step and the field.
pub fn resolve(
    steps: &[PlanStep],
    all: &[RecoveryInstance],
    max_instances: usize,
) -> Result<Vec<Resolved>, RequestError> {
    let known: HashSet<&str> = all
        .iter()
        .map(|i| i.recovery_instance_id.as_str())
        .collect();
    let mut by_source: HashMap<&str, Vec<&RecoveryInstance>> = HashMap::new();
    for instance in all {
        if let Some(source) = &instance.source_server_id {
            by_source.entry(source).or_default().push(instance);
        }
    }
    // Which step reached each instance first, and through which field.
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut resolved = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let at = label(steps, index);
        let mut ids: Vec<String> = Vec::new();
        let mut through: HashMap<String, &str> = HashMap::new();
        for (position, id) in step.ids.recovery_instance_ids.iter().enumerate() {
            if !known.contains(id.as_str()) {
                return Err(within(
                    &at,
                    invalid(
                        &format!("recoveryInstanceIDs[{position}] {id}"),
                        "is not a recovery instance in this account and Region",
                    ),
                ));
            }
            ids.push(id.clone());
            through.entry(id.clone()).or_insert("recoveryInstanceIDs");
        }
        for (position, source) in step.ids.source_server_ids.iter().enumerate() {
            let Some(instances) = by_source.get(source.as_str()) else {
                return Err(within(
                    &at,
                    invalid(
                        &format!("sourceServerIDs[{position}] {source}"),
                        "has no recovery instance in this account and Region",
                    ),
                ));
            };
            for instance in instances {
                ids.push(instance.recovery_instance_id.clone());
                through
                    .entry(instance.recovery_instance_id.clone())
                    .or_insert("sourceServerIDs");
            }
        }
        if let Some(selector) = &step.selector {
            let matched = matching(all, selector);
            if matched.is_empty() {
                return Err(within(
                    &at,
                    invalid("selector", "matches no recovery instance"),
                ));
            }
            for id in matched {
                through.entry(id.clone()).or_insert("selector");
                ids.push(id);
            }
        }
        let mut seen = HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        if ids.len() > max_instances {
            return Err(within(
                &at,
                RequestError::TooManyInstances {
                    count: ids.len(),
                    max: max_instances,
                },
            ));
        }
        let mut critical = step.critical.clone();
        if let Critical::Ids(named) = &step.critical {
            let of_step: Vec<&RecoveryInstance> = all
                .iter()
                .filter(|i| seen.contains(&i.recovery_instance_id))
                .collect();
            let mut expanded = named.clone();
            for (position, id) in named.iter().enumerate() {
                let by_source: Vec<&str> = of_step
                    .iter()
                    .filter(|i| i.source_server_id.as_deref() == Some(id.as_str()))
                    .map(|i| i.recovery_instance_id.as_str())
                    .collect();
                if !seen.contains(id) && by_source.is_empty() {
                    return Err(within(
                        &at,
                        invalid(
                            &format!("critical[{position}] {id}"),
                            "is not one of the step's instances",
                        ),
                    ));
                }
                expanded.extend(
                    by_source
                        .into_iter()
                        .filter(|i| !named.iter().any(|n| n == i))
                        .map(str::to_owned),
                );
            }
            critical = Critical::Ids(expanded);
        }
        for id in &ids {
            let here = format!("{at} {}", through.get(id).copied().unwrap_or_default());
            if let Some(first) = owner.get(id) {
                return Err(RequestError::InTwoSteps {
                    id: id.clone(),
                    first: first.clone(),
                    second: here,
                });
            }
            owner.insert(id.clone(), here);
        }
        resolved.push(Resolved { ids, critical });
    }
    let total: usize = resolved.iter().map(|r| r.ids.len()).sum();
    if total > max_instances {
        return Err(RequestError::PlanTooLarge {
            count: total,
            max: max_instances,
        });
    }
    Ok(resolved)
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    /// Checks a plan against DRS and answers its steps; a dry run adds each step's launch plan.
    pub async fn plan(
        &self,
        request: &PlanRequest,
        deadline: Instant,
        stats: &CallStats,
    ) -> Result<PlanAnswer, HandlerError> {
        // A plain request names its instances only: nothing to resolve before it launches (its
        // launch reports unknown ids as skipped, as it always has).
        let needs_drs = !request.plain || request.steps.iter().any(|s| s.selector.is_some());
        let resolved = if needs_drs {
            let policy = RetryPolicy::from_config(&self.config);
            let reads = self.reads(&policy, deadline, stats);
            let all = reads
                .all_instances()
                .await
                .map_err(|failure| failure.into_error("recovery instances"))?;
            Some(resolve(
                &request.steps,
                &all,
                self.config.max_request_instances,
            )?)
        } else {
            None
        };
        let mut steps = Vec::with_capacity(request.steps.len());
        for (index, step) in request.steps.iter().enumerate() {
            let resolved = resolved.as_ref().map(|r| &r[index]);
            let ids = resolved.map(|r| &r.ids);
            let mut plan = step_plan(step, request.plain, ids.map_or(step.ids.entries, Vec::len));
            if let Some(resolved) = resolved {
                plan.critical = resolved.critical.clone();
            }
            if request.dry_run {
                // Each step's launch as it would go now, the resolved ids named outright.
                let launch_ids = match ids {
                    Some(ids) if !request.plain => Ids {
                        recovery_instance_ids: ids.clone(),
                        ..Ids::default()
                    },
                    _ => step.ids.clone(),
                };
                let mut launch = request.launch_of(step, launch_ids, true);
                if request.plain {
                    launch.selector = step.selector.clone();
                }
                let answer = Box::pin(self.launch_answer(&launch, deadline, stats)).await?;
                plan.instances = answer.requested;
                plan.counts = Some(answer.counts);
                plan.planned_job_sizes = answer.planned_job_sizes;
                // A dry run's answer is the execution's output: what would be skipped or
                // rejected, not every id again (the step's lists and the DRY_RUN group would
                // repeat them, past 256 KB for the largest plan).
                let dry_run = defer_reason_name(DeferReason::DryRun);
                plan.not_launched = Some(
                    answer
                        .not_launched
                        .into_iter()
                        .filter(|g| g.reason != dry_run)
                        .collect(),
                );
                plan.recovery_instance_ids = None;
                plan.source_server_ids = None;
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
        })
    }
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
        instances,
        counts: None,
        planned_job_sizes: None,
        not_launched: None,
    }
}
