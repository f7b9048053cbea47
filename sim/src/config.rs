//! What a simulator is started with: fleet, quotas, lifecycle, paging, faults. The same shapes
//! are read from the binary's `--config` file and from `POST /_sim/faults`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::fleet::Fleet;

/// The operations the simulator answers. Serialized with their wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    StartFailbackLaunch,
    DescribeRecoveryInstances,
    DescribeJobs,
    DescribeJobLogItems,
    DisconnectRecoveryInstance,
    TerminateRecoveryInstances,
    PutEvents,
}

impl Operation {
    pub const DRS: [Operation; 6] = [
        Operation::StartFailbackLaunch,
        Operation::DescribeRecoveryInstances,
        Operation::DescribeJobs,
        Operation::DescribeJobLogItems,
        Operation::DisconnectRecoveryInstance,
        Operation::TerminateRecoveryInstances,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::StartFailbackLaunch => "StartFailbackLaunch",
            Operation::DescribeRecoveryInstances => "DescribeRecoveryInstances",
            Operation::DescribeJobs => "DescribeJobs",
            Operation::DescribeJobLogItems => "DescribeJobLogItems",
            Operation::DisconnectRecoveryInstance => "DisconnectRecoveryInstance",
            Operation::TerminateRecoveryInstances => "TerminateRecoveryInstances",
            Operation::PutEvents => "PutEvents",
        }
    }

    pub(crate) fn drs_from_path(path: &str) -> Option<Operation> {
        let name = path.strip_prefix('/')?;
        Operation::DRS.into_iter().find(|op| op.as_str() == name)
    }

    pub fn is_drs(self) -> bool {
        self != Operation::PutEvents
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault to inject. JSON form: `{"type": "throttle", "operation": "StartFailbackLaunch",
/// "calls": 2, "retryAfterSeconds": 3}`.
///
/// Counted faults are consumed in the order they were injected; the first one that applies to a
/// call fires and the others wait. `InternalErrorAfterCreate` and `HangAfterAccept` are only
/// consumed by a StartFailbackLaunch call that really created a job (a call refused for a
/// conflict, a quota or validation leaves them pending).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Fault {
    /// The next `calls` calls of `operation` get a ThrottlingException (429 for DRS, 400 for
    /// EventBridge) with `Retry-After: retry_after_seconds`.
    Throttle {
        operation: Operation,
        calls: u32,
        retry_after_seconds: u32,
    },
    /// The next `calls` calls of `operation` are held `seconds` (tokio time) before they are
    /// handled at all; then they go on as any call (a StartFailbackLaunch then creates its job,
    /// although a caller with a shorter timeout has given up) — unless `lost`, when DRS drops the
    /// request instead: a 500 after the wait, nothing done.
    Hang {
        operation: Operation,
        calls: u32,
        seconds: f64,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        lost: bool,
    },
    /// Calls of `operation` fail with this error and do nothing: the first `after` calls go
    /// through, the `calls` after them fail. `members` are added to the error body (e.g.
    /// `quotaCode`, `resourceId`, `fieldList`); `retryAfter` is sent as the `Retry-After` header.
    /// JSON: `{"type": "fail", "operation": "StartFailbackLaunch", "calls": 1, "status": 408,
    /// "errorType": "RequestTimeoutException"}`.
    Fail {
        operation: Operation,
        calls: u32,
        #[serde(default)]
        after: u32,
        status: u16,
        error_type: String,
        #[serde(default)]
        message: String,
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        members: serde_json::Map<String, serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
    },
    /// The next `calls` calls of `operation` cannot connect: the request never leaves. Only the
    /// in-process client can show this (the loopback listener has accepted the connection by the
    /// time it sees a request); over loopback, point the client at a closed port instead.
    ConnectionRefused { operation: Operation, calls: u32 },
    /// The next `calls` StartFailbackLaunch calls get a 500 and create nothing.
    InternalErrorBeforeCreate { calls: u32 },
    /// The next `calls` StartFailbackLaunch calls that create a job answer 500 anyway: the
    /// ambiguous case, the job exists and runs.
    InternalErrorAfterCreate { calls: u32 },
    /// The next `calls` StartFailbackLaunch calls that create a job answer 200 only after
    /// `seconds` (tokio time).
    HangAfterAccept { calls: u32, seconds: f64 },
    /// The next `calls` StartFailbackLaunch calls that create a job answer with a job that lists
    /// no participating servers (the job holds them all the same).
    AnswerWithoutParticipants { calls: u32 },
    /// The next `entries` PutEvents entries that would be accepted fail with
    /// `ErrorCode: InternalFailure` (and are not delivered).
    FailPutEventsEntries { entries: u32 },
    /// The next `calls` PutEvents calls get a 500 InternalException.
    PutEventsDown { calls: u32 },
    /// A token bucket on `operation`: `burst` calls at once, refilled at `per_second`; the
    /// excess is throttled with a Retry-After of the time until the next token (at least 1 s).
    /// Stays until the faults are cleared.
    RateLimit {
        operation: Operation,
        per_second: f64,
        burst: u32,
    },
}

