//! A recovery instance's failback replication as DRS shows it (`dataReplicationInfo`): the state,
//! the bytes copied back and still to copy over all its disks, the ETA and the error DRS names.

use serde::Serialize;

use super::state::ReplicationState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replication {
    pub state: ReplicationState,
    pub total_bytes: u64,
    pub replicated_bytes: u64,
    /// Written at the source but not yet copied (`backloggedStorageBytes`).
    pub backlogged_bytes: u64,
    /// `etaDateTime`, as DRS wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta: Option<String>,
    /// `lagDuration`, as DRS wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<String>,
    /// `dataReplicationError.error` (a `FailbackReplicationError` word), when DRS names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One disk of `replicatedDisks`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Disk {
    pub total_bytes: u64,
    pub replicated_bytes: u64,
    pub backlogged_bytes: u64,
}

impl Replication {
    /// The disks' bytes summed (a disk DRS left a figure out of counts 0 there).
    pub fn new(state: ReplicationState, disks: impl IntoIterator<Item = Disk>) -> Self {
        let mut replication = Replication {
            state,
            total_bytes: 0,
            replicated_bytes: 0,
            backlogged_bytes: 0,
            eta: None,
            lag: None,
            error: None,
        };
        for disk in disks {
            replication.total_bytes = replication.total_bytes.saturating_add(disk.total_bytes);
            replication.replicated_bytes = replication
                .replicated_bytes
                .saturating_add(disk.replicated_bytes);
            replication.backlogged_bytes = replication
                .backlogged_bytes
                .saturating_add(disk.backlogged_bytes);
        }
        replication
    }

    /// Bytes still to copy before the instance can be ready: what the initial sync has not
    /// copied yet, and the backlog.
    pub fn bytes_left(&self) -> u64 {
        self.total_bytes
            .saturating_sub(self.replicated_bytes)
            .saturating_add(self.backlogged_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_left_add_up_over_the_disks() {
        let r = Replication::new(
            ReplicationState::InitialSync,
            [
                Disk {
                    total_bytes: 100,
                    replicated_bytes: 40,
                    backlogged_bytes: 0,
                },
                Disk {
                    total_bytes: 50,
                    replicated_bytes: 50,
                    backlogged_bytes: 5,
                },
            ],
        );
        assert_eq!(
            (r.total_bytes, r.replicated_bytes, r.bytes_left()),
            (150, 90, 65)
        );
        // DRS's figures need not agree: more copied than there is never underflows.
        let odd = Replication::new(
            ReplicationState::Continuous,
            [Disk {
                total_bytes: 10,
                replicated_bytes: 20,
                backlogged_bytes: u64::MAX,
            }],
        );
        assert_eq!(odd.bytes_left(), u64::MAX);
    }
}
