//! The recovery instances a simulator starts with, and what each one's launch will end as.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::model;
use crate::replication::Replication;

/// DRS `FailbackState`, with the SDK's variant names and the wire's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailbackState {
    FailbackNotStarted,
    FailbackInProgress,
    FailbackReadyForLaunch,
    FailbackCompleted,
    FailbackError,
    FailbackNotReadyForLaunch,
    FailbackLaunchStateNotAvailable,
}

impl FailbackState {
    pub const ALL: [FailbackState; 7] = [
        FailbackState::FailbackNotStarted,
        FailbackState::FailbackInProgress,
        FailbackState::FailbackReadyForLaunch,
        FailbackState::FailbackCompleted,
        FailbackState::FailbackError,
        FailbackState::FailbackNotReadyForLaunch,
        FailbackState::FailbackLaunchStateNotAvailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailbackState::FailbackNotStarted => "FAILBACK_NOT_STARTED",
            FailbackState::FailbackInProgress => "FAILBACK_IN_PROGRESS",
            FailbackState::FailbackReadyForLaunch => "FAILBACK_READY_FOR_LAUNCH",
            FailbackState::FailbackCompleted => "FAILBACK_COMPLETED",
            FailbackState::FailbackError => "FAILBACK_ERROR",
            FailbackState::FailbackNotReadyForLaunch => "FAILBACK_NOT_READY_FOR_LAUNCH",
            FailbackState::FailbackLaunchStateNotAvailable => "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE",
        }
    }

    pub fn parse(s: &str) -> Option<FailbackState> {
        FailbackState::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// How an instance's launch ends once its job completes (`launchStatus`): LAUNCHED leaves the
/// instance FAILBACK_COMPLETED; FAILED and TERMINATED leave it FAILBACK_ERROR, with the
/// instance's `failureEvent` in the job log; LAUNCHED_THEN_FAILED shows the launch LAUNCHED yet
/// leaves the instance FAILBACK_ERROR (the failback state is the final word, and nothing makes
/// the two agree), with its `failureEvent` logged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LaunchResult {
    #[default]
    Launched,
    Failed,
    Terminated,
    LaunchedThenFailed,
}

impl LaunchResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchResult::Launched => "LAUNCHED",
            LaunchResult::Failed => "FAILED",
            LaunchResult::Terminated => "TERMINATED",
            LaunchResult::LaunchedThenFailed => "LAUNCHED",
        }
    }

    pub fn failed(self) -> bool {
        self != LaunchResult::Launched
    }
}

/// The job log event of a launch that fails when the fleet names none.
pub const DEFAULT_FAILURE_EVENT: &str = "LAUNCH_FAILED";

/// One recovery instance as configured. JSON form (fleet file):
/// `{"recoveryInstanceID": "i-…", "sourceServerID": "s-…", "ec2InstanceID": "i-…",
///   "state": "FAILBACK_READY_FOR_LAUNCH", "failbackJobID": "drsjob-…", "launchResult": "FAILED"}`
/// where only `recoveryInstanceID` is required (state defaults to ready, result to LAUNCHED).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetInstance {
    #[serde(rename = "recoveryInstanceID")]
    pub recovery_instance_id: String,
    #[serde(rename = "sourceServerID", default)]
    pub source_server_id: String,
    #[serde(rename = "ec2InstanceID", default)]
    pub ec2_instance_id: String,
    #[serde(default = "ready")]
    pub state: FailbackState,
    #[serde(
        rename = "failbackJobID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failback_job_id: Option<String>,
    #[serde(default)]
    pub launch_result: LaunchResult,
    /// Looks ready, yet DRS refuses to launch it (ConflictException): the instance DRS turns away
    /// for reasons a pre-flight read cannot see.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refuse_launch: bool,
    /// The job log event (`JobLogEvent`, e.g. CONVERSION_FAIL) a failed launch logs; LAUNCH_FAILED
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_event: Option<String>,
    /// The recovery instance's own tags, as DescribeRecoveryInstances shows them: what a failback
    /// plan's tag selector matches.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Failback replication over simulated time: while set, the failback state is the
    /// replication's (`state` is not used) until a launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
}

fn ready() -> FailbackState {
    FailbackState::FailbackReadyForLaunch
}

impl FleetInstance {
    /// A ready instance whose other ids are derived from `recovery_instance_id`.
    pub fn new(recovery_instance_id: impl Into<String>) -> Self {
        let id = recovery_instance_id.into();
        FleetInstance {
            source_server_id: source_server_for(&id),
            ec2_instance_id: id.clone(),
            recovery_instance_id: id,
            state: ready(),
            failback_job_id: None,
            launch_result: LaunchResult::Launched,
            refuse_launch: false,
            failure_event: None,
            tags: std::collections::BTreeMap::new(),
            replication: None,
        }
    }
}

