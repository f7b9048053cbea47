//! How each DRS answer shapes the outcome: the real handler and SDK clients against the simulator,
//! connected in-process so every wait is measured exactly on paused tokio time (no test sleeps for
//! real).

mod support;

use std::time::Duration;

use drs_failback::drs::tags::RUN_ID_TAG_KEY;
use drs_failback::error::{ERROR_ACCESS_DENIED, ERROR_ACCOUNT_NOT_INITIALIZED};
use drs_failback::events::{
    DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_NOT_LAUNCHED, DETAIL_TYPE_RUN_COMPLETED,
};
use drs_failback::launch::outcome::OutcomeKind;
use drs_sim::{Fault, Fleet, FleetInstance, Operation, Quotas, SimConfig, SimHandle};
use serde_json::json;
use support::*;
use tokio::time::{Instant, sleep};

const LAUNCH: Operation = Operation::StartFailbackLaunch;

/// A simulator with `n` ready instances and these faults.
async fn sim_of(n: usize, faults: Vec<Fault>) -> (SimHandle, Vec<String>) {
    let fleet = ready(n);
    let ids = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        faults,
        ..SimConfig::default()
    })
    .await;
    (sim, ids)
}

/// A DRS error answered instead of doing anything, to `calls` launches after the first `after`.
fn fail(after: u32, calls: u32, status: u16, error_type: &str, message: &str) -> Fault {
    Fault::Fail {
        operation: LAUNCH,
        calls,
        after,
        status,
        error_type: error_type.into(),
        message: message.into(),
        members: serde_json::Map::new(),
        retry_after: None,
    }
}

fn throttle(calls: u32, retry_after_seconds: u32) -> Fault {
    Fault::Throttle {
        operation: LAUNCH,
        calls,
        retry_after_seconds,
    }
}

fn hang(calls: u32, seconds: f64) -> Fault {
    Fault::Hang {
        operation: LAUNCH,
        calls,
        seconds,
        lost: false,
    }
}

/// Milliseconds between consecutive launch calls' arrivals.
fn gaps_ms(sim: &SimHandle) -> Vec<u64> {
    launches(sim)
        .windows(2)
        .map(|w| w[1].at_ms - w[0].at_ms)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn two_hundred_fifty_ready_instances_make_three_jobs() {
    let (sim, requested) = sim_of(250, vec![]).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 250);
    assert!(answer.complete);
    let sizes: Vec<usize> = answer
        .jobs
        .iter()
        .map(|j| j.recovery_instance_ids.len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(launches(&sim).len(), 3);
    // every job carries the run id tag next to the user's tags
    for job in sim.jobs() {
        assert_eq!(
            job.tags.get(RUN_ID_TAG_KEY).map(String::as_str),
            Some(RUN_ID)
        );
        assert_eq!(job.tags.get("Wave").map(String::as_str), Some("1"));
    }
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_JOB_STARTED).len(), 3);
    assert!(delivered_of(&sim, DETAIL_TYPE_NOT_LAUNCHED).is_empty());
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_RUN_COMPLETED).len(), 1);
    assert_eq!(answer.events.published, 4);
}