/// DRS service quotas (DRS guide, "Disaster recovery at scale"); values vary per account, hence
/// configurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Quotas {
    /// L-B827C881.
    pub servers_per_job: usize,
    /// L-05AFA8C6: servers across PENDING and STARTED jobs.
    pub servers_in_active_jobs: usize,
    /// L-D88FAC3A: PENDING and STARTED jobs.
    pub active_jobs: usize,
}

impl Quotas {
    pub const SERVERS_PER_JOB_CODE: &'static str = "L-B827C881";
    pub const SERVERS_IN_ACTIVE_JOBS_CODE: &'static str = "L-05AFA8C6";
    pub const ACTIVE_JOBS_CODE: &'static str = "L-D88FAC3A";
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            servers_per_job: 100,
            servers_in_active_jobs: 500,
            active_jobs: 20,
        }
    }
}

/// How long a job stays PENDING, then STARTED, before it is COMPLETED. JSON form:
/// `{"pendingSeconds": 1, "startedSeconds": 2}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Lifecycle {
    #[serde(rename = "pendingSeconds", with = "secs_f64")]
    pub pending: Duration,
    #[serde(rename = "startedSeconds", with = "secs_f64")]
    pub started: Duration,
}

impl Lifecycle {
    /// The lifecycle run `scale` times faster (a local run shows a whole failback in seconds).
    pub fn scaled(self, scale: f64) -> Lifecycle {
        let scale = sane_scale(scale);
        Lifecycle {
            pending: self.pending.div_f64(scale),
            started: self.started.div_f64(scale),
        }
    }
}

/// A time scale that can divide a duration: anything else runs at 1.
pub(crate) fn sane_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            pending: Duration::from_secs(1),
            started: Duration::from_secs(2),
        }
    }
}

/// Everything a simulator starts with.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub fleet: Fleet,
    pub quotas: Quotas,
    pub lifecycle: Lifecycle,
    /// Page size when a Describe call sends no `maxResults`.
    pub page_size: usize,
    /// Upper bound on `maxResults`, so short pages can be forced (default 1000).
    pub max_page_size: usize,
    pub faults: Vec<Fault>,
    /// Added before every API call is handled (admin calls excluded).
    pub latency: Option<Duration>,
    pub region: String,
    pub account_id: String,
    /// When false every DRS call answers UninitializedAccountException.
    pub account_initialized: bool,
    /// When false, refusals say nothing about the instance at fault, as AWS is free to answer: a
    /// ConflictException without `resourceId` and without the id in its message, a
    /// ValidationException without `fieldList`.
    pub error_details: bool,
    /// With `error_details`, a refusal names the instance at fault in its message only, without
    /// `resourceId`: the caller has to read the id out of the text (as from a ValidationException
    /// that says which instance in words).
    pub culprit_in_message_only: bool,
    /// Read-after-write lag, which nothing in the DRS API rules out: a new job, and the
    /// instances' failback fields (`state`, `failbackJobID`), appear to Describe calls only this
    /// long after the launch, while DRS's own conflict check sees them at once.
    pub visibility_lag: Duration,
    /// Reported by DRS users: a COMPLETED job's `participatingServers` no longer carry
    /// `recoveryInstanceID`.
    pub completed_jobs_without_instance_ids: bool,
    /// Reported by DRS users: a server's `launchStatus` stays PENDING while DRS converts, until
    /// the instance's failback state is final.
    pub launch_status_stays_pending: bool,
    /// A COMPLETED job's instances show FAILBACK_IN_PROGRESS this long before their final
    /// state: nothing promises the two move together.
    pub final_state_lag: Duration,
    /// Finished jobs the account ran before (drills): a long history to page through.
    pub history: History,
    /// Jobs run this many times faster than `lifecycle` says: a realistic lifecycle (minutes)
    /// in a local run that shows a whole failback in seconds.
    pub time_scale: f64,
    /// Jobs whose lengths vary: each job's STARTED phase lasts `lifecycle.started` plus a share
    /// of this, spread evenly and the same from run to run (the k-th job created gets the
    /// fractional part of k × 0.618…). Zero (the default): every job as long as the lifecycle.
    pub started_spread: Duration,
    /// Other (account, region)s, each a whole simulator of its own, reached by a call signed
    /// for its region with keys of its account (a session of one of its [`Role`]s).
    pub targets: Vec<SimConfig>,
    /// IAM roles target accounts hold, which the home account may assume through STS.
    pub roles: Vec<Role>,
}

