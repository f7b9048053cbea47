//! The launch request: `recoveryInstanceIDs` and/or `sourceServerIDs` and/or a tag `selector`,
//! `tags`, `runId`, `dryRun`, and the plan `step` it belongs to.

use std::collections::{BTreeMap, HashSet};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::plan::MAX_PLAN_STEPS;
use super::rules::{parse_step_name, parse_wait_for_ready, refuse_malformed, within};
use super::selector::{Selector, parse_selector};
use super::step_loop::StepLoop;
use super::tags::parse_tags;
use super::{MALFORMED_ECHO_MAX_BYTES, RequestError, deserialize, is_valid_run_id, truncate_utf8};
use crate::drs::Tags;
use crate::drs::ids::{is_valid_instance_id, is_valid_source_server_id};
use crate::drs::target::{ArnKind, NamedByArn, Target, looks_like_arn, parse_arn};

#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRequest {
    pub run_id: String,
    pub dry_run: bool,
    pub tags: Tags,
    /// The plan step this launch is part of, when it is one.
    pub step: Option<String>,
    /// The account and region this call launches in; the function's own when unsaid.
    pub target: Option<Target>,
    /// Instances named by their ARNs: [`LaunchRequest::bind`] takes those of the call's target
    /// into the id lists and refuses the others.
    pub by_arn: Vec<NamedByArn>,
    /// Recovery instances chosen by their tags, resolved when the launch starts.
    pub selector: Option<Selector>,
    /// Well-formed ids, duplicates removed, in the order first given.
    pub recovery_instance_ids: Vec<String>,
    /// Well-formed source server ids, duplicates removed: resolved to their recovery instances.
    pub source_server_ids: Vec<String>,
    /// Ids that can never be valid (in either list); they are reported `rejected` and never
    /// sent to DRS. Echoed at most `MALFORMED_ECHO_MAX_BYTES` long.
    pub malformed_ids: Vec<String>,
    pub duplicates_collapsed: usize,
    /// The plan's other steps and the instances each names: this step's selector leaves them to
    /// the step the plan's author put them in.
    pub other_steps: Vec<OtherStep>,
    /// Where the step's loop stands: given, the answer says what comes next.
    pub step_loop: Option<StepLoop>,
    /// How long the step waits for its instances on their way to become ready (0: not at all).
    pub wait_for_ready_seconds: u64,
    /// The instances the step's last round found on their way, by the state it announced each
    /// in: one whose state is new is announced again.
    pub waiting: Vec<Waiting>,
}

/// `waiting[]`: instances a round announced waiting in `state` (the answer's `REPLICATING` group,
/// its `code` as `state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiting {
    pub state: String,
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
}

/// Another step of the plan and the instances it names explicitly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherStep {
    pub step: String,
    #[serde(rename = "recoveryInstanceIDs", default)]
    pub recovery_instance_ids: Vec<String>,
    #[serde(rename = "sourceServerIDs", default)]
    pub source_server_ids: Vec<String>,
}

impl LaunchRequest {
    /// Distinct ids named by the request, well-formed or not: each gets exactly one outcome.
    pub fn distinct_ids(&self) -> usize {
        self.recovery_instance_ids.len() + self.source_server_ids.len() + self.malformed_ids.len()
    }

    /// Where this call launches: its `target`, else the function's own account and region.
    pub fn here<'a>(&'a self, home: Option<&'a Target>) -> Option<&'a Target> {
        self.target.as_ref().or(home)
    }

    /// The instances named by ARN, as ids of the call's account and region (`home` when the
    /// call names none). One call launches in one place: an ARN of another is refused, as is an
    /// instance named both by its id and by its ARN.
    pub fn bind(&mut self, home: Option<&Target>) -> Result<(), RequestError> {
        if self.by_arn.is_empty() {
            return Ok(());
        }
        let here = self
            .here(home)
            .cloned()
            .ok_or(RequestError::NoHomeAccount)?;
        let mut ids = Ids {
            recovery_instance_ids: std::mem::take(&mut self.recovery_instance_ids),
            source_server_ids: std::mem::take(&mut self.source_server_ids),
            by_arn: std::mem::take(&mut self.by_arn),
            ..Ids::default()
        };
        let elsewhere = ids.bind(&here)?;
        if let Some((target, _)) = elsewhere.into_iter().next() {
            return Err(RequestError::Elsewhere {
                target: target.to_string(),
                here: here.to_string(),
            });
        }
        self.recovery_instance_ids = ids.recovery_instance_ids;
        self.source_server_ids = ids.source_server_ids;
        Ok(())
    }
}

/// The instances a request (or a plan's step) names: both id lists, checked, de-duplicated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ids {
    pub recovery_instance_ids: Vec<String>,
    pub source_server_ids: Vec<String>,
    pub malformed_ids: Vec<String>,
    pub duplicates_collapsed: usize,
    /// Entries in both lists as given, duplicates included.
    pub entries: usize,
    /// Well-formed ARNs, each once, in the order first given: where each instance is is known
    /// only once the call's own account and region are ([`Ids::bind`]).
    pub by_arn: Vec<NamedByArn>,
}

