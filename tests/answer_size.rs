//! The answer is a Step Functions task output: it must stay under 256 KB for the largest request
//! the function accepts, whatever happens to it.

mod common;

use std::time::Duration;

use common::*;
use drs_failback::config::REQUEST_INSTANCES_CEILING;
use drs_failback::drs::LaunchError;
use drs_failback::events::run_events;
use drs_failback::outcome::Answer;
use drs_failback::publish::batches;
use tokio::time::Instant;

const STEP_FUNCTIONS_STATE_LIMIT: usize = 256 * 1024;

fn largest_ids() -> Vec<String> {
    // 19 characters: the longest id DRS accepts
    (0..REQUEST_INSTANCES_CEILING)
        .map(|n| format!("i-{n:017x}"))
        .collect()
}

fn check(answer: &Answer, label: &str) {
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
    let requested = largest_ids();
    let fb = failback(config(&UNLIMITED), FakeDrs::default(), 1.0);
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.launched, REQUEST_INSTANCES_CEILING);
    check(&answer, "all launched");
}

#[tokio::test(start_paused = true)]
async fn all_deferred_each_chunk_with_its_own_long_message() {
    let requested = largest_ids();
    let steps = (0..50).map(|n| {
        Step::Fail(LaunchError::Throttled {
            retry_after: None,
            message: format!("{n} {}", "x".repeat(2000)),
        })
    });
    // no pacing: the point is 50 chunks each deferred with its own message, not a slower rate
    let settings = [
        UNLIMITED[0],
        UNLIMITED[1],
        ("THROTTLE_MAX_RETRIES", "0"),
        ("ADAPTIVE_PACING", "false"),
    ];
    let fb = failback(config(&settings), FakeDrs::scripted(steps), 1.0);
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
    let requested = largest_ids();
    let fb = failback(
        config(&[("MAX_INSTANCES_PER_JOB", "100")]),
        FakeDrs::default(),
        1.0,
    );
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
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.rejected, REQUEST_INSTANCES_CEILING);
    assert!(fb.drs.calls().is_empty(), "no malformed id reaches DRS");
    check(&answer, "all malformed");
}

#[tokio::test(start_paused = true)]
async fn dry_run_of_the_largest_request() {
    let requested = largest_ids();
    let fb = failback(
        config(&[("MAX_INSTANCES_PER_JOB", "200")]),
        FakeDrs::default(),
        1.0,
    );
    let mut payload = request(&requested);
    payload["dryRun"] = true.into();
    let answer = fb.handle(payload, in_minutes(10)).await.unwrap();
    check(&answer, "dry run");
}

#[tokio::test(start_paused = true)]
async fn every_instance_refused_with_its_own_message() {
    let requested = largest_ids();
    let drs = FakeDrs::default();
    *drs.name_culprits.lock().unwrap() = true;
    for id in &requested {
        drs.poison(id);
    }
    let fb = failback(config(&UNLIMITED), drs, 1.0);
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.rejected, REQUEST_INSTANCES_CEILING);
    check(&answer, "all refused, each with its own message");
}

#[tokio::test(start_paused = true)]
async fn every_instance_skipped_in_many_other_jobs() {
    let requested = largest_ids();
    let drs = FakeDrs::default();
    for (n, ids) in requested.chunks(5).enumerate() {
        drs.add_job(Some(&format!("other-run-{n}")), "STARTED", ids);
    }
    let fb = failback(config(&UNLIMITED), drs, 1.0);
    let answer = fb
        .handle(request(&requested), in_minutes(10))
        .await
        .unwrap();
    assert_eq!(answer.counts.skipped, REQUEST_INSTANCES_CEILING);
    check(&answer, "all in 1000 other jobs");
}