/// A role a target account holds: `arn:aws:iam::<accountId>:role/<name>`, assumable by the home
/// account with `externalId` when one is set (and only then).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    pub account_id: String,
    pub name: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

impl Role {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account_id, self.name)
    }
}

/// The unkind settings, changed while the simulator runs (absent ones stay as they are).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub error_details: Option<bool>,
    pub culprit_in_message_only: Option<bool>,
    pub visibility_lag_seconds: Option<f64>,
    #[serde(rename = "completedJobsWithoutInstanceIDs")]
    pub completed_jobs_without_instance_ids: Option<bool>,
    pub launch_status_stays_pending: Option<bool>,
    pub final_state_lag_seconds: Option<f64>,
    pub history: Option<History>,
}

/// An account's old jobs, all COMPLETED drills of servers outside the fleet, spread evenly over
/// the `days` before the simulator started. JSON: `{"jobs": 50000, "days": 365}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct History {
    pub jobs: usize,
    pub days: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            fleet: Fleet::default(),
            quotas: Quotas::default(),
            lifecycle: Lifecycle::default(),
            page_size: 10,
            max_page_size: 1000,
            faults: Vec::new(),
            latency: None,
            region: "us-east-1".to_owned(),
            account_id: "111122223333".to_owned(),
            account_initialized: true,
            error_details: true,
            culprit_in_message_only: false,
            visibility_lag: Duration::ZERO,
            completed_jobs_without_instance_ids: false,
            launch_status_stays_pending: false,
            final_state_lag: Duration::ZERO,
            history: History::default(),
            time_scale: 1.0,
            started_spread: Duration::ZERO,
            targets: Vec::new(),
            roles: Vec::new(),
        }
    }
}

/// The binary's `--config` file. Every field is optional; absent ones keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    quotas: Option<Quotas>,
    lifecycle: Option<Lifecycle>,
    page_size: Option<usize>,
    max_page_size: Option<usize>,
    #[serde(default)]
    faults: Vec<Fault>,
    latency_ms: Option<u64>,
    region: Option<String>,
    account_id: Option<String>,
    account_initialized: Option<bool>,
    error_details: Option<bool>,
    culprit_in_message_only: Option<bool>,
    visibility_lag_seconds: Option<f64>,
    #[serde(rename = "completedJobsWithoutInstanceIDs")]
    completed_jobs_without_instance_ids: Option<bool>,
    launch_status_stays_pending: Option<bool>,
    final_state_lag_seconds: Option<f64>,
    history: Option<History>,
    time_scale: Option<f64>,
    /// Inline fleet, same form as a `--fleet` file.
    fleet: Option<serde_json::Value>,
    /// Other (account, region)s: each a config of this form with its `accountId` and `region`,
    /// starting from this one's settings without its fleet, faults and history.
    targets: Option<Vec<serde_json::Value>>,
    roles: Option<Vec<Role>>,
}

