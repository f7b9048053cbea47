//! The real AWS SDK clients read every answer the simulator gives into the right typed value:
//! each DRS error shape with its modelled fields, successful outputs, and EventBridge's
//! per-entry and whole-call failures.

mod common;

use aws_sdk_drs::error::ProvideErrorMetadata;
use aws_sdk_drs::operation::describe_jobs::DescribeJobsError;
use aws_sdk_drs::operation::describe_recovery_instances::DescribeRecoveryInstancesError;
use aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchError;
use aws_sdk_drs::types::{
    FailbackState as SdkState, InitiatedBy, JobStatus, JobType, LaunchStatus,
    ValidationExceptionReason,
};
use aws_sdk_eventbridge::operation::put_events::PutEventsError;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use common::{drs, events, start};
use drs_sim::{FailbackState, Fault, Fleet, Operation, Quotas, SimConfig};

const A: &str = "i-0a0000000000000a1";
const B: &str = "i-0a0000000000000b2";
const C: &str = "i-0a0000000000000c3";

fn fleet() -> Fleet {
    Fleet::matching([A, B, C]).with_state(C, FailbackState::FailbackNotStarted)
}

fn config() -> SimConfig {
    SimConfig {
        fleet: fleet(),
        ..SimConfig::default()
    }
}

async fn launch(
    client: &aws_sdk_drs::Client,
    ids: &[&str],
) -> Result<
    aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchOutput,
    StartFailbackLaunchError,
> {
    client
        .start_failback_launch()
        .set_recovery_instance_ids(Some(ids.iter().map(|s| s.to_string()).collect()))
        .tags("Wave", "1")
        .send()
        .await
        .map_err(|e| e.into_service_error())
}

#[tokio::test]
async fn a_launch_parses_into_the_sdk_job() {
    let sim = start(config()).await;
    let out = launch(&drs(&sim).await, &[A, B])
        .await
        .expect("launch succeeds");
    let job = out.job().expect("job");
    assert_eq!(job.job_id().len(), 24);
    assert!(job.job_id().starts_with("drsjob-"));
    assert_eq!(
        job.arn(),
        Some(format!("arn:aws:drs:us-east-1:111122223333:job/{}", job.job_id()).as_str())
    );
    assert_eq!(job.r#type(), Some(&JobType::Launch));
    assert_eq!(job.initiated_by(), Some(&InitiatedBy::Failback));
    assert_eq!(job.status(), Some(&JobStatus::Pending));
    assert!(job.creation_date_time().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(job.end_date_time(), None);
    assert_eq!(
        job.tags().and_then(|t| t.get("Wave")).map(String::as_str),
        Some("1")
    );
    let servers = job.participating_servers();
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0].recovery_instance_id(), Some(A));
    assert_eq!(servers[0].launch_status(), Some(&LaunchStatus::Pending));
    assert!(
        servers[0]
            .source_server_id()
            .is_some_and(|s| s.starts_with("s-") && s.len() == 19)
    );

    let described = drs(&sim)
        .await
        .describe_recovery_instances()
        .send()
        .await
        .expect("describe");
    let a = described
        .items()
        .iter()
        .find(|i| i.recovery_instance_id() == Some(A))
        .expect("A listed");
    let failback = a.failback().expect("failback");
    assert_eq!(failback.state(), Some(&SdkState::FailbackInProgress));
    assert_eq!(failback.failback_job_id(), Some(job.job_id()));
}

