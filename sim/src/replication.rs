//! Failback replication: what a recovery instance shows while the Failback Client at the original
//! site copies its data back, over simulated time. Until the client connects the instance is
//! FAILBACK_NOT_STARTED with no `dataReplicationInfo`; once it does, replication is INITIATING
//! (the instance FAILBACK_NOT_READY_FOR_LAUNCH), then INITIAL_SYNC with its disks' bytes filling at
//! the configured rate and an ETA, then CONTINUOUS — and only then FAILBACK_READY_FOR_LAUNCH. A
//! replication may stall (STALLED, no ETA, progress frozen; DRS names no error) or the client may
//! lose its connection (DISCONNECTED, with FAILBACK_CLIENT_NOT_SEEN); a client may also never
//! connect. Nothing here is promised by DRS in this order: it is the world the function must read,
//! not a rule it may rely on.

use serde::{Deserialize, Serialize};

/// How long replication shows INITIATING after the client connects (simulated seconds), unless the
/// replication says otherwise.
pub const INITIATING_SECONDS: u64 = 120;

/// One instance's failback replication as configured (fleet file `"replication": {...}`), in
/// simulated seconds from when the simulator starts (or is reset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replication {
    /// Bytes to copy back (the instance's one disk).
    pub total_bytes: u64,
    /// How fast they copy.
    pub bytes_per_second: u64,
    /// When the Failback Client connects.
    #[serde(default)]
    pub connects_after_seconds: u64,
    /// The client never connects: the instance stays FAILBACK_NOT_STARTED.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_connects: bool,
    /// Seconds after the client connects at which replication stalls for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalls_after_seconds: Option<u64>,
    /// Seconds after the client connects at which it disconnects for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnects_after_seconds: Option<u64>,
    /// How long it shows INITIATING ([`INITIATING_SECONDS`] when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiating_seconds: Option<u64>,
}

/// Where a failback stands before its launch, as its failback state shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// FAILBACK_NOT_STARTED: no client yet.
    NotStarted,
    /// FAILBACK_NOT_READY_FOR_LAUNCH.
    NotReady,
    /// FAILBACK_READY_FOR_LAUNCH.
    Ready,
}

/// What DescribeRecoveryInstances shows of a replication at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationView {
    pub failback_state: Readiness,
    /// `dataReplicationInfo`, once the client connected.
    pub info: Option<ReplicationInfo>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReplicationInfo {
    pub state: &'static str,
    pub total_bytes: u64,
    pub replicated_bytes: u64,
    /// Simulated seconds until the initial sync is done (INITIAL_SYNC only).
    pub eta_seconds: Option<u64>,
    pub error: Option<&'static str>,
}

impl Replication {
    /// Simulated seconds from the start until the instance shows ready, if it ever does.
    pub fn ready_after_seconds(&self) -> Option<u64> {
        if self.never_connects {
            return None;
        }
        let sync = self.initiating() + self.total_bytes.div_ceil(self.bytes_per_second.max(1));
        let interrupted = [self.stalls_after_seconds, self.disconnects_after_seconds]
            .into_iter()
            .flatten()
            .any(|at| at < sync);
        (!interrupted).then_some(self.connects_after_seconds + sync)
    }

    fn initiating(&self) -> u64 {
        self.initiating_seconds.unwrap_or(INITIATING_SECONDS)
    }

