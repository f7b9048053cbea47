//! A plan step's tag `selector`: `{"tags": {"Tier": "app"}}` chooses the recovery instances that
//! carry every tag given, with the same value. Resolved when the step starts (DRS has no tag
//! filter: the function lists the account's instances). Tag values are never logged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rules::invalid;
use super::{RequestError, deserialize_at, truncate_utf8, wrong};
use crate::drs::tags::TAG_MAX_LEN;
use crate::drs::{Tags, Target};

/// AWS resources carry at most 50 tags.
const SELECTOR_MAX_TAGS: usize = 50;

/// Recovery instances chosen by their own tags: every tag given, with the same value — in each
/// account and region of `targets` (the function's own when none is given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selector {
    #[serde(serialize_with = "crate::drs::tags::with_values")]
    pub tags: Tags,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// The accounts and regions one step may reach: each is a child execution of the step's fan-out.
pub const MAX_TARGETS_PER_STEP: usize = 20;

/// A selector as sent: its tags, every value a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorBody {
    tags: Option<BTreeMap<String, String>>,
    targets: Option<Vec<Target>>,
}

/// A selector's tags: any tag a recovery instance may carry (AWS's own `aws:` tags included), at
/// most 50, keys and values as long as DRS allows. Values are never echoed in a refusal.
pub(super) fn parse_selector(given: Option<Value>) -> Result<Option<Selector>, RequestError> {
    let Some(raw) = given else {
        return Ok(None);
    };
    if !raw.is_object() {
        return Err(wrong("selector", "an object like {\"tags\": {...}}", &raw));
    }
    let SelectorBody { tags, targets } = deserialize_at(&raw, "selector", &["selector"])?;
    let targets = targets.unwrap_or_default();
    if targets.len() > MAX_TARGETS_PER_STEP {
        return Err(invalid(
            "selector.targets",
            &format!("has more than {MAX_TARGETS_PER_STEP} accounts and regions"),
        ));
    }
    for (index, target) in targets.iter().enumerate() {
        if let Some(problem) = target.problem() {
            return Err(invalid(&format!("selector.targets[{index}]"), &problem));
        }
        if targets[..index].contains(target) {
            return Err(invalid(
                &format!("selector.targets[{index}]"),
                &format!("names {target} twice"),
            ));
        }
    }
    let tags = tags.ok_or(RequestError::Missing("selector.tags"))?;
    if tags.is_empty() {
        return Err(invalid("selector.tags", "is empty: name at least one tag"));
    }
    if tags.len() > SELECTOR_MAX_TAGS {
        return Err(invalid(
            "selector.tags",
            "has more than 50 tags, more than a recovery instance can carry",
        ));
    }
    for (key, value) in &tags {
        let shown = truncate_utf8(key, 64);
        if key.is_empty() || key.chars().count() > TAG_MAX_LEN {
            return Err(invalid(
                &format!("selector.tags key {shown:?}"),
                "must be 1-256 characters",
            ));
        }
        if value.chars().count() > TAG_MAX_LEN {
            return Err(invalid(
                &format!("selector.tags.{shown}"),
                "is longer than 256 characters",
            ));
        }
    }
    Ok(Some(Selector {
        tags: Tags::from_map(tags),
        targets,
    }))
}