#[tokio::test]
async fn throttling_exception_carries_retry_after_and_service_code() {
    let sim = start(config()).await;
    sim.inject(Fault::Throttle {
        operation: Operation::StartFailbackLaunch,
        calls: 1,
        retry_after_seconds: 3,
    });
    match launch(&drs(&sim).await, &[A]).await {
        Err(StartFailbackLaunchError::ThrottlingException(e)) => {
            assert_eq!(e.retry_after_seconds(), Some("3"));
            assert_eq!(e.service_code(), Some("drs"));
            assert!(!e.message().is_empty());
        }
        other => panic!("expected ThrottlingException, got {other:?}"),
    }
    assert!(sim.jobs().is_empty());

    sim.inject(Fault::Throttle {
        operation: Operation::DescribeRecoveryInstances,
        calls: 1,
        retry_after_seconds: 7,
    });
    let err = drs(&sim)
        .await
        .describe_recovery_instances()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    match err {
        DescribeRecoveryInstancesError::ThrottlingException(e) => {
            assert_eq!(e.retry_after_seconds(), Some("7"))
        }
        other => panic!("expected ThrottlingException, got {other:?}"),
    }
}

#[tokio::test]
async fn internal_server_exception_carries_retry_after() {
    let sim = start(config()).await;
    sim.inject(Fault::InternalErrorBeforeCreate { calls: 1 });
    match launch(&drs(&sim).await, &[A]).await {
        Err(StartFailbackLaunchError::InternalServerException(e)) => {
            assert_eq!(e.retry_after_seconds(), 1);
            assert!(!e.message().is_empty());
        }
        other => panic!("expected InternalServerException, got {other:?}"),
    }
    assert!(sim.jobs().is_empty(), "a 500 before create creates nothing");
}

#[tokio::test]
async fn conflict_exception_names_the_instance() {
    let sim = start(config()).await;
    match launch(&drs(&sim).await, &[A, C]).await {
        Err(StartFailbackLaunchError::ConflictException(e)) => {
            assert_eq!(e.resource_id(), Some(C));
            assert_eq!(e.resource_type(), Some("RECOVERY_INSTANCE"));
            assert!(
                e.message()
                    .is_some_and(|m| m.contains("FAILBACK_NOT_STARTED"))
            );
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
}

#[tokio::test]
async fn validation_exception_has_reason_and_field_list() {
    let sim = start(config()).await;
    let client = drs(&sim).await;
    for (ids, needle) in [
        (vec!["i-0a000000000000099"], "i-0a000000000000099"), // well formed, unknown
        (vec!["i-0a0000000000000a12"], "less than or equal to 19"), // 20 chars
        (vec!["x-0a0000000000000a1"], "regular expression"),
    ] {
        match launch(&client, &ids).await {
            Err(StartFailbackLaunchError::ValidationException(e)) => {
                assert_eq!(
                    e.reason(),
                    Some(&ValidationExceptionReason::FieldValidationFailed)
                );
                assert_eq!(e.field_list().len(), 1, "{ids:?}");
                assert_eq!(e.field_list()[0].name(), Some("recoveryInstanceIDs"));
                let text = format!(
                    "{} {}",
                    e.message().unwrap_or_default(),
                    e.field_list()[0].message().unwrap_or_default()
                );
                assert!(text.contains(needle), "{ids:?}: {text}");
            }
            other => panic!("{ids:?}: expected ValidationException, got {other:?}"),
        }
    }
    match client
        .describe_jobs()
        .max_results(0)
        .send()
        .await
        .map_err(|e| e.into_service_error())
    {
        Err(DescribeJobsError::ValidationException(e)) => {
            assert_eq!(e.field_list()[0].name(), Some("maxResults"))
        }
        other => panic!("expected ValidationException, got {other:?}"),
    }
    // DescribeRecoveryInstances models no ValidationException: the SDK keeps the code.
    let err = client
        .describe_recovery_instances()
        .max_results(0)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(sim.jobs().is_empty());
}

#[tokio::test]
async fn service_quota_exceeded_exception_has_quota_code() {
    let sim = start(SimConfig {
        quotas: Quotas {
            servers_per_job: 1,
            ..Quotas::default()
        },
        ..config()
    })
    .await;
    match launch(&drs(&sim).await, &[A, B]).await {
        Err(StartFailbackLaunchError::ServiceQuotaExceededException(e)) => {
            assert_eq!(e.quota_code(), Some("L-B827C881"));
            assert_eq!(e.service_code(), Some("drs"));
            assert!(e.message().is_some());
        }
        other => panic!("expected ServiceQuotaExceededException, got {other:?}"),
    }
}

#[tokio::test]
async fn uninitialized_account_exception_on_every_drs_call() {
    let sim = start(SimConfig {
        account_initialized: false,
        ..config()
    })
    .await;
    let client = drs(&sim).await;
    assert!(matches!(
        launch(&client, &[A]).await,
        Err(StartFailbackLaunchError::UninitializedAccountException(_))
    ));
    assert!(matches!(
        client
            .describe_recovery_instances()
            .send()
            .await
            .map_err(|e| e.into_service_error()),
        Err(DescribeRecoveryInstancesError::UninitializedAccountException(_))
    ));
    assert!(matches!(
        client
            .describe_jobs()
            .send()
            .await
            .map_err(|e| e.into_service_error()),
        Err(DescribeJobsError::UninitializedAccountException(_))
    ));
    let err = client
        .describe_job_log_items()
        .job_id("drsjob-0123456789abcdefg")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.into_service_error().code(),
        Some("UninitializedAccountException")
    );
}

fn entry(source: &str, detail: Option<&str>) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .source(source)
        .detail_type("DRS Failback Job Started")
        .set_detail(detail.map(str::to_owned))
        .resources("arn:aws:drs:us-east-1:111122223333:job/drsjob-0123456789abcdefg")
        .event_bus_name("failback-bus")
        .build()
}