impl SimConfig {
    /// Applies a config file (JSON) on top of `self`. Faults are appended.
    pub fn merge_json(&mut self, json: &str) -> Result<(), SimError> {
        let file: ConfigFile = serde_json::from_str(json).map_err(|source| SimError::Json {
            what: "config",
            source,
        })?;
        if let Some(q) = file.quotas {
            self.quotas = q;
        }
        if let Some(l) = file.lifecycle {
            self.lifecycle = l;
        }
        if let Some(p) = file.page_size {
            self.page_size = p;
        }
        if let Some(p) = file.max_page_size {
            self.max_page_size = p;
        }
        self.faults.extend(file.faults);
        if let Some(ms) = file.latency_ms {
            self.latency = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(r) = file.region {
            self.region = r;
        }
        if let Some(a) = file.account_id {
            self.account_id = a;
        }
        if let Some(i) = file.account_initialized {
            self.account_initialized = i;
        }
        if let Some(d) = file.error_details {
            self.error_details = d;
        }
        if let Some(only) = file.culprit_in_message_only {
            self.culprit_in_message_only = only;
        }
        if let Some(lag) = file.visibility_lag_seconds {
            self.visibility_lag = Duration::try_from_secs_f64(lag)
                .map_err(|e| SimError::Config(format!("visibilityLagSeconds: {e}")))?;
        }
        if let Some(d) = file.completed_jobs_without_instance_ids {
            self.completed_jobs_without_instance_ids = d;
        }
        if let Some(p) = file.launch_status_stays_pending {
            self.launch_status_stays_pending = p;
        }
        if let Some(lag) = file.final_state_lag_seconds {
            self.final_state_lag = Duration::try_from_secs_f64(lag)
                .map_err(|e| SimError::Config(format!("finalStateLagSeconds: {e}")))?;
        }
        if let Some(h) = file.history {
            self.history = h;
        }
        if let Some(scale) = file.time_scale {
            self.time_scale = scale;
        }
        if let Some(fleet) = file.fleet {
            self.fleet = Fleet::from_json(&fleet.to_string())?;
        }
        if let Some(roles) = file.roles {
            self.roles = roles;
        }
        if let Some(targets) = file.targets {
            self.targets = targets
                .iter()
                .map(|t| {
                    let mut target = self.target_base();
                    target.merge_json(&t.to_string())?;
                    Ok(target)
                })
                .collect::<Result<_, SimError>>()?;
        }
        self.check()
    }

    /// What a target starts from: this simulator's settings, none of its instances, faults,
    /// history, targets or roles.
    pub fn target_base(&self) -> SimConfig {
        SimConfig {
            fleet: Fleet::default(),
            faults: Vec::new(),
            history: History::default(),
            targets: Vec::new(),
            roles: Vec::new(),
            ..self.clone()
        }
    }

    pub(crate) fn check(&self) -> Result<(), SimError> {
        if self.page_size == 0 || self.max_page_size == 0 {
            return Err(SimError::Config("page sizes must be at least 1".into()));
        }
        let q = &self.quotas;
        if q.servers_per_job == 0 || q.servers_in_active_jobs == 0 || q.active_jobs == 0 {
            return Err(SimError::Config("quotas must be at least 1".into()));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SimError::Config("accountId must be 12 digits".into()));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SimError::Config(format!("bad region {:?}", self.region)));
        }
        for fault in &self.faults {
            fault.check().map_err(SimError::Config)?;
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(SimError::Config(format!(
                "timeScale must be a positive number, got {}",
                self.time_scale
            )));
        }
        if self.history.jobs > 1_000_000 || !(0.0..=3650.0).contains(&self.history.days) {
            return Err(SimError::Config(
                "history: at most 1000000 jobs over 0-3650 days".into(),
            ));
        }
        let mut seen = vec![(self.account_id.as_str(), self.region.as_str())];
        for target in &self.targets {
            target.check()?;
            if !target.targets.is_empty() || !target.roles.is_empty() {
                return Err(SimError::Config(
                    "a target holds no targets or roles of its own (roles go at the top)".into(),
                ));
            }
            let key = (target.account_id.as_str(), target.region.as_str());
            if seen.contains(&key) {
                return Err(SimError::Config(format!(
                    "target {}/{} is given twice (or is the home account and region)",
                    key.0, key.1
                )));
            }
            seen.push(key);
        }
        for role in &self.roles {
            let valid_name = !role.name.is_empty()
                && role.name.len() <= 64
                && role
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
            if role.account_id.len() != 12 || !role.account_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SimError::Config(format!(
                    "role {}: accountId must be 12 digits",
                    role.name
                )));
            }
            if !valid_name {
                return Err(SimError::Config(format!("bad role name {:?}", role.name)));
            }
        }
        Ok(())
    }
}

