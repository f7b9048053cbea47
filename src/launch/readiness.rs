//! Readiness: whether a recovery instance that is not FAILBACK_READY_FOR_LAUNCH is on its way
//! there (its failback replication running with no error) or stuck, and what becomes of it — it
//! waits for the next round while the step waits for readiness (`waitForReadySeconds`), else it
//! is skipped with its last state and why. Also what the waiting instances add up to, for the
//! answer, the metrics and the `Failback Instances Waiting` event.

use std::collections::HashMap;

use serde::Serialize;

use super::outcome::{DeferReason, Outcome};
use crate::drs::{FailbackState, RecoveryInstance, Replication};
pub use crate::request::WaitingSummary;
use crate::request::{LaunchRequest, Waiting};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not ready yet, replication on its way: worth waiting for.
    OnItsWay,
    /// Not ready and not getting there on its own: skipped.
    Stuck,
}

/// FAILBACK_READY_FOR_LAUNCH is ready. FAILBACK_NOT_STARTED (the Failback Client has not
/// connected yet) and FAILBACK_NOT_READY_FOR_LAUNCH are on their way while replication shows no
/// state yet or one of [`crate::drs::ReplicationState::is_on_its_way`] with no error; every other
/// case — a launch of its own under way, done, in error, replication stalled, disconnected,
/// paused or in error, a state this version does not know — is stuck.
pub fn readiness(instance: &RecoveryInstance) -> Readiness {
    let failback = &instance.failback_state;
    if *failback == FailbackState::ReadyForLaunch {
        return Readiness::Ready;
    }
    let before_launch = matches!(
        failback,
        FailbackState::NotStarted | FailbackState::NotReadyForLaunch
    );
    let replicating = instance
        .replication
        .as_ref()
        .is_none_or(|r| r.state.is_on_its_way() && r.error.is_none());
    if before_launch && replicating {
        Readiness::OnItsWay
    } else {
        Readiness::Stuck
    }
}

/// How long a step waits for its instances to become ready, and how long it has waited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wait {
    /// `waitForReadySeconds`: 0 waits for nothing.
    pub seconds: u64,
    /// Seconds since the step started, when the request says where its loop stands; without a
    /// loop the caller keeps the time and sends the waiting instances again while it waits.
    pub elapsed: Option<u64>,
}

impl Wait {
    pub fn of(request: &LaunchRequest) -> Self {
        Wait {
            seconds: request.wait_for_ready_seconds,
            elapsed: request.step_loop.as_ref().map(|l| l.elapsed_seconds),
        }
    }

    /// Instances on their way wait for the next round.
    pub fn waits(&self) -> bool {
        self.seconds > 0 && self.elapsed.is_none_or(|elapsed| elapsed < self.seconds)
    }
}

/// The word a waiting instance is announced by: its replication state, or its failback state
/// before DRS shows any replication. A new word is a change worth an event.
pub fn state_word(instance: &RecoveryInstance) -> String {
    match &instance.replication {
        Some(r) => r.state.to_string(),
        None => instance.failback_state.to_string(),
    }
}

/// An instance that is not ready: waiting (deferred `REPLICATING`, with its state word) or
/// skipped with its failback state, its replication state and why it was not waited for.
pub fn not_ready(instance: &RecoveryInstance, wait: Wait) -> Outcome {
    let on_its_way = readiness(instance) == Readiness::OnItsWay;
    if on_its_way && wait.waits() {
        return Outcome::Deferred {
            reason: DeferReason::Replicating,
            code: Some(state_word(instance)),
            error: None,
        };
    }
    let replication = instance.replication.as_ref();
    let message = if on_its_way && wait.seconds > 0 {
        Some(format!(
            "not ready when the wait for readiness ended (waitForReadySeconds {})",
            wait.seconds
        ))
    } else if on_its_way {
        Some("failback replication on its way: waitForReadySeconds waits for it".to_owned())
    } else {
        replication.and_then(|r| match &r.error {
            Some(error) => Some(format!("failback replication error {error}")),
            None if !r.state.is_on_its_way() => {
                Some(format!("failback replication {}: not waited for", r.state))
            }
            None => None,
        })
    };
    Outcome::Skipped {
        reason: instance.failback_state.to_string(),
        job_id: None,
        code: replication.map(|r| r.state.to_string()),
        message,
    }
}

