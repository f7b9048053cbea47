//! The finish request: `{"action": "finish", "runId", "step"?, "finishing": "disconnect" |
//! "terminate", "dryRun"?, "sinceMillis", "calls"?, "intervalSeconds"?, "recoveryInstanceIDs"}` —
//! after an operator approved it, the recovery instances this run (or this step of it) brought
//! back are disconnected from DRS or terminated ([`crate::finish`]). The instances are found from
//! the run's jobs (by their run id tag, created since `sinceMillis`, the run's start): nothing
//! outside the run can be finished; and of those, only the ones approved (`recoveryInstanceIDs`,
//! the dry run's list as the operator saw it) ever are. Never accepted in an event.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rules::{parse_step_name, refuse_malformed};
use super::{RequestError, deserialize, invalid, required_run_id, wrong};
use crate::config::REQUEST_INSTANCES_CEILING;
use crate::drs::ids::is_valid_instance_id;

/// What is done with the recovery instances that came back. Both are irreversible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finishing {
    /// DisconnectRecoveryInstance: DRS stops replicating and tracking it; the EC2 instance keeps
    /// running (and costing) until someone terminates it.
    Disconnect,
    /// TerminateRecoveryInstances: its EC2 resources are terminated and DRS deletes it.
    Terminate,
}

pub(crate) const FINISHING_EXPECTED: &str = "\"disconnect\" or \"terminate\"";

impl Finishing {
    pub fn name(self) -> &'static str {
        match self {
            Finishing::Disconnect => "disconnect",
            Finishing::Terminate => "terminate",
        }
    }

    /// `finishing` (or a plan's `finish`) as sent.
    pub(crate) fn parse(field: &str, given: &Value) -> Result<Self, RequestError> {
        serde_json::from_value(given.clone()).map_err(|_| wrong(field, FINISHING_EXPECTED, given))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishRequest {
    pub run_id: String,
    /// The account and region of the instances; the function's own when unsaid.
    pub target: Option<crate::drs::Target>,
    /// Only the instances this step launched; the whole run's without.
    pub step: Option<String>,
    pub finishing: Finishing,
    /// List what would be done; do nothing.
    pub dry_run: bool,
    /// When the run started: its jobs are among those created since.
    pub since: SystemTime,
    /// Finish calls made before this one (the state machine counts them): past a bound the
    /// finishing stops asking again.
    pub calls: u32,
    /// How long to wait before asking again while a terminate job runs.
    pub interval_seconds: u64,
    /// Not a dry run: the instances the operator approved (the dry run's `planned`); only these
    /// are ever finished, whatever else DRS shows eligible by then.
    pub approved: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    #[serde(rename = "action")]
    _action: Option<IgnoredAny>,
    run_id: Option<String>,
    step: Option<String>,
    finishing: Option<Value>,
    dry_run: Option<bool>,
    since_millis: Option<u64>,
    calls: Option<u32>,
    interval_seconds: Option<u64>,
    #[serde(rename = "recoveryInstanceIDs")]
    recovery_instance_ids: Option<Vec<String>>,
    target: Option<crate::drs::Target>,
}

/// A tracking interval when the caller gives none (the stack's default).
const DEFAULT_INTERVAL_SECONDS: u64 = 60;

pub(super) fn parse_finish(body: &Value) -> Result<FinishRequest, RequestError> {
    let body: Body = deserialize(body)?;
    let run_id = required_run_id(body.run_id)?;
    let finishing = body.finishing.ok_or(RequestError::Missing("finishing"))?;
    let finishing = Finishing::parse("finishing", &finishing)?;
    let since = body
        .since_millis
        .ok_or(RequestError::Missing("sinceMillis"))?;
    let dry_run = body.dry_run.unwrap_or(false);
    let approved = match body.recovery_instance_ids {
        Some(ids) if !dry_run => ids,
        Some(_) => {
            return Err(invalid(
                "recoveryInstanceIDs",
                "is what was approved: a dry run lists, it is given nothing",
            ));
        }
        None if dry_run => Vec::new(),
        None => return Err(RequestError::Missing("recoveryInstanceIDs")),
    };
    if approved.len() > REQUEST_INSTANCES_CEILING {
        return Err(RequestError::TooMany {
            field: "recoveryInstanceIDs",
            count: approved.len(),
            max: REQUEST_INSTANCES_CEILING,
        });
    }
    refuse_malformed("recoveryInstanceIDs", &approved, is_valid_instance_id)?;
    Ok(FinishRequest {
        run_id,
        target: super::launch::parse_target(body.target)?,
        step: parse_step_name("step", body.step)?,
        finishing,
        dry_run,
        since: UNIX_EPOCH + Duration::from_millis(since),
        calls: body.calls.unwrap_or(0),
        interval_seconds: body.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS),
        approved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_finish_request_names_its_run_what_to_do_and_since_when() {
        let request = parse_finish(&json!({"action": "finish", "runId": "r", "step": "db",
            "finishing": "terminate", "sinceMillis": 1000, "calls": 2,
            "recoveryInstanceIDs": ["i-0123456789abcdef0"]}))
        .unwrap();
        assert_eq!(request.approved, ["i-0123456789abcdef0"]);
        assert_eq!(request.finishing, Finishing::Terminate);
        assert_eq!(request.since, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!((request.calls, request.interval_seconds), (2, 60));
        assert!(!request.dry_run);
        let refused = |body: Value, words: &str| {
            let error = parse_finish(&body).unwrap_err().to_string();
            assert!(error.contains(words), "{error}");
        };
        refused(
            json!({"runId": "r", "finishing": "delete", "sinceMillis": 1}),
            "finishing must be \"disconnect\" or \"terminate\"",
        );
        refused(
            json!({"runId": "r", "sinceMillis": 1}),
            "finishing is missing",
        );
        refused(
            json!({"runId": "r", "finishing": "disconnect"}),
            "sinceMillis is missing",
        );
        refused(
            json!({"runId": "r", "finishing": "disconnect", "sinceMillis": 1}),
            "recoveryInstanceIDs is missing",
        );
        refused(
            json!({"runId": "r", "finishing": "disconnect", "sinceMillis": 1, "dryRun": true,
                "recoveryInstanceIDs": ["i-0123456789abcdef0"]}),
            "a dry run lists",
        );
        refused(
            json!({"runId": "r", "finishing": "disconnect", "sinceMillis": 1,
                "recoveryInstanceIDs": ["x"]}),
            "recoveryInstanceIDs[0]",
        );
        refused(
            json!({"runId": "r", "finishing": "disconnect", "sinceMillis": 1, "sourceServerIDs": []}),
            "sourceServerIDs",
        );
    }
}
