//! How each DRS answer shapes the outcome, on paused tokio time (no test sleeps for real).

mod common;

use std::time::Duration;

use common::*;
use drs_failback::drs::{LaunchError, Unusable};
use drs_failback::error::{ERROR_ACCESS_DENIED, ERROR_ACCOUNT_NOT_INITIALIZED};
use drs_failback::events::{
    DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_NOT_LAUNCHED, DETAIL_TYPE_RUN_COMPLETED,
};
use drs_failback::outcome::{Answer, OutcomeKind};
use tokio::time::Instant;

fn throttled(retry_after_s: Option<u64>) -> Step {
    Step::Fail(LaunchError::Throttled {
        retry_after: retry_after_s.map(Duration::from_secs),
        message: "Rate exceeded".into(),
    })
}

fn reasons(answer: &Answer) -> Vec<(OutcomeKind, String, usize)> {
    answer
        .not_launched
        .iter()
        .map(|g| (g.outcome, g.reason.clone(), g.recovery_instance_ids.len()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn two_hundred_fifty_ready_instances_make_three_jobs() {
    let requested = ids(250);
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 250);
    assert!(answer.complete);
    let sizes: Vec<usize> = answer
        .jobs
        .iter()
        .map(|j| j.recovery_instance_ids.len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(fb.drs.calls().len(), 3);
    // every job carries the run id tag next to the user's tags
    for call in fb.drs.calls() {
        assert!(
            call.tags
                .contains(&("drs-failback:run-id".into(), "run-1".into()))
        );
        assert!(call.tags.contains(&("Wave".into(), "1".into())));
    }
    assert_promise(&requested, &answer, &fb.drs);
    assert_eq!(fb.publisher.delivered_of(DETAIL_TYPE_JOB_STARTED).len(), 3);
    assert!(
        fb.publisher
            .delivered_of(DETAIL_TYPE_NOT_LAUNCHED)
            .is_empty()
    );
    assert_eq!(
        fb.publisher.delivered_of(DETAIL_TYPE_RUN_COMPLETED).len(),
        1
    );
    assert_eq!(answer.events.published, 4);
}

#[tokio::test(start_paused = true)]
async fn throttling_waits_exactly_retry_after_then_resends_the_same_chunk() {
    let requested = ids(10);
    // jitter 0: the backoff part is zero, so the wait is exactly Retry-After
    let drs = FakeDrs::scripted([throttled(Some(7)), throttled(Some(3))]);
    let fb = failback(config(&[]), drs, 0.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let calls = fb.drs.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1].at - calls[0].at, Duration::from_secs(7));
    assert_eq!(calls[2].at - calls[1].at, Duration::from_secs(3));
    assert!(calls.iter().all(|c| c.ids == requested));
    assert_eq!(answer.counts.launched, 10);
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn throttling_without_retry_after_backs_off_exponentially() {
    let requested = ids(5);
    let drs = FakeDrs::scripted([throttled(None), throttled(None), throttled(None)]);
    let fb = failback(config(&[("RETRY_BASE_DELAY_MS", "500")]), drs, 1.0);
    fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let calls = fb.drs.calls();
    let waits: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert_eq!(
        waits,
        [
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn throttled_past_the_retry_budget_is_deferred() {
    let requested = ids(5);
    let drs = FakeDrs::scripted(std::iter::repeat_n(throttled(Some(1)), 10));
    let fb = failback(config(&[("THROTTLE_MAX_RETRIES", "2")]), drs, 0.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(fb.drs.calls().len(), 3);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "THROTTLED".into(), 5)]
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested);
    assert!(!answer.complete);
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_would_pass_the_deadline_is_not_started() {
    let requested = ids(5);
    let drs = FakeDrs::scripted([throttled(Some(120))]);
    let fb = failback(config(&[]), drs, 0.0);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let answer = fb.handle(request(&requested), deadline).await.unwrap();
    assert_eq!(fb.drs.calls().len(), 1);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "DEADLINE".into(), 5)]
    );
    assert!(
        Instant::now() < deadline,
        "the answer arrives before the deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn no_call_starts_that_could_not_finish_before_the_deadline() {
    let requested = ids(300);
    // margin 3 s + call timeout 10 s: 12 s left is too little for any call
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let deadline = Instant::now() + Duration::from_secs(12);
    let answer = fb.handle(request(&requested), deadline).await.unwrap();
    assert!(fb.drs.calls().is_empty());
    assert_eq!(answer.counts.deferred, 300);
    assert_eq!(answer.deferred_recovery_instance_ids, requested);
    assert!(Instant::now() < deadline);
    assert_eq!(
        answer.events.undelivered, 0,
        "publishing still fits in the margin"
    );
}

#[tokio::test(start_paused = true)]
async fn chunks_left_when_time_runs_out_are_deferred_and_the_answer_is_on_time() {
    let requested = ids(400);
    // each call takes 4 s, one at a time; a launch needs its call and the two reads that would
    // settle it (3 x 5 s) before 28 s - 3 s margin: the fourth, at 12 s, would need until 27 s
    let drs = FakeDrs::scripted(std::iter::repeat_n(Step::Hang(Duration::from_secs(4)), 4));
    let settings = [
        ("MAX_CONCURRENT_LAUNCHES", "1"),
        ("LAUNCH_CALL_TIMEOUT_MS", "5000"),
    ];
    let fb = failback(config(&settings), drs, 1.0);
    let deadline = Instant::now() + Duration::from_secs(28);
    let answer = fb.handle(request(&requested), deadline).await.unwrap();
    assert_eq!(answer.counts.launched, 300);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "DEADLINE".into(), 100)]
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested[300..]);
    assert!(Instant::now() <= deadline);
    assert_promise(&requested, &answer, &fb.drs);
}

