//! The answer is a Step Functions task output: it must stay under 256 KB for the largest request
//! the function accepts, whatever happens to it.

mod support;

use std::time::Duration;

use drs_failback::config::REQUEST_INSTANCES_CEILING;
use drs_failback::events::publish::batches;
use drs_failback::launch::answer::LaunchAnswer;
use drs_failback::launch::events::run_events;
use drs_sim::{Fault, Fleet, Lifecycle, Operation, Quotas, SimConfig, SimHandle};
use support::*;
use tokio::time::Instant;

const STEP_FUNCTIONS_STATE_LIMIT: usize = 256 * 1024;

/// The largest request accepted, of ids 19 characters long (the longest DRS accepts), and a
/// simulator whose quotas let all of them run at once.
async fn largest(
    shape: impl FnOnce(Fleet) -> Fleet,
    faults: Vec<Fault>,
) -> (SimHandle, Vec<String>) {
    let fleet = ready(REQUEST_INSTANCES_CEILING);
    let ids = fleet.ids();
    assert!(ids.iter().all(|id| id.len() == 19));
    let sim = start(SimConfig {
        fleet: shape(fleet),
        quotas: Quotas {
            servers_per_job: 100,
            servers_in_active_jobs: 10_000,
            active_jobs: 1000,
        },
        lifecycle: Lifecycle {
            pending: Duration::from_secs(3600),
            started: Duration::from_secs(3600),
        },
        faults,
        ..SimConfig::default()
    })
    .await;
    (sim, ids)
}

fn check(answer: &LaunchAnswer, label: &str) {
    let bytes = serde_json::to_vec(answer).unwrap().len();
    assert!(
        bytes < STEP_FUNCTIONS_STATE_LIMIT,
        "{label}: answer is {bytes} bytes"
    );
    // and every event it produces fits PutEvents, in batches of at most 10
    let entries = run_events("drs-failback", answer);
    let (batched, oversized) = batches(&entries, "drs-failback-results");
    assert!(oversized.is_empty(), "{label}");
    assert!(batched.iter().all(|b| b.len() <= 10));
    println!("{label}: {bytes} bytes, {} events", entries.len());
}

/// Quotas raised so that all 5000 can launch in one run.
const UNLIMITED: [(&str, &str); 2] = [
    ("MAX_SERVERS_IN_FLIGHT", "10000"),
    ("MAX_ACTIVE_JOBS", "1000"),
];

#[tokio::test(start_paused = true)]
async fn all_launched() {
    let (sim, requested) = largest(|f| f, vec![]).await;
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.launched, REQUEST_INSTANCES_CEILING);
    check(&answer, "all launched");
}

#[tokio::test(start_paused = true)]
async fn all_deferred_each_chunk_with_its_own_long_message() {
    let throttles = (0..50)
        .map(|n| Fault::Fail {
            operation: Operation::StartFailbackLaunch,
            calls: 1,
            after: 0,
            status: 429,
            error_type: "ThrottlingException".into(),
            message: format!("{n} {}", "x".repeat(2000)),
            members: serde_json::Map::new(),
            retry_after: None,
        })
        .collect();
    let (sim, requested) = largest(|f| f, throttles).await;
    // no pacing: the point is 50 chunks each deferred with its own message, not a slower rate
    let settings = [
        UNLIMITED[0],
        UNLIMITED[1],
        ("THROTTLE_MAX_RETRIES", "0"),
        ("ADAPTIVE_PACING", "false"),
    ];
    let fb = failback_in_process(&sim, &settings, 1.0).await;
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.deferred, REQUEST_INSTANCES_CEILING);
    assert_eq!(
        answer.not_launched.len(),
        17,
        "16 distinct messages, then one merged group"
    );
    check(&answer, "all deferred, 50 distinct messages");
}

#[tokio::test(start_paused = true)]
async fn all_deferred_with_a_small_job_size() {
    let (sim, requested) = largest(|f| f, vec![]).await;
    let fb = failback_in_process(&sim, &[("MAX_INSTANCES_PER_JOB", "100")], 1.0).await;
    // no time for any call
    let answer = fb
        .handle(request(&requested), Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer.counts.deferred, REQUEST_INSTANCES_CEILING);
    check(&answer, "all deferred at the deadline");
}

#[tokio::test(start_paused = true)]
async fn all_malformed_and_long() {
    let requested: Vec<String> = (0..REQUEST_INSTANCES_CEILING)
        .map(|n| format!("not-an-id-{n}-{}", "ü".repeat(500)))
        .collect();
    let (sim, _) = largest(|f| f, vec![]).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.rejected, REQUEST_INSTANCES_CEILING);
    assert!(launches(&sim).is_empty(), "no malformed id reaches DRS");
    assert!(
        calls_of(&sim, Operation::DescribeRecoveryInstances).is_empty(),
        "nor any read of one"
    );
    check(&answer, "all malformed");
}

