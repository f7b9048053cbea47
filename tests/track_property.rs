//! Every launched instance ends with exactly one final result, and each job is announced once:
//! random per-server outcomes (succeed, fail with a log event, fail, terminate), random job
//! durations and the unkind DRS (a visibility lag, launch statuses that stay PENDING, final states
//! after the job, completed jobs without instance ids), reads throttled or failing past their
//! retries, EventBridge outages, and random tracking schedules — calls at random moments, some
//! with too little time left — each asking after the jobs the one before left running and passing
//! back what it reported, as the state machine does; then the run's last call.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use drs_failback::events::{DETAIL_TYPE_JOB_COMPLETED, DETAIL_TYPE_RUN_FINISHED};
use drs_sim::{Fault, LaunchResult, Lifecycle, Operation, Quotas, SimConfig};
use proptest::prelude::*;
use serde_json::json;
use support::*;
use tokio::time::{Instant, sleep};

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Succeed,
    FailWith(&'static str),
    Fail,
    Terminate,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Succeed),
        1 => prop_oneof![Just("CONVERSION_FAIL"), Just("SNAPSHOT_FAIL"), Just("SERVER_SKIPPED")]
            .prop_map(Outcome::FailWith),
        1 => Just(Outcome::Fail),
        1 => Just(Outcome::Terminate),
    ]
}

fn read_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (
            prop_oneof![
                Just(Operation::DescribeJobs),
                Just(Operation::DescribeRecoveryInstances),
                Just(Operation::DescribeJobLogItems),
            ],
            1u32..9,
            0u32..4
        )
            .prop_map(|(operation, calls, retry_after_seconds)| Fault::Throttle {
                operation,
                calls,
                retry_after_seconds,
            }),
        // DRS failing reads: past the reads' own retries, a read that fails for this call.
        (
            prop_oneof![
                Just(Operation::DescribeJobs),
                Just(Operation::DescribeRecoveryInstances),
                Just(Operation::DescribeJobLogItems),
            ],
            1u32..9,
        )
            .prop_map(|(operation, calls)| Fault::internal_error(
                operation,
                calls,
                0,
                "simulated"
            )),
        (1u32..8).prop_map(|calls| Fault::PutEventsDown { calls }),
        (1u32..3).prop_map(|entries| Fault::FailPutEventsEntries { entries }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    outcomes: Vec<Outcome>,
    per_job: usize,
    pending: u64,
    started: u64,
    visibility_lag: u64,
    stays_pending: bool,
    final_state_lag: u64,
    without_ids: bool,
    /// Per tracking call: the wait before it, whether it has time to read, a fault before it.
    schedule: Vec<(u64, bool, Option<Fault>)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(outcome(), 1..30),
        1usize..12,
        (0u64..20, 1u64..60, 0u64..8),
        (
            any::<bool>(),
            prop_oneof![Just(0u64), 1u64..40],
            any::<bool>(),
        ),
        prop::collection::vec(
            (
                0u64..40,
                prop::bool::weighted(0.85),
                prop::option::weighted(0.3, read_fault()),
            ),
            1..8,
        ),
    )
        .prop_map(
            |(
                outcomes,
                per_job,
                (pending, started, visibility_lag),
                (stays_pending, final_state_lag, without_ids),
                schedule,
            )| Case {
                outcomes,
                per_job,
                pending,
                started,
                visibility_lag,
                stays_pending,
                final_state_lag,
                without_ids,
                schedule,
            },
        )
}

fn track(jobs: &[String], reported: &[String], final_call: bool) -> serde_json::Value {
    json!({"action": "track", "runId": RUN_ID, "jobIDs": jobs, "reportedJobIDs": reported,
           "final": final_call, "notLaunched": 0})
}

