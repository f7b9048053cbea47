//! A plan step's rules, as its requests carry them: its `name` (the `step` of launch and track
//! requests), which instances are `critical`, how many may fail (`maxFailed`) — and the words a
//! refusal inside a plan is put in.

use serde::ser::{Serialize, Serializer};
use serde_json::Value;

use super::{
    RequestError, is_valid_instance_id, is_valid_source_server_id, json_kind, truncate_utf8,
};

pub const STEP_NAME_MAX_LEN: usize = 64;

/// Which instances of a step stop the plan when they do not come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Critical {
    #[default]
    None,
    All,
    /// Recovery instance or source server ids.
    Ids(Vec<String>),
}

impl Critical {
    /// Whether the instance known by these ids is critical.
    pub fn covers(&self, recovery_instance_id: &str, source_server_id: Option<&str>) -> bool {
        match self {
            Critical::None => false,
            Critical::All => true,
            Critical::Ids(ids) => ids
                .iter()
                .any(|id| id == recovery_instance_id || Some(id.as_str()) == source_server_id),
        }
    }
}

impl Serialize for Critical {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Critical::None => serializer.serialize_bool(false),
            Critical::All => serializer.serialize_bool(true),
            Critical::Ids(ids) => ids.serialize(serializer),
        }
    }
}

pub(crate) fn parse_step_name(raw: Option<&Value>) -> Result<Option<String>, RequestError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if is_valid_step_name(name) => Ok(Some(name.clone())),
        Some(Value::String(_)) => Err(RequestError::BadStepName),
        Some(other) => Err(wrong("step", "a string", other)),
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

/// `critical`: true, false, or a list of recovery instance or source server ids.
pub(crate) fn parse_critical(raw: Option<&Value>) -> Result<Critical, RequestError> {
    let list = match raw {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(Critical::None),
        Some(Value::Bool(true)) => return Ok(Critical::All),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(wrong(
                "critical",
                "true, false or a list of instance ids",
                other,
            ));
        }
    };
    let mut chosen: Vec<String> = Vec::with_capacity(list.len());
    for (at, id) in list.iter().enumerate() {
        let field = format!("critical[{at}]");
        let Value::String(id) = id else {
            return Err(wrong(&field, "a string", id));
        };
        if !(is_valid_instance_id(id) || is_valid_source_server_id(id)) {
            return Err(RequestError::BadId {
                field,
                id: truncate_utf8(id, 32),
            });
        }
        if !chosen.contains(id) {
            chosen.push(id.clone());
        }
    }
    Ok(Critical::Ids(chosen))
}

/// `maxFailed`: a whole number, or null for no limit.
pub(crate) fn parse_max_failed(raw: Option<&Value>) -> Result<Option<u64>, RequestError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(other) => Err(wrong("maxFailed", "a whole number of instances", other)),
    }
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

pub(crate) fn wrong(field: &str, expected: &'static str, found: &Value) -> RequestError {
    RequestError::WrongType {
        field: field.into(),
        expected,
        found: json_kind(found),
    }
}
