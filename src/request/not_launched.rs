//! A final track request's `notLaunched`: the instances of the run that never reached a job —
//! a count, or the launch answers' own groups (`outcome`, `reason`, `code`, `message`, `jobID`,
//! `recoveryInstanceIDs`) so the run's last answer accounts for every requested instance.

use serde::Deserialize;
use serde_json::Value;

use super::{RequestError, deserialize_at, truncate_utf8, wrong};
use crate::config::REQUEST_INSTANCES_CEILING;
use crate::drs::ids::is_valid_job_id;

/// The outcomes an instance that never reached a job can have, as a launch answer names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotLaunchedAs {
    Skipped,
    Rejected,
    Deferred,
}

/// Reasons, codes and messages are echoed at most this long; ids (malformed ones included, as the
/// launch answer echoes them) at most `ID_MAX_BYTES`.
const TEXT_MAX_BYTES: usize = 256;
const ID_MAX_BYTES: usize = 64;

/// One group of not-launched instances, as a launch answer listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenGroup {
    pub outcome: NotLaunchedAs,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    outcome: Option<NotLaunchedAs>,
    reason: Option<String>,
    code: Option<String>,
    message: Option<String>,
    #[serde(rename = "jobID")]
    job_id: Option<String>,
    #[serde(rename = "recoveryInstanceIDs")]
    ids: Option<Vec<String>>,
}

/// `notLaunched` as sent: a count, or the groups.
pub(super) fn parse_not_launched(given: Option<Value>) -> Result<NotLaunched, RequestError> {
    let list = match given {
        None => return Ok(NotLaunched::default()),
        Some(Value::Number(count)) => {
            return match count
                .as_u64()
                .filter(|n| *n <= REQUEST_INSTANCES_CEILING as u64)
            {
                Some(count) => Ok(NotLaunched {
                    count: count as usize,
                    groups: Vec::new(),
                }),
                None => Err(wrong(
                    "notLaunched",
                    "a whole number of instances, at most 5000",
                    &Value::Number(count),
                )),
            };
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(wrong(
                "notLaunched",
                "a whole number or a list of groups",
                &other,
            ));
        }
    };
    let mut not_launched = NotLaunched::default();
    for (index, raw) in list.iter().enumerate() {
        let at = format!("notLaunched[{index}]");
        if !raw.is_object() {
            return Err(wrong(&at, "an object", raw));
        }
        let group = parse_group(deserialize_at(raw, &at, &["notLaunched", "[]"])?, index)?;
        not_launched.count += group.ids.len();
        if not_launched.count > REQUEST_INSTANCES_CEILING {
            let (field, count) = ("notLaunched[].recoveryInstanceIDs", not_launched.count);
            return Err(RequestError::TooMany {
                field,
                count,
                max: REQUEST_INSTANCES_CEILING,
            });
        }
        not_launched.groups.push(group);
    }
    Ok(not_launched)
}

fn parse_group(group: GroupBody, index: usize) -> Result<GivenGroup, RequestError> {
    let text = |text: Option<String>| text.map(|text| truncate_utf8(&text, TEXT_MAX_BYTES));
    let outcome = group
        .outcome
        .ok_or(RequestError::Missing("notLaunched[].outcome"))?;
    let reason = text(group.reason).ok_or(RequestError::Missing("notLaunched[].reason"))?;
    let job_id = text(group.job_id);
    if job_id.as_deref().is_some_and(|id| !is_valid_job_id(id)) {
        let field = format!("notLaunched[{index}].jobID");
        return Err(RequestError::BadJobId { field });
    }
    let ids = group
        .ids
        .ok_or(RequestError::Missing("notLaunched[].recoveryInstanceIDs"))?;
    Ok(GivenGroup {
        outcome,
        reason,
        code: text(group.code),
        message: text(group.message),
        job_id,
        ids: ids
            .iter()
            .map(|id| truncate_utf8(id, ID_MAX_BYTES))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Action, parse_action};
    use serde_json::{Value, json};

    /// `notLaunched` as a final track request carries it (`None`: not given).
    fn parse(value: Option<Value>) -> Result<NotLaunched, RequestError> {
        let mut request = json!({"action": "track", "runId": "r", "jobIDs": [], "final": true});
        if let Some(value) = value {
            request["notLaunched"] = value;
        }
        match parse_action(request, 5000, String::new)? {
            Action::Track(track) => Ok(track.not_launched),
            other => panic!("a track request, not {other:?}"),
        }
    }

    #[test]
    fn a_count_or_the_launch_answers_groups() {
        assert_eq!(parse(None).unwrap(), NotLaunched::default());
        assert_eq!(parse(Some(json!(4))).unwrap().count, 4);
        let given = json!([
            {"outcome": "rejected", "reason": "REFUSED_BY_DRS", "code": "ConflictException",
             "message": "busy", "recoveryInstanceIDs": ["i-11111111", "i-22222222"]},
            {"outcome": "skipped", "reason": "ALREADY_IN_JOB", "jobID": "drsjob-0123456789abcdefg",
             "recoveryInstanceIDs": ["i-33333333"]},
        ]);
        let parsed = parse(Some(given)).unwrap();
        assert_eq!(parsed.count, 3);
        assert_eq!(parsed.groups[0].outcome, NotLaunchedAs::Rejected);
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
            let err = parse(Some(value.clone())).expect_err(&value.to_string());
            assert!(err.to_string().contains(expected), "{value} -> {err}");
        }
        let many: Vec<String> = (0..5001).map(|n| format!("i-{n:08}")).collect();
        let err = parse(Some(
            json!([{"outcome": "deferred", "reason": "QUOTA", "recoveryInstanceIDs": many}]),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("at most 5000"), "{err}");
    }
}
