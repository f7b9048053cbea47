//! A final track request's `notLaunched`: the instances of the run that never reached a job —
//! a count, or the launch answers' own groups (`outcome`, `reason`, `code`, `message`, `jobID`,
//! `recoveryInstanceIDs`) so the run's last answer accounts for every requested instance.

use serde_json::{Map, Value};

use super::{RequestError, check_fields_at, is_valid_job_id, json_kind, truncate_utf8};
use crate::config::REQUEST_INSTANCES_CEILING;

const GROUP_FIELDS: [&str; 6] = [
    "outcome",
    "reason",
    "code",
    "message",
    "jobID",
    "recoveryInstanceIDs",
];

/// The outcomes an instance that never reached a job can have.
pub const NOT_LAUNCHED_OUTCOMES: [&str; 3] = ["skipped", "rejected", "deferred"];

/// Reasons, codes and messages are echoed at most this long; ids (malformed ones included, as the
/// launch answer echoes them) at most `ID_MAX_BYTES`.
const TEXT_MAX_BYTES: usize = 256;
const ID_MAX_BYTES: usize = 64;

/// One group of not-launched instances, as a launch answer listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenGroup {
    /// One of [`NOT_LAUNCHED_OUTCOMES`].
    pub outcome: &'static str,
    pub reason: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub job_id: Option<String>,
    pub ids: Vec<String>,
}

/// The not-launched instances: how many, and their groups when given as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotLaunched {
    pub count: usize,
    pub groups: Vec<GivenGroup>,
}

pub(super) fn parse_not_launched(value: Option<&Value>) -> Result<NotLaunched, RequestError> {
    let list = match value {
        None | Some(Value::Null) => return Ok(NotLaunched::default()),
        Some(Value::Number(n)) => {
            let count = n
                .as_u64()
                .filter(|n| *n <= REQUEST_INSTANCES_CEILING as u64)
                .ok_or_else(|| {
                    wrong(
                        "notLaunched",
                        "a whole number of instances, at most 5000",
                        value.unwrap_or(&Value::Null),
                    )
                })?;
            return Ok(NotLaunched {
                count: count as usize,
                groups: Vec::new(),
            });
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(wrong(
                "notLaunched",
                "a whole number or a list of groups",
                other,
            ));
        }
    };
    let mut groups = Vec::with_capacity(list.len());
    let mut count = 0;
    for (index, entry) in list.iter().enumerate() {
        let at = format!("notLaunched[{index}]");
        let Value::Object(group) = entry else {
            return Err(wrong(&at, "an object", entry));
        };
        let group = parse_group(group, &at)?;
        count += group.ids.len();
        if count > REQUEST_INSTANCES_CEILING {
            return Err(RequestError::TooMany {
                field: "notLaunched[].recoveryInstanceIDs",
                count,
                max: REQUEST_INSTANCES_CEILING,
            });
        }
        groups.push(group);
    }
    Ok(NotLaunched { count, groups })
}