#[tokio::test(start_paused = true)]
async fn dry_run_of_the_largest_request() {
    let (sim, requested) = largest(|f| f, vec![]).await;
    let fb = failback_in_process(&sim, &[("MAX_INSTANCES_PER_JOB", "200")], 1.0).await;
    let mut payload = request(&requested);
    payload["dryRun"] = true.into();
    let answer = fb.handle(payload, in_minutes(10)).await.unwrap();
    check(&answer, "dry run");
}

#[tokio::test(start_paused = true)]
async fn every_instance_refused_with_its_own_message() {
    let refusing = |mut fleet: Fleet| {
        for id in fleet.ids() {
            fleet.set_refuse_launch(&id);
        }
        fleet
    };
    let (sim, requested) = largest(refusing, vec![]).await;
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.rejected, REQUEST_INSTANCES_CEILING);
    check(&answer, "all refused, each with its own message");
}

#[tokio::test(start_paused = true)]
async fn every_instance_skipped_in_many_other_jobs() {
    let (sim, requested) = largest(|f| f, vec![]).await;
    for (n, ids) in requested.chunks(5).enumerate() {
        let run_id = format!("other-run-{n}");
        sim.start_job(ids, &[("drs-failback:run-id", &run_id)])
            .unwrap();
    }
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.skipped, REQUEST_INSTANCES_CEILING);
    check(&answer, "all in 1000 other jobs");
}

/// A step across the most places a step may reach: every place's summary (the plan's Map output,
/// the `stepSum` request) and the step's sum stay under 256 KB, each place at its largest — a
/// verdict naming 100 critical instances, every count at 5 000, an error whose cause the place cut
/// to `PLACE_CAUSE_MAX` (statemachine/gen.py) characters.
#[tokio::test(start_paused = true)]
async fn a_step_across_its_most_places_is_summed_up_under_256_kb() {
    use drs_failback::request::MAX_TARGETS_PER_STEP;
    const PLACE_CAUSE_MAX: usize = 2048;
    let generator =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/statemachine/gen.py"))
            .unwrap();
    assert!(
        generator.contains(&format!("PLACE_CAUSE_MAX = {PLACE_CAUSE_MAX}")),
        "the place's cut, as the definition makes it"
    );
    let counts: serde_json::Map<String, serde_json::Value> = [
        "succeeded",
        "failed",
        "running",
        "notLaunched",
        "launched",
        "skipped",
        "rejected",
        "deferred",
    ]
    .iter()
    .map(|k| (k.to_string(), serde_json::json!(5000)))
    .collect();
    let group = |i: usize| {
        serde_json::json!({"stepResult": {
            "name": "a".repeat(64), "target": {"account": format!("{:012}", 100_000_000_000u64 + i as u64), "region": "ap-southeast-4"},
            "status": "halted", "reason": "LAUNCH_ERROR", "stoppedBy": "LAUNCH_ERROR", "complete": false,
            "counts": counts, "rounds": 500, "trackingCalls": 3000,
            "verdict": {"halt": true, "reason": "CRITICAL_FAILED", "failed": 5000, "maxFailed": null,
                        "criticalFailed": (0..100).map(|k| format!("i-0{i:02}{k:015x}")).collect::<Vec<_>>(),
                        "criticalFailedCount": 5000, "unfinished": 5000},
            "error": {"Error": "e".repeat(256), "Cause": "c".repeat(PLACE_CAUSE_MAX)}}})
    };
    let groups: Vec<serde_json::Value> = (0..MAX_TARGETS_PER_STEP).map(group).collect();
    let map_output = serde_json::to_vec(&groups).unwrap().len();
    assert!(
        map_output < STEP_FUNCTIONS_STATE_LIMIT / 2,
        "the places' outputs: {map_output} bytes"
    );
    let sim = start(SimConfig::default()).await;
    let f = failback_in_process(&sim, &[], 0.0).await;
    let request = serde_json::json!({"action": "stepSum", "runId": "r".repeat(128), "step": "a".repeat(64), "maxFailed": 1, "groups": groups});
    assert!(serde_json::to_vec(&request).unwrap().len() < STEP_FUNCTIONS_STATE_LIMIT);
    let sum = f
        .dispatch(request, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    let size = serde_json::to_vec(&sum).unwrap().len();
    assert!(
        size < STEP_FUNCTIONS_STATE_LIMIT / 4,
        "the step's sum: {size} bytes"
    );
}
