//! `loop`: where a step's launch-and-track loop stands, as the state machine (or the local runner)
//! passes it with each launch and track call, so that the function decides what comes next
//! ([`crate::launch::next`], [`crate::track::end`]) from what it read and from this — the caller only follows the answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The loop's settings: the state machine's deploy-time parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// Launch rounds a step may make (`MaxRounds`).
    pub max_rounds: u32,
    /// Seconds from the step's start after which it stops launching and tracking.
    pub time_limit_seconds: u64,
    /// Seconds between two tracking calls (and before deferred instances are sent again when no
    /// job is running).
    pub track_interval_seconds: u64,
}

/// Where the loop stands before this call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepLoop {
    pub limits: Limits,
    /// Seconds since the step started, when this call was made.
    pub elapsed_seconds: u64,
    /// Launch rounds made before this call.
    #[serde(default)]
    pub rounds: u32,
    /// The step's jobs not known done before this call.
    #[serde(default)]
    pub running_jobs: usize,
    /// Instances deferred by the last launch round, waiting for the next (a track call's).
    #[serde(default)]
    pub deferred: usize,
    /// Their reasons (`QUOTA`, `THROTTLED`, ...).
    #[serde(default)]
    pub deferred_reasons: Vec<String>,
    /// A launch round failed for good: the step launches no more.
    #[serde(default)]
    pub launch_error: bool,
    /// That failure's name (the function's `errorType`, or Lambda's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_error_name: Option<String>,
    /// Tracking calls that failed in a row just before this one.
    #[serde(default)]
    pub tracking_errors: u32,
    /// Calls this step execution has made so far: past a budget it hands the step over to a
    /// fresh one, far from Step Functions' cap on an execution's history.
    #[serde(default)]
    pub calls: u32,
    /// Seconds since this step execution started: one that has run long hands the step over
    /// before its own TimeoutSeconds.
    #[serde(default)]
    pub execution_seconds: u64,
    /// The shortest job of the step so far, in seconds, as the last tracking call answered it
    /// (`jobSeconds`): when the running ones should end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_seconds: Option<u64>,
    /// The instances waiting for readiness, as the last launch round found them (its answer's
    /// `waiting`): a tracking call answers them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitingSummary>,
}

/// The waiting instances added up: how many, in which state, the bytes left, the latest ETA.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WaitingSummary {
    pub instances: usize,
    pub by_state: BTreeMap<String, usize>,
    pub bytes_left: u64,
    /// The latest `etaDateTime` among them (DRS writes them all in one ISO 8601 form, which
    /// sorts as time does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_eta: Option<String>,
}

/// A step's loop for tests: 2 rounds made, 100 s in, nothing running or deferred, limits of 10
/// rounds, an hour and 60 s; `changes` override any field.
#[cfg(test)]
pub(crate) fn for_test(changes: serde_json::Value) -> StepLoop {
    let mut given = serde_json::json!({"limits": {"maxRounds": 10, "timeLimitSeconds": 3600,
        "trackIntervalSeconds": 60}, "elapsedSeconds": 100, "rounds": 2});
    if let (Some(given), Some(changes)) = (given.as_object_mut(), changes.as_object()) {
        given.extend(changes.clone());
    }
    serde_json::from_value(given).expect("a step's loop")
}
