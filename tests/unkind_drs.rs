//! The promise against a DRS as unkind as AWS is allowed to be: jobs that Describe calls show
//! only later than DRS's own conflict check sees them, two deliveries of one event at once, an
//! account with a long job history, a short function timeout, errors without details or under
//! unusual names, a per-job quota smaller than the chunks, a tag DRS refuses, jobs that do not
//! list their instances, and drills that fill the quota. The real handler and SDK clients over
//! loopback HTTP against the simulator, on paused tokio time; every case checks the promise from
//! the simulator's records.

mod support;

use std::time::Duration;

use drs_failback::error::ERROR_INVALID_REQUEST;
use drs_failback::events::DETAIL_TYPE_JOB_STARTED;
use drs_failback::launch::outcome::OutcomeKind;
use drs_sim::{Fault, History, Lifecycle, Operation, Quotas, SimConfig, SimHandle};
use serde_json::json;
use support::*;
use tokio::time::Instant;

const LAUNCH: Operation = Operation::StartFailbackLaunch;
/// How long the simulated DRS takes to show a new job to Describe calls; the function's settle
/// window (10 s by default) is longer.
const LAG: Duration = Duration::from_secs(5);

async fn sim_with(n: usize, shape: impl FnOnce(&mut SimConfig)) -> (SimHandle, Vec<String>) {
    let fleet = ready(n);
    let ids = fleet.ids();
    let mut config = SimConfig {
        fleet,
        visibility_lag: LAG,
        ..SimConfig::default()
    };
    shape(&mut config);
    (start(config).await, ids)
}

fn fail(calls: u32, status: u16, error_type: &str) -> Fault {
    Fault::Fail {
        operation: LAUNCH,
        calls,
        after: 0,
        status,
        error_type: error_type.into(),
        message: "simulated".into(),
        members: serde_json::Map::new(),
        retry_after: None,
    }
}

fn rejected(answer: &drs_failback::launch::answer::LaunchAnswer) -> Vec<String> {
    ids_with(answer, OutcomeKind::Rejected)
}

#[tokio::test(start_paused = true)]
async fn a_500_after_the_job_is_settled_although_drs_shows_the_job_late() {
    let (sim, requested) = sim_with(80, |c| {
        c.faults = vec![Fault::InternalErrorAfterCreate { calls: 1 }];
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 80);
    assert_eq!(launches(&sim).len(), 1, "never resent: the job was found");
    assert_eq!(answer.jobs.len(), 1);
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_JOB_STARTED).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_job_created_after_the_callers_timeout_is_found_not_made_twice() {
    let (sim, requested) = sim_with(30, |c| {
        c.faults = vec![Fault::Hang {
            operation: LAUNCH,
            calls: 1,
            seconds: 8.0,
            lost: false,
        }];
    })
    .await;
    let fb = failback(&sim, &[("LAUNCH_CALL_TIMEOUT_MS", "5000")]).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 30);
    // Past the hang, every call has been answered: the one that timed out made the job.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(sim.jobs().len(), 1);
    assert_eq!(launches(&sim).len(), 1, "never resent");
}