#[tokio::test(start_paused = true)]
async fn throttling_waits_exactly_retry_after_then_resends_the_same_chunk() {
    let (sim, requested) = sim_of(10, vec![throttle(1, 7), throttle(1, 3)]).await;
    // jitter 0: the backoff part is zero, so the wait is exactly Retry-After
    let fb = failback_in_process(&sim, &[], 0.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let calls = launches(&sim);
    assert_eq!(calls.len(), 3);
    assert_eq!(gaps_ms(&sim), [7_000, 3_000]);
    assert!(calls.iter().all(|c| c.recovery_instance_ids == requested));
    assert_eq!(answer.counts.launched, 10);
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn throttling_without_retry_after_backs_off_exponentially() {
    let no_header = fail(0, 3, 429, "ThrottlingException", "Rate exceeded");
    let (sim, requested) = sim_of(5, vec![no_header]).await;
    let fb = failback_in_process(&sim, &[("RETRY_BASE_DELAY_MS", "500")], 1.0).await;
    fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(gaps_ms(&sim), [500, 1_000, 2_000]);
}

#[tokio::test(start_paused = true)]
async fn throttled_past_the_retry_budget_is_deferred() {
    let (sim, requested) = sim_of(5, vec![throttle(10, 1)]).await;
    let fb = failback_in_process(&sim, &[("THROTTLE_MAX_RETRIES", "2")], 0.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(launches(&sim).len(), 3);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "THROTTLED".into(), 5)]
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested);
    assert!(!answer.complete);
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_would_pass_the_deadline_is_not_started() {
    let (sim, requested) = sim_of(5, vec![throttle(1, 120)]).await;
    let fb = failback_in_process(&sim, &[], 0.0).await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let answer = fb.handle(request(&requested), deadline).await.unwrap();
    assert_eq!(launches(&sim).len(), 1);
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
    let (sim, requested) = sim_of(300, vec![]).await;
    // margin 3 s: 2 s left is enough for the reads, too little for a launch and the two reads
    // that would settle it (at least a second each)
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let answer = fb.handle(request(&requested), deadline).await.unwrap();
    assert!(launches(&sim).is_empty());
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
    // each call takes 4 s, one at a time; a launch needs its call and the two reads that would
    // settle it (3 x 5 s) before 28 s - 3 s margin: the fourth, at 12 s, would need until 27 s
    let (sim, requested) = sim_of(400, vec![hang(4, 4.0)]).await;
    let settings = [
        ("MAX_CONCURRENT_LAUNCHES", "1"),
        ("LAUNCH_CALL_TIMEOUT_MS", "5000"),
    ];
    let fb = failback_in_process(&sim, &settings, 1.0).await;
    let deadline = Instant::now() + Duration::from_secs(28);
    let answer = fb.handle(request(&requested), deadline).await.unwrap();
    assert_eq!(answer.counts.launched, 300);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "DEADLINE".into(), 100)]
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested[300..]);
    assert!(Instant::now() <= deadline);
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn a_500_before_the_job_exists_is_reconciled_then_resent() {
    let (sim, requested) = sim_of(150, vec![Fault::InternalErrorBeforeCreate { calls: 1 }]).await;
    let fb = failback_in_process(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let calls = launches(&sim);
    assert_eq!(
        calls.len(),
        3,
        "first chunk, its resend after reconciliation, second chunk"
    );
    assert_eq!(
        calls[0].recovery_instance_ids,
        calls[1].recovery_instance_ids
    );
    assert!(
        calls_of(&sim, Operation::DescribeRecoveryInstances).len() > 2,
        "pre-flight, then looks at DRS's state"
    );
    assert!(
        calls[1].at_ms - calls[0].at_ms >= 10_000,
        "resent only after looking over the whole settle window: {} ms",
        calls[1].at_ms - calls[0].at_ms
    );
    assert_eq!(answer.counts.launched, 150);
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn a_500_after_the_job_was_created_is_reported_launched_not_resent() {
    let (sim, requested) = sim_of(150, vec![Fault::InternalErrorAfterCreate { calls: 1 }]).await;
    let fb = failback_in_process(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        launches(&sim).len(),
        2,
        "the chunk whose job exists is not sent again"
    );
    assert_eq!(sim.jobs().len(), 2);
    assert_eq!(answer.counts.launched, 150);
    assert_eq!(answer.jobs.len(), 2);
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(
        delivered_of(&sim, DETAIL_TYPE_JOB_STARTED).len(),
        2,
        "its event is published"
    );
}

#[tokio::test(start_paused = true)]
async fn a_500_that_cannot_be_settled_stays_ambiguous() {
    // Every read after pre-flight's fails: DRS's state cannot be read back.
    let reads_down =
        Fault::internal_error(Operation::DescribeRecoveryInstances, 100, 1, "read failed");
    let (sim, requested) = sim_of(
        3,
        vec![Fault::InternalErrorAfterCreate { calls: 1 }, reads_down],
    )
    .await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        launches(&sim).len(),
        1,
        "never resent while the state is unknown"
    );
    let group = &answer.not_launched[0];
    assert_eq!(
        (group.outcome, group.reason.as_str()),
        (OutcomeKind::Deferred, "AMBIGUOUS")
    );
    assert!(
        group
            .message
            .as_deref()
            .unwrap()
            .contains("after the job was created"),
        "{group:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_that_hangs_after_the_job_was_created_is_settled_by_reconciliation() {
    let hang_after = Fault::HangAfterAccept {
        calls: 1,
        seconds: 600.0,
    };
    let (sim, requested) = sim_of(3, vec![hang_after]).await;
    let fb = failback_in_process(&sim, &[("LAUNCH_CALL_TIMEOUT_MS", "5000")], 1.0).await;
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(launches(&sim).len(), 1);
    assert_eq!(answer.counts.launched, 3);
    assert!(Instant::now() - started < Duration::from_secs(6));
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_hangs_before_any_job_is_resent_after_reconciliation() {
    let (sim, requested) = sim_of(3, vec![hang(1, 600.0)]).await;
    let fb = failback_in_process(&sim, &[("LAUNCH_CALL_TIMEOUT_MS", "5000")], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 3);
    assert_promise(&sim, 0, &requested, &answer);
    // DRS gets to the hung call only after 600 s: by then the instances are taken, so it creates
    // nothing.
    sleep(Duration::from_secs(600)).await;
    let calls = launches(&sim);
    assert_eq!(calls.len(), 2);
    assert_eq!(sim.jobs().len(), 1);
    let hung = calls.iter().find(|c| c.at_ms == 0).expect("the first call");
    assert_eq!(hung.status, 409, "{hung:?}");
}

#[tokio::test(start_paused = true)]
async fn a_full_quota_defers_the_chunk_and_those_not_yet_started() {
    let mut quota = fail(
        1,
        1,
        402,
        "ServiceQuotaExceededException",
        "Too many active jobs",
    );
    // The active jobs quota: a smaller piece would still be one more job. (A servers quota
    // halves the piece instead: tests/unkind_drs.rs.)
    if let Fault::Fail { members, .. } = &mut quota {
        members.insert("quotaCode".into(), json!("L-D88FAC3A"));
    }
    let (sim, requested) = sim_of(500, vec![quota]).await;
    let fb = failback_in_process(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        launches(&sim).len(),
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
            .contains("L-D88FAC3A")
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested[100..]);
    assert_promise(&sim, 0, &requested, &answer);
}

/// A simulator whose fleet holds `n` ready instances, DRS refusing to launch the ones at
/// `refused`; with `details` false its refusals do not say which instance is at fault.
async fn sim_refusing(n: usize, refused: &[usize], details: bool) -> (SimHandle, Vec<String>) {
    let mut fleet: Fleet = ready(n);
    let ids = fleet.ids();
    for &index in refused {
        assert!(fleet.set_refuse_launch(&ids[index]));
    }
    let sim = start(SimConfig {
        fleet,
        error_details: details,
        ..SimConfig::default()
    })
    .await;
    (sim, ids)
}

#[tokio::test(start_paused = true)]
async fn a_culprit_drs_names_is_rejected_and_the_rest_of_its_chunk_launches() {
    let (sim, requested) = sim_refusing(250, &[120], true).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 249);
    assert_eq!(answer.counts.rejected, 1);
    assert_eq!(
        launches(&sim).len(),
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
    assert_promise(&sim, 0, &requested, &answer);
    let not_launched = delivered_of(&sim, DETAIL_TYPE_NOT_LAUNCHED);
    assert_eq!(
        not_launched[0]["notLaunched"][0]["recoveryInstanceIDs"][0],
        requested[120].as_str()
    );
}

/// DRS names the instance it refuses in its message only: the id read out of the text is the whole
/// id, not a shorter one the named id begins with (ids are 10 to 19 characters, so one can be
/// another's prefix).
#[tokio::test(start_paused = true)]
async fn a_culprit_named_in_the_message_is_matched_as_a_whole_id() {
    let ids: Vec<String> = ["i-12345678", "i-123456789", "i-123456789a"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut fleet = Fleet::new();
    for id in &ids {
        fleet.try_push(FleetInstance::new(id.clone())).unwrap();
    }
    assert!(fleet.set_refuse_launch(&ids[1]));
    let sim = start(SimConfig {
        fleet,
        culprit_in_message_only: true,
        ..SimConfig::default()
    })
    .await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    assert_eq!(ids_with(&answer, OutcomeKind::Rejected), [ids[1].clone()]);
    assert_eq!(answer.counts.launched, 2, "{:?}", answer.not_launched);
    assert_promise(&sim, 0, &ids, &answer);
}

#[tokio::test(start_paused = true)]
async fn an_unnamed_culprit_is_found_by_bisection_within_the_bound() {
    let (sim, requested) = sim_refusing(100, &[77], false).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 99);
    assert_eq!(answer.counts.rejected, 1);
    assert_eq!(
        answer.not_launched[0].recovery_instance_ids,
        [requested[77].clone()]
    );
    let extra_calls = launches(&sim).len() - 1;
    // ceil(log2(100)) = 7 halvings, each one call, plus the first half of each split launching
    assert!(extra_calls <= 2 * 7, "{extra_calls} extra calls");
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn two_unnamed_culprits_in_one_chunk() {
    let (sim, requested) = sim_refusing(64, &[3, 40], false).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 62);
    assert_eq!(answer.counts.rejected, 2);
    assert!(launches(&sim).len() - 1 <= 2 * 2 * 6);
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn an_uninitialized_account_fails_the_batch_clearly() {
    let uninitialized = fail(
        0,
        1,
        400,
        "UninitializedAccountException",
        "Account not initialized",
    );
    let (sim, requested) = sim_of(300, vec![uninitialized]).await;
    let fb = failback_in_process(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")], 1.0).await;
    let error = fb
        .handle(request(&requested), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), ERROR_ACCOUNT_NOT_INITIALIZED);
    assert!(error.to_string().contains("Account not initialized"));
    assert_eq!(launches(&sim).len(), 1, "the run stops at the first sign");
    assert!(sim.delivered_events().is_empty());
}

#[tokio::test(start_paused = true)]
async fn access_denied_after_a_job_was_created_keeps_the_job() {
    let denied = |after| fail(after, 1, 403, "AccessDeniedException", "not authorized");
    let (sim, requested) = sim_of(300, vec![denied(1)]).await;
    let fb = failback_in_process(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 100);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "HALTED".into(), 200)]
    );
    assert_promise(&sim, 0, &requested, &answer);

    let (sim, requested) = sim_of(3, vec![denied(0)]).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let error = fb
        .handle(request(&requested), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), ERROR_ACCESS_DENIED);
}

