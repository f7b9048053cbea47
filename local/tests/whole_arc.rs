//! The whole failback as the state machine runs it, driven by `arc::run_whole` through the real
//! function and SDK clients against the simulator (in-process, on paused time): a quota-bound
//! failback of more instances than fit at once, some failing, ends with one result per requested
//! instance, each job announced once and the run summed up once.

mod common;

use common::settings;
use std::collections::BTreeMap;
use std::time::Duration;

use drs_failback::config::Config;
use drs_failback::events::{DETAIL_TYPE_JOB_COMPLETED, DETAIL_TYPE_RUN_FINISHED};
use drs_failback_local::arc::{ArcEnd, ArcSettings, StoppedBy, run_whole};
use drs_failback_local::show::rows;
use drs_sim::{FailbackState, Fleet, Lifecycle, Quotas, SimConfig, SimHandle, Simulator};
use serde_json::json;
use tokio::time::Instant;

const TEN_MINUTES: Lifecycle = Lifecycle {
    pending: Duration::from_secs(60),
    started: Duration::from_secs(540),
};

async fn sim(fleet: Fleet, servers: usize) -> SimHandle {
    Simulator::start(SimConfig {
        fleet,
        lifecycle: TEN_MINUTES,
        quotas: Quotas {
            servers_in_active_jobs: servers,
            ..Quotas::default()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn delivered(sim: &SimHandle, detail_type: &str) -> Vec<serde_json::Value> {
    sim.delivered_events()
        .into_iter()
        .filter(|e| e.detail_type == detail_type)
        .map(|e| e.detail)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_quota_bound_failback_ends_with_a_result_per_instance() {
    let mut fleet = Fleet::generated(25, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    fleet.set_failure(&ids[3], "CONVERSION_FAIL");
    fleet.set_failure(&ids[17], "SNAPSHOT_FAIL");
    let sim = sim(fleet, 10).await;
    let config = Config::from_pairs(&[
        ("MAX_SERVERS_IN_FLIGHT", "10"),
        ("MAX_INSTANCES_PER_JOB", "5"),
    ])
    .unwrap();
    let failback = drs_failback::aws::failback(config, &sim.in_process_sdk_config().await);
    let started = Instant::now();
    let mut seen = Vec::new();
    let end = run_whole(
        &failback,
        json!({"runId": "wave-1", "recoveryInstanceIDs": ids, "tags": {"Wave": "1"}}),
        &settings(),
        |p| seen.push(p.clone()),
    )
    .await
    .unwrap();
    let ArcEnd::Finished(finished) = end else {
        panic!("not a dry run")
    };
    assert!(finished.complete, "{:?}", finished.stopped_by);
    let results: BTreeMap<String, String> = rows(&finished.answer)
        .into_iter()
        .map(|row| (row.id, format!("{} {}", row.result, row.reason)))
        .collect();
    assert_eq!(results.len(), 25);
    assert_eq!(
        results[&ids[3]],
        "failed CONVERSION_FAIL: Simulated launch failure"
    );
    assert_eq!(
        results[&ids[17]],
        "failed SNAPSHOT_FAIL: Simulated launch failure"
    );
    assert_eq!(finished.answer.counts.succeeded, 23);
    // 10 at a time: three waves, each launched right after the tracking call that saw the one
    // before finish.
    assert_eq!(finished.progress.rounds, 3);
    let elapsed = started.elapsed();
    assert!(
        elapsed <= Duration::from_secs(3 * (600 + 60) + 60),
        "{elapsed:?}"
    );
    let mut jobs: Vec<String> = delivered(&sim, DETAIL_TYPE_JOB_COMPLETED)
        .iter()
        .map(|d| d["jobID"].as_str().unwrap().to_owned())
        .collect();
    let announced = jobs.len();
    jobs.dedup();
    assert_eq!(announced, jobs.len(), "each job announced once");
    assert_eq!(announced, 5);
    assert_eq!(delivered(&sim, DETAIL_TYPE_RUN_FINISHED).len(), 1);
    // Progress never goes back.
    for pair in seen.windows(2) {
        assert!(pair[1].succeeded + pair[1].failed >= pair[0].succeeded + pair[0].failed);
    }
    let output = finished.output();
    assert_eq!(output["complete"], true);
    assert_eq!(output["counts"]["launched"], 25);
    assert_eq!(output["runId"], "wave-1");
}

/// The function dies after DRS took the first launch (its answer lost): the state machine's retry
/// sends the same launch again, pre-flight finds the jobs the lost call made, and every instance
/// ends with its result — nothing launched twice.
#[tokio::test(start_paused = true)]
async fn a_crash_after_the_launch_is_retried_and_nothing_is_launched_twice() {
    let fleet = Fleet::generated(12, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let sim = sim(fleet, 100).await;
    let config = Config::from_pairs(&[("MAX_INSTANCES_PER_JOB", "5")]).unwrap();
    let failback = drs_failback::aws::failback(config, &sim.in_process_sdk_config().await);
    let settings = ArcSettings {
        crashes_after_launch: 1,
        ..settings()
    };
    let mut crashes = 0;
    let end = run_whole(
        &failback,
        json!({"runId": "wave-crash", "recoveryInstanceIDs": ids}),
        &settings,
        |p| crashes = p.crashes,
    )
    .await
    .unwrap();
    let ArcEnd::Finished(finished) = end else {
        panic!("a whole run")
    };
    assert_eq!(crashes, 1);
    assert!(finished.complete);
    assert_eq!(finished.answer.counts.succeeded, 12);
    assert_eq!(sim.jobs().len(), 3, "the lost call's jobs, no more");
    let launches = sim
        .calls()
        .into_iter()
        .filter(|c| c.operation == drs_sim::Operation::StartFailbackLaunch)
        .count();
    assert_eq!(launches, 3, "the retry launched nothing again");
}

#[tokio::test(start_paused = true)]
async fn the_time_limit_sums_up_with_what_is_known() {
    let fleet = Fleet::generated(4, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let sim = sim(fleet, 2).await;
    let config = Config::from_pairs(&[("MAX_SERVERS_IN_FLIGHT", "2")]).unwrap();
    let failback = drs_failback::aws::failback(config, &sim.in_process_sdk_config().await);
    let settings = ArcSettings {
        time_limit: Duration::from_secs(300),
        ..settings()
    };
    let end = run_whole(
        &failback,
        json!({"recoveryInstanceIDs": ids}),
        &settings,
        |_| {},
    )
    .await
    .unwrap();
    let ArcEnd::Finished(finished) = end else {
        panic!("not a dry run")
    };
    assert!(!finished.complete);
    assert_eq!(finished.stopped_by, Some(StoppedBy::TimeLimit));
    assert_eq!(finished.answer.counts.running, 2);
    assert_eq!(finished.deferred_recovery_instance_ids.len(), 2);
    assert_eq!(rows(&finished.answer).len(), 4, "every instance has a row");
}

/// Jobs of ten hours tracked every 30 s: more calls than one step execution makes. The step is
/// handed over to fresh step executions (its parts) as the plan does it, and still ends with
/// every instance final, each job announced once and the run summed up once.
#[tokio::test(start_paused = true)]
async fn a_long_run_is_handed_over_and_ends_as_one() {
    let fleet = Fleet::generated(3, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let sim = Simulator::start(SimConfig {
        fleet,
        lifecycle: Lifecycle {
            pending: Duration::from_secs(60),
            started: Duration::from_secs(10 * 3600),
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let failback = drs_failback::aws::failback(
        Config::from_pairs(&[]).unwrap(),
        &sim.in_process_sdk_config().await,
    );
    let settings = ArcSettings {
        track_interval: Duration::from_secs(30),
        time_limit: Duration::from_secs(12 * 3600),
        ..settings()
    };
    let mut parts = 0;
    let end = run_whole(
        &failback,
        json!({"runId": "wave-long", "recoveryInstanceIDs": ids}),
        &settings,
        |p| parts = p.parts,
    )
    .await
    .unwrap();
    let ArcEnd::Finished(finished) = end else {
        panic!("not a dry run")
    };
    assert!(finished.complete, "{:?}", finished.stopped_by);
    assert!(parts >= 3, "{parts} step executions for about 1 200 calls");
    assert_eq!(finished.answer.counts.succeeded, 3);
    assert_eq!(sim.jobs().len(), 1, "launched once");
    assert_eq!(delivered(&sim, DETAIL_TYPE_JOB_COMPLETED).len(), 1);
    assert_eq!(delivered(&sim, DETAIL_TYPE_RUN_FINISHED).len(), 1);
}