/// One instance as the `Failback Instances Waiting` event shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    #[serde(rename = "recoveryInstanceID")]
    pub recovery_instance_id: String,
    #[serde(rename = "sourceServerID", skip_serializing_if = "Option::is_none")]
    pub source_server_id: Option<String>,
    /// Still waiting (else it stopped waiting: skipped with this state).
    pub waiting: bool,
    pub failback_state: FailbackState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_left: Option<u64>,
}

impl Progress {
    pub fn of(instance: &RecoveryInstance, waiting: bool) -> Self {
        Progress {
            recovery_instance_id: instance.recovery_instance_id.clone(),
            source_server_id: instance.source_server_id.clone(),
            waiting,
            failback_state: instance.failback_state.clone(),
            replication: instance.replication.clone(),
            bytes_left: instance.replication.as_ref().map(Replication::bytes_left),
        }
    }

    /// The word it is announced by ([`state_word`]).
    pub fn state_word(&self) -> String {
        match &self.replication {
            Some(r) => r.state.to_string(),
            None => self.failback_state.to_string(),
        }
    }
}

/// What is worth an event: every instance that stopped waiting (its last state), and each
/// waiting one whose state word is not the one the step's last round announced it in.
pub fn to_announce(progress: &[Progress], announced: &[Waiting]) -> Vec<Progress> {
    let before: HashMap<&str, &str> = announced
        .iter()
        .flat_map(|group| {
            group
                .recovery_instance_ids
                .iter()
                .map(|id| (id.as_str(), group.state.as_str()))
        })
        .collect();
    progress
        .iter()
        .filter(|p| {
            !p.waiting
                || before.get(p.recovery_instance_id.as_str()).copied()
                    != Some(p.state_word().as_str())
        })
        .cloned()
        .collect()
}