fn parse_group(group: &Map<String, Value>, at: &str) -> Result<GivenGroup, RequestError> {
    check_fields_at(group, &GROUP_FIELDS, &format!("{at}."))?;
    let text = |field: &str| -> Result<Option<String>, RequestError> {
        match group.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(truncate_utf8(s, TEXT_MAX_BYTES))),
            Some(other) => Err(wrong(&format!("{at}.{field}"), "a string", other)),
        }
    };
    let outcome = match text("outcome")? {
        None => return Err(RequestError::Missing("notLaunched[].outcome")),
        Some(outcome) => NOT_LAUNCHED_OUTCOMES
            .into_iter()
            .find(|o| *o == outcome)
            .ok_or_else(|| RequestError::WrongType {
                field: format!("{at}.outcome"),
                expected: "one of \"skipped\", \"rejected\", \"deferred\"",
                found: "another string",
            })?,
    };
    let reason = text("reason")?.ok_or(RequestError::Missing("notLaunched[].reason"))?;
    let job_id = text("jobID")?;
    if job_id.as_deref().is_some_and(|id| !is_valid_job_id(id)) {
        return Err(RequestError::BadJobId {
            field: format!("{at}.jobID"),
        });
    }
    let ids = match group.get("recoveryInstanceIDs") {
        Some(Value::Array(ids)) => ids
            .iter()
            .enumerate()
            .map(|(i, id)| match id {
                Value::String(id) => Ok(truncate_utf8(id, ID_MAX_BYTES)),
                other => Err(wrong(
                    &format!("{at}.recoveryInstanceIDs[{i}]"),
                    "a string",
                    other,
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None | Some(Value::Null) => {
            return Err(RequestError::Missing("notLaunched[].recoveryInstanceIDs"));
        }
        Some(other) => {
            return Err(wrong(
                &format!("{at}.recoveryInstanceIDs"),
                "an array of ids",
                other,
            ));
        }
    };
    Ok(GivenGroup {
        outcome,
        reason,
        code: text("code")?,
        message: text("message")?,
        job_id,
        ids,
    })
}

fn wrong(field: &str, expected: &'static str, found: &Value) -> RequestError {
    RequestError::WrongType {
        field: field.into(),
        expected,
        found: json_kind(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_count_or_the_launch_answers_groups() {
        assert_eq!(parse_not_launched(None).unwrap(), NotLaunched::default());
        assert_eq!(parse_not_launched(Some(&json!(4))).unwrap().count, 4);
        let given = json!([
            {"outcome": "rejected", "reason": "REFUSED_BY_DRS", "code": "ConflictException",
             "message": "busy", "recoveryInstanceIDs": ["i-11111111", "i-22222222"]},
            {"outcome": "skipped", "reason": "ALREADY_IN_JOB", "jobID": "drsjob-0123456789abcdefg",
             "recoveryInstanceIDs": ["i-33333333"]},
        ]);
        let parsed = parse_not_launched(Some(&given)).unwrap();
        assert_eq!(parsed.count, 3);
        assert_eq!(parsed.groups[0].outcome, "rejected");
        assert_eq!(parsed.groups[0].code.as_deref(), Some("ConflictException"));
        assert_eq!(
            parsed.groups[1].job_id.as_deref(),
            Some("drsjob-0123456789abcdefg")
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!(-1), "notLaunched must be"),
            (json!(5001), "at most 5000"),
            (json!("3"), "notLaunched must be a whole number or a list"),
            (json!([7]), "notLaunched[0] must be an object"),
            (
                json!([{"outcome": "launched", "reason": "x", "recoveryInstanceIDs": []}]),
                "notLaunched[0].outcome must be one of",
            ),
            (
                json!([{"outcome": "skipped", "recoveryInstanceIDs": []}]),
                "notLaunched[].reason is missing",
            ),
            (
                json!([{"outcome": "skipped", "reason": "x", "recoveryInstanceIDs": [1]}]),
                "notLaunched[0].recoveryInstanceIDs[0] must be a string",
            ),
            (
                json!([{"outcome": "skipped", "reason": "x", "recoveryInstanceIDs": [], "jobId": "j"}]),
                "unknown field \"notLaunched[0].jobId\" (did you mean notLaunched[0].jobID?)",
            ),
            (
                json!([{"outcome": "skipped", "reason": "x", "recoveryInstanceIDs": [], "jobID": "j"}]),
                "notLaunched[0].jobID is not a DRS job id",
            ),
        ];
        for (value, expected) in cases {
            let err = parse_not_launched(Some(&value)).expect_err(&value.to_string());
            assert!(err.to_string().contains(expected), "{value} -> {err}");
        }
        let many: Vec<String> = (0..5001).map(|n| format!("i-{n:08}")).collect();
        let err = parse_not_launched(Some(
            &json!([{"outcome": "deferred", "reason": "QUOTA", "recoveryInstanceIDs": many}]),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("at most 5000"), "{err}");
    }
}
