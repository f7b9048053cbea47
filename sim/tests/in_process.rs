//! The in-process SDK client: the same simulator, the same SDK, no socket. What a loopback call
//! gets, an in-process call gets too; and on a paused clock, waits are measured exactly.

mod common;

use std::time::Duration;

use aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchError;
use drs_sim::{FailbackState, Fault, Fleet, Operation, SimConfig};

fn sim_config(faults: Vec<Fault>) -> SimConfig {
    SimConfig {
        fleet: Fleet::generated(3, FailbackState::FailbackReadyForLaunch),
        faults,
        ..SimConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn in_process_calls_reach_the_same_state_and_records() {
    let sim = common::start(sim_config(vec![])).await;
    let ids = Fleet::generated(3, FailbackState::FailbackReadyForLaunch).ids();
    let drs = aws_sdk_drs::Client::new(&sim.in_process_sdk_config().await);
    let job = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.clone()))
        .tags("Wave", "1")
        .send()
        .await
        .expect("launched")
        .job
        .expect("a job");
    assert_eq!(sim.jobs()[0].job_id, job.job_id);
    // The loopback client sees what the in-process one did.
    let over_http = common::drs(&sim).await;
    let instances = over_http
        .describe_recovery_instances()
        .filters(
            aws_sdk_drs::types::DescribeRecoveryInstancesRequestFilters::builder()
                .set_recovery_instance_ids(Some(ids.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        instances
            .items()
            .iter()
            .all(|i| i.failback().and_then(|f| f.failback_job_id()) == Some(job.job_id()))
    );
    let calls = sim.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].operation, Operation::StartFailbackLaunch);
    assert_eq!(calls[0].recovery_instance_ids, ids);
    // Errors parse as over the wire: a second launch of the same instances conflicts.
    let again = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.clone()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(matches!(
        again,
        StartFailbackLaunchError::ConflictException(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_hang_is_exactly_as_long_as_asked_and_the_job_is_made_after_it() {
    let sim = common::start(sim_config(vec![Fault::Hang {
        operation: Operation::StartFailbackLaunch,
        calls: 1,
        seconds: 7.0,
    }]))
    .await;
    let ids = Fleet::generated(3, FailbackState::FailbackReadyForLaunch).ids();
    let drs = aws_sdk_drs::Client::new(&sim.in_process_sdk_config().await);
    let started = tokio::time::Instant::now();
    let call = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.clone()))
        .send();
    // The caller gives up after 2 s; the simulator still creates the job at 7 s.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .is_err()
    );
    assert!(sim.jobs().is_empty());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(sim.jobs().len(), 1, "the job is created after the hang");
    assert_eq!(sim.calls()[0].at_ms, 0, "recorded when it arrived");
    assert_eq!(sim.jobs()[0].created_at_ms, 7_000);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(8),
        "the paused clock moved only by the waits"
    );
}