#[tokio::test]
async fn put_events_reports_failures_per_entry_in_order() {
    let sim = start(config()).await;
    sim.inject(Fault::FailPutEventsEntries { entries: 1 });
    let out = events(&sim)
        .await
        .put_events()
        .entries(entry("aws.drs", Some("{}")))
        .entries(entry("drs-failback", Some("[1]")))
        .entries(entry("drs-failback", None))
        .entries(entry("drs-failback", Some(r#"{"n":1}"#))) // the injected failure
        .entries(entry("drs-failback", Some(r#"{"n":2}"#)))
        .send()
        .await
        .expect("PutEvents answers 200");
    assert_eq!(out.failed_entry_count(), 4);
    let codes: Vec<Option<&str>> = out.entries().iter().map(|e| e.error_code()).collect();
    assert_eq!(
        codes,
        [
            Some("NotAuthorizedForSourceException"),
            Some("MalformedDetail"),
            Some("InvalidArgument"),
            Some("InternalFailure"),
            None
        ]
    );
    assert!(
        out.entries()[..4]
            .iter()
            .all(|e| e.error_message().is_some() && e.event_id().is_none())
    );
    assert!(out.entries()[4].event_id().is_some());
    let delivered = sim.delivered_events();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].detail, serde_json::json!({"n": 2}));
    assert_eq!(delivered[0].event_bus_name, "failback-bus");
    assert_eq!(delivered[0].source, "drs-failback");
    assert_eq!(delivered[0].resources.len(), 1);
    assert_eq!(delivered[0].event_id, out.entries()[4].event_id().unwrap());
}

#[tokio::test]
async fn put_events_whole_call_errors() {
    let sim = start(config()).await;
    let client = events(&sim).await;
    let eleven = (0..11)
        .map(|i| entry("drs-failback", Some(&format!(r#"{{"i":{i}}}"#))))
        .collect();
    let err = client
        .put_events()
        .set_entries(Some(eleven))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().is_some_and(|m| m.contains("10")));

    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(256 * 1024));
    let err = client
        .put_events()
        .entries(entry("drs-failback", Some(&big)))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ValidationException"));

    sim.inject(Fault::PutEventsDown { calls: 1 });
    let err = client
        .put_events()
        .entries(entry("drs-failback", Some("{}")))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, PutEventsError::InternalException(_)),
        "{err:?}"
    );

    sim.inject(Fault::Throttle {
        operation: Operation::PutEvents,
        calls: 1,
        retry_after_seconds: 2,
    });
    let err = client
        .put_events()
        .entries(entry("drs-failback", Some("{}")))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("ThrottlingException"));

    assert!(sim.delivered_events().is_empty());
    let ok = client
        .put_events()
        .entries(entry("drs-failback", Some("{}")))
        .send()
        .await
        .expect("then it works");
    assert_eq!(ok.failed_entry_count(), 0);
}

/// The finishing calls: DisconnectRecoveryInstance leaves the instance listed, DISCONNECTED with no
/// bytes; TerminateRecoveryInstances makes a TERMINATE job, refuses an instance in a running job
/// or unknown, and once the job completes the instance is gone — a second terminate of it is
/// refused, and so is a disconnect.
#[tokio::test(start_paused = true)]
async fn finishing_disconnects_and_terminates_as_drs_does() {
    use aws_sdk_drs::types::RecoveryInstanceDataReplicationState as DataReplicationState;
    let sim = start(config()).await;
    let client = common::in_process_drs(&sim).await;
    client
        .disconnect_recovery_instance()
        .recovery_instance_id(A)
        .send()
        .await
        .expect("disconnect");
    let shown = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("describe");
    let a = shown
        .items()
        .iter()
        .find(|i| i.recovery_instance_id() == Some(A))
        .expect("a disconnected instance stays listed");
    let info = a.data_replication_info().expect("replication info");
    assert_eq!(
        info.data_replication_state(),
        Some(&DataReplicationState::Disconnected)
    );
    assert_eq!(info.replicated_disks()[0].total_storage_bytes(), 0);

    // B is launched: in a running job it can be neither terminated nor disconnected.
    launch(&client, &[B]).await.expect("launch");
    let busy = client
        .terminate_recovery_instances()
        .recovery_instance_ids(A)
        .recovery_instance_ids(B)
        .send()
        .await
        .expect_err("B is busy")
        .into_service_error();
    assert_eq!(busy.code(), Some("ConflictException"), "{busy:?}");
    let busy = client
        .disconnect_recovery_instance()
        .recovery_instance_id(B)
        .send()
        .await
        .expect_err("B is busy")
        .into_service_error();
    assert_eq!(busy.code(), Some("ConflictException"), "{busy:?}");
    let unknown = client
        .terminate_recovery_instances()
        .recovery_instance_ids("i-0ffffffffffffffff")
        .send()
        .await
        .expect_err("unknown")
        .into_service_error();
    assert_eq!(unknown.code(), Some("ValidationException"), "{unknown:?}");

    let out = client
        .terminate_recovery_instances()
        .recovery_instance_ids(A)
        .send()
        .await
        .expect("terminate");
    let job = out.job().expect("a job");
    assert_eq!(job.r#type(), Some(&JobType::Terminate));
    assert_eq!(
        job.initiated_by(),
        Some(&InitiatedBy::TerminateRecoveryInstances)
    );
    let job_id = job.job_id().to_owned();
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    let jobs = client
        .describe_jobs()
        .filters(
            aws_sdk_drs::types::DescribeJobsRequestFilters::builder()
                .job_ids(&job_id)
                .build(),
        )
        .send()
        .await
        .expect("describe jobs");
    let done = &jobs.items()[0];
    assert_eq!(done.status(), Some(&JobStatus::Completed));
    assert_eq!(
        done.participating_servers()[0].launch_status(),
        Some(&LaunchStatus::Terminated)
    );
    let left = client
        .describe_recovery_instances()
        .send()
        .await
        .expect("describe");
    assert!(
        left.items()
            .iter()
            .all(|i| i.recovery_instance_id() != Some(A)),
        "a terminated instance is gone"
    );
    let again = client
        .terminate_recovery_instances()
        .recovery_instance_ids(A)
        .send()
        .await
        .expect_err("gone")
        .into_service_error();
    assert_eq!(again.code(), Some("ValidationException"));
    let gone = client
        .disconnect_recovery_instance()
        .recovery_instance_id(A)
        .send()
        .await
        .expect_err("gone")
        .into_service_error();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
}