async fn check(case: Case) {
    let mut fleet = ready(case.outcomes.len());
    let ids = fleet.ids();
    let mut expected = BTreeMap::new();
    for (id, outcome) in ids.iter().zip(&case.outcomes) {
        let want = match outcome {
            Outcome::Succeed => ("succeeded", None),
            Outcome::FailWith(event) => {
                fleet.set_failure(id, event);
                ("failed", Some(*event))
            }
            Outcome::Fail => {
                fleet.set_launch_result(id, LaunchResult::Failed);
                ("failed", Some("LAUNCH_FAILED"))
            }
            Outcome::Terminate => {
                fleet.set_launch_result(id, LaunchResult::Terminated);
                ("failed", Some("LAUNCH_FAILED"))
            }
        };
        expected.insert(id.clone(), (want.0.to_owned(), want.1.map(str::to_owned)));
    }
    let sim = start(SimConfig {
        fleet,
        lifecycle: Lifecycle {
            pending: Duration::from_secs(case.pending),
            started: Duration::from_secs(case.started),
        },
        quotas: Quotas {
            servers_in_active_jobs: 10_000,
            active_jobs: 1000,
            ..Quotas::default()
        },
        visibility_lag: Duration::from_secs(case.visibility_lag),
        launch_status_stays_pending: case.stays_pending,
        final_state_lag: Duration::from_secs(case.final_state_lag),
        completed_jobs_without_instance_ids: case.without_ids,
        ..SimConfig::default()
    })
    .await;
    let per_job = case.per_job.to_string();
    let fb = failback_in_process(
        &sim,
        &[
            ("MAX_INSTANCES_PER_JOB", per_job.as_str()),
            ("MAX_SERVERS_IN_FLIGHT", "10000"),
            ("MAX_ACTIVE_JOBS", "1000"),
        ],
        1.0,
    )
    .await;
    let launched = fb.handle(request(&ids), in_minutes(10)).await.unwrap();
    assert_eq!(launched.counts.launched, ids.len(), "{launched:?}");
    let jobs: Vec<String> = launched.jobs.iter().map(|j| j.job_id.clone()).collect();

    // As the state machine tracks: the schedule, then a call every 10 s, each asking after the
    // jobs the one before left running and passing back what was reported, until none is left.
    let mut reported: Vec<String> = Vec::new();
    let mut running = jobs.clone();
    let mut seen: HashMap<String, (String, Option<String>)> = HashMap::new();
    let mut kinds: HashMap<String, String> = HashMap::new();
    let mut calls = case.schedule.clone().into_iter();
    for round in 0..40 {
        if running.is_empty() {
            break;
        }
        let (wait, in_time, fault) = calls.next().unwrap_or((10, true, None));
        sleep(Duration::from_secs(wait)).await;
        if let Some(fault) = fault {
            sim.inject(fault);
        }
        let deadline = if in_time {
            in_minutes(2)
        } else {
            Instant::now() + Duration::from_millis(3_200)
        };
        let answer = fb
            .handle_track(track(&running, &reported, false), deadline)
            .await
            .unwrap();
        assert!(Instant::now() <= deadline, "answered in time");
        // A final result never changes; its reason is settled once the job is done (while the
        // job's log cannot be read the reason is the failback state's, and the job not done).
        let settled: Vec<&String> = answer
            .jobs
            .iter()
            .filter(|j| j.done)
            .map(|j| &j.job_id)
            .collect();
        for job in &answer.jobs {
            for result in job.results() {
                let kind = serde_json::to_value(result.result).unwrap();
                let kind = kind.as_str().unwrap().to_owned();
                if kind == "running" {
                    continue;
                }
                let id = result.id().to_owned();
                if let Some(before) = kinds.insert(id.clone(), kind.clone()) {
                    assert_eq!(before, kind, "{id} changed its final result");
                }
                if settled.contains(&&job.job_id) {
                    let now = (kind, result.reason.clone());
                    if let Some(before) = seen.insert(id.clone(), now.clone()) {
                        assert_eq!(
                            before, now,
                            "{id} changed its reason after its job was done"
                        );
                    }
                }
            }
        }
        reported = answer.reported_job_ids.clone();
        running = answer.running_job_ids.clone();
        if round >= case.schedule.len() {
            sim.clear_faults();
        }
    }
    assert!(
        running.is_empty(),
        "every job ends and is announced: {running:?}"
    );
    assert_eq!(reported.len(), jobs.len());
    let final_results: BTreeMap<String, (String, Option<String>)> = seen.into_iter().collect();
    assert_eq!(
        final_results, expected,
        "one final result per instance, as DRS ended it"
    );
    let mut announced: Vec<String> = delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED)
        .iter()
        .map(|e| e["jobID"].as_str().unwrap().to_owned())
        .collect();
    announced.sort();
    let mut want = jobs.clone();
    want.sort();
    assert_eq!(announced, want, "each job announced exactly once");
    // Each announcement says what DRS ended each instance in, with the log's reason.
    for event in delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED) {
        for instance in event["instances"].as_array().unwrap() {
            let id = instance["recoveryInstanceID"].as_str().unwrap();
            let said = (
                instance["result"].as_str().unwrap().to_owned(),
                instance["reason"].as_str().map(str::to_owned),
            );
            assert_eq!(said, expected[id], "{id} as its job's event says it");
        }
    }

    sim.clear_faults();
    let summary = fb
        .handle_track(track(&jobs, &reported, true), in_minutes(2))
        .await
        .unwrap();
    assert_eq!(
        results(&summary),
        expected,
        "the last call reads the same results"
    );
    let finished = summary.finished.unwrap();
    let failed = expected.values().filter(|r| r.0 == "failed").count();
    assert_eq!(
        (finished.succeeded, finished.failed, finished.running),
        (ids.len() - failed, failed, 0)
    );
    assert_eq!(
        summary.events.published,
        delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED).len()
    );
    assert_eq!(
        delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).len(),
        jobs.len()
    );
}

fn cases() -> u32 {
    std::env::var("TRACK_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_launched_instance_ends_with_one_result_and_each_job_is_announced_once(case in case()) {
        paused_runtime().block_on(check(case));
    }
}
