//! The `tags` a request puts on every job it creates: checked here, never shown (values are
//! sensitive).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{RequestError, json_kind, truncate_utf8};
use crate::drs::tags::{MAX_USER_TAGS, RESERVED_TAG_PREFIX, TAG_MAX_LEN, Tags};

pub(crate) fn parse_tags(raw: Option<&Value>) -> Result<Tags, RequestError> {
    let map = match raw {
        None | Some(Value::Null) => return Ok(Tags::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(RequestError::WrongType {
                field: "tags".into(),
                expected: "an object of string values",
                found: json_kind(other),
            });
        }
    };
    if map.len() > MAX_USER_TAGS {
        return Err(RequestError::TooManyTags(map.len()));
    }
    let mut tags = BTreeMap::new();
    for (key, value) in map {
        let shown_key = truncate_utf8(key, 64);
        let problem = if key.is_empty() {
            Some("a tag key must not be empty")
        } else if key.chars().count() > TAG_MAX_LEN {
            Some("the key is longer than 256 characters")
        } else if key.to_ascii_lowercase().starts_with("aws:") {
            Some("keys starting with \"aws:\" are reserved by AWS")
        } else if key.starts_with(RESERVED_TAG_PREFIX) {
            Some("keys starting with \"drs-failback:\" are set by this function")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(RequestError::Tag {
                key: shown_key,
                problem,
            });
        }
        let Value::String(value) = value else {
            return Err(RequestError::WrongType {
                field: format!("tags.{shown_key}"),
                expected: "a string",
                found: json_kind(value),
            });
        };
        if value.chars().count() > TAG_MAX_LEN {
            return Err(RequestError::Tag {
                key: shown_key,
                problem: "the value is longer than 256 characters",
            });
        }
        tags.insert(key.clone(), value.clone());
    }
    Ok(Tags::from_map(tags))
}