#[tokio::test(start_paused = true)]
async fn two_deliveries_of_one_event_at_once_agree_on_the_jobs() {
    let (sim, requested) = sim_with(150, |_| {}).await;
    let event = json!({
        "version": "0", "id": "3f1c1b4e-6f0d-4d2b-9a77-0b7d1f7c2a10",
        "detail-type": "Failback Launch Requested", "source": "com.example.dr-runbook",
        "account": "111122223333", "time": "2026-11-30T09:30:00Z", "region": "us-east-1",
        "resources": [], "detail": {"recoveryInstanceIDs": requested}
    });
    let (one, two) = (failback(&sim, &[]).await, failback(&sim, &[]).await);
    let (first, second) = tokio::join!(
        one.handle(event.clone(), in_minutes(5)),
        two.handle(event, in_minutes(5))
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    for answer in [&first, &second] {
        assert_promise_without_wire_check(&sim, 0, &requested, answer);
        assert_eq!(answer.counts.launched, 150, "{:?}", answer.not_launched);
        assert!(rejected(answer).is_empty());
    }
    assert_eq!(jobs_by_id(&first), jobs_by_id(&second));
    assert_eq!(sim.jobs().len(), 2);
    assert!(
        launches(&sim).len() <= 4,
        "each chunk sent at most once by each delivery: {}",
        launches(&sim).len()
    );
}

#[tokio::test(start_paused = true)]
async fn an_account_with_a_long_job_history_reads_only_its_recent_jobs() {
    let (sim, requested) = sim_with(300, |c| {
        c.history = History {
            jobs: 50_000,
            days: 365.0,
        };
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 300);
    assert_eq!(
        calls_of(&sim, Operation::DescribeJobs).len(),
        1,
        "the jobs of the last two days fit one page"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_short_function_timeout_still_launches_hundreds() {
    for timeout_s in [10, 15] {
        let (sim, requested) = sim_with(500, |c| {
            c.latency = Some(Duration::from_millis(200));
        })
        .await;
        let fb = failback(&sim, &[]).await;
        let deadline = Instant::now() + Duration::from_secs(timeout_s);
        let answer = fb.handle(request(&requested), deadline).await.unwrap();
        assert!(Instant::now() <= deadline);
        assert_promise(&sim, 0, &requested, &answer);
        assert_eq!(
            answer.counts.launched, 500,
            "{timeout_s} s: {:?}",
            answer.not_launched
        );
    }
}

#[tokio::test(start_paused = true)]
async fn deferred_source_servers_come_back_as_source_servers() {
    let (sim, _) = sim_with(3, |c| {
        c.faults = vec![Fault::internal_error(
            Operation::DescribeRecoveryInstances,
            4,
            0,
            "down",
        )];
    })
    .await;
    let sources: Vec<String> = sim
        .instances()
        .iter()
        .map(|i| i.source_server_id.clone())
        .collect();
    let fb = failback(&sim, &[]).await;
    let payload = json!({"runId": RUN_ID, "sourceServerIDs": sources});
    let first = fb.handle(payload, in_minutes(5)).await.unwrap();
    assert_eq!(first.deferred_source_server_ids, sources);
    assert!(first.deferred_recovery_instance_ids.is_empty());
    // The next round sends them back as they came.
    let again = json!({"runId": RUN_ID, "sourceServerIDs": first.deferred_source_server_ids});
    let second = fb.handle(again, in_minutes(5)).await.unwrap();
    assert_eq!(second.counts.launched, 3);
    assert!(second.complete);
}

#[tokio::test(start_paused = true)]
async fn any_429_is_throttling_and_a_408_may_have_made_the_job() {
    let mut throttled = fail(1, 429, "TooManyRequestsException");
    if let Fault::Fail { retry_after, .. } = &mut throttled {
        *retry_after = Some("3".into());
    }
    let (sim, requested) = sim_with(20, |c| {
        c.faults = vec![throttled, fail(1, 408, "RequestTimeoutException")];
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 20);
    let calls = launches(&sim);
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 408, 200]
    );
    assert!(
        calls[1].at_ms >= calls[0].at_ms + 3_000,
        "Retry-After honoured"
    );
    assert!(
        calls_of(&sim, Operation::DescribeRecoveryInstances).len() >= 2,
        "the 408 was looked into before the resend"
    );
}

#[tokio::test(start_paused = true)]
async fn a_per_job_quota_smaller_than_the_chunks_halves_them() {
    let (sim, requested) = sim_with(250, |c| {
        c.quotas = Quotas {
            servers_per_job: 50,
            ..Quotas::default()
        };
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 250);
    assert!(
        sim.jobs()
            .iter()
            .all(|j| j.recovery_instance_ids.len() <= 50)
    );
    // The first round (slow start's three: 100, 100, 50) is sent before DRS has said anything:
    // both chunks over the quota are refused there, and never again.
    let calls = launches(&sim);
    let refused: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.status == 402)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "learnt in the first round for the whole run"
    );
    assert!(refused.iter().all(|&i| i < 3), "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn a_tag_drs_refuses_is_named_and_refused_once() {
    let mut refusal = fail(100, 400, "ValidationException");
    if let Fault::Fail {
        members, message, ..
    } = &mut refusal
    {
        *message = "Invalid tag".into();
        members.insert("reason".into(), json!("fieldValidationFailed"));
        members.insert(
            "fieldList".into(),
            json!([{"name": "tags", "message": "tag value not allowed"}]),
        );
    }
    let (sim, requested) = sim_with(250, |c| c.faults = vec![refusal]).await;
    let fb = failback(&sim, &[]).await;
    let error = fb
        .handle(request(&requested), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), ERROR_INVALID_REQUEST);
    assert!(error.to_string().contains("tags"), "{error}");
    // The first round only (slow start's three chunks, sent before DRS answered): never per
    // instance, never again.
    assert_eq!(
        launches(&sim).len(),
        3,
        "refused in the first round, not per instance"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lone_culprit_is_refused_alone_before_it_is_rejected() {
    let (sim, requested) = sim_with(40, |c| {
        c.error_details = false;
        let culprit = c.fleet.ids()[29].clone();
        c.fleet.set_refuse_launch(&culprit);
    })
    .await;
    let culprit = requested[29].clone();
    let fb = failback(&sim, &[]).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(rejected(&answer), std::slice::from_ref(&culprit));
    assert_eq!(answer.counts.launched, 39);
    let alone = launches(&sim)
        .into_iter()
        .filter(|c| c.recovery_instance_ids == [culprit.clone()])
        .collect::<Vec<_>>();
    assert_eq!(alone.len(), 1, "sent alone once");
    assert_eq!(alone[0].status, 409, "and refused alone");
}

#[tokio::test(start_paused = true)]
async fn instances_a_job_does_not_list_are_confirmed_before_they_are_reported() {
    let (sim, requested) = sim_with(10, |c| {
        c.faults = vec![Fault::AnswerWithoutParticipants { calls: 1 }];
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 10);
    assert_eq!(answer.jobs.len(), 1);
    assert!(
        calls_of(&sim, Operation::DescribeRecoveryInstances).len() > 1,
        "pre-flight, then the looks that found them in the job once DRS showed it"
    );
}

#[tokio::test(start_paused = true)]
async fn completed_jobs_without_instance_ids_are_matched_by_source_server() {
    let (sim, requested) = sim_with(10, |c| {
        c.completed_jobs_without_instance_ids = true;
        c.lifecycle = Lifecycle {
            pending: Duration::from_secs(1),
            started: Duration::from_secs(1),
        };
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let first = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(first.counts.launched, 10);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let since = sim.next_call();
    let again = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, since, &requested, &again);
    assert_eq!(
        jobs_by_id(&first),
        jobs_by_id(&again),
        "the same job, found again"
    );
    assert_eq!(launches(&sim).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_drills_servers_count_against_the_quota() {
    let (sim, requested) = sim_with(300, |c| {
        c.lifecycle = Lifecycle {
            pending: Duration::from_secs(600),
            started: Duration::from_secs(600),
        };
        c.visibility_lag = Duration::ZERO;
    })
    .await;
    for drill in 0..5 {
        let servers: Vec<String> = (0..90).map(|k| format!("s-3{drill:03}{k:013}")).collect();
        sim.start_drill(&servers).unwrap();
    }
    let fb = failback(&sim, &[]).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 50, "500 - 450 servers in drills");
    assert!(
        launches(&sim).iter().all(|c| c.status == 200),
        "planned within the quota: DRS never had to refuse"
    );
}

/// The account's quota of servers in active jobs is below what the function was told
/// (MAX_SERVERS_IN_FLIGHT 500, DRS allows 4): the refused chunk goes in halves until the room DRS
/// has is filled, and only the rest is deferred — instead of every round deferring everything.
#[tokio::test(start_paused = true)]
async fn a_servers_quota_smaller_than_configured_is_filled_not_given_up() {
    let (sim, requested) = sim_with(6, |c| {
        c.quotas.servers_in_active_jobs = 4;
        c.error_details = false;
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let since = sim.next_call();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, since, &requested, &answer);
    assert_eq!(answer.counts.launched, 4);
    assert_eq!(
        reasons(&answer),
        [(OutcomeKind::Deferred, "QUOTA".into(), 2)]
    );
    assert_eq!(launches(&sim).len(), 6, "6, 3, 3, 2, 1, 1 instances");
}
