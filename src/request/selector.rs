//! A plan step's tag `selector`: `{"tags": {"Tier": "app"}}` chooses the recovery instances that
//! carry every tag given, with the same value. Resolved when the step starts (DRS has no tag
//! filter: the function lists the account's instances). Tag values are never logged.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::rules::{invalid, within, wrong};
use super::tags::parse_tags;
use super::{RequestError, Tags, check_fields_at};

/// Recovery instances chosen by their own tags: every tag given, with the same value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub tags: Tags,
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

pub(crate) fn parse_selector(raw: Option<&Value>) -> Result<Option<Selector>, RequestError> {
    let map = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong("selector", "an object like {\"tags\": {...}}", other)),
    };
    check_fields_at(map, &["tags"], "selector.")?;
    let tags = match map.get("tags") {
        None | Some(Value::Null) => return Err(RequestError::Missing("selector.tags")),
        Some(raw) => parse_tags(Some(raw)).map_err(|error| within("selector", error))?,
    };
    if tags.is_empty() {
        return Err(invalid("selector.tags", "is empty: name at least one tag"));
    }
    Ok(Some(Selector { tags }))
}