/// The recovery instances of a simulated account, in a stable order (the order Describe pages
/// follow).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Fleet {
    instances: Vec<FleetInstance>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FleetFile {
    List(Vec<FleetInstance>),
    Object { instances: Vec<FleetInstance> },
}

impl Fleet {
    pub fn new() -> Self {
        Fleet::default()
    }

    /// `n` instances in `state`, ids deterministic: instance `k` is always the same id
    /// (`i-` + 17 hex, source server `s-` + 17 hex).
    pub fn generated(n: usize, state: FailbackState) -> Self {
        let instances = (0..n as u64)
            .map(|k| {
                let mut inst = FleetInstance::new(format!("i-0{:016x}", splitmix64(k)));
                inst.source_server_id = format!("s-1{:016x}", splitmix64(k ^ 0x5eed_0000_0000));
                inst.state = state;
                inst
            })
            .collect();
        Fleet { instances }
    }

    /// Every given id, ready for launch, in order, duplicates dropped. Ids that no DRS request
    /// could name (malformed per the model) are skipped, so a sample request with deliberately
    /// bad ids still makes a usable fleet.
    pub fn matching<I>(ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut seen = HashSet::new();
        let instances = ids
            .into_iter()
            .filter(|id| model::check_value("RecoveryInstanceID", id.as_ref()).is_ok())
            .filter(|id| seen.insert(id.as_ref().to_owned()))
            .map(|id| FleetInstance::new(id.as_ref()))
            .collect();
        Fleet { instances }
    }

    /// A fleet file: a JSON list of instances or `{"instances": [...]}`. Ids are checked against
    /// the model; missing source server / EC2 ids are derived.
    pub fn from_json(json: &str) -> Result<Self, SimError> {
        let file: FleetFile = serde_json::from_str(json).map_err(|source| SimError::Json {
            what: "fleet",
            source,
        })?;
        let list = match file {
            FleetFile::List(l) | FleetFile::Object { instances: l } => l,
        };
        let mut fleet = Fleet::new();
        for inst in list {
            fleet.try_push(inst)?;
        }
        Ok(fleet)
    }

    /// Adds an instance after checking its ids against the model; fills derived ids.
    pub fn try_push(&mut self, mut inst: FleetInstance) -> Result<(), SimError> {
        let id = inst.recovery_instance_id.clone();
        model::check_value("RecoveryInstanceID", &id)
            .map_err(|e| SimError::Fleet(format!("recoveryInstanceID {id:?}: {e}")))?;
        if inst.source_server_id.is_empty() {
            inst.source_server_id = source_server_for(&id);
        }
        if inst.ec2_instance_id.is_empty() {
            inst.ec2_instance_id = id.clone();
        }
        model::check_value("SourceServerID", &inst.source_server_id)
            .map_err(|e| SimError::Fleet(format!("{id}: sourceServerID: {e}")))?;
        model::check_value("EC2InstanceID", &inst.ec2_instance_id)
            .map_err(|e| SimError::Fleet(format!("{id}: ec2InstanceID: {e}")))?;
        if let Some(job) = &inst.failback_job_id {
            model::check_value("JobID", job)
                .map_err(|e| SimError::Fleet(format!("{id}: failbackJobID: {e}")))?;
        }
        if let Some(event) = &inst.failure_event {
            model::check_value("JobLogEvent", event)
                .map_err(|e| SimError::Fleet(format!("{id}: failureEvent: {e}")))?;
        }
        if self.get(&id).is_some() {
            return Err(SimError::Fleet(format!(
                "duplicate recoveryInstanceID {id}"
            )));
        }
        self.instances.push(inst);
        Ok(())
    }

    pub fn with_state(mut self, id: &str, state: FailbackState) -> Self {
        self.set_state(id, state);
        self
    }

    pub fn with_launch_result(mut self, id: &str, result: LaunchResult) -> Self {
        self.set_launch_result(id, result);
        self
    }

    /// DRS will refuse to launch `id` although it looks ready. False when `id` is not in the fleet.
    pub fn set_refuse_launch(&mut self, id: &str) -> bool {
        self.get_mut(id).map(|i| i.refuse_launch = true).is_some()
    }

    /// False when `id` is not in the fleet.
    pub fn set_state(&mut self, id: &str, state: FailbackState) -> bool {
        self.get_mut(id).map(|i| i.state = state).is_some()
    }