impl WaitingSummary {
    /// `None` when no instance waits.
    pub fn of<'a>(progress: impl IntoIterator<Item = &'a Progress>) -> Option<Self> {
        let mut summary = WaitingSummary::default();
        for p in progress.into_iter().filter(|p| p.waiting) {
            summary.instances += 1;
            *summary.by_state.entry(p.state_word()).or_default() += 1;
            summary.bytes_left = summary.bytes_left.saturating_add(p.bytes_left.unwrap_or(0));
            let eta = p.replication.as_ref().and_then(|r| r.eta.clone());
            summary.latest_eta = summary.latest_eta.max(eta);
        }
        (summary.instances > 0).then_some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::ReplicationState;
    use crate::drs::replication::Disk;
    use crate::drs::state::ReplicationState as R;
    use std::collections::BTreeMap;

    fn instance(
        failback: &str,
        replication: Option<(ReplicationState, Option<&str>)>,
    ) -> RecoveryInstance {
        RecoveryInstance {
            recovery_instance_id: "i-0123456789abcdef0".into(),
            source_server_id: Some("s-0123456789abcdef0".into()),
            failback_state: FailbackState::from_name(failback),
            failback_job_id: None,
            tags: Default::default(),
            replication: replication.map(|(state, error)| Replication {
                error: error.map(str::to_owned),
                eta: Some("2026-12-03T20:00:00.000Z".into()),
                ..Replication::new(
                    state,
                    [Disk {
                        total_bytes: 100,
                        replicated_bytes: 30,
                        backlogged_bytes: 5,
                    }],
                )
            }),
        }
    }

    /// Every failback state with every replication state (none, each word, an unknown word,
    /// with and without an error): ready only when DRS says so; on its way only before a launch
    /// with replication moving and no error.
    #[test]
    fn which_instances_are_on_their_way() {
        let on_its_way = [
            R::NotStarted,
            R::Initiating,
            R::InitialSync,
            R::Backlog,
            R::CreatingSnapshot,
            R::Continuous,
            R::Rescan,
        ];
        let stuck = [
            R::Stopped,
            R::Paused,
            R::Stalled,
            R::Disconnected,
            R::ReplicationStateNotAvailable,
            R::Unknown("SOMETHING_NEW".into()),
        ];
        for failback in [
            "FAILBACK_NOT_STARTED",
            "FAILBACK_IN_PROGRESS",
            "FAILBACK_READY_FOR_LAUNCH",
            "FAILBACK_COMPLETED",
            "FAILBACK_ERROR",
            "FAILBACK_NOT_READY_FOR_LAUNCH",
            "FAILBACK_LAUNCH_STATE_NOT_AVAILABLE",
            "FAILBACK_SOMETHING_NEW",
        ] {
            let before_launch =
                ["FAILBACK_NOT_STARTED", "FAILBACK_NOT_READY_FOR_LAUNCH"].contains(&failback);
            let ready = failback == "FAILBACK_READY_FOR_LAUNCH";
            let expect = |moving: bool| match () {
                _ if ready => Readiness::Ready,
                _ if before_launch && moving => Readiness::OnItsWay,
                _ => Readiness::Stuck,
            };
            assert_eq!(
                readiness(&instance(failback, None)),
                expect(true),
                "{failback}"
            );
            for state in &on_its_way {
                let i = instance(failback, Some((state.clone(), None)));
                assert_eq!(readiness(&i), expect(true), "{failback} {state}");
                let i = instance(failback, Some((state.clone(), Some("NOT_CONVERGING"))));
                assert_eq!(readiness(&i), expect(false), "{failback} {state} error");
            }
            for state in &stuck {
                let i = instance(failback, Some((state.clone(), None)));
                assert_eq!(readiness(&i), expect(false), "{failback} {state}");
            }
        }
    }

    #[test]
    fn a_wait_holds_until_its_seconds_have_passed() {
        let wait = |seconds, elapsed| Wait { seconds, elapsed };
        assert!(!wait(0, Some(0)).waits());
        assert!(!wait(0, None).waits());
        assert!(wait(600, Some(599)).waits());
        assert!(!wait(600, Some(600)).waits());
        assert!(wait(600, None).waits(), "the caller keeps the time");
    }

    /// What a not-ready instance comes to, word for word.
    #[test]
    fn not_ready_instances_wait_or_are_skipped_with_their_state_and_why() {
        let syncing = instance(
            "FAILBACK_NOT_READY_FOR_LAUNCH",
            Some((R::InitialSync, None)),
        );
        let waiting = Wait {
            seconds: 600,
            elapsed: Some(60),
        };
        assert_eq!(
            not_ready(&syncing, waiting),
            Outcome::Deferred {
                reason: DeferReason::Replicating,
                code: Some("INITIAL_SYNC".into()),
                error: None
            }
        );
        let skipped = |code: Option<&str>, message: Option<&str>| Outcome::Skipped {
            reason: "FAILBACK_NOT_READY_FOR_LAUNCH".into(),
            job_id: None,
            code: code.map(str::to_owned),
            message: message.map(str::to_owned),
        };
        let over = Wait {
            elapsed: Some(600),
            ..waiting
        };
        assert_eq!(
            not_ready(&syncing, over),
            skipped(
                Some("INITIAL_SYNC"),
                Some("not ready when the wait for readiness ended (waitForReadySeconds 600)")
            )
        );
        assert_eq!(
            not_ready(&syncing, Wait::default()),
            skipped(
                Some("INITIAL_SYNC"),
                Some("failback replication on its way: waitForReadySeconds waits for it")
            )
        );
        let stalled = instance("FAILBACK_NOT_READY_FOR_LAUNCH", Some((R::Stalled, None)));
        assert_eq!(
            not_ready(&stalled, waiting),
            skipped(
                Some("STALLED"),
                Some("failback replication STALLED: not waited for")
            )
        );
        let lost = instance(
            "FAILBACK_NOT_READY_FOR_LAUNCH",
            Some((R::Disconnected, Some("FAILBACK_CLIENT_NOT_SEEN"))),
        );
        assert_eq!(
            not_ready(&lost, waiting),
            skipped(
                Some("DISCONNECTED"),
                Some("failback replication error FAILBACK_CLIENT_NOT_SEEN")
            )
        );
        let not_started = instance("FAILBACK_NOT_STARTED", None);
        assert_eq!(
            not_ready(&not_started, waiting),
            Outcome::Deferred {
                reason: DeferReason::Replicating,
                code: Some("FAILBACK_NOT_STARTED".into()),
                error: None
            }
        );
        assert_eq!(
            not_ready(&instance("FAILBACK_ERROR", None), waiting),
            Outcome::skipped("FAILBACK_ERROR")
        );
    }

    #[test]
    fn the_waiting_add_up() {
        let a = Progress::of(
            &instance(
                "FAILBACK_NOT_READY_FOR_LAUNCH",
                Some((R::InitialSync, None)),
            ),
            true,
        );
        let mut b = Progress::of(&instance("FAILBACK_NOT_STARTED", None), true);
        b.recovery_instance_id = "i-0123456789abcdef1".into();
        let stopped = Progress::of(
            &instance("FAILBACK_NOT_READY_FOR_LAUNCH", Some((R::Stalled, None))),
            false,
        );
        let mut later = a.clone();
        if let Some(r) = later.replication.as_mut() {
            r.eta = Some("2026-12-03T21:00:00.000Z".into());
        }
        let summary = WaitingSummary::of([&a, &b, &stopped, &later]).unwrap();
        assert_eq!(summary.instances, 3);
        assert_eq!(
            summary.by_state,
            BTreeMap::from([
                ("FAILBACK_NOT_STARTED".to_owned(), 1),
                ("INITIAL_SYNC".to_owned(), 2)
            ])
        );
        assert_eq!(summary.bytes_left, 150);
        assert_eq!(
            summary.latest_eta.as_deref(),
            Some("2026-12-03T21:00:00.000Z")
        );
        assert_eq!(WaitingSummary::of([&stopped]), None);
    }

    /// A waiting instance is announced when its state word changes, not at every round; one
    /// that stopped waiting always is (it stops once).
    #[test]
    fn only_changes_are_announced() {
        let syncing = Progress::of(
            &instance(
                "FAILBACK_NOT_READY_FOR_LAUNCH",
                Some((R::InitialSync, None)),
            ),
            true,
        );
        let mut other = Progress::of(&instance("FAILBACK_NOT_STARTED", None), true);
        other.recovery_instance_id = "i-0123456789abcdef1".into();
        let mut stopped = syncing.clone();
        stopped.recovery_instance_id = "i-0123456789abcdef2".into();
        stopped.waiting = false;
        let given = [syncing.clone(), other.clone(), stopped.clone()];
        let ids = |p: Vec<Progress>| -> Vec<String> {
            p.into_iter().map(|p| p.recovery_instance_id).collect()
        };
        assert_eq!(ids(to_announce(&given, &[])).len(), 3);
        let announced = [
            Waiting {
                state: "INITIAL_SYNC".into(),
                recovery_instance_ids: vec![
                    syncing.recovery_instance_id.clone(),
                    stopped.recovery_instance_id.clone(),
                ],
            },
            Waiting {
                state: "INITIATING".into(),
                recovery_instance_ids: vec![other.recovery_instance_id.clone()],
            },
        ];
        assert_eq!(
            ids(to_announce(&given, &announced)),
            [
                other.recovery_instance_id.clone(),
                stopped.recovery_instance_id.clone()
            ]
        );
    }
}
