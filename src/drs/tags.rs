//! Tags: those a request puts on every job it creates, the run-id and step tags the function
//! adds (how a job is known later as this run's, and as a plan step's), and a recovery
//! instance's own (what a plan's selector matches). Values are sensitive: never shown.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use super::RecoveryInstance;

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
    /// The recovery instances carrying every one of these tags, in DRS's listing order: what a
    /// plan step's selector chooses.
    pub fn carried_by(&self, instances: &[RecoveryInstance]) -> Vec<String> {
        instances
            .iter()
            .filter(|instance| instance.tags.contains_all(self))
            .map(|instance| instance.recovery_instance_id.clone())
            .collect()
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

/// The tags with their values, as a JSON object: only where a value must travel — a plan step's
/// selector, which the plan's answer hands back to the function. `Tags` itself does not serialise,
/// so no answer, event or log line writes a value by accident.
pub fn with_values<S: Serializer>(tags: &Tags, serializer: S) -> Result<S::Ok, S::Error> {
    tags.0.serialize(serializer)
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}