/// The ids of one account and region that a request named by ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetIds {
    pub recovery_instance_ids: Vec<String>,
    pub source_server_ids: Vec<String>,
}

impl Ids {
    /// Both lists, each id kept once, in the order first given. More than `max` entries are
    /// refused before any id is looked at. An id that can never be valid is kept apart
    /// (`malformed_ids`: the launch rejects it) or, in a plan's step (`strict`), refused.
    pub(super) fn collect(
        instances: Option<Vec<String>>,
        sources: Option<Vec<String>>,
        max: usize,
        strict: bool,
    ) -> Result<Ids, RequestError> {
        let (instances, sources) = (instances.unwrap_or_default(), sources.unwrap_or_default());
        let entries = instances.len() + sources.len();
        if entries > max {
            return Err(RequestError::TooManyInstances {
                count: entries,
                max,
            });
        }
        if strict {
            refuse_malformed("recoveryInstanceIDs", &instances, is_valid_instance_or_arn)?;
            refuse_malformed("sourceServerIDs", &sources, is_valid_source_or_arn)?;
        }
        let mut ids = Ids {
            entries,
            ..Ids::default()
        };
        let mut seen = HashSet::with_capacity(entries);
        ids.recovery_instance_ids = ids.keep(instances, is_valid_instance_id, &mut seen);
        ids.source_server_ids = ids.keep(sources, is_valid_source_server_id, &mut seen);
        Ok(ids)
    }

    /// The well-formed ids of `list` not `seen` before; a repeat is counted, a malformed id is
    /// kept apart, an ARN (of a recovery instance or a source server, whichever list it is in)
    /// goes to `by_arn`.
    fn keep(
        &mut self,
        list: Vec<String>,
        valid: fn(&str) -> bool,
        seen: &mut HashSet<String>,
    ) -> Vec<String> {
        let mut kept = Vec::with_capacity(list.len());
        for id in list {
            if !seen.insert(id.clone()) {
                self.duplicates_collapsed += 1;
            } else if valid(&id) {
                kept.push(id);
            } else if let Some(named) = parse_arn(&id).ok().filter(|n| valid(&n.id)) {
                self.by_arn.push(named);
            } else {
                self.malformed_ids
                    .push(truncate_utf8(&id, MALFORMED_ECHO_MAX_BYTES));
            }
        }
        kept
    }

    /// The ARNs of `here` moved into the id lists; the others returned by account and region.
    /// An instance named by its id and by its ARN (or by two ARNs) is refused: one of the two
    /// was probably meant for another account or region.
    pub fn bind(&mut self, here: &Target) -> Result<Vec<(Target, TargetIds)>, RequestError> {
        let mut named: HashSet<(Target, String)> = self
            .recovery_instance_ids
            .iter()
            .chain(&self.source_server_ids)
            .map(|id| (here.clone(), id.clone()))
            .collect();
        let mut elsewhere: Vec<(Target, TargetIds)> = Vec::new();
        for arn in std::mem::take(&mut self.by_arn) {
            if !named.insert((arn.target.clone(), arn.id.clone())) {
                return Err(RequestError::NamedTwice {
                    id: arn.id,
                    target: arn.target.to_string(),
                });
            }
            let (instances, sources) = if arn.target == *here {
                (&mut self.recovery_instance_ids, &mut self.source_server_ids)
            } else {
                let index = match elsewhere.iter().position(|(t, _)| *t == arn.target) {
                    Some(index) => index,
                    None => {
                        elsewhere.push((arn.target.clone(), TargetIds::default()));
                        elsewhere.len() - 1
                    }
                };
                let ids = &mut elsewhere[index].1;
                (&mut ids.recovery_instance_ids, &mut ids.source_server_ids)
            };
            match arn.kind {
                ArnKind::RecoveryInstance => instances.push(arn.id),
                ArnKind::SourceServer => sources.push(arn.id),
            }
        }
        Ok(elsewhere)
    }
}

fn is_valid_instance_or_arn(id: &str) -> bool {
    is_valid_instance_id(id)
        || looks_like_arn(id) && parse_arn(id).is_ok_and(|n| n.kind == ArnKind::RecoveryInstance)
}

