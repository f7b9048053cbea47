//! A plan step's rules, as its requests carry them: its `name` (the `step` of launch and track
//! requests), which instances are `critical` (`maxFailed` is a plain number) and how long it waits
//! for its instances to become ready — and the words a
//! refusal inside a plan is put in.

use std::collections::HashSet;

use serde::ser::{Serialize, Serializer};
use serde_json::Value;

use super::{RequestError, deserialize_at, truncate_utf8, wrong};
use crate::drs::ids::{is_valid_instance_id, is_valid_source_server_id};

pub const STEP_NAME_MAX_LEN: usize = 64;

/// Twelve hours: the longest a step may run (TimeLimitSeconds' ceiling), and more than an initial
/// sync of a few terabytes over a fast link takes.
pub const MAX_WAIT_FOR_READY_SECONDS: u64 = 43_200;
pub(crate) const WAIT_FOR_READY_EXPECTED: &str = "a whole number of seconds from 0 to 43200";

/// `waitForReadySeconds`: how long a step waits for its instances on their way to become ready.
pub(crate) fn parse_wait_for_ready(given: Option<u64>) -> Result<u64, RequestError> {
    match given.unwrap_or(0) {
        seconds if seconds > MAX_WAIT_FOR_READY_SECONDS => Err(wrong(
            "waitForReadySeconds",
            WAIT_FOR_READY_EXPECTED,
            &seconds.into(),
        )),
        seconds => Ok(seconds),
    }
}

/// Which instances of a step stop the plan when they do not come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Critical {
    #[default]
    None,
    All,
    /// Recovery instance or source server ids.
    Ids(Vec<String>),
}

/// `critical` as a plan gives it back: true, false, or the ids.
impl Serialize for Critical {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Critical::None => serializer.serialize_bool(false),
            Critical::All => serializer.serialize_bool(true),
            Critical::Ids(ids) => ids.serialize(serializer),
        }
    }
}

/// `critical` as sent: true, false, or a list of ids, each well-formed (a typo would quietly make
/// nothing critical) and kept once.
pub(crate) fn parse_critical(given: Option<Value>) -> Result<Critical, RequestError> {
    let ids: Vec<String> = match given {
        None | Some(Value::Bool(false)) => return Ok(Critical::None),
        Some(Value::Bool(true)) => return Ok(Critical::All),
        Some(list @ Value::Array(_)) => deserialize_at(&list, "critical", &["critical"])?,
        Some(other) => {
            return Err(wrong(
                "critical",
                "true, false or a list of instance ids",
                &other,
            ));
        }
    };
    refuse_malformed("critical", &ids, |id| {
        is_valid_instance_id(id)
            || is_valid_source_server_id(id)
            || crate::drs::target::parse_arn(id).is_ok()
    })?;
    let mut seen = HashSet::with_capacity(ids.len());
    Ok(Critical::Ids(
        ids.into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect(),
    ))
}

/// Refuses the first id of `list` that `valid` does not accept, naming it by its place.
pub(crate) fn refuse_malformed(
    field: &str,
    list: &[String],
    valid: impl Fn(&str) -> bool,
) -> Result<(), RequestError> {
    match list.iter().enumerate().find(|(_, id)| !valid(id)) {
        Some((at, id)) => Err(RequestError::BadId {
            field: format!("{field}[{at}]"),
            id: truncate_utf8(id, 32),
        }),
        None => Ok(()),
    }
}

/// A step's name, given as `field` (`step` in a launch or track request, `name` in a plan).
pub(crate) fn parse_step_name(
    field: &'static str,
    name: Option<String>,
) -> Result<Option<String>, RequestError> {
    match name {
        Some(name) if !is_valid_step_name(&name) => Err(RequestError::BadStepName(field)),
        name => Ok(name),
    }
}

pub(crate) fn is_valid_step_name(name: &str) -> bool {
    // A step's name is a metrics dimension value too: CloudWatch wants one that is not blank.
    (1..=STEP_NAME_MAX_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._- ".contains(c))
        && name.chars().any(|c| c.is_ascii_alphanumeric())
}

pub(crate) fn within(at: &str, error: RequestError) -> RequestError {
    RequestError::Within {
        at: at.to_owned(),
        error: Box::new(error),
    }
}

pub(crate) fn invalid(field: &str, problem: &str) -> RequestError {
    RequestError::Invalid {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}
