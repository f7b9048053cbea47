//! The launch request: `recoveryInstanceIDs` and/or `sourceServerIDs` and/or a tag `selector`,
//! `tags`, `runId`, `dryRun`, and the plan `step` it belongs to.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::rules::parse_step_name;
use super::selector::{Selector, parse_selector};
use super::tags::parse_tags;
use super::{
    MALFORMED_ECHO_MAX_BYTES, RequestError, check_fields, is_valid_instance_id, is_valid_run_id,
    is_valid_source_server_id, json_kind, truncate_utf8,
};
use crate::drs::Tags;

const KNOWN_FIELDS: [&str; 8] = [
    "action",
    "recoveryInstanceIDs",
    "sourceServerIDs",
    "selector",
    "step",
    "tags",
    "runId",
    "dryRun",
];

#[derive(Debug, Clone, PartialEq)]
pub struct FailbackRequest {
    pub run_id: String,
    pub dry_run: bool,
    pub tags: Tags,
    /// The plan step this launch is part of, when it is one.
    pub step: Option<String>,
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
}

impl FailbackRequest {
    /// Distinct ids named by the request, well-formed or not: each gets exactly one outcome.
    pub fn distinct_ids(&self) -> usize {
        self.recovery_instance_ids.len() + self.source_server_ids.len() + self.malformed_ids.len()
    }
}

/// The instances a request (or a plan's step) names: both id lists, checked, de-duplicated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ids {
    pub recovery_instance_ids: Vec<String>,
    pub source_server_ids: Vec<String>,
    pub malformed_ids: Vec<String>,
    pub duplicates_collapsed: usize,
    /// Either list was present (an empty list counts).
    pub given: bool,
    /// Entries in both lists as given, duplicates included.
    pub entries: usize,
}

/// Reads `recoveryInstanceIDs` and `sourceServerIDs`: ids that can never be valid are kept apart
/// (`malformed_ids`); more than `max_instances` entries are refused before any is looked at.
pub(super) fn parse_ids(
    body: &Map<String, Value>,
    max_instances: usize,
) -> Result<Ids, RequestError> {
    let raw_instances = id_list(body, "recoveryInstanceIDs")?;
    let raw_sources = id_list(body, "sourceServerIDs")?;
    let count = raw_instances.map_or(0, Vec::len) + raw_sources.map_or(0, Vec::len);
    if count > max_instances {
        return Err(RequestError::TooManyInstances {
            count,
            max: max_instances,
        });
    }
    let mut ids = Ids {
        given: raw_instances.is_some() || raw_sources.is_some(),
        entries: count,
        ..Ids::default()
    };
    let mut seen = HashSet::with_capacity(count);
    let lists = [
        (
            "recoveryInstanceIDs",
            raw_instances,
            is_valid_instance_id as fn(&str) -> bool,
            &mut ids.recovery_instance_ids,
        ),
        (
            "sourceServerIDs",
            raw_sources,
            is_valid_source_server_id,
            &mut ids.source_server_ids,
        ),
    ];
    for (field, raw, is_valid, valid) in lists {
        for (index, entry) in raw.into_iter().flatten().enumerate() {
            let Value::String(id) = entry else {
                return Err(RequestError::WrongType {
                    field: format!("{field}[{index}]"),
                    expected: "a string",
                    found: json_kind(entry),
                });
            };
            if !seen.insert(id.as_str()) {
                ids.duplicates_collapsed += 1;
            } else if is_valid(id) {
                valid.push(id.clone());
            } else {
                ids.malformed_ids
                    .push(truncate_utf8(id, MALFORMED_ECHO_MAX_BYTES));
            }
        }
    }
    Ok(ids)
}

pub(super) fn parse_body(
    body: Map<String, Value>,
    envelope_id: Option<String>,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<FailbackRequest, RequestError> {
    if body.contains_key("steps") {
        return Err(RequestError::PlanNotALaunch);
    }
    check_fields(&body, &KNOWN_FIELDS)?;
    let ids = parse_ids(&body, max_instances)?;
    let selector = parse_selector(body.get("selector"))?;
    if !ids.given && selector.is_none() {
        return Err(RequestError::MissingInstances);
    }
    if ids.entries == 0 && selector.is_none() {
        return Err(RequestError::NoInstances);
    }
    let step = parse_step_name(body.get("step"))?;
    let Ids {
        recovery_instance_ids,
        source_server_ids,
        malformed_ids,
        duplicates_collapsed,
        ..
    } = ids;

    let tags = parse_tags(body.get("tags"))?;

    let dry_run = parse_dry_run(&body)?;
    let run_id = parse_run_id(&body, envelope_id, new_run_id)?;

    Ok(FailbackRequest {
        run_id,
        dry_run,
        tags,
        step,
        selector,
        recovery_instance_ids,
        source_server_ids,
        malformed_ids,
        duplicates_collapsed,
    })
}

/// A list field: absent or null is `None`; anything but an array is refused.
fn id_list<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a Vec<Value>>, RequestError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(ids)) => Ok(Some(ids)),
        Some(other) => Err(RequestError::WrongType {
            field: field.into(),
            expected: "an array of strings",
            found: json_kind(other),
        }),
    }
}

/// `dryRun`: true or false, absent meaning false.
pub(super) fn parse_dry_run(body: &Map<String, Value>) -> Result<bool, RequestError> {
    match body.get("dryRun") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(other) => Err(RequestError::WrongType {
            field: "dryRun".into(),
            expected: "true or false",
            found: json_kind(other),
        }),
    }
}

/// The run id: the request's, else the EventBridge event's id, else a new one.
pub(super) fn parse_run_id(
    body: &Map<String, Value>,
    envelope_id: Option<String>,
    new_run_id: impl FnOnce() -> String,
) -> Result<String, RequestError> {
    match body.get("runId") {
        None | Some(Value::Null) => Ok(envelope_id
            .filter(|id| is_valid_run_id(id))
            .unwrap_or_else(new_run_id)),
        Some(Value::String(run_id)) if is_valid_run_id(run_id) => Ok(run_id.clone()),
        Some(Value::String(_)) => Err(RequestError::BadRunId),
        Some(other) => Err(RequestError::WrongType {
            field: "runId".into(),
            expected: "a string",
            found: json_kind(other),
        }),
    }
}