fn is_valid_source_or_arn(id: &str) -> bool {
    is_valid_source_server_id(id)
        || looks_like_arn(id) && parse_arn(id).is_ok_and(|n| n.kind == ArnKind::SourceServer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LaunchBody {
    #[serde(rename = "action")]
    _action: Option<IgnoredAny>,
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Option<Vec<String>>,
    #[serde(rename = "sourceServerIDs")]
    source_server_ids: Option<Vec<String>>,
    selector: Option<Value>,
    step: Option<String>,
    target: Option<Target>,
    tags: Option<BTreeMap<String, String>>,
    run_id: Option<String>,
    dry_run: Option<bool>,
    other_steps: Option<Vec<OtherStep>>,
    #[serde(rename = "loop")]
    step_loop: Option<StepLoop>,
    wait_for_ready_seconds: Option<u64>,
    waiting: Option<Vec<Waiting>>,
}

pub(super) fn parse_body(
    body: &Value,
    envelope_id: Option<String>,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<LaunchRequest, RequestError> {
    if body.get("steps").is_some() {
        return Err(RequestError::PlanNotALaunch);
    }
    let body: LaunchBody = deserialize(body)?;
    let (instances, sources) = (body.recovery_instance_ids, body.source_server_ids);
    let given = instances.is_some() || sources.is_some();
    let ids = Ids::collect(instances, sources, max_instances, false)?;
    let selector = parse_selector(body.selector)?;
    if !given && selector.is_none() {
        return Err(RequestError::MissingInstances);
    }
    if ids.entries == 0 && selector.is_none() {
        return Err(RequestError::NoInstances);
    }
    let other_steps = check_other_steps(body.other_steps.unwrap_or_default(), max_instances)?;
    Ok(LaunchRequest {
        step: parse_step_name("step", body.step)?,
        target: parse_target(body.target)?,
        by_arn: ids.by_arn,
        tags: parse_tags(body.tags)?,
        run_id: parse_run_id(body.run_id, envelope_id, new_run_id)?,
        dry_run: body.dry_run.unwrap_or(false),
        selector,
        recovery_instance_ids: ids.recovery_instance_ids,
        source_server_ids: ids.source_server_ids,
        malformed_ids: ids.malformed_ids,
        duplicates_collapsed: ids.duplicates_collapsed,
        other_steps,
        step_loop: body.step_loop,
        wait_for_ready_seconds: parse_wait_for_ready(body.wait_for_ready_seconds)?,
        waiting: check_waiting(body.waiting.unwrap_or_default(), max_instances)?,
    })
}

/// `target`, checked: an account id and a region.
pub(super) fn parse_target(target: Option<Target>) -> Result<Option<Target>, RequestError> {
    match target {
        Some(t) => match t.problem() {
            Some(problem) => Err(RequestError::Invalid {
                field: "target".into(),
                problem,
            }),
            None => Ok(Some(t)),
        },
        None => Ok(None),
    }
}

/// `waiting` as the state machine passes it back: well-formed ids, within the request limit.
fn check_waiting(groups: Vec<Waiting>, max_instances: usize) -> Result<Vec<Waiting>, RequestError> {
    let count: usize = groups.iter().map(|g| g.recovery_instance_ids.len()).sum();
    if count > max_instances {
        return Err(RequestError::TooMany {
            field: "waiting",
            count,
            max: max_instances,
        });
    }
    for (index, group) in groups.iter().enumerate() {
        refuse_malformed(
            &format!("waiting[{index}].recoveryInstanceIDs"),
            &group.recovery_instance_ids,
            is_valid_instance_id,
        )?;
    }
    Ok(groups)
}

/// `otherSteps` as the state machine passes it from the checked plan: at most the plan's steps,
/// each with a step's name and well-formed ids within the request limit.
fn check_other_steps(
    steps: Vec<OtherStep>,
    max_instances: usize,
) -> Result<Vec<OtherStep>, RequestError> {
    if steps.len() > MAX_PLAN_STEPS {
        return Err(RequestError::TooMany {
            field: "otherSteps",
            count: steps.len(),
            max: MAX_PLAN_STEPS,
        });
    }
    for (index, other) in steps.iter().enumerate() {
        let at = format!("otherSteps[{index}]");
        parse_step_name("otherSteps[].step", Some(other.step.clone()))
            .map_err(|e| within(&at, e))?;
        let entries = other.recovery_instance_ids.len() + other.source_server_ids.len();
        if entries > max_instances {
            return Err(within(
                &at,
                RequestError::TooManyInstances {
                    count: entries,
                    max: max_instances,
                },
            ));
        }
        refuse_malformed(
            &format!("{at}.recoveryInstanceIDs"),
            &other.recovery_instance_ids,
            is_valid_instance_id,
        )?;
        refuse_malformed(
            &format!("{at}.sourceServerIDs"),
            &other.source_server_ids,
            is_valid_source_server_id,
        )?;
    }
    Ok(steps)
}

/// The run id: the request's, else the EventBridge event's id, else a new one.
pub(super) fn parse_run_id(
    given: Option<String>,
    envelope_id: Option<String>,
    new_run_id: impl FnOnce() -> String,
) -> Result<String, RequestError> {
    match given {
        None => Ok(envelope_id
            .filter(|id| is_valid_run_id(id))
            .unwrap_or_else(new_run_id)),
        Some(run_id) if is_valid_run_id(&run_id) => Ok(run_id),
        Some(_) => Err(RequestError::BadRunId),
    }
}
