//! A plan's steps resolved against the account's recovery instances: every id named must be one
//! (or a source server with one), every selector must match something, every critical id must be
//! one of its step's instances, no instance may be reached by two steps, and no step (nor the
//! plan) may reach more instances than a request may hold. Each refusal names the step and the
//! field.

use std::collections::{HashMap, HashSet};

use crate::drs::RecoveryInstance;
use crate::request::{Critical, PlanStep, RequestError, invalid, label, within};

/// A step's recovery instances as DRS shows them now, and its critical instances by both ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub ids: Vec<String>,
    /// The critical ids as given, plus the recovery instances of critical source servers: an
    /// instance never launched is reported by its recovery instance id alone.
    pub critical: Critical,
}

/// The account's recovery instances, by id and by source server.
struct Account<'a> {
    all: &'a [RecoveryInstance],
    known: HashSet<&'a str>,
    by_source: HashMap<&'a str, Vec<&'a RecoveryInstance>>,
}

/// A step's instances in the order reached, each with the field it was first reached through.
#[derive(Default)]
struct Reached<'s> {
    ids: Vec<String>,
    through: HashMap<String, &'s str>,
}

impl<'s> Reached<'s> {
    fn add(&mut self, id: String, field: &'s str) {
        self.through.entry(id.clone()).or_insert(field);
        self.ids.push(id);
    }
}

/// Every step's recovery instances, resolved against `all` (the account's instances).
pub fn resolve(
    steps: &[PlanStep],
    all: &[RecoveryInstance],
    max_instances: usize,
) -> Result<Vec<Resolved>, RequestError> {
    let mut by_source: HashMap<&str, Vec<&RecoveryInstance>> = HashMap::new();
    for instance in all {
        if let Some(source) = &instance.source_server_id {
            by_source.entry(source).or_default().push(instance);
        }
    }
    let account = Account {
        all,
        known: all
            .iter()
            .map(|i| i.recovery_instance_id.as_str())
            .collect(),
        by_source,
    };
    // Which step reached each instance first, and through which field.
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut resolved = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let at = label(steps, index);
        let reached = reach(&account, step).map_err(|error| within(&at, error))?;
        let mut ids = reached.ids;
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
        let critical = critical(&account, step, &seen).map_err(|error| within(&at, error))?;
        for id in &ids {
            let here = format!(
                "{at} {}",
                reached.through.get(id).copied().unwrap_or_default()
            );
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

/// The instances a step reaches: those it names, those of the source servers it names, those
/// its selector matches — in that order, duplicates kept (the caller drops them).
fn reach<'s>(account: &Account<'_>, step: &'s PlanStep) -> Result<Reached<'s>, RequestError> {
    let mut reached = Reached::default();
    for (position, id) in step.ids.recovery_instance_ids.iter().enumerate() {
        if !account.known.contains(id.as_str()) {
            return Err(invalid(
                &format!("recoveryInstanceIDs[{position}] {id}"),
                "is not a recovery instance in this account and Region",
            ));
        }
        reached.add(id.clone(), "recoveryInstanceIDs");
    }
    for (position, source) in step.ids.source_server_ids.iter().enumerate() {
        let Some(instances) = account.by_source.get(source.as_str()) else {
            return Err(invalid(
                &format!("sourceServerIDs[{position}] {source}"),
                "has no recovery instance in this account and Region",
            ));
        };
        for instance in instances {
            reached.add(instance.recovery_instance_id.clone(), "sourceServerIDs");
        }
    }
    if let Some(selector) = &step.selector {
        let matched = selector.tags.carried_by(account.all);
        if matched.is_empty() {
            return Err(invalid("selector", "matches no recovery instance"));
        }
        for id in matched {
            reached.add(id, "selector");
        }
    }
    Ok(reached)
}

/// The step's critical instances by both ids: each critical id must be one of the step's
/// instances, or the source server of one (whose recovery instances are added).
fn critical(
    account: &Account<'_>,
    step: &PlanStep,
    of_step: &HashSet<String>,
) -> Result<Critical, RequestError> {
    let Critical::Ids(named) = &step.critical else {
        return Ok(step.critical.clone());
    };
    let instances: Vec<&RecoveryInstance> = account
        .all
        .iter()
        .filter(|i| of_step.contains(&i.recovery_instance_id))
        .collect();
    let mut expanded = named.clone();
    for (position, id) in named.iter().enumerate() {
        let by_source: Vec<&str> = instances
            .iter()
            .filter(|i| i.source_server_id.as_deref() == Some(id.as_str()))
            .map(|i| i.recovery_instance_id.as_str())
            .collect();
        if !of_step.contains(id) && by_source.is_empty() {
            return Err(invalid(
                &format!("critical[{position}] {id}"),
                "is not one of the step's instances",
            ));
        }
        expanded.extend(
            by_source
                .into_iter()
                .filter(|i| !named.iter().any(|n| n == i))
                .map(str::to_owned),
        );
    }
    Ok(Critical::Ids(expanded))
}