impl Fault {
    /// DRS failing `calls` calls of `operation` (after `after` that went through) with a bare 500
    /// InternalServerException, `message` its only detail: DRS down, for the tests' purposes.
    pub fn internal_error(operation: Operation, calls: u32, after: u32, message: &str) -> Fault {
        Fault::Fail {
            operation,
            calls,
            after,
            status: 500,
            error_type: "InternalServerException".into(),
            message: message.into(),
            members: serde_json::Map::new(),
            retry_after: None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        match *self {
            Fault::HangAfterAccept { seconds, .. } | Fault::Hang { seconds, .. }
                if !(0.0..=3600.0).contains(&seconds) =>
            {
                Err(format!(
                    "hang seconds must be within 0..=3600, got {seconds}"
                ))
            }
            Fault::RateLimit {
                per_second, burst, ..
            } if !(per_second > 0.0 && per_second.is_finite()) || burst == 0 => {
                Err("rateLimit needs perSecond > 0 and burst >= 1".into())
            }
            Fault::Fail {
                status,
                ref error_type,
                ..
            } if !(400..=599).contains(&status) || error_type.is_empty() => Err(format!(
                "fail needs an error status (400-599) and an errorType, got {status} {error_type:?}"
            )),
            _ => Ok(()),
        }
    }
}

mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_json_form() {
        let f: Fault = serde_json::from_str(
            r#"{"type":"throttle","operation":"StartFailbackLaunch","calls":2,"retryAfterSeconds":3}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::Throttle {
                operation: Operation::StartFailbackLaunch,
                calls: 2,
                retry_after_seconds: 3
            }
        );
        let f: Fault = serde_json::from_str(
            r#"{"type":"rateLimit","operation":"PutEvents","perSecond":5,"burst":2}"#,
        )
        .unwrap();
        assert!(matches!(f, Fault::RateLimit { burst: 2, .. }));
        let back = serde_json::to_value(Fault::InternalErrorAfterCreate { calls: 1 }).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"type": "internalErrorAfterCreate", "calls": 1})
        );
        assert!(serde_json::from_str::<Fault>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn config_file_merges_and_checks() {
        let mut c = SimConfig::default();
        c.merge_json(
            r#"{"quotas":{"activeJobs":3},"lifecycle":{"pendingSeconds":0.5,"startedSeconds":0},
                "pageSize":4,"latencyMs":7,"faults":[{"type":"putEventsDown","calls":1}]}"#,
        )
        .unwrap();
        assert_eq!(c.quotas.active_jobs, 3);
        assert_eq!(c.quotas.servers_per_job, 100);
        assert_eq!(c.lifecycle.pending, Duration::from_millis(500));
        assert_eq!(c.page_size, 4);
        assert_eq!(c.latency, Some(Duration::from_millis(7)));
        assert_eq!(c.faults.len(), 1);
        assert!(
            SimConfig::default()
                .merge_json(r#"{"pageSize":0}"#)
                .is_err()
        );
        assert!(SimConfig::default().merge_json(r#"{"bogus":1}"#).is_err());
        let mut unkind = SimConfig::default();
        unkind
            .merge_json(
                r#"{"visibilityLagSeconds":2.5,"errorDetails":false,
                    "completedJobsWithoutInstanceIDs":true,"history":{"jobs":10,"days":1},
                    "launchStatusStaysPending":true,"finalStateLagSeconds":30,"timeScale":60}"#,
            )
            .unwrap();
        assert_eq!(unkind.visibility_lag, Duration::from_millis(2500));
        assert!(unkind.launch_status_stays_pending);
        assert_eq!(unkind.final_state_lag, Duration::from_secs(30));
        assert_eq!(unkind.time_scale, 60.0);
        assert!(!unkind.error_details && unkind.completed_jobs_without_instance_ids);
        assert_eq!(unkind.history.jobs, 10);
        assert!(
            SimConfig::default()
                .merge_json(r#"{"lifecycle":{"pendingSeconds":-1}}"#)
                .is_err()
        );
    }
}
