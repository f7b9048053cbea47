//! A plan step's instances by account and region: those of the function's own stay in the step
//! (`ids`, `selector`, `critical`); those of each other account and region — named by ARN, by a
//! selector's `targets`, by a critical ARN — go to the step's group there ([`StepGroup`]), which
//! runs as its own child execution when the step starts.

use std::collections::HashMap;

use super::RequestError;
use super::launch::TargetIds;
use super::plan::{PlanRequest, PlanStep};
use super::rules::{Critical, invalid, within};
use super::selector::{MAX_TARGETS_PER_STEP, Selector};

/// Places (a step's accounts and regions, each step counted apart) a plan may reach in all.
pub const MAX_PLACES_PER_PLAN: usize = 100;
use crate::drs::Target;
use crate::drs::target::{looks_like_arn, parse_arn};

/// A step's instances in one other account and region.
#[derive(Debug, Clone, PartialEq)]
pub struct StepGroup {
    pub target: Target,
    pub ids: TargetIds,
    pub selector: Option<Selector>,
    pub critical: Critical,
}

impl PlanRequest {
    /// The other accounts and regions its steps reach, each once, in the order first named.
    pub fn targets(&self) -> Vec<&Target> {
        let mut targets: Vec<&Target> = Vec::new();
        for group in self.steps.iter().flat_map(|s| &s.elsewhere) {
            if !targets.contains(&&group.target) {
                targets.push(&group.target);
            }
        }
        targets
    }

    /// Each step's instances in the function's own account and region (ids, ARNs of it, a
    /// selector for it) stay in the step; those of other accounts and regions (their ARNs, a
    /// selector's `targets`, critical ARNs) go to the step's groups there ([`StepGroup`]).
    pub fn bind(&mut self, home: Option<&Target>) -> Result<(), RequestError> {
        for (index, step) in self.steps.iter_mut().enumerate() {
            let at = format!("steps[{index}] ({})", step.name);
            step.bind(home).map_err(|e| within(&at, e))?;
        }
        // Each place's part of a step rides in the run's summary (its `targets`): bounded, so
        // the summary stays within what a state holds.
        let places: usize = self
            .steps
            .iter()
            .map(|s| s.elsewhere.len() + usize::from(s.here()))
            .sum();
        if places > MAX_PLACES_PER_PLAN {
            return Err(invalid(
                "steps",
                &format!(
                    "reach {places} accounts and regions in all (each step counting its own); at most {MAX_PLACES_PER_PLAN}: split the plan"
                ),
            ));
        }
        // One instance of an account and region named by two steps.
        let mut owner: HashMap<(&Target, &str), &str> = HashMap::new();
        for step in &self.steps {
            for group in &step.elsewhere {
                for id in group
                    .ids
                    .recovery_instance_ids
                    .iter()
                    .chain(&group.ids.source_server_ids)
                {
                    if let Some(first) = owner.insert((&group.target, id), &step.name) {
                        return Err(RequestError::InTwoSteps {
                            id: format!("{id} in {}", group.target),
                            first: format!("step {first}"),
                            second: format!("step {}", step.name),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

impl PlanStep {
    fn bind(&mut self, home: Option<&Target>) -> Result<(), RequestError> {
        let remote_selector = self
            .selector
            .as_ref()
            .is_some_and(|s| s.targets.iter().any(|t| Some(t) != home));
        let critical_arns =
            matches!(&self.critical, Critical::Ids(ids) if ids.iter().any(|id| looks_like_arn(id)));
        if self.ids.by_arn.is_empty() && !remote_selector && !critical_arns {
            if let Some(selector) = &mut self.selector {
                selector.targets.clear();
            }
            return Ok(());
        }
        let home = home.ok_or(RequestError::NoHomeAccount)?;
        let mut groups: Vec<StepGroup> = self
            .ids
            .bind(home)?
            .into_iter()
            .map(|(target, ids)| StepGroup {
                target,
                ids,
                selector: None,
                critical: Critical::None,
            })
            .collect();
        let group = |groups: &mut Vec<StepGroup>, target: &Target| -> usize {
            match groups.iter().position(|g| g.target == *target) {
                Some(at) => at,
                None => {
                    groups.push(StepGroup {
                        target: target.clone(),
                        ids: TargetIds::default(),
                        selector: None,
                        critical: Critical::None,
                    });
                    groups.len() - 1
                }
            }
        };
        if let Some(selector) = self.selector.take() {
            let targets = if selector.targets.is_empty() {
                vec![home.clone()]
            } else {
                selector.targets.clone()
            };
            let bare = Selector {
                targets: Vec::new(),
                ..selector
            };
            for target in &targets {
                if target == home {
                    self.selector = Some(bare.clone());
                } else {
                    let at = group(&mut groups, target);
                    groups[at].selector = Some(bare.clone());
                }
            }
        }
        match &self.critical {
            Critical::All => groups.iter_mut().for_each(|g| g.critical = Critical::All),
            Critical::None => {}
            Critical::Ids(named) => {
                let mut here = Vec::new();
                for (position, id) in named.iter().enumerate() {
                    let Ok(arn) = parse_arn(id) else {
                        // A bare id is the function's own: the step must have instances there.
                        if !self.here() {
                            return Err(invalid(
                                &format!("critical[{position}] {id}"),
                                &format!(
                                    "is in the function's own account and region ({home}), where the step has no instances: name it by its ARN"
                                ),
                            ));
                        }
                        here.push(id.clone());
                        continue;
                    };
                    if arn.target == *home {
                        here.push(arn.id);
                        continue;
                    }
                    let Some(at) = groups.iter().position(|g| g.target == arn.target) else {
                        return Err(invalid(
                            &format!("critical[{position}]"),
                            &format!("names {}, where the step has no instances", arn.target),
                        ));
                    };
                    match &mut groups[at].critical {
                        Critical::Ids(ids) => ids.push(arn.id),
                        other => *other = Critical::Ids(vec![arn.id]),
                    }
                }
                self.critical = if here.is_empty() && !groups.is_empty() {
                    Critical::None
                } else {
                    Critical::Ids(here)
                };
            }
        }
        let places = groups.len() + usize::from(self.here());
        if places > MAX_TARGETS_PER_STEP {
            return Err(invalid(
                "the step",
                &format!("reaches {places} accounts and regions; at most {MAX_TARGETS_PER_STEP}"),
            ));
        }
        self.elsewhere = groups;
        Ok(())
    }

    /// Whether the step has instances (or a selector) in the function's own account and region.
    pub fn here(&self) -> bool {
        !self.ids.recovery_instance_ids.is_empty()
            || !self.ids.source_server_ids.is_empty()
            || !self.ids.malformed_ids.is_empty()
            || self.selector.is_some()
    }
}

/// A tracking call's critical ARNs, as ids of the call's account and region (`here`): an ARN of
/// another place cannot match any of its instances, and is refused rather than never matching.
pub fn bind_critical(critical: &mut Critical, here: Option<&Target>) -> Result<(), RequestError> {
    let Critical::Ids(ids) = critical else {
        return Ok(());
    };
    for (position, id) in ids.iter_mut().enumerate() {
        if let Ok(arn) = parse_arn(id) {
            if Some(&arn.target) != here {
                return Err(invalid(
                    &format!("critical[{position}]"),
                    &format!(
                        "names {}, not the account and region of this call",
                        arn.target
                    ),
                ));
            }
            *id = arn.id;
        }
    }
    Ok(())
}