    /// False when `id` is not in the fleet.
    pub fn set_launch_result(&mut self, id: &str, result: LaunchResult) -> bool {
        self.get_mut(id).map(|i| i.launch_result = result).is_some()
    }

    /// The launch of `id` fails with this job log event. False when `id` is not in the fleet.
    pub fn set_failure(&mut self, id: &str, event: &str) -> bool {
        self.get_mut(id)
            .map(|i| {
                i.launch_result = LaunchResult::Failed;
                i.failure_event = Some(event.to_owned());
            })
            .is_some()
    }

    /// `id` replicates back over simulated time. False when `id` is not in the fleet.
    pub fn set_replication(&mut self, id: &str, replication: Replication) -> bool {
        self.get_mut(id)
            .map(|i| i.replication = Some(replication))
            .is_some()
    }

    /// Gives `id` these tags (what a plan's selector matches). False when `id` is not in the fleet.
    pub fn set_tags(&mut self, id: &str, tags: &[(&str, &str)]) -> bool {
        self.get_mut(id)
            .map(|i| {
                i.tags = tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
            })
            .is_some()
    }

    pub fn get(&self, id: &str) -> Option<&FleetInstance> {
        self.instances.iter().find(|i| i.recovery_instance_id == id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut FleetInstance> {
        self.instances
            .iter_mut()
            .find(|i| i.recovery_instance_id == id)
    }

    pub fn instances(&self) -> &[FleetInstance] {
        &self.instances
    }

    pub fn ids(&self) -> Vec<String> {
        self.instances
            .iter()
            .map(|i| i.recovery_instance_id.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
}

impl FromIterator<FleetInstance> for Fleet {
    /// Unchecked; use [`Fleet::try_push`] for instances from outside.
    fn from_iter<T: IntoIterator<Item = FleetInstance>>(iter: T) -> Self {
        Fleet {
            instances: iter.into_iter().collect(),
        }
    }
}

/// A stable, valid source server id for a recovery instance (FNV-1a of the id).
fn source_server_for(id: &str) -> String {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("s-0{:016x}", splitmix64(h))
}

// A bijection on u64, so distinct indexes give distinct ids.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_unique_and_stable() {
        let a = Fleet::generated(300, FailbackState::FailbackReadyForLaunch);
        let b = Fleet::generated(300, FailbackState::FailbackReadyForLaunch);
        assert_eq!(a, b);
        let ids: HashSet<_> = a.ids().into_iter().collect();
        assert_eq!(ids.len(), 300);
        for i in a.instances() {
            assert_eq!(i.recovery_instance_id.len(), 19);
            model::check_value("RecoveryInstanceID", &i.recovery_instance_id).unwrap();
            model::check_value("SourceServerID", &i.source_server_id).unwrap();
        }
    }

    #[test]
    fn from_json_both_forms_and_errors() {
        let f = Fleet::from_json(
            r#"[{"recoveryInstanceID":"i-0123456789abcdef0","state":"FAILBACK_NOT_STARTED"},
                {"recoveryInstanceID":"i-0123456789abcdef1","launchResult":"FAILED"}]"#,
        )
        .unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f.instances()[0].state, FailbackState::FailbackNotStarted);
        assert_eq!(
            f.instances()[1].state,
            FailbackState::FailbackReadyForLaunch
        );
        assert_eq!(f.instances()[1].launch_result, LaunchResult::Failed);
        let g = Fleet::from_json(r#"{"instances":[{"recoveryInstanceID":"i-0123456789abcdef0"}]}"#)
            .unwrap();
        assert_eq!(g.len(), 1);
        assert!(Fleet::from_json(r#"[{"recoveryInstanceID":"x-1"}]"#).is_err());
        assert!(Fleet::from_json(r#"[{"recoveryInstanceID":"i-0123456789abcdef0"},{"recoveryInstanceID":"i-0123456789abcdef0"}]"#).is_err());
        assert!(Fleet::from_json("{").is_err());
    }

    #[test]
    fn matching_skips_malformed_and_duplicates() {
        let f = Fleet::matching([
            "i-0123456789abcdef0",
            "bad",
            "i-0123456789abcdef0",
            "i-00000001",
        ]);
        assert_eq!(f.ids(), vec!["i-0123456789abcdef0", "i-00000001"]);
        let f = f.with_state("i-00000001", FailbackState::FailbackError);
        assert_eq!(
            f.get("i-00000001").unwrap().state,
            FailbackState::FailbackError
        );
    }
}
