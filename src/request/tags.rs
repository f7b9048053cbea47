//! The tags a request puts on every job it creates, and the run-id tag the function adds: how a
//! job is known later as this run's.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::{RequestError, json_kind, truncate_utf8};

/// `TagKey` / `TagValue` in the DRS API model.
pub const TAG_MAX_LEN: usize = 256;
/// AWS resources carry at most 50 user tags; the run-id tag and a plan's step tag take two.
pub const MAX_USER_TAGS: usize = 48;
/// The function tags every job with its run id under this key, so users may not set it.
pub const RUN_ID_TAG_KEY: &str = "drs-failback:run-id";
/// A plan step's jobs also carry the step's name: an instance in a job of this run belongs to
/// the step that launched it.
pub const STEP_TAG_KEY: &str = "drs-failback:step";
pub const RESERVED_TAG_PREFIX: &str = "drs-failback:";

/// Tag values are marked sensitive in the DRS API model: `Debug` shows keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    pub fn from_map(tags: BTreeMap<String, String>) -> Self {
        Tags(tags)
    }
    /// Whether every tag of `wanted` is here with the same value.
    pub fn contains_all(&self, wanted: &Tags) -> bool {
        wanted
            .iter()
            .all(|(key, value)| self.get(key) == Some(value))
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// The tags a job is created with: the user's plus the run id.
    pub fn with_run_id(&self, run_id: &str) -> Tags {
        let mut tags = self.0.clone();
        tags.insert(RUN_ID_TAG_KEY.to_owned(), run_id.to_owned());
        Tags(tags)
    }

    /// The same, plus the plan step the job is part of.
    pub fn with_step(mut self, step: Option<&str>) -> Tags {
        if let Some(step) = step {
            self.0.insert(STEP_TAG_KEY.to_owned(), step.to_owned());
        }
        self
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

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
    Ok(Tags(tags))
}
