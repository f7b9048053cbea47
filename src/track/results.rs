//! Job results: whether each launched instance came back, decided from DRS's own state, polled —
//! the job's `participatingServers[].launchStatus` and the recovery instance's `failback.state`,
//! with the reason from the job log. DRS's EventBridge events never decide a result.

use std::collections::HashMap;

use serde::Serialize;

use crate::drs::{FailbackState, JobLogEvent, JobLogItem, JobStatus, LaunchStatus};
use crate::launch::outcome::MESSAGE_MAX_BYTES;
use crate::request::truncate_utf8;

/// What became of one launched instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::EnumIter)]
#[serde(rename_all = "lowercase")]
pub enum ResultKind {
    /// Failed back: `failback.state` FAILBACK_COMPLETED.
    Succeeded,
    /// `failback.state` FAILBACK_ERROR, or `launchStatus` FAILED or TERMINATED.
    Failed,
    /// Not final yet.
    Running,
}

impl ResultKind {
    /// The metric counting the instances with this result when their run (or step) ends.
    pub fn metric(self) -> &'static str {
        match self {
            ResultKind::Succeeded => "InstancesSucceeded",
            ResultKind::Failed => "InstancesFailed",
            ResultKind::Running => "InstancesStillRunning",
        }
    }
}

/// The result of an instance: `failback_state` is the instance's state only when it belongs to
/// this job (the instance's `failbackJobID` is the job): a state left from an earlier failback
/// says nothing about this one. A `launchStatus` that stays PENDING while DRS converts decides
/// nothing either: the state is the final word.
pub fn decide(
    launch_status: Option<&LaunchStatus>,
    failback_state: Option<&FailbackState>,
) -> ResultKind {
    match (failback_state, launch_status) {
        (Some(FailbackState::Completed), _) => ResultKind::Succeeded,
        (Some(FailbackState::Error), _) => ResultKind::Failed,
        (_, Some(status)) if status.is_failure() => ResultKind::Failed,
        _ => ResultKind::Running,
    }
}

/// Each failed source server's failure event and DRS's message.
pub type Failures = HashMap<String, (JobLogEvent, Option<String>)>;

/// The first failure the log records for each source server: what went wrong first is the
/// reason (a later clean-up failure is a consequence).
pub fn failures(log: &[JobLogItem]) -> Failures {
    let mut found = HashMap::new();
    for item in log.iter().filter(|item| item.event.is_failure()) {
        if let Some(source) = &item.source_server_id {
            let message = item
                .raw_error
                .as_deref()
                .map(|raw| truncate_utf8(raw, MESSAGE_MAX_BYTES));
            found
                .entry(source.clone())
                .or_insert((item.event.clone(), message));
        }
    }
    found
}

/// Why a failed instance failed: the job log's event when it names one, else the failback state
/// (FAILBACK_ERROR) or the launch status (FAILED, TERMINATED).
pub fn reason(
    logged: Option<&(JobLogEvent, Option<String>)>,
    failback_state: Option<&FailbackState>,
    launch_status: Option<&LaunchStatus>,
) -> (String, Option<String>) {
    match logged {
        Some((event, message)) => (event.to_string(), message.clone()),
        None => (
            failback_state
                .filter(|state| **state == FailbackState::Error)
                .map(FailbackState::as_str)
                .or(launch_status.map(LaunchStatus::as_str))
                // Nothing names the failure: it reads as a failed launch.
                .unwrap_or(LaunchStatus::Failed.as_str())
                .to_owned(),
            None,
        ),
    }
}

/// One instance of a tracked job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceResult {
    #[serde(rename = "recoveryInstanceID", skip_serializing_if = "Option::is_none")]
    pub recovery_instance_id: Option<String>,
    #[serde(rename = "sourceServerID", skip_serializing_if = "Option::is_none")]
    pub source_server_id: Option<String>,
    pub result: ResultKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_status: Option<LaunchStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback_state: Option<FailbackState>,
    /// `failed` only: the job log's event (CONVERSION_FAIL, LAUNCH_FAILED, ...) or the state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl InstanceResult {
    /// The id the instance is known by: its recovery instance, else its source server.
    pub fn id(&self) -> &str {
        self.recovery_instance_id
            .as_deref()
            .or(self.source_server_id.as_deref())
            .unwrap_or_default()
    }
}

/// Instances that share a result, reason, launch status and failback state, listed together: the
/// form an answer or event takes when one object per instance would not fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultGroup {
    pub result: ResultKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_status: Option<LaunchStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failback_state: Option<FailbackState>,
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
}

/// Groups the results, in the order each group's first member appears.
pub fn group(results: &[InstanceResult]) -> Vec<ResultGroup> {
    let mut groups: Vec<ResultGroup> = Vec::new();
    for result in results {
        let found = groups.iter_mut().find(|g| {
            g.result == result.result
                && g.reason == result.reason
                && g.launch_status == result.launch_status
                && g.failback_state == result.failback_state
        });
        match found {
            Some(group) => group.recovery_instance_ids.push(result.id().to_owned()),
            None => groups.push(ResultGroup {
                result: result.result,
                reason: result.reason.clone(),
                launch_status: result.launch_status.clone(),
                failback_state: result.failback_state.clone(),
                recovery_instance_ids: vec![result.id().to_owned()],
            }),
        }
    }
    groups
}

/// How many instances have each result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResultCounts {
    pub succeeded: usize,
    pub failed: usize,
    pub running: usize,
}

