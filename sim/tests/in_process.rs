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
    let drs = common::in_process_drs(&sim).await;
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
    let again = common::launch(&drs, &ids).await.unwrap_err();
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
        lost: false,
    }]))
    .await;
    let ids = Fleet::generated(3, FailbackState::FailbackReadyForLaunch).ids();
    let drs = common::in_process_drs(&sim).await;
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

#[tokio::test(start_paused = true)]
async fn fail_faults_answer_any_error_after_letting_some_calls_through() {
    let sim = common::start(sim_config(vec![Fault::Fail {
        operation: Operation::DescribeJobs,
        calls: 2,
        after: 1,
        status: 408,
        error_type: "RequestTimeoutException".into(),
        message: "too slow".into(),
        members: serde_json::Map::new(),
        retry_after: None,
    }]))
    .await;
    let drs = common::in_process_drs(&sim).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let answer = drs.describe_jobs().send().await;
        statuses.push(
            answer
                .map(|_| 200)
                .unwrap_or_else(|e| e.raw_response().map_or(0, |r| r.status().as_u16())),
        );
    }
    assert_eq!(statuses, [200, 408, 408, 200]);
    assert!(sim.faults().is_empty(), "spent");
}

#[tokio::test(start_paused = true)]
async fn connection_refused_never_reaches_the_simulator() {
    let sim = common::start(sim_config(vec![Fault::ConnectionRefused {
        operation: Operation::StartFailbackLaunch,
        calls: 1,
    }]))
    .await;
    let ids = Fleet::generated(1, FailbackState::FailbackReadyForLaunch).ids();
    let drs = common::in_process_drs(&sim).await;
    let error = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.clone()))
        .send()
        .await
        .unwrap_err();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut refused = false;
    while let Some(e) = source {
        refused |= e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        source = e.source();
    }
    assert!(refused, "{error:?}");
    assert!(sim.calls().is_empty() && sim.jobs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_instance_drs_refuses_is_named_unless_errors_carry_no_details() {
    for details in [true, false] {
        let mut fleet = Fleet::generated(3, FailbackState::FailbackReadyForLaunch);
        let ids = fleet.ids();
        assert!(fleet.set_refuse_launch(&ids[1]));
        let sim = common::start(SimConfig {
            fleet,
            error_details: details,
            ..SimConfig::default()
        })
        .await;
        let drs = common::in_process_drs(&sim).await;
        let refused = common::launch(&drs, &ids).await.unwrap_err();
        let StartFailbackLaunchError::ConflictException(conflict) = refused else {
            panic!("a conflict expected: {refused:?}");
        };
        let names_it = conflict.message().unwrap_or_default().contains(&ids[1]);
        assert_eq!(conflict.resource_id(), details.then_some(ids[1].as_str()));
        assert_eq!(names_it, details);
        // The others launch; another tool's job is DRS's own launch, unrecorded.
        let job = sim
            .start_job(&[ids[0].clone()], &[("Owner", "other")])
            .unwrap();
        assert_eq!(sim.jobs()[0].job_id, job);
        assert_eq!(sim.calls().len(), 1, "only the refused call is recorded");
        assert!(sim.start_job(&[ids[0].clone()], &[]).is_err(), "busy now");
    }
}