    /// The replication `elapsed` simulated seconds after the start.
    pub fn view(&self, elapsed: u64) -> ReplicationView {
        let initiating = self.initiating();
        if self.never_connects || elapsed < self.connects_after_seconds {
            return ReplicationView {
                failback_state: Readiness::NotStarted,
                info: None,
            };
        }
        let since = elapsed - self.connects_after_seconds;
        let rate = self.bytes_per_second.max(1);
        let copied = |seconds: u64| {
            seconds
                .saturating_sub(initiating)
                .saturating_mul(rate)
                .min(self.total_bytes)
        };
        let stop = [
            self.stalls_after_seconds.map(|at| (at, "STALLED", None)),
            self.disconnects_after_seconds
                .map(|at| (at, "DISCONNECTED", Some("FAILBACK_CLIENT_NOT_SEEN"))),
        ]
        .into_iter()
        .flatten()
        .filter(|(at, _, _)| *at <= since)
        .min_by_key(|(at, _, _)| *at);
        let sync_done = initiating + self.total_bytes.div_ceil(rate);
        if let Some((at, state, error)) = stop
            && at < sync_done
        {
            return ReplicationView {
                failback_state: Readiness::NotReady,
                info: Some(ReplicationInfo {
                    state,
                    total_bytes: self.total_bytes,
                    replicated_bytes: copied(at),
                    eta_seconds: None,
                    error,
                }),
            };
        }
        let (state, failback_state, eta_seconds) = if since < initiating {
            ("INITIATING", Readiness::NotReady, None)
        } else if since < sync_done {
            ("INITIAL_SYNC", Readiness::NotReady, Some(sync_done - since))
        } else {
            ("CONTINUOUS", Readiness::Ready, None)
        };
        ReplicationView {
            failback_state,
            info: Some(ReplicationInfo {
                state,
                total_bytes: self.total_bytes,
                replicated_bytes: copied(since),
                eta_seconds,
                error: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gib(n: u64) -> u64 {
        n << 30
    }

    /// 10 GiB at 10 MiB/s, client at 60 s: NOT_STARTED, INITIATING, INITIAL_SYNC with progress
    /// and an ETA, then CONTINUOUS and ready — at exactly the second `ready_after_seconds` says.
    #[test]
    fn a_replication_goes_from_not_started_to_ready() {
        let r = Replication {
            total_bytes: gib(10),
            bytes_per_second: 10 << 20,
            connects_after_seconds: 60,
            never_connects: false,
            stalls_after_seconds: None,
            disconnects_after_seconds: None,
            initiating_seconds: None,
        };
        assert_eq!(r.view(59).failback_state, Readiness::NotStarted);
        assert_eq!(r.view(59).info, None);
        assert_eq!(r.view(60).info.unwrap().state, "INITIATING");
        let mid = r.view(60 + INITIATING_SECONDS + 512).info.unwrap();
        assert_eq!(
            (mid.state, mid.replicated_bytes, mid.eta_seconds),
            ("INITIAL_SYNC", 512 * (10 << 20), Some(512))
        );
        let ready = r.ready_after_seconds().unwrap();
        assert_eq!(ready, 60 + INITIATING_SECONDS + 1024);
        assert_eq!(r.view(ready - 1).failback_state, Readiness::NotReady);
        let done = r.view(ready);
        assert_eq!(done.failback_state, Readiness::Ready);
        assert_eq!(done.info.unwrap().state, "CONTINUOUS");
    }

    #[test]
    fn a_stall_freezes_progress_and_a_lost_client_names_its_error() {
        let stalled = Replication {
            total_bytes: gib(10),
            bytes_per_second: 10 << 20,
            connects_after_seconds: 0,
            never_connects: false,
            stalls_after_seconds: Some(INITIATING_SECONDS + 100),
            disconnects_after_seconds: None,
            initiating_seconds: None,
        };
        assert_eq!(stalled.ready_after_seconds(), None);
        let at = stalled.view(10_000);
        assert_eq!(at.failback_state, Readiness::NotReady);
        let info = at.info.unwrap();
        assert_eq!(
            (info.state, info.replicated_bytes, info.eta_seconds),
            ("STALLED", 100 * (10 << 20), None)
        );
        let lost = Replication {
            stalls_after_seconds: None,
            disconnects_after_seconds: Some(10),
            ..stalled.clone()
        };
        let info = lost.view(10_000).info.unwrap();
        assert_eq!(
            (info.state, info.error),
            ("DISCONNECTED", Some("FAILBACK_CLIENT_NOT_SEEN"))
        );
        let never = Replication {
            never_connects: true,
            ..stalled
        };
        assert_eq!(never.ready_after_seconds(), None);
        assert_eq!(never.view(1 << 40).failback_state, Readiness::NotStarted);
    }
}