/// DRS goes dark right after a 500: the job it may have made cannot be looked for, and the next
/// chunk is refused access. The answer still holds every instance's outcome — the 500's chunk
/// AMBIGUOUS, the rest HALTED — instead of an error that would lose them (and the job); the run's
/// next call, DRS readable again, finds the job and launches the rest.
#[tokio::test(start_paused = true)]
async fn an_ambiguous_launch_is_carried_when_drs_goes_dark() {
    let denied = |operation, after| Fault::Fail {
        operation,
        calls: 1_000,
        after,
        status: 403,
        error_type: "AccessDeniedException".into(),
        message: "not authorized".into(),
        members: serde_json::Map::new(),
        retry_after: None,
    };
    let faults = vec![
        Fault::InternalErrorAfterCreate { calls: 1 },
        denied(LAUNCH, 1),
        denied(Operation::DescribeRecoveryInstances, 1),
        denied(Operation::DescribeJobs, 1),
    ];
    let (sim, requested) = sim_of(150, faults).await;
    let fb = failback_in_process(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let kinds: Vec<(OutcomeKind, String, usize)> = reasons(&answer);
    assert_eq!(
        kinds,
        [
            (OutcomeKind::Deferred, "AMBIGUOUS".into(), 100),
            (OutcomeKind::Deferred, "HALTED".into(), 50)
        ]
    );
    assert_eq!(sim.jobs().len(), 1, "the 500 made its job");
    assert_promise_unsettled(&sim, 0, &requested, &answer);

    // DRS readable again: the run's next call settles the ambiguity.
    sim.clear_faults();
    let since = sim.next_call();
    let deferred = answer.deferred_recovery_instance_ids.clone();
    let again = fb.handle(request(&deferred), in_minutes(5)).await.unwrap();
    assert_eq!(again.counts.launched, 150, "{:?}", again.not_launched);
    assert_eq!(
        sim.jobs().len(),
        2,
        "the first job found, one more for the rest"
    );
    assert_promise(&sim, since, &deferred, &again);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_never_left_is_resent_then_given_up() {
    let refused = |calls| Fault::ConnectionRefused {
        operation: LAUNCH,
        calls,
    };
    let (sim, requested) = sim_of(2, vec![refused(1)]).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 2);
    assert_eq!(launches(&sim).len(), 1, "the refused call never arrived");
    assert_eq!(started.elapsed(), Duration::from_secs(1), "one backoff");

    let (sim, requested) = sim_of(2, vec![refused(10)]).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert!(launches(&sim).is_empty());
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1 + 2 + 4),
        "three resends, backing off, then given up"
    );
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "UNREACHABLE".into(), 2)]
    );
}

