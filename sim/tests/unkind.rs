//! The simulator as unkind as AWS is allowed to be: a visibility lag between DRS's own conflict
//! check and its Describe calls, a long history of old jobs behind a date filter, completed jobs
//! without recovery instance ids, drills without recovery instances, a job answered without its
//! participants.

mod common;

use std::time::Duration;

use aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchError;
use aws_sdk_drs::types::{DescribeJobsRequestFilters, DescribeRecoveryInstancesRequestFilters};
use drs_sim::{FailbackState, Fault, Fleet, History, Lifecycle, Quotas, SimConfig};

async fn job_ids(drs: &aws_sdk_drs::Client, filters: DescribeJobsRequestFilters) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let page = drs
            .describe_jobs()
            .filters(filters.clone())
            .set_next_token(token)
            .max_results(1000)
            .send()
            .await
            .unwrap();
        ids.extend(page.items().iter().map(|j| j.job_id().to_owned()));
        match page.next_token {
            Some(next) => token = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn describe_calls_show_a_new_job_only_after_the_lag_the_conflict_check_at_once() {
    let fleet = Fleet::generated(2, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let sim = common::start(SimConfig {
        fleet,
        visibility_lag: Duration::from_secs(5),
        lifecycle: Lifecycle {
            pending: Duration::from_secs(60),
            started: Duration::from_secs(60),
        },
        ..SimConfig::default()
    })
    .await;
    let drs = common::in_process_drs(&sim).await;
    let job = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.clone()))
        .send()
        .await
        .unwrap()
        .job
        .unwrap();
    let instance_view = || async {
        let page = drs
            .describe_recovery_instances()
            .filters(
                DescribeRecoveryInstancesRequestFilters::builder()
                    .set_recovery_instance_ids(Some(ids.clone()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let failback = page.items()[0].failback().unwrap().clone();
        (
            failback.state().unwrap().as_str().to_owned(),
            failback.failback_job_id().map(str::to_owned),
        )
    };
    assert!(
        job_ids(&drs, DescribeJobsRequestFilters::builder().build())
            .await
            .is_empty()
    );
    assert_eq!(
        instance_view().await,
        ("FAILBACK_READY_FOR_LAUNCH".to_owned(), None)
    );
    // DRS's own check sees the job at once.
    let again = common::launch(&drs, &ids).await.unwrap_err();
    assert!(matches!(
        again,
        StartFailbackLaunchError::ConflictException(_)
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        job_ids(&drs, DescribeJobsRequestFilters::builder().build()).await,
        std::slice::from_ref(&job.job_id)
    );
    assert_eq!(
        instance_view().await,
        ("FAILBACK_IN_PROGRESS".to_owned(), Some(job.job_id))
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_history_pages_without_a_date_filter_and_not_with_one() {
    let fleet = Fleet::generated(1, FailbackState::FailbackReadyForLaunch);
    let sim = common::start(SimConfig {
        fleet: fleet.clone(),
        history: History {
            jobs: 3_000,
            days: 30.0,
        },
        ..SimConfig::default()
    })
    .await;
    let drs = common::in_process_drs(&sim).await;
    let live = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(fleet.ids()))
        .send()
        .await
        .unwrap()
        .job
        .unwrap()
        .job_id;
    let everything = job_ids(&drs, DescribeJobsRequestFilters::builder().build()).await;
    assert_eq!(everything.len(), 3_001, "newest first across three pages");
    assert_eq!(everything[0], live);
    let calls = sim.calls().len();
    let now = std::time::SystemTime::now();
    let since = |days: u64| {
        aws_smithy_types::DateTime::from(now - Duration::from_secs(days * 86_400))
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap()
    };
    let recent = job_ids(
        &drs,
        DescribeJobsRequestFilters::builder()
            .from_date(since(2))
            .build(),
    )
    .await;
    assert_eq!(sim.calls().len(), calls + 1, "one page");
    assert_eq!(recent[0], live);
    assert!(
        (190..=210).contains(&recent.len()),
        "two days of 100 a day: {}",
        recent.len()
    );
    let old_only = job_ids(
        &drs,
        DescribeJobsRequestFilters::builder()
            .from_date(since(29))
            .to_date(since(27))
            .build(),
    )
    .await;
    assert!((190..=210).contains(&old_only.len()), "{}", old_only.len());
    assert!(!old_only.contains(&live));
}

#[tokio::test(start_paused = true)]
async fn drills_and_completed_jobs_list_servers_without_recovery_instances() {
    let fleet = Fleet::generated(3, FailbackState::FailbackReadyForLaunch);
    let sim = common::start(SimConfig {
        fleet: fleet.clone(),
        completed_jobs_without_instance_ids: true,
        quotas: Quotas {
            servers_in_active_jobs: 4,
            ..Quotas::default()
        },
        faults: vec![Fault::AnswerWithoutParticipants { calls: 1 }],
        ..SimConfig::default()
    })
    .await;
    let drill = sim
        .start_drill(&["s-30000000000000001".into(), "s-30000000000000002".into()])
        .unwrap();
    let drs = common::in_process_drs(&sim).await;
    let launched = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(fleet.ids()))
        .send()
        .await;
    let quota = launched.unwrap_err().into_service_error();
    assert!(
        matches!(
            quota,
            StartFailbackLaunchError::ServiceQuotaExceededException(_)
        ),
        "the drill's two servers count: 2 + 3 > 4"
    );
    let jobs = drs.describe_jobs().send().await.unwrap();
    let drill_job = &jobs.items()[0];
    assert_eq!(drill_job.job_id(), drill);
    assert!(
        drill_job
            .participating_servers()
            .iter()
            .all(|p| p.recovery_instance_id().is_none())
    );

    tokio::time::sleep(Duration::from_secs(10)).await; // the drill completes
    let answer = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(fleet.ids()))
        .send()
        .await
        .unwrap();
    let job = answer.job.unwrap();
    assert!(
        job.participating_servers().is_empty(),
        "answered without participants"
    );
    tokio::time::sleep(Duration::from_secs(10)).await; // and this one
    let jobs = drs.describe_jobs().send().await.unwrap();
    let completed = jobs
        .items()
        .iter()
        .find(|j| j.job_id() == job.job_id())
        .unwrap();
    assert_eq!(completed.participating_servers().len(), 3);
    assert!(
        completed
            .participating_servers()
            .iter()
            .all(|p| p.recovery_instance_id().is_none() && p.source_server_id().is_some())
    );
}

/// The unkind settings can be changed while the simulator runs (`POST /_sim/settings`), as a CI
/// script or a person at the local run would.
#[tokio::test]
async fn the_unkind_settings_change_at_run_time() {
    let fleet = Fleet::generated(2, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let sim = common::start(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    let settings = r#"{"visibilityLagSeconds": 0.4, "errorDetails": false,
        "history": {"jobs": 30, "days": 1}}"#;
    let answer = common::admin(&sim, "POST", "/_sim/settings", settings).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let bad = common::admin(&sim, "POST", "/_sim/settings", r#"{"visibilityLag": 1}"#).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("visibilityLagSeconds"), "{}", bad.body);

    let drs = common::drs(&sim).await;
    let job = drs
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.clone()))
        .send()
        .await
        .unwrap()
        .job
        .unwrap();
    let by_id = || {
        DescribeJobsRequestFilters::builder()
            .job_ids(job.job_id())
            .build()
    };
    assert!(job_ids(&drs, by_id()).await.is_empty(), "not shown yet");
    let conflict = common::launch(&drs, &ids).await.unwrap_err();
    let StartFailbackLaunchError::ConflictException(conflict) = conflict else {
        panic!("a conflict: {conflict:?}")
    };
    assert!(conflict.resource_id().is_none(), "errors without details");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(job_ids(&drs, by_id()).await, [job.job_id()]);
    let all = job_ids(&drs, DescribeJobsRequestFilters::builder().build()).await;
    assert_eq!(all.len(), 31, "the job and a history of 30");
}
