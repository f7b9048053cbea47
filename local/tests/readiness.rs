//! Whole steps that wait for their instances to become ready, driven by `arc::run_whole` through
//! the real function and SDK clients against the simulator's failback replication (in-process,
//! on paused time): instances that turn ready at different times are each launched once, in a
//! later round, within a tracking interval of DRS showing them ready; one that never gets there is
//! skipped with its state when the wait ends; a stalled one is skipped at once; every change of
//! state is announced once.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use drs_failback::config::Config;
use drs_failback::events::DETAIL_TYPE_WAITING;
use drs_failback_local::arc::{ArcEnd, ArcSettings, Finished, run_whole};
use drs_failback_local::show::rows;
use drs_sim::{
    FailbackState, Fleet, INITIATING_SECONDS, Lifecycle, Operation, Replication, SimConfig,
    SimHandle, Simulator,
};
use serde_json::{Value, json};

const INTERVAL: u64 = 60;
const WAIT: u64 = 3600;
const GIB: u64 = 1 << 30;
/// 10 GiB at 10 MiB/s: ready 120 + 1024 s after the client connects.
const SYNC_SECONDS: u64 = INITIATING_SECONDS + 1024;

fn replication(connects_after_seconds: u64) -> Replication {
    Replication {
        total_bytes: 10 * GIB,
        bytes_per_second: 10 << 20,
        connects_after_seconds,
        never_connects: false,
        stalls_after_seconds: None,
        disconnects_after_seconds: None,
        initiating_seconds: None,
    }
}

fn settings(max_rounds: usize) -> ArcSettings {
    ArcSettings {
        track_interval: Duration::from_secs(INTERVAL),
        time_limit: Duration::from_secs(6 * 3600),
        max_rounds,
        invocation_timeout: Duration::from_secs(300),
        crashes_after_launch: 0,
    }
}

