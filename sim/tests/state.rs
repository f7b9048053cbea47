//! The simulated account's behaviour: quotas, all-or-nothing launches, job lifecycle,
//! pagination, model-driven validation, SigV4 presence, faults and records.

mod common;

use common::launch;

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_drs::error::ProvideErrorMetadata;
use aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchError;
use aws_sdk_drs::types::{
    DescribeJobsRequestFilters, DescribeRecoveryInstancesRequestFilters, JobLogEvent, JobStatus,
    LaunchStatus,
};
use common::{admin, drs, drs_raw, events_raw, raw, start};
use drs_sim::{
    FailbackState, Fault, Fleet, LaunchResult, Lifecycle, Operation, Quotas, SimConfig, Simulator,
};
use serde_json::json;

fn ready(n: usize) -> Fleet {
    Fleet::generated(n, FailbackState::FailbackReadyForLaunch)
}

fn ids(fleet: &Fleet, range: std::ops::Range<usize>) -> Vec<String> {
    fleet.ids()[range].to_vec()
}

fn quota_code(result: Result<String, StartFailbackLaunchError>) -> String {
    match result {
        Err(StartFailbackLaunchError::ServiceQuotaExceededException(e)) => {
            e.quota_code().unwrap_or_default().to_owned()
        }
        other => panic!("expected ServiceQuotaExceededException, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn quotas_each_refuse_with_their_code_and_free_up_when_jobs_complete() {
    let fleet = ready(20);
    let lifecycle = Lifecycle {
        pending: Duration::from_secs(20),
        started: Duration::from_secs(20),
    };
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        quotas: Quotas {
            servers_per_job: 4,
            servers_in_active_jobs: 6,
            active_jobs: 2,
        },
        lifecycle,
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;

    assert_eq!(
        quota_code(launch(&client, &ids(&fleet, 0..5)).await),
        "L-B827C881"
    );
    launch(&client, &ids(&fleet, 0..4))
        .await
        .expect("4 servers fit");
    assert_eq!(
        quota_code(launch(&client, &ids(&fleet, 4..7)).await),
        "L-05AFA8C6",
        "4 + 3 > 6"
    );
    launch(&client, &ids(&fleet, 4..6))
        .await
        .expect("4 + 2 = 6 fit");
    assert_eq!(
        quota_code(launch(&client, &ids(&fleet, 6..7)).await),
        "L-D88FAC3A",
        "a third active job"
    );
    assert_eq!(sim.jobs().len(), 2, "refusals create nothing");

    tokio::time::advance(Duration::from_secs(40)).await;
    launch(&client, &ids(&fleet, 6..10))
        .await
        .expect("completed jobs no longer count");
}

#[tokio::test]
async fn default_quotas_match_drs() {
    assert_eq!(
        Quotas::default(),
        Quotas {
            servers_per_job: 100,
            servers_in_active_jobs: 500,
            active_jobs: 20
        }
    );
    let fleet = ready(101);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    assert_eq!(
        quota_code(launch(&client, &ids(&fleet, 0..101)).await),
        Quotas::SERVERS_PER_JOB_CODE
    );
    launch(&client, &ids(&fleet, 0..100))
        .await
        .expect("100 fit in one job");
}

#[tokio::test]
async fn a_launch_is_all_or_nothing() {
    let fleet = ready(4).with_state(&ready(4).ids()[2], FailbackState::FailbackNotReadyForLaunch);
    let all = fleet.ids();
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    let before = sim.instances();

    match launch(&client, &all).await {
        Err(StartFailbackLaunchError::ConflictException(e)) => {
            assert_eq!(e.resource_id(), Some(all[2].as_str()))
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
    let mut with_unknown = all[..2].to_vec();
    with_unknown.push("i-0ffffffffffffffff".into());
    match launch(&client, &with_unknown).await {
        Err(StartFailbackLaunchError::ValidationException(e)) => {
            assert!(e.message().unwrap().contains("i-0ffffffffffffffff"));
            assert_eq!(e.field_list()[0].name(), Some("recoveryInstanceIDs"));
        }
        other => panic!("expected ValidationException, got {other:?}"),
    }
    assert!(sim.jobs().is_empty());
    assert_eq!(sim.instances(), before, "nothing moved");

    let job = launch(&client, &all[..2])
        .await
        .expect("the ready ones launch");
    match launch(&client, &[all[3].clone(), all[1].clone()]).await {
        Err(StartFailbackLaunchError::ConflictException(e)) => {
            assert_eq!(e.resource_id(), Some(all[1].as_str()));
            assert!(e.message().unwrap().contains(&job), "names the active job");
        }
        other => panic!("expected ConflictException, got {other:?}"),
    }
    assert_eq!(sim.jobs().len(), 1);
    assert_eq!(sim.instances()[3].failback_job_id, None);
}

// On a paused clock: the simulator measures job ages on tokio time, so the test steps it.
#[tokio::test(start_paused = true)]
async fn jobs_and_instances_follow_the_lifecycle() {
    let fleet = ready(3);
    let all = fleet.ids();
    let fleet = fleet.with_launch_result(&all[1], LaunchResult::Failed);
    let sim = start(SimConfig {
        fleet,
        lifecycle: Lifecycle {
            pending: Duration::from_secs(60),
            started: Duration::from_secs(120),
        },
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    let job_id = launch(&client, &all[..2]).await.unwrap();

    let describe = || async {
        let out = client
            .describe_jobs()
            .filters(
                DescribeJobsRequestFilters::builder()
                    .job_ids(&job_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.items()[0].clone()
    };
    let job = describe().await;
    assert_eq!(job.status(), Some(&JobStatus::Pending));
    let instances = sim.instances();
    assert_eq!(instances[0].state, FailbackState::FailbackInProgress);
    assert_eq!(instances[0].active_job_id.as_deref(), Some(job_id.as_str()));
    assert_eq!(instances[2].state, FailbackState::FailbackReadyForLaunch);

    tokio::time::advance(Duration::from_secs(61)).await;
    let job = describe().await;
    assert_eq!(job.status(), Some(&JobStatus::Started));
    assert!(
        job.participating_servers()
            .iter()
            .all(|s| s.launch_status() == Some(&LaunchStatus::InProgress))
    );

    tokio::time::advance(Duration::from_secs(120)).await;
    let job = describe().await;
    assert_eq!(job.status(), Some(&JobStatus::Completed));
    assert!(job.end_date_time().is_some());
    let statuses: Vec<_> = job
        .participating_servers()
        .iter()
        .map(|s| s.launch_status().cloned())
        .collect();
    assert_eq!(
        statuses,
        [Some(LaunchStatus::Launched), Some(LaunchStatus::Failed)]
    );
    let instances = sim.instances();
    assert_eq!(instances[0].state, FailbackState::FailbackCompleted);
    assert_eq!(instances[1].state, FailbackState::FailbackError);
    assert_eq!(
        instances[1].failback_job_id.as_deref(),
        Some(job_id.as_str())
    );
    assert_eq!(instances[1].active_job_id, None);
    assert_eq!(sim.jobs()[0].status, "COMPLETED");

    let logs = client
        .describe_job_log_items()
        .job_id(&job_id)
        .send()
        .await
        .unwrap();
    let events: Vec<_> = logs
        .items()
        .iter()
        .map(|l| l.event().cloned().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            JobLogEvent::JobStart,
            JobLogEvent::LaunchStart,
            JobLogEvent::LaunchStart,
            JobLogEvent::LaunchFailed,
            JobLogEvent::JobEnd
        ]
    );
    assert!(
        logs.items()[3]
            .event_data()
            .and_then(|d| d.raw_error())
            .is_some()
    );

    // Finished instances are not launchable again until someone makes them ready.
    assert!(matches!(
        launch(&client, &all[..1]).await,
        Err(StartFailbackLaunchError::ConflictException(_))
    ));
    assert!(sim.set_instance_state(&all[0], FailbackState::FailbackReadyForLaunch));
    launch(&client, &all[..1]).await.expect("ready again");
}

#[tokio::test]
async fn describe_recovery_instances_pages_through_250() {
    let fleet = ready(250);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    let items: Vec<_> = client
        .describe_recovery_instances()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let seen: Vec<String> = items
        .iter()
        .map(|i| i.recovery_instance_id().unwrap().to_owned())
        .collect();
    assert_eq!(seen, fleet.ids(), "every instance once, in fleet order");
    assert_eq!(sim.calls().len(), 25, "page size 10");

    let big = client
        .describe_recovery_instances()
        .max_results(100)
        .send()
        .await
        .unwrap();
    assert_eq!(big.items().len(), 100);
    assert!(big.next_token().is_some());

    // Filters: 15 ids, one of them unknown (silently absent), in pages of 10.
    let mut wanted = ids(&fleet, 100..114);
    wanted.push("i-0ffffffffffffffff".into());
    let filtered: Vec<_> = client
        .describe_recovery_instances()
        .filters(
            DescribeRecoveryInstancesRequestFilters::builder()
                .set_recovery_instance_ids(Some(wanted))
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(filtered.len(), 14);
    let source = fleet.instances()[7].source_server_id.clone();
    let by_source = client
        .describe_recovery_instances()
        .filters(
            DescribeRecoveryInstancesRequestFilters::builder()
                .source_server_ids(source)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_source.items()[0].recovery_instance_id(),
        Some(fleet.ids()[7].as_str())
    );
    assert_eq!(by_source.next_token(), None, "no token on the last page");
}

#[tokio::test]
async fn page_size_cap_forces_short_pages() {
    let sim = start(SimConfig {
        fleet: ready(30),
        max_page_size: 7,
        ..SimConfig::default()
    })
    .await;
    let out = drs(&sim)
        .await
        .describe_recovery_instances()
        .max_results(200)
        .send()
        .await
        .unwrap();
    assert_eq!(out.items().len(), 7);
}

#[tokio::test]
async fn describe_jobs_newest_first_across_pages_and_log_items_page() {
    let fleet = ready(25);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        quotas: Quotas {
            active_jobs: 100,
            ..Quotas::default()
        },
        page_size: 4,
        // Jobs complete at once, so each has a full log (JOB_START, LAUNCH_START, JOB_END).
        lifecycle: Lifecycle {
            pending: Duration::ZERO,
            started: Duration::ZERO,
        },
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    let mut created = Vec::new();
    for id in fleet.ids() {
        created.push(launch(&client, &[id]).await.unwrap());
    }
    let listed: Vec<String> = client
        .describe_jobs()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .iter()
        .map(|j| j.job_id().to_owned())
        .collect();
    created.reverse();
    assert_eq!(listed, created, "newest first, each once");
    assert_eq!(listed.iter().collect::<HashSet<_>>().len(), 25);

    let some = client
        .describe_jobs()
        .filters(
            DescribeJobsRequestFilters::builder()
                .job_ids(&created[3])
                .job_ids(&created[20])
                .job_ids("drsjob-0000000000000000z")
                .from_date("2020-01-01T00:00:00Z")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got: Vec<_> = some.items().iter().map(|j| j.job_id()).collect();
    assert_eq!(got, [created[3].as_str(), created[20].as_str()]);

    let one_page = client
        .describe_job_log_items()
        .job_id(&created[0])
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(one_page.items().len(), 1);
    assert!(one_page.next_token().is_some());
    let unknown = client
        .describe_job_log_items()
        .job_id("drsjob-0000000000000000z")
        .send()
        .await
        .unwrap();
    assert!(unknown.items().is_empty());

    let bad_token = drs_raw(&sim, "DescribeJobs", r#"{"nextToken":"nonsense"}"#).await;
    assert_eq!(bad_token.status, 400);
    assert_eq!(bad_token.json()["fieldList"][0]["name"], "nextToken");
}

#[tokio::test]
async fn model_driven_validation_names_the_field() {
    let sim = start(SimConfig {
        fleet: ready(3),
        ..SimConfig::default()
    })
    .await;
    let ids201: Vec<String> = (0..201).map(|i| format!("i-{i:017x}")).collect();
    let cases = [
        (
            "StartFailbackLaunch",
            json!({ "recoveryInstanceIDs": ids201 }),
            "recoveryInstanceIDs",
            "less than or equal to 200",
        ),
        (
            "StartFailbackLaunch",
            json!({ "recoveryInstanceIDs": [] }),
            "recoveryInstanceIDs",
            "greater than or equal to 1",
        ),
        (
            "StartFailbackLaunch",
            json!({}),
            "recoveryInstanceIDs",
            "must not be null",
        ),
        (
            "StartFailbackLaunch",
            json!({ "recoveryInstanceIDs": ["i-0123456789abcdef01"] }),
            "recoveryInstanceIDs",
            "less than or equal to 19",
        ),
        (
            "StartFailbackLaunch",
            json!({ "recoveryInstanceIDs": ["i-0123456789abcdefX"] }),
            "recoveryInstanceIDs",
            "pattern",
        ),
        (
            "StartFailbackLaunch",
            json!({ "recoveryInstanceIDs": ["i-01234567"], "tags": { "k": "v".repeat(257) } }),
            "tags",
            "256",
        ),
        (
            "DescribeRecoveryInstances",
            json!({ "maxResults": 0 }),
            "maxResults",
            "greater than or equal to 1",
        ),
        (
            "DescribeRecoveryInstances",
            json!({ "filters": { "recoveryInstanceIDs": ["i-1"] } }),
            "filters.recoveryInstanceIDs",
            "length",
        ),
        (
            "DescribeJobs",
            json!({ "filters": { "jobIDs": ["job-1"] } }),
            "filters.jobIDs",
            "length",
        ),
        (
            "DescribeJobLogItems",
            json!({}),
            "jobID",
            "must not be null",
        ),
    ];
    for (op, body, field, needle) in cases {
        let r = drs_raw(&sim, op, &body.to_string()).await;
        assert_eq!(r.status, 400, "{op} {body}");
        assert_eq!(r.header("x-amzn-errortype"), Some("ValidationException"));
        let v = r.json();
        assert_eq!(v["reason"], "fieldValidationFailed", "{op} {body}");
        assert_eq!(v["fieldList"][0]["name"], field, "{op} {body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{op}: {v}");
    }
    let tags = drs_raw(&sim, "StartFailbackLaunch", &json!({ "recoveryInstanceIDs": ["i-01234567"], "tags": { "k": "secretvalue".repeat(30) } }).to_string()).await;
    assert!(
        !tags.body.contains("secretvalue"),
        "tag values are sensitive"
    );

    for garbage in ["{", "[1,2]", r#"{"recoveryInstanceIDs": "i-01234567"}"#] {
        let r = drs_raw(&sim, "StartFailbackLaunch", garbage).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["reason"], "cannotParse", "{garbage}");
    }
    let unknown = drs_raw(&sim, "StartRecovery", "{}").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["reason"], "unknownOperation");
    assert!(sim.jobs().is_empty());
}

#[tokio::test]
async fn unsigned_or_wrongly_scoped_requests_are_refused() {
    let sim = start(SimConfig {
        fleet: ready(1),
        ..SimConfig::default()
    })
    .await;
    let body = json!({ "recoveryInstanceIDs": ready(1).ids() }).to_string();
    let r = raw(
        sim.addr(),
        "POST",
        "/StartFailbackLaunch",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    let r = raw(
        sim.addr(),
        "POST",
        "/StartFailbackLaunch",
        &[("authorization", common::EVENTS_AUTH)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        r.status, 403,
        "an events-scoped signature does not open DRS"
    );

    let put = json!({"Entries": [{"Source": "x", "DetailType": "y", "Detail": "{}"}]}).to_string();
    let r = raw(
        sim.addr(),
        "POST",
        "/",
        &[
            ("x-amz-target", "AWSEvents.PutEvents"),
            ("content-type", "application/x-amz-json-1.1"),
        ],
        put.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["__type"], "MissingAuthenticationTokenException");
    let r = raw(
        sim.addr(),
        "POST",
        "/",
        &[
            ("x-amz-target", "AWSEvents.PutEvents"),
            ("authorization", common::DRS_AUTH),
        ],
        put.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(sim.jobs().is_empty() && sim.delivered_events().is_empty());
    assert!(sim.calls().iter().all(|c| c.status == 403));
    assert_eq!(
        events_raw(&sim, &put).await.status,
        200,
        "signed, it goes through"
    );
}

#[tokio::test]
async fn internal_error_after_create_really_creates_the_job() {
    let fleet = ready(3);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    sim.inject(Fault::InternalErrorAfterCreate { calls: 1 });
    let client = drs(&sim).await;
    // A refused call does not use the fault up.
    assert!(
        launch(&client, &["i-0ffffffffffffffff".to_owned()])
            .await
            .is_err()
    );
    match launch(&client, &ids(&fleet, 0..2)).await {
        Err(StartFailbackLaunchError::InternalServerException(_)) => {}
        other => panic!("expected InternalServerException, got {other:?}"),
    }
    let jobs = sim.jobs();
    assert_eq!(jobs.len(), 1, "the ambiguous case: the job exists");
    assert_eq!(jobs[0].recovery_instance_ids, ids(&fleet, 0..2));
    let call = sim.calls().pop().unwrap();
    assert_eq!(
        (call.status, call.job_id.as_deref()),
        (500, Some(jobs[0].job_id.as_str()))
    );
    assert_eq!(
        sim.instances()[0].failback_job_id.as_deref(),
        Some(jobs[0].job_id.as_str())
    );
    // A blind resend collides with the job it did not know it started.
    assert!(matches!(
        launch(&client, &ids(&fleet, 0..2)).await,
        Err(StartFailbackLaunchError::ConflictException(_))
    ));
    launch(&client, &ids(&fleet, 2..3))
        .await
        .expect("the fault was used once");
}

#[tokio::test]
async fn hang_after_accept_creates_the_job_then_answers_late() {
    let fleet = ready(2);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    sim.inject(Fault::HangAfterAccept {
        calls: 1,
        seconds: 5.0,
    });
    let sdk = drs_sim::sdk_config(&sim.endpoint())
        .await
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(50))
                .build(),
        )
        .build();
    let client = aws_sdk_drs::Client::new(&sdk);
    let err = client
        .start_failback_launch()
        .recovery_instance_ids(&fleet.ids()[0])
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("Timeout"), "{err:?}");
    assert_eq!(sim.jobs().len(), 1, "accepted before the caller gave up");
    assert_eq!(sim.calls()[0].status, 200);

    let started = std::time::Instant::now();
    launch(&drs(&sim).await, &ids(&fleet, 1..2))
        .await
        .expect("the hang was used once");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn latency_delays_every_call() {
    let sim = start(SimConfig {
        fleet: ready(1),
        latency: Some(Duration::from_millis(30)),
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    let started = std::time::Instant::now();
    client.describe_jobs().send().await.unwrap();
    client.describe_recovery_instances().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn rate_limit_throttles_the_excess() {
    let sim = start(SimConfig {
        faults: vec![Fault::RateLimit {
            operation: Operation::DescribeJobs,
            per_second: 0.5,
            burst: 2,
        }],
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    client.describe_jobs().send().await.expect("burst 1");
    client.describe_jobs().send().await.expect("burst 2");
    match client
        .describe_jobs()
        .send()
        .await
        .map_err(|e| e.into_service_error())
    {
        Err(aws_sdk_drs::operation::describe_jobs::DescribeJobsError::ThrottlingException(e)) => {
            assert_eq!(e.retry_after_seconds(), Some("2"), "one token at 0.5/s");
        }
        other => panic!("expected throttling, got {other:?}"),
    }
    client
        .describe_recovery_instances()
        .send()
        .await
        .expect("other operations unaffected");
    assert_eq!(sim.faults().len(), 1, "a rate limit stays");
}

#[tokio::test]
async fn throttle_fault_counts_calls_then_clears() {
    let sim = start(SimConfig::default()).await;
    sim.inject(Fault::Throttle {
        operation: Operation::DescribeJobs,
        calls: 2,
        retry_after_seconds: 1,
    });
    let client = drs(&sim).await;
    assert!(client.describe_jobs().send().await.is_err());
    assert!(client.describe_jobs().send().await.is_err());
    client
        .describe_jobs()
        .send()
        .await
        .expect("third call passes");
    assert!(sim.faults().is_empty());
    let statuses: Vec<u16> = sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
}

#[tokio::test]
async fn every_call_is_recorded() {
    let fleet = ready(3);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    let client = drs(&sim).await;
    let job = launch(&client, &ids(&fleet, 0..2)).await.unwrap();
    let _ = launch(&client, &ids(&fleet, 1..3)).await.unwrap_err();
    client
        .describe_recovery_instances()
        .filters(
            DescribeRecoveryInstancesRequestFilters::builder()
                .recovery_instance_ids(&fleet.ids()[2])
                .build(),
        )
        .send()
        .await
        .unwrap();
    let put = json!({"Entries": [{"Source": "a", "DetailType": "b", "Detail": "{}"}, {"Source": "a", "DetailType": "b", "Detail": "{}"}]});
    events_raw(&sim, &put.to_string()).await;

    let calls = sim.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].operation, Operation::StartFailbackLaunch);
    assert_eq!(calls[0].recovery_instance_ids, ids(&fleet, 0..2));
    assert_eq!(
        (
            calls[0].status,
            calls[0].error_type.as_deref(),
            calls[0].job_id.as_deref()
        ),
        (200, None, Some(job.as_str()))
    );
    assert_eq!(
        (
            calls[1].status,
            calls[1].error_type.as_deref(),
            calls[1].job_id.as_deref()
        ),
        (409, Some("ConflictException"), None)
    );
    assert_eq!(calls[2].operation, Operation::DescribeRecoveryInstances);
    assert_eq!(calls[2].recovery_instance_ids, ids(&fleet, 2..3));
    assert_eq!(
        (calls[3].operation, calls[3].entries),
        (Operation::PutEvents, 2)
    );
    assert!(calls.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    let v = serde_json::to_value(&calls[0]).unwrap();
    assert_eq!(v["operation"], "StartFailbackLaunch");
    assert_eq!(v["jobID"], job.as_str());
}

#[tokio::test]
async fn admin_endpoints() {
    let fleet = ready(2);
    let all = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    assert_eq!(
        admin(&sim, "GET", "/_sim/health", "").await.json()["ok"],
        true
    );
    let r = admin(
        &sim,
        "POST",
        "/_sim/faults",
        r#"{"type":"throttle","operation":"StartFailbackLaunch","calls":1,"retryAfterSeconds":4}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin(
        &sim,
        "POST",
        "/_sim/faults",
        r#"[{"type":"putEventsDown","calls":1},{"type":"failPutEventsEntries","entries":2}]"#,
    )
    .await;
    assert_eq!(r.json()["pending"], 3);
    assert_eq!(
        admin(&sim, "GET", "/_sim/faults", "")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        admin(&sim, "POST", "/_sim/faults", r#"{"type":"throttle"}"#)
            .await
            .status,
        400
    );
    assert_eq!(
        admin(
            &sim,
            "POST",
            "/_sim/faults",
            r#"{"type":"hangAfterAccept","calls":1,"seconds":-1}"#
        )
        .await
        .status,
        400
    );

    let client = drs(&sim).await;
    let err = launch(&client, &all[..1]).await.unwrap_err();
    assert!(
        matches!(err, StartFailbackLaunchError::ThrottlingException(ref e) if e.retry_after_seconds() == Some("4"))
    );
    assert_eq!(admin(&sim, "DELETE", "/_sim/faults", "").await.status, 200);
    assert!(sim.faults().is_empty());

    let job = launch(&client, &all[..1]).await.unwrap();
    events_raw(
        &sim,
        r#"{"Entries":[{"Source":"a","DetailType":"b","Detail":"{\"x\":1}"}]}"#,
    )
    .await;
    let jobs = admin(&sim, "GET", "/_sim/jobs", "").await.json();
    assert_eq!(jobs[0]["jobID"], job.as_str());
    assert_eq!(jobs[0]["status"], "PENDING");
    let instances = admin(&sim, "GET", "/_sim/instances", "").await.json();
    assert_eq!(instances[0]["state"], "FAILBACK_IN_PROGRESS");
    assert_eq!(instances[0]["failbackJobID"], job.as_str());
    let events = admin(&sim, "GET", "/_sim/events", "").await.json();
    assert_eq!(events[0]["detail"]["x"], 1);
    let calls = admin(&sim, "GET", "/_sim/calls", "").await.json();
    assert_eq!(calls.as_array().unwrap().len(), 3);
    let parsed: Vec<drs_sim::CallRecord> = serde_json::from_value(calls).unwrap();
    assert_eq!(parsed, sim.calls());

    let r = admin(
        &sim,
        "POST",
        "/_sim/instances",
        &json!({"recoveryInstanceID": all[1], "state": "FAILBACK_ERROR", "launchResult": "FAILED"})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sim.instances()[1].state, FailbackState::FailbackError);
    assert_eq!(sim.instances()[1].launch_result, LaunchResult::Failed);
    assert_eq!(
        admin(
            &sim,
            "POST",
            "/_sim/instances",
            r#"{"recoveryInstanceID":"i-0ffffffffffffffff","state":"FAILBACK_ERROR"}"#
        )
        .await
        .status,
        404
    );
    let r = admin(
        &sim,
        "POST",
        "/_sim/instances",
        &json!({"recoveryInstanceID": all[0], "failureEvent": "CONVERSION_FAIL"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sim.instances()[0].launch_result, LaunchResult::Failed);
    let r = admin(
        &sim,
        "POST",
        "/_sim/instances",
        &json!({"recoveryInstanceID": all[0], "failureEvent": "NOT_AN_EVENT"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);

    assert_eq!(admin(&sim, "POST", "/_sim/reset", "").await.status, 200);
    assert!(sim.jobs().is_empty() && sim.calls().is_empty() && sim.delivered_events().is_empty());
    assert_eq!(
        sim.instances()[1].state,
        FailbackState::FailbackReadyForLaunch
    );
    assert_eq!(admin(&sim, "GET", "/_sim/nope", "").await.status, 404);
}

#[tokio::test]
async fn the_server_survives_garbage() {
    let sim = start(SimConfig {
        fleet: ready(1),
        ..SimConfig::default()
    })
    .await;
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
        s.write_all(b"\x00\x01 NOT HTTP \r\n\r\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    }
    assert_eq!(raw(sim.addr(), "GET", "/", &[], b"").await.status, 404);
    assert_eq!(
        raw(
            sim.addr(),
            "POST",
            "/",
            &[("x-amz-target", "AWSEvents.Nope")],
            b"{}"
        )
        .await
        .json()["__type"],
        "UnknownOperationException"
    );
    let r = events_raw(&sim, "{not json").await;
    assert_eq!(
        (r.status, r.json()["__type"].as_str()),
        (400, Some("SerializationException"))
    );
    let r = events_raw(&sim, r#"{"Entries": "x"}"#).await;
    assert_eq!(r.status, 400);
    let r = drs_raw(&sim, "StartFailbackLaunch", "\u{0}\u{ffff}").await;
    assert_eq!(r.status, 400);
    drs(&sim)
        .await
        .describe_jobs()
        .send()
        .await
        .expect("still serving");
}

#[tokio::test]
async fn only_loopback_binds() {
    let err = Simulator::start_on(SimConfig::default(), "0.0.0.0:0".parse().unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let bad = SimConfig {
        page_size: 0,
        ..SimConfig::default()
    };
    assert!(Simulator::start(bad).await.is_err());
    let sim = Simulator::start_on(SimConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(sim.endpoint().starts_with("http://127.0.0.1:"));
    sim.stop().await;
}

#[tokio::test]
async fn uninitialized_account_over_the_wire() {
    let sim = start(SimConfig {
        account_initialized: false,
        ..SimConfig::default()
    })
    .await;
    let r = drs_raw(&sim, "DescribeJobs", "{}").await;
    assert_eq!(
        (r.status, r.header("x-amzn-errortype")),
        (400, Some("UninitializedAccountException"))
    );
    let err = drs(&sim)
        .await
        .describe_jobs()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("UninitializedAccountException"));
}