impl ResultCounts {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a InstanceResult>) -> Self {
        let mut counts = ResultCounts::default();
        for result in results {
            match result.result {
                ResultKind::Succeeded => counts.succeeded += 1,
                ResultKind::Failed => counts.failed += 1,
                ResultKind::Running => counts.running += 1,
            }
        }
        counts
    }
}

/// A tracked job's status: PENDING, STARTED or COMPLETED as DRS says; UNKNOWN when DRS does not
/// show the job (yet) or it could not be read; NOT_THIS_RUN when it carries another run's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackedStatus {
    Drs(JobStatus),
    Unknown,
    NotThisRun,
}

impl TrackedStatus {
    /// DRS has finished the job.
    pub fn is_completed(&self) -> bool {
        *self == TrackedStatus::Drs(JobStatus::Completed)
    }
}

impl TrackedStatus {
    /// As answers and events spell it.
    pub fn as_str(&self) -> &str {
        match self {
            TrackedStatus::Drs(status) => status.as_str(),
            TrackedStatus::Unknown => "UNKNOWN",
            TrackedStatus::NotThisRun => "NOT_THIS_RUN",
        }
    }
}

impl Serialize for TrackedStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One tracked job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedJob {
    #[serde(rename = "jobID")]
    pub job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub status: TrackedStatus,
    /// DRS has finished the job and every instance in it has its final result.
    pub done: bool,
    pub counts: ResultCounts,
    /// One object per instance, or, when that would not fit, `groups`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<InstanceResult>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<ResultGroup>>,
}

impl TrackedJob {
    /// The same job with its instances grouped by result and reason.
    pub fn grouped(&self) -> TrackedJob {
        TrackedJob {
            groups: self.instances.as_deref().map(group),
            instances: None,
            ..self.clone()
        }
    }

    pub fn results(&self) -> &[InstanceResult] {
        self.instances.as_deref().unwrap_or_default()
    }
}

/// A whole run's results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    pub succeeded: usize,
    pub failed: usize,
    pub running: usize,
    /// Requested instances never launched (skipped, rejected, or deferred when the run ended).
    pub not_launched: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failback_state_is_the_final_word() {
        use ResultKind::*;
        let table = [
            (None, None, Running),
            (Some("PENDING"), Some("FAILBACK_IN_PROGRESS"), Running),
            (Some("IN_PROGRESS"), None, Running),
            // launchStatus may stay PENDING during conversion: the state decides
            (Some("PENDING"), Some("FAILBACK_COMPLETED"), Succeeded),
            (Some("LAUNCHED"), Some("FAILBACK_COMPLETED"), Succeeded),
            (Some("LAUNCHED"), Some("FAILBACK_ERROR"), Failed),
            (Some("LAUNCHED"), None, Running),
            (Some("FAILED"), None, Failed),
            (Some("TERMINATED"), Some("FAILBACK_IN_PROGRESS"), Failed),
        ];
        for (launch, state, expected) in table {
            let launch_status = launch.map(LaunchStatus::from_name);
            let failback_state = state.map(FailbackState::from_name);
            assert_eq!(
                decide(launch_status.as_ref(), failback_state.as_ref()),
                expected,
                "{launch:?} {state:?}"
            );
        }
    }

    fn log(event: &str, source: &str, raw: Option<&str>) -> JobLogItem {
        JobLogItem {
            event: JobLogEvent::from_name(event),
            source_server_id: Some(source.into()),
            raw_error: raw.map(str::to_owned),
        }
    }

    #[test]
    fn reasons_come_from_the_log_else_the_state() {
        let items = [
            log("LAUNCH_START", "s-1", None),
            log("CONVERSION_FAIL", "s-1", Some(&"x".repeat(1000))),
            log("LAUNCH_FAILED", "s-2", Some("no capacity")),
            log("JOB_END", "s-2", None),
        ];
        let found = failures(&items);
        assert_eq!(found.len(), 2);
        let error = Some(FailbackState::Error);
        let (event, message) = reason(found.get("s-1"), error.as_ref(), None);
        assert_eq!(event, "CONVERSION_FAIL");
        assert!(message.unwrap().len() <= MESSAGE_MAX_BYTES);
        assert_eq!(reason(found.get("s-2"), None, None).0, "LAUNCH_FAILED");
        let failed = Some(LaunchStatus::Failed);
        assert_eq!(
            reason(None, error.as_ref(), failed.as_ref()).0,
            "FAILBACK_ERROR"
        );
        let terminated = Some(LaunchStatus::Terminated);
        assert_eq!(reason(None, None, terminated.as_ref()).0, "TERMINATED");
    }

    #[test]
    fn groups_share_result_and_reason() {
        let result = |id: &str, kind, reason: Option<&str>| InstanceResult {
            recovery_instance_id: Some(id.into()),
            source_server_id: None,
            result: kind,
            launch_status: None,
            failback_state: None,
            reason: reason.map(str::to_owned),
            message: None,
        };
        let results = [
            result("i-1", ResultKind::Succeeded, None),
            result("i-2", ResultKind::Failed, Some("CONVERSION_FAIL")),
            result("i-3", ResultKind::Succeeded, None),
            result("i-4", ResultKind::Failed, Some("LAUNCH_FAILED")),
        ];
        let groups = group(&results);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].recovery_instance_ids, ["i-1", "i-3"]);
        let counts = ResultCounts::of(&results);
        assert_eq!((counts.succeeded, counts.failed, counts.running), (2, 2, 0));
    }
}