fn server_error() -> LaunchError {
    LaunchError::Ambiguous {
        error: "InternalServerException: boom".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_500_before_the_job_exists_is_reconciled_then_resent() {
    let requested = ids(150);
    let drs = FakeDrs::scripted([Step::Fail(server_error())]);
    let fb = failback(config(&[("MAX_CONCURRENT_LAUNCHES", "1")]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let calls = fb.drs.calls();
    assert_eq!(
        calls.len(),
        3,
        "first chunk, its resend after reconciliation, second chunk"
    );
    assert_eq!(calls[0].ids, calls[1].ids);
    assert_eq!(
        fb.drs.reads_of("DescribeRecoveryInstances"),
        2,
        "pre-flight, then the reconciliation"
    );
    assert_eq!(answer.counts.launched, 150);
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn a_500_after_the_job_was_created_is_reported_launched_not_resent() {
    let requested = ids(150);
    let drs = FakeDrs::scripted([Step::CreateThenFail(server_error())]);
    let fb = failback(config(&[("MAX_CONCURRENT_LAUNCHES", "1")]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        fb.drs.calls().len(),
        2,
        "the chunk whose job exists is not sent again"
    );
    assert_eq!(fb.drs.created_jobs().len(), 2);
    assert_eq!(answer.counts.launched, 150);
    assert_eq!(answer.jobs.len(), 2);
    assert_promise(&requested, &answer, &fb.drs);
    assert_eq!(
        fb.publisher.delivered_of(DETAIL_TYPE_JOB_STARTED).len(),
        2,
        "its event is published"
    );
}

#[tokio::test(start_paused = true)]
async fn a_500_that_cannot_be_settled_stays_ambiguous() {
    let requested = ids(3);
    let drs = FakeDrs::scripted([Step::CreateThenFail(server_error())]);
    let fb = failback(config(&[]), drs, 1.0);
    *fb.drs.reads_fail_after_first_launch.lock().unwrap() = true;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        fb.drs.calls().len(),
        1,
        "never resent while the state is unknown"
    );
    let group = &answer.not_launched[0];
    assert_eq!(
        (group.outcome, group.reason.as_str()),
        (OutcomeKind::Deferred, "AMBIGUOUS")
    );
    assert!(group.message.as_deref().unwrap().contains("boom"));
}

#[tokio::test(start_paused = true)]
async fn a_call_that_hangs_after_the_job_was_created_is_settled_by_reconciliation() {
    let requested = ids(3);
    let drs = FakeDrs::scripted([Step::CreateThenHang(Duration::from_secs(600))]);
    let fb = failback(config(&[("LAUNCH_CALL_TIMEOUT_MS", "5000")]), drs, 1.0);
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(fb.drs.calls().len(), 1);
    assert_eq!(answer.counts.launched, 3);
    assert!(Instant::now() - started < Duration::from_secs(6));
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_hangs_before_any_job_is_resent_after_reconciliation() {
    let requested = ids(3);
    let drs = FakeDrs::scripted([Step::Hang(Duration::from_secs(600))]);
    let fb = failback(config(&[("LAUNCH_CALL_TIMEOUT_MS", "5000")]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(fb.drs.calls().len(), 2);
    assert_eq!(fb.drs.created_jobs().len(), 1);
    assert_eq!(answer.counts.launched, 3);
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn a_full_quota_defers_the_chunk_and_those_not_yet_started() {
    let requested = ids(500);
    let drs = FakeDrs::scripted([
        Step::Launch,
        Step::Fail(LaunchError::QuotaExceeded {
            message: "Too many servers in active jobs".into(),
            quota_code: Some("L-05AFA8C6".into()),
        }),
    ]);
    let fb = failback(config(&[("MAX_CONCURRENT_LAUNCHES", "1")]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        fb.drs.calls().len(),
        2,
        "no hammering after the quota is full"
    );
    assert_eq!(answer.counts.launched, 100);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "QUOTA".into(), 400)]
    );
    assert!(
        answer.not_launched[0]
            .message
            .as_deref()
            .unwrap()
            .contains("L-05AFA8C6")
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested[100..]);
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn a_culprit_drs_names_is_rejected_and_the_rest_of_its_chunk_launches() {
    let requested = ids(250);
    let drs = FakeDrs::scripted([]);
    drs.poison(&requested[120]);
    let fb = failback(config(&[]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 249);
    assert_eq!(answer.counts.rejected, 1);
    assert_eq!(
        fb.drs.calls().len(),
        4,
        "one extra call for the named culprit"
    );
    let group = &answer.not_launched[0];
    assert_eq!(group.outcome, OutcomeKind::Rejected);
    assert_eq!(group.code.as_deref(), Some("ConflictException"));
    assert_eq!(group.recovery_instance_ids, [requested[120].clone()]);
    assert!(
        answer.complete,
        "rejected instances are final, not deferred"
    );
    assert_promise(&requested, &answer, &fb.drs);
    let not_launched = fb.publisher.delivered_of(DETAIL_TYPE_NOT_LAUNCHED);
    assert_eq!(
        not_launched[0]["notLaunched"][0]["recoveryInstanceIDs"][0],
        requested[120].as_str()
    );
}

#[tokio::test(start_paused = true)]
async fn an_unnamed_culprit_is_found_by_bisection_within_the_bound() {
    let requested = ids(100);
    let drs = FakeDrs::default(); // refusals name no instance
    drs.poison(&requested[77]);
    let fb = failback(config(&[]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 99);
    assert_eq!(answer.counts.rejected, 1);
    assert_eq!(
        answer.not_launched[0].recovery_instance_ids,
        [requested[77].clone()]
    );
    let extra_calls = fb.drs.calls().len() - 1;
    // ceil(log2(100)) = 7 halvings, each one call, plus the first half of each split launching
    assert!(extra_calls <= 2 * 7, "{extra_calls} extra calls");
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn two_unnamed_culprits_in_one_chunk() {
    let requested = ids(64);
    let drs = FakeDrs::default();
    drs.poison(&requested[3]);
    drs.poison(&requested[40]);
    let fb = failback(config(&[]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 62);
    assert_eq!(answer.counts.rejected, 2);
    assert!(fb.drs.calls().len() - 1 <= 2 * 2 * 6);
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn an_uninitialized_account_fails_the_batch_clearly() {
    let drs = FakeDrs::scripted([Step::Fail(LaunchError::Unusable {
        kind: Unusable::AccountNotInitialized,
        message: "Account not initialized".into(),
    })]);
    let fb = failback(config(&[("MAX_CONCURRENT_LAUNCHES", "1")]), drs, 1.0);
    let error = fb
        .handle(request(&ids(300)), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), ERROR_ACCOUNT_NOT_INITIALIZED);
    assert!(error.to_string().contains("Account not initialized"));
    assert_eq!(fb.drs.calls().len(), 1, "the run stops at the first sign");
    assert!(fb.publisher.delivered().is_empty());
}

#[tokio::test(start_paused = true)]
async fn access_denied_after_a_job_was_created_keeps_the_job() {
    let requested = ids(300);
    let drs = FakeDrs::scripted([
        Step::Launch,
        Step::Fail(LaunchError::Unusable {
            kind: Unusable::AccessDenied,
            message: "not authorized".into(),
        }),
    ]);
    let fb = failback(config(&[("MAX_CONCURRENT_LAUNCHES", "1")]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 100);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "HALTED".into(), 200)]
    );
    assert_promise(&requested, &answer, &fb.drs);

    let drs = FakeDrs::scripted([Step::Fail(LaunchError::Unusable {
        kind: Unusable::AccessDenied,
        message: "not authorized".into(),
    })]);
    let fb = failback(config(&[]), drs, 1.0);
    let error = fb
        .handle(request(&ids(3)), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), ERROR_ACCESS_DENIED);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_never_left_is_resent_then_given_up() {
    let requested = ids(2);
    let unreachable = Step::Fail(LaunchError::NotSent {
        error: "connection refused".into(),
    });
    let fb = failback(config(&[]), FakeDrs::scripted([unreachable.clone()]), 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(fb.drs.calls().len(), 2);
    assert_eq!(answer.counts.launched, 2);

    let fb = failback(
        config(&[]),
        FakeDrs::scripted(std::iter::repeat_n(unreachable, 10)),
        1.0,
    );
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(fb.drs.calls().len(), 4);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "UNREACHABLE".into(), 2)]
    );
}

#[tokio::test(start_paused = true)]
async fn launches_run_with_bounded_concurrency() {
    let requested = ids(1000);
    let drs = FakeDrs::scripted(std::iter::repeat_n(Step::Hang(Duration::from_secs(1)), 10));
    let settings = [
        ("MAX_CONCURRENT_LAUNCHES", "4"),
        ("MAX_SERVERS_IN_FLIGHT", "1000"),
    ];
    let fb = failback(config(&settings), drs, 1.0);
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 1000);
    let starts: Vec<Duration> = fb.drs.calls().iter().map(|c| c.at - started).collect();
    let at_zero = starts.iter().filter(|d| d.is_zero()).count();
    assert_eq!(
        at_zero, 4,
        "four calls at once, then one per freed slot: {starts:?}"
    );
    assert_eq!(
        Instant::now() - started,
        Duration::from_secs(3),
        "ten 1 s calls, four at a time"
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_launches_nothing_and_reports_the_plan() {
    let requested = ids(250);
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let mut payload = request(&requested);
    payload["dryRun"] = true.into();
    let answer = fb.handle(payload, in_minutes(5)).await.unwrap();
    assert!(fb.drs.calls().is_empty());
    assert_eq!(answer.planned_job_sizes, Some(vec![100, 100, 50]));
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "DRY_RUN".into(), 250)]
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested);
    let delivered = fb.publisher.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].detail_type, DETAIL_TYPE_RUN_COMPLETED);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_and_the_next_invocation_is_served() {
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let error = fb
        .handle(serde_json::json!({"recoveryInstanceIDs": 5}), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidFailbackRequest");
    assert!(error.to_string().contains("recoveryInstanceIDs"));
    assert!(fb.drs.calls().is_empty());
    assert!(fb.publisher.delivered().is_empty());
    let answer = fb.handle(request(&ids(2)), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 2);
}

/// Under a steady service rate, pacing converges on it: far fewer throttled (wasted) calls than
/// resending on Retry-After alone, and no slower.
#[tokio::test(start_paused = true)]
async fn adaptive_pacing_wastes_fewer_calls_under_a_rate_limit() {
    let count: usize = std::env::var("PACING_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let requested = ids(count);
    let mut outcomes = Vec::new();
    for pacing in ["false", "true"] {
        let settings = [
            ("MAX_SERVERS_IN_FLIGHT", "10000"),
            ("MAX_ACTIVE_JOBS", "100"),
            ("THROTTLE_MAX_RETRIES", "50"),
            ("ADAPTIVE_PACING", pacing),
        ];
        let drs = FakeDrs::default();
        drs.rate_limit(2.0, 2.0);
        let fb = failback(config(&settings), drs, 0.5);
        let started = Instant::now();
        let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
        assert_eq!(answer.counts.launched, count, "pacing={pacing}");
        let calls = fb.drs.calls().len();
        let wasted = *fb.drs.throttled_calls.lock().unwrap() as f64 / calls as f64;
        outcomes.push((wasted, Instant::now() - started));
    }
    let (unpaced, paced) = (outcomes[0], outcomes[1]);
    println!(
        "wasted unpaced {:.0}% in {:?}, paced {:.0}% in {:?}",
        unpaced.0 * 100.0,
        unpaced.1,
        paced.0 * 100.0,
        paced.1
    );
    assert!(
        paced.0 < 0.10,
        "paced wasted {:.0}% of launch calls",
        paced.0 * 100.0
    );
    assert!(paced.0 < unpaced.0);
    // 50 jobs at 2 per second after a burst of 2: 24 s at best
    assert!(
        paced.1 <= Duration::from_secs(24).mul_f64(1.2),
        "{:?}",
        paced.1
    );
}
