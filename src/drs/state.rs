//! DRS's words for the states the function compares, as types: a job's status and type, a
//! server's launch status in a job, a recovery instance's failback state and a job log's events. Each is read
//! once, in the SDK adapter, from DRS's own spelling (the API model's enums); a word DRS adds later
//! is kept verbatim as `Unknown`, never mistaken for a known one. This file is the only place in
//! the function (besides the adapter) that spells them.

use std::fmt;

use serde::{Serialize, Serializer};

macro_rules! drs_words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A word this version does not know, as DRS spelled it.
            Unknown(String),
        }

        impl $name {
            /// As DRS spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $word,)+
                    Self::Unknown(word) => word,
                }
            }

            /// From DRS's spelling; any other word is `Unknown`.
            pub fn from_name(word: &str) -> Self {
                match word {
                    $($word => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

drs_words! {
    /// A job's `status`.
    JobStatus {
        Pending = "PENDING",
        Started = "STARTED",
        /// DRS has finished the job — which says nothing of whether its servers came back.
        Completed = "COMPLETED",
    }
}

drs_words! {
    /// A job's `type`.
    JobType {
        /// A recovery, drill or failback launch.
        Launch = "LAUNCH",
        /// TerminateRecoveryInstances.
        Terminate = "TERMINATE",
        CreateConvertedSnapshot = "CREATE_CONVERTED_SNAPSHOT",
    }
}

drs_words! {
    /// A server's `launchStatus` in a job.
    LaunchStatus {
        Pending = "PENDING",
        InProgress = "IN_PROGRESS",
        Launched = "LAUNCHED",
        Failed = "FAILED",
        Terminated = "TERMINATED",
    }
}

drs_words! {
    /// A recovery instance's `failback.state`.
    FailbackState {
        NotStarted = "FAILBACK_NOT_STARTED",
        InProgress = "FAILBACK_IN_PROGRESS",
        /// The only state from which DRS launches a failback.
        ReadyForLaunch = "FAILBACK_READY_FOR_LAUNCH",
        Completed = "FAILBACK_COMPLETED",
        Error = "FAILBACK_ERROR",
        NotReadyForLaunch = "FAILBACK_NOT_READY_FOR_LAUNCH",
        LaunchStateNotAvailable = "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE",
    }
}

drs_words! {
    /// A recovery instance's failback replication state (`dataReplicationInfo.dataReplicationState`).
    ReplicationState {
        Stopped = "STOPPED",
        Initiating = "INITIATING",
        InitialSync = "INITIAL_SYNC",
        Backlog = "BACKLOG",
        CreatingSnapshot = "CREATING_SNAPSHOT",
        Continuous = "CONTINUOUS",
        Paused = "PAUSED",
        Rescan = "RESCAN",
        Stalled = "STALLED",
        Disconnected = "DISCONNECTED",
        ReplicationStateNotAvailable = "REPLICATION_STATE_NOT_AVAILABLE",
        NotStarted = "NOT_STARTED",
    }
}

drs_words! {
    /// An event of a job's log (`DescribeJobLogItems`).
    JobLogEvent {
        JobStart = "JOB_START",
        ServerSkipped = "SERVER_SKIPPED",
        CleanupStart = "CLEANUP_START",
        CleanupEnd = "CLEANUP_END",
        CleanupFail = "CLEANUP_FAIL",
        SnapshotStart = "SNAPSHOT_START",
        SnapshotEnd = "SNAPSHOT_END",
        SnapshotFail = "SNAPSHOT_FAIL",
        UsingPreviousSnapshot = "USING_PREVIOUS_SNAPSHOT",
        UsingPreviousSnapshotFailed = "USING_PREVIOUS_SNAPSHOT_FAILED",
        ConversionStart = "CONVERSION_START",
        ConversionEnd = "CONVERSION_END",
        ConversionFail = "CONVERSION_FAIL",
        LaunchStart = "LAUNCH_START",
        LaunchFailed = "LAUNCH_FAILED",
        JobCancel = "JOB_CANCEL",
        JobEnd = "JOB_END",
        DeployNetworkConfigurationStart = "DEPLOY_NETWORK_CONFIGURATION_START",
        DeployNetworkConfigurationEnd = "DEPLOY_NETWORK_CONFIGURATION_END",
        DeployNetworkConfigurationFailed = "DEPLOY_NETWORK_CONFIGURATION_FAILED",
        UpdateNetworkConfigurationStart = "UPDATE_NETWORK_CONFIGURATION_START",
        UpdateNetworkConfigurationEnd = "UPDATE_NETWORK_CONFIGURATION_END",
        UpdateNetworkConfigurationFailed = "UPDATE_NETWORK_CONFIGURATION_FAILED",
        UpdateLaunchTemplateStart = "UPDATE_LAUNCH_TEMPLATE_START",
        UpdateLaunchTemplateEnd = "UPDATE_LAUNCH_TEMPLATE_END",
        UpdateLaunchTemplateFailed = "UPDATE_LAUNCH_TEMPLATE_FAILED",
        NetworkRecoveryFail = "NETWORK_RECOVERY_FAIL",
    }
}

impl JobStatus {
    /// PENDING or STARTED: the job counts against the DRS quotas.
    pub fn is_active(&self) -> bool {
        matches!(self, JobStatus::Pending | JobStatus::Started)
    }
}

impl LaunchStatus {
    /// The launch of this server ended without it coming back.
    pub fn is_failure(&self) -> bool {
        matches!(self, LaunchStatus::Failed | LaunchStatus::Terminated)
    }
}

impl ReplicationState {
    /// Data is moving, or about to: the states a healthy failback replication passes through on
    /// its way to CONTINUOUS (README, "Waiting for readiness", for the sources). STALLED and
    /// DISCONNECTED need a person; PAUSED and STOPPED were stopped by one; NOT_AVAILABLE and a
    /// word DRS adds later are not taken for progress.
    pub fn is_on_its_way(&self) -> bool {
        matches!(
            self,
            ReplicationState::NotStarted
                | ReplicationState::Initiating
                | ReplicationState::InitialSync
                | ReplicationState::Backlog
                | ReplicationState::CreatingSnapshot
                | ReplicationState::Continuous
                | ReplicationState::Rescan
        )
    }
}

impl JobLogEvent {
    /// Whether the event says a server's launch went wrong: every `*_FAIL` / `*_FAILED` event, a
    /// skipped server and a cancelled job — a word DRS adds later by the same rule.
    pub fn is_failure(&self) -> bool {
        let word = self.as_str();
        word.ends_with("_FAIL")
            || word.ends_with("_FAILED")
            || matches!(self, JobLogEvent::ServerSkipped | JobLogEvent::JobCancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_are_kept() {
        for state in [FailbackState::ReadyForLaunch, FailbackState::Completed] {
            assert_eq!(FailbackState::from_name(state.as_str()), state);
        }
        let new = FailbackState::from_name("FAILBACK_SOMETHING_NEW");
        assert_eq!(new, FailbackState::Unknown("FAILBACK_SOMETHING_NEW".into()));
        assert_eq!(new.as_str(), "FAILBACK_SOMETHING_NEW");
        assert_eq!(
            serde_json::to_value(LaunchStatus::InProgress).unwrap(),
            "IN_PROGRESS"
        );
        assert!(JobStatus::from_name("STARTED").is_active());
        assert!(!JobStatus::from_name("COMPLETED").is_active());
    }

    #[test]
    fn failure_events_by_the_logs_rule() {
        for word in [
            "CONVERSION_FAIL",
            "LAUNCH_FAILED",
            "SERVER_SKIPPED",
            "JOB_CANCEL",
        ] {
            assert!(JobLogEvent::from_name(word).is_failure(), "{word}");
        }
        for word in ["JOB_START", "LAUNCH_START", "JOB_END"] {
            assert!(!JobLogEvent::from_name(word).is_failure(), "{word}");
        }
        assert!(JobLogEvent::from_name("SOMETHING_NEW_FAILED").is_failure());
    }
}