async fn sim(fleet: Fleet) -> SimHandle {
    Simulator::start(SimConfig {
        fleet,
        lifecycle: Lifecycle {
            pending: Duration::from_secs(60),
            started: Duration::from_secs(540),
        },
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

async fn run(sim: &SimHandle, request: Value, max_rounds: usize) -> Finished {
    let failback = drs_failback::aws::failback(
        Config::from_pairs(&[]).unwrap(),
        &sim.in_process_sdk_config().await,
    );
    match run_whole(&failback, request, &settings(max_rounds), |_| {})
        .await
        .unwrap()
    {
        ArcEnd::Finished(finished) => *finished,
        ArcEnd::DryRun(_) => panic!("not a dry run"),
    }
}

/// Every StartFailbackLaunch that made a job: (when, seconds since the simulator started; ids).
fn launches(sim: &SimHandle) -> Vec<(u64, Vec<String>)> {
    sim.calls()
        .into_iter()
        .filter(|c| c.operation == Operation::StartFailbackLaunch && c.job_id.is_some())
        .map(|c| (c.at_ms / 1000, c.recovery_instance_ids))
        .collect()
}

fn results(finished: &Finished) -> BTreeMap<String, String> {
    rows(&finished.answer)
        .into_iter()
        .map(|row| (row.id, format!("{} {}", row.result, row.reason)))
        .collect()
}

/// Each instance's announcements, in order: (waiting, state word).
fn announcements(sim: &SimHandle) -> HashMap<String, Vec<(bool, String)>> {
    let mut seen: HashMap<String, Vec<(bool, String)>> = HashMap::new();
    for event in sim.delivered_events() {
        if event.detail_type != DETAIL_TYPE_WAITING {
            continue;
        }
        for i in event.detail["instances"].as_array().unwrap() {
            let state = i["replication"]["state"]
                .as_str()
                .or(i["failbackState"].as_str())
                .unwrap()
                .to_owned();
            seen.entry(i["recoveryInstanceID"].as_str().unwrap().to_owned())
                .or_default()
                .push((i["waiting"].as_bool().unwrap(), state));
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn instances_ready_at_different_times_are_each_launched_once_as_they_turn_ready() {
    let mut fleet = Fleet::generated(7, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    // 0, 1: ready from the start. 2, 3: client at 0, ready at SYNC_SECONDS. 4: client at 30 min.
    // 5: a client that never connects. 6: stalls five minutes into its initial sync.
    for (id, connects) in [(&ids[2], 0), (&ids[3], 0), (&ids[4], 1800)] {
        fleet.set_replication(id, replication(connects));
    }
    fleet.set_replication(
        &ids[5],
        Replication {
            never_connects: true,
            ..replication(0)
        },
    );
    fleet.set_replication(
        &ids[6],
        Replication {
            stalls_after_seconds: Some(INITIATING_SECONDS + 300),
            ..replication(0)
        },
    );
    let sim = sim(fleet).await;
    // MaxRounds 3: the waiting rounds do not use them up.
    let finished = run(
        &sim,
        json!({"runId": "wave-ready", "recoveryInstanceIDs": ids, "waitForReadySeconds": WAIT}),
        3,
    )
    .await;

    let made = launches(&sim);
    let mut launched: Vec<&String> = made.iter().flat_map(|(_, ids)| ids).collect();
    launched.sort();
    let mut expected: Vec<&String> = ids[..5].iter().collect();
    expected.sort();
    assert_eq!(
        launched, expected,
        "each ready instance launched exactly once"
    );
    let launched_at = |id: &String| made.iter().find(|(_, ids)| ids.contains(id)).unwrap().0;
    assert_eq!(launched_at(&ids[0]), 0);
    // Each late one within a tracking interval of DRS showing it ready (and never before).
    for (id, ready) in [
        (&ids[2], SYNC_SECONDS),
        (&ids[3], SYNC_SECONDS),
        (&ids[4], 1800 + SYNC_SECONDS),
    ] {
        let at = launched_at(id);
        assert!(
            (ready..=ready + INTERVAL).contains(&at),
            "{id} ready at {ready} s, launched at {at} s"
        );
    }

    let results = results(&finished);
    assert_eq!(results.len(), 7, "every instance accounted for");
    for id in &ids[..5] {
        assert!(results[id].starts_with("succeeded"), "{}", results[id]);
    }
    assert_eq!(
        results[&ids[5]],
        "skipped FAILBACK_NOT_STARTED (not ready when the wait for readiness ended (waitForReadySeconds 3600))"
    );
    assert_eq!(
        results[&ids[6]],
        "skipped FAILBACK_NOT_READY_FOR_LAUNCH (STALLED: failback replication STALLED: not waited for)"
    );
    assert!(finished.complete, "{:?}", finished.stopped_by);
    assert!(
        finished.progress.rounds > 3,
        "waiting rounds are not capped"
    );

    // Announced once per change of state: the waiting one's states in order, then its end.
    let seen = announcements(&sim);
    assert!(!seen.contains_key(&ids[0]), "a ready instance never waits");
    for (id, states) in &seen {
        for pair in states.windows(2) {
            assert_ne!(pair[0], pair[1], "{id} announced twice in the same state");
        }
    }
    let words = |id: &String| -> Vec<(bool, String)> { seen[id].clone() };
    assert_eq!(
        words(&ids[4]),
        [
            (true, "FAILBACK_NOT_STARTED".to_owned()),
            (true, "INITIATING".to_owned()),
            (true, "INITIAL_SYNC".to_owned()),
        ]
    );
    assert_eq!(
        words(&ids[5]),
        [
            (true, "FAILBACK_NOT_STARTED".to_owned()),
            (false, "FAILBACK_NOT_STARTED".to_owned()),
        ]
    );
    assert_eq!(words(&ids[6]).last(), Some(&(false, "STALLED".to_owned())));
}

/// A request that does not wait (waitForReadySeconds 0) skips an instance on its way, as before,
/// and says the wait would have helped.
#[tokio::test(start_paused = true)]
async fn without_a_wait_an_instance_on_its_way_is_skipped_at_once() {
    let mut fleet = Fleet::generated(2, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    fleet.set_replication(&ids[1], replication(0));
    let sim = sim(fleet).await;
    let finished = run(
        &sim,
        json!({"runId": "no-wait", "recoveryInstanceIDs": ids}),
        10,
    )
    .await;
    assert_eq!(launches(&sim).len(), 1);
    let results = results(&finished);
    assert_eq!(
        results[&ids[1]],
        "skipped FAILBACK_NOT_READY_FOR_LAUNCH (INITIATING: failback replication on its way: waitForReadySeconds waits for it)"
    );
    assert!(
        sim.delivered_events()
            .iter()
            .all(|e| e.detail_type != DETAIL_TYPE_WAITING),
        "nothing waits"
    );
}
