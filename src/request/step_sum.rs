//! The step sum request: `{"action": "stepSum", "runId", "step", "maxFailed"?, "groups": [...]}`.
//! A step whose instances are in several accounts and regions runs as one child execution per
//! account and region; each ends with its group's summary (`stepResult`, its verdict without
//! `maxFailed`). The plan hands them all back here, and the function answers the step's summary
//! ([`crate::plan::sum`]). Nothing is read from DRS: the answer is a decision only.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::rules::parse_step_name;
use super::selector::MAX_TARGETS_PER_STEP;
use super::{RequestError, deserialize, invalid, required_run_id};
use crate::drs::Target;

#[derive(Debug, Clone, PartialEq)]
pub struct StepSumRequest {
    pub run_id: String,
    pub step: String,
    pub max_failed: Option<u64>,
    pub groups: Vec<GroupResult>,
}

/// One account and region's summary of the step, as its step execution's last call made it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResult {
    #[serde(default)]
    pub target: Option<Target>,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub stopped_by: Option<String>,
    pub complete: bool,
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub rounds: u64,
    #[serde(default)]
    pub tracking_calls: u64,
    pub verdict: GroupVerdict,
    #[serde(default)]
    pub error: Option<Value>,
}

/// The verdict of one account and region, as its last call answered it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupVerdict {
    pub failed: u64,
    #[serde(default)]
    pub critical_failed: Vec<String>,
    #[serde(default)]
    pub critical_failed_count: u64,
    #[serde(default)]
    pub unfinished: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    #[serde(rename = "action")]
    _action: Option<IgnoredAny>,
    run_id: Option<String>,
    step: Option<String>,
    max_failed: Option<u64>,
    groups: Option<Vec<Value>>,
}

pub(super) fn parse_step_sum(body: &Value) -> Result<StepSumRequest, RequestError> {
    let body: Body = deserialize(body)?;
    let run_id = required_run_id(body.run_id)?;
    let step = parse_step_name("step", body.step)?.ok_or(RequestError::Missing("step"))?;
    let raw = body.groups.ok_or(RequestError::Missing("groups"))?;
    if raw.is_empty() {
        return Err(invalid("groups", "is empty: a step has at least one place"));
    }
    if raw.len() > MAX_TARGETS_PER_STEP {
        return Err(RequestError::TooMany {
            field: "groups",
            count: raw.len(),
            max: MAX_TARGETS_PER_STEP,
        });
    }
    let groups = raw
        .iter()
        .enumerate()
        .map(|(index, group)| {
            // A group's step execution answers `{"stepResult": ...}`; its target comes with it.
            let result = group.get("stepResult").unwrap_or(group);
            let mut parsed: GroupResult =
                super::deserialize_at(result, &format!("groups[{index}]"), &["groups"])?;
            if parsed.target.is_none()
                && let Some(target) = group.get("target")
            {
                parsed.target = Some(super::deserialize_at(
                    target,
                    &format!("groups[{index}].target"),
                    &["groups", "target"],
                )?);
            }
            if let Some(problem) = parsed.target.as_ref().and_then(Target::problem) {
                return Err(invalid(&format!("groups[{index}].target"), &problem));
            }
            Ok(parsed)
        })
        .collect::<Result<_, RequestError>>()?;
    Ok(StepSumRequest {
        run_id,
        step,
        max_failed: body.max_failed,
        groups,
    })
}
