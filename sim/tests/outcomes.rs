//! What becomes of each launched server, through the real SDK: succeed, fail with a given job log
//! event, or terminate; the failback state moving to FAILBACK_COMPLETED / FAILBACK_ERROR; a job
//! log item per failure; jobs that take their configured time, scaled; and the unkind variants
//! DRS users report (launch status PENDING while converting, final state after the job ends).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_drs::Client;
use aws_sdk_drs::types::DescribeRecoveryInstancesRequestFilters;
use drs_sim::{FailbackState, Fleet, LaunchResult, Lifecycle, SimConfig};
use tokio::time::sleep;

/// Four servers: one succeeds, one fails converting, one fails to launch, one is terminated.
fn fleet() -> Fleet {
    let mut fleet = Fleet::generated(4, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    assert!(fleet.set_failure(&ids[1], "CONVERSION_FAIL"));
    assert!(fleet.set_launch_result(&ids[2], LaunchResult::Failed));
    assert!(fleet.set_launch_result(&ids[3], LaunchResult::Terminated));
    fleet
}

/// The job's status and each server's launch status, by recovery instance.
async fn job(drs: &Client, job_id: &str) -> (String, BTreeMap<String, String>) {
    let jobs = drs
        .describe_jobs()
        .filters(
            aws_sdk_drs::types::DescribeJobsRequestFilters::builder()
                .job_ids(job_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let job = &jobs.items()[0];
    let servers = job
        .participating_servers()
        .iter()
        .map(|p| {
            (
                p.recovery_instance_id().unwrap_or_default().to_owned(),
                p.launch_status().unwrap().as_str().to_owned(),
            )
        })
        .collect();
    (job.status().unwrap().as_str().to_owned(), servers)
}

async fn states(drs: &Client, ids: &[String]) -> Vec<String> {
    let found = drs
        .describe_recovery_instances()
        .filters(
            DescribeRecoveryInstancesRequestFilters::builder()
                .set_recovery_instance_ids(Some(ids.to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    ids.iter()
        .map(|id| {
            let instance = found
                .items()
                .iter()
                .find(|i| i.recovery_instance_id() == Some(id))
                .unwrap();
            let failback = instance.failback().unwrap();
            failback.state().unwrap().as_str().to_owned()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_server_ends_as_configured_with_its_log_event() {
    let fleet = fleet();
    let ids = fleet.ids();
    let sim = common::start(SimConfig {
        fleet: fleet.clone(),
        lifecycle: Lifecycle {
            pending: Duration::from_secs(10),
            started: Duration::from_secs(50),
        },
        ..SimConfig::default()
    })
    .await;
    let drs = common::in_process_drs(&sim).await;
    let job_id = common::launch(&drs, &ids).await.unwrap();

    sleep(Duration::from_secs(30)).await;
    let (status, servers) = job(&drs, &job_id).await;
    assert_eq!(status, "STARTED");
    assert!(servers.values().all(|s| s == "IN_PROGRESS"), "{servers:?}");
    assert!(
        states(&drs, &ids)
            .await
            .iter()
            .all(|s| s == "FAILBACK_IN_PROGRESS")
    );

    sleep(Duration::from_secs(31)).await;
    let (status, servers) = job(&drs, &job_id).await;
    assert_eq!(status, "COMPLETED");
    let launch_statuses: Vec<&str> = ids.iter().map(|id| servers[id].as_str()).collect();
    assert_eq!(
        launch_statuses,
        ["LAUNCHED", "FAILED", "FAILED", "TERMINATED"]
    );
    assert_eq!(
        states(&drs, &ids).await,
        [
            "FAILBACK_COMPLETED",
            "FAILBACK_ERROR",
            "FAILBACK_ERROR",
            "FAILBACK_ERROR"
        ]
    );

    let log = drs
        .describe_job_log_items()
        .job_id(&job_id)
        .send()
        .await
        .unwrap();
    let failures: Vec<(String, String)> = log
        .items()
        .iter()
        .filter(|item| item.event().is_some_and(|e| e.as_str().contains("FAIL")))
        .map(|item| {
            let data = item.event_data().unwrap();
            (
                item.event().unwrap().as_str().to_owned(),
                data.source_server_id().unwrap().to_owned(),
            )
        })
        .collect();
    let source = |k: usize| fleet.get(&ids[k]).unwrap().source_server_id.clone();
    assert_eq!(
        failures,
        [
            ("CONVERSION_FAIL".to_owned(), source(1)),
            ("LAUNCH_FAILED".to_owned(), source(2)),
            ("LAUNCH_FAILED".to_owned(), source(3)),
        ]
    );
    let events: Vec<&str> = log
        .items()
        .iter()
        .map(|i| i.event().unwrap().as_str())
        .collect();
    assert_eq!(events.first(), Some(&"JOB_START"));
    assert_eq!(events.last(), Some(&"JOB_END"));
}

#[tokio::test(start_paused = true)]
async fn a_time_scale_runs_jobs_faster() {
    let fleet = fleet();
    let ids = fleet.ids();
    let sim = common::start(SimConfig {
        fleet,
        lifecycle: Lifecycle {
            pending: Duration::from_secs(60),
            started: Duration::from_secs(540),
        },
        time_scale: 60.0,
        ..SimConfig::default()
    })
    .await;
    let drs = common::in_process_drs(&sim).await;
    let job_id = common::launch(&drs, &ids).await.unwrap();
    sleep(Duration::from_millis(9_900)).await;
    assert_eq!(job(&drs, &job_id).await.0, "STARTED");
    sleep(Duration::from_millis(200)).await;
    assert_eq!(
        job(&drs, &job_id).await.0,
        "COMPLETED",
        "10 minutes in 10 s"
    );
}

#[tokio::test(start_paused = true)]
async fn the_final_state_may_come_after_the_job_and_launch_status_stay_pending() {
    let fleet = fleet();
    let ids = fleet.ids();
    let sim = common::start(SimConfig {
        fleet,
        lifecycle: Lifecycle {
            pending: Duration::from_secs(2),
            started: Duration::from_secs(8),
        },
        launch_status_stays_pending: true,
        final_state_lag: Duration::from_secs(20),
        ..SimConfig::default()
    })
    .await;
    let drs = common::in_process_drs(&sim).await;
    let job_id = common::launch(&drs, &ids).await.unwrap();
    sleep(Duration::from_secs(15)).await;
    let (status, servers) = job(&drs, &job_id).await;
    assert_eq!(status, "COMPLETED");
    assert!(servers.values().all(|s| s == "PENDING"), "{servers:?}");
    assert!(
        states(&drs, &ids)
            .await
            .iter()
            .all(|s| s == "FAILBACK_IN_PROGRESS")
    );
    sleep(Duration::from_secs(16)).await;
    assert_eq!(
        states(&drs, &ids).await,
        [
            "FAILBACK_COMPLETED",
            "FAILBACK_ERROR",
            "FAILBACK_ERROR",
            "FAILBACK_ERROR"
        ]
    );
    assert_eq!(job(&drs, &job_id).await.1[&ids[3]], "TERMINATED");
}
