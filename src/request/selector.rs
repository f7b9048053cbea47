//! A plan step's tag `selector`: `{"tags": {"Tier": "app"}}` chooses the recovery instances that
//! carry every tag given, with the same value. Resolved when the step starts (DRS has no tag
//! filter: the function lists the account's instances). Tag values are never logged.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use std::collections::BTreeMap;

use super::rules::{invalid, wrong};
use super::{RequestError, check_fields_at, truncate_utf8};
use crate::drs::tags::TAG_MAX_LEN;
use crate::drs::{RecoveryInstance, Tags};

/// AWS resources carry at most 50 tags.
const SELECTOR_MAX_TAGS: usize = 50;

/// Recovery instances chosen by their own tags: every tag given, with the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub tags: Tags,
}

impl Selector {
    /// The recovery instances carrying every tag of the selector, in DRS's listing order.
    pub fn matching(&self, instances: &[RecoveryInstance]) -> Vec<String> {
        instances
            .iter()
            .filter(|instance| instance.tags.contains_all(&self.tags))
            .map(|instance| instance.recovery_instance_id.clone())
            .collect()
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Values<'a>(&'a Tags);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (key, value) in self.0.iter() {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("tags", &Values(&self.tags))?;
        map.end()
    }
}

/// A selector's tags: any tag a recovery instance may carry (AWS's own `aws:` tags included), at
/// most 50, keys and values as long as DRS allows. Values are never echoed in a refusal.
pub(crate) fn parse_selector(raw: Option<&Value>) -> Result<Option<Selector>, RequestError> {
    let map = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong("selector", "an object like {\"tags\": {...}}", other)),
    };
    check_fields_at(map, &["tags"], "selector.")?;
    let tags = match map.get("tags") {
        None | Some(Value::Null) => return Err(RequestError::Missing("selector.tags")),
        Some(Value::Object(tags)) => tags,
        Some(other) => return Err(wrong("selector.tags", "an object of string values", other)),
    };
    if tags.is_empty() {
        return Err(invalid("selector.tags", "is empty: name at least one tag"));
    }
    if tags.len() > SELECTOR_MAX_TAGS {
        return Err(invalid(
            "selector.tags",
            "has more than 50 tags, more than a recovery instance can carry",
        ));
    }
    let mut chosen = BTreeMap::new();
    for (key, value) in tags {
        let shown = truncate_utf8(key, 64);
        if key.is_empty() || key.chars().count() > TAG_MAX_LEN {
            return Err(invalid(
                &format!("selector.tags key {shown:?}"),
                "must be 1-256 characters",
            ));
        }
        let Value::String(value) = value else {
            return Err(wrong(&format!("selector.tags.{shown}"), "a string", value));
        };
        if value.chars().count() > TAG_MAX_LEN {
            return Err(invalid(
                &format!("selector.tags.{shown}"),
                "is longer than 256 characters",
            ));
        }
        chosen.insert(key.clone(), value.clone());
    }
    Ok(Some(Selector {
        tags: Tags::from_map(chosen),
    }))
}