#[tokio::test(start_paused = true)]
async fn launches_run_with_bounded_concurrency() {
    let fleet = ready(1000);
    let requested = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        quotas: Quotas {
            servers_in_active_jobs: 1000,
            ..Quotas::default()
        },
        faults: vec![hang(10, 1.0)],
        ..SimConfig::default()
    })
    .await;
    // No slow start: the bound alone.
    let settings = [
        ("MAX_CONCURRENT_LAUNCHES", "4"),
        ("MAX_SERVERS_IN_FLIGHT", "1000"),
        ("ADAPTIVE_PACING", "false"),
    ];
    let fb = failback_in_process(&sim, &settings, 1.0).await;
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 1000);
    let starts: Vec<u64> = launches(&sim).iter().map(|c| c.at_ms).collect();
    let at_zero = starts.iter().filter(|ms| **ms == 0).count();
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

/// Before DRS has admitted anything, three launches go out; each success lets one more in
/// flight, up to the concurrency bound — so a throttling DRS refuses at most those of the first
/// round, not every chunk at once.
#[tokio::test(start_paused = true)]
async fn a_slow_start_widens_the_launches_in_flight_as_drs_admits_them() {
    let fleet = ready(1000);
    let requested = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        quotas: Quotas {
            servers_in_active_jobs: 1000,
            ..Quotas::default()
        },
        faults: vec![hang(10, 1.0)],
        ..SimConfig::default()
    })
    .await;
    let settings = [
        ("MAX_CONCURRENT_LAUNCHES", "4"),
        ("MAX_SERVERS_IN_FLIGHT", "1000"),
    ];
    let fb = failback_in_process(&sim, &settings, 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 1000);
    let mut per_second = [0usize; 5];
    for call in launches(&sim) {
        per_second[(call.at_ms / 1000) as usize] += 1;
    }
    assert_eq!(per_second, [3, 4, 3, 0, 0], "3, then the bound of 4");
}

#[tokio::test(start_paused = true)]
async fn dry_run_launches_nothing_and_reports_the_plan() {
    let (sim, requested) = sim_of(250, vec![]).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let mut payload = request(&requested);
    payload["dryRun"] = true.into();
    let answer = fb.handle(payload, in_minutes(5)).await.unwrap();
    assert!(launches(&sim).is_empty());
    assert_eq!(answer.planned_job_sizes, Some(vec![100, 100, 50]));
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "DRY_RUN".into(), 250)]
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested);
    let delivered = sim.delivered_events();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].detail_type, DETAIL_TYPE_RUN_COMPLETED);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_and_the_next_invocation_is_served() {
    let (sim, requested) = sim_of(2, vec![]).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let error = fb
        .handle(json!({"recoveryInstanceIDs": 5}), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidFailbackRequest");
    assert!(error.to_string().contains("recoveryInstanceIDs"));
    assert!(sim.calls().is_empty(), "no call of any kind");
    assert!(sim.delivered_events().is_empty());
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
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
    let fleet = ready(count);
    let requested = fleet.ids();
    let mut outcomes = Vec::new();
    for pacing in ["false", "true"] {
        let sim = start(SimConfig {
            fleet: fleet.clone(),
            quotas: Quotas {
                servers_per_job: 100,
                servers_in_active_jobs: 10_000,
                active_jobs: 100,
            },
            faults: vec![Fault::RateLimit {
                operation: LAUNCH,
                per_second: 2.0,
                burst: 2,
            }],
            ..SimConfig::default()
        })
        .await;
        let settings = [
            ("MAX_SERVERS_IN_FLIGHT", "10000"),
            ("MAX_ACTIVE_JOBS", "100"),
            ("THROTTLE_MAX_RETRIES", "50"),
            ("ADAPTIVE_PACING", pacing),
        ];
        let fb = failback_in_process(&sim, &settings, 0.5).await;
        let started = Instant::now();
        let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
        assert_eq!(answer.counts.launched, count, "pacing={pacing}");
        let calls = launches(&sim);
        let throttled = calls.iter().filter(|c| c.status == 429).count();
        let wasted = throttled as f64 / calls.len() as f64;
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

/// With nothing throttled, a launch takes the fewest round trips its calls allow: the reads in
/// two (the active jobs and four instance pages, then the fifth), the ten launches in three (slow
/// start's three, then four, then the last three), the two PutEvents calls in one.
#[tokio::test(start_paused = true)]
async fn a_launch_with_no_faults_takes_the_fewest_round_trips() {
    let fleet = ready(1000);
    let requested = fleet.ids();
    let latency = Duration::from_millis(50);
    let sim = start(SimConfig {
        fleet,
        latency: Some(latency),
        quotas: Quotas {
            servers_in_active_jobs: 10000,
            active_jobs: 100,
            ..Quotas::default()
        },
        ..SimConfig::default()
    })
    .await;
    let settings = [
        ("MAX_SERVERS_IN_FLIGHT", "10000"),
        ("MAX_ACTIVE_JOBS", "100"),
    ];
    let fb = failback_in_process(&sim, &settings, 0.0).await;
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 1000);
    let rounds = |operation| -> Vec<u64> {
        calls_of(&sim, operation)
            .iter()
            .map(|c| c.at_ms / 50)
            .collect()
    };
    assert_eq!(rounds(Operation::DescribeJobs), [0]);
    assert_eq!(
        rounds(Operation::DescribeRecoveryInstances),
        [0, 0, 0, 0, 1]
    );
    assert_eq!(rounds(LAUNCH), [2, 2, 2, 3, 3, 3, 3, 4, 4, 4]);
    assert_eq!(rounds(Operation::PutEvents), [5, 5], "side by side");
    assert_eq!(started.elapsed(), latency * 6);
}
