//! Pre-flight, redelivery, source servers and quota-aware planning: the real handler and SDK
//! clients against the simulator in-process, on paused tokio time.

mod support;

use std::time::Duration;

use drs_failback::launch::answer::LaunchAnswer;
use drs_failback::launch::outcome::OutcomeKind;
use drs_sim::{FailbackState, Fault, Lifecycle, Operation, Quotas, SimConfig, SimHandle};
use serde_json::json;
use support::*;

fn groups(answer: &LaunchAnswer) -> Vec<(OutcomeKind, String, Option<String>, usize)> {
    answer
        .not_launched
        .iter()
        .map(|g| {
            (
                g.outcome,
                g.reason.clone(),
                g.job_id.clone(),
                g.recovery_instance_ids.len(),
            )
        })
        .collect()
}

/// Jobs that stay active for an hour: another tool's jobs hold their instances and quota for the
/// whole test.
const LONG_JOBS: Lifecycle = Lifecycle {
    pending: Duration::from_secs(600),
    started: Duration::from_secs(3000),
};

async fn sim_with(config: SimConfig) -> SimHandle {
    start(SimConfig {
        lifecycle: LONG_JOBS,
        ..config
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn only_ready_instances_are_sent() {
    let fleet = ready(10);
    let mut requested = fleet.ids();
    let fleet = fleet
        .with_state(&requested[2], FailbackState::FailbackNotStarted)
        .with_state(&requested[3], FailbackState::FailbackCompleted);
    // an id DRS does not know
    requested[1] = "i-0123456789abcdef0".into();
    let sim = sim_with(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    let other_job = sim
        .start_job(&requested[4..6], &[("drs-failback:run-id", "another-run")])
        .unwrap();
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        groups(&answer),
        [
            (OutcomeKind::Skipped, "NOT_FOUND".into(), None, 1),
            (OutcomeKind::Skipped, "FAILBACK_NOT_STARTED".into(), None, 1),
            (OutcomeKind::Skipped, "FAILBACK_COMPLETED".into(), None, 1),
            (
                OutcomeKind::Skipped,
                "ALREADY_IN_JOB".into(),
                Some(other_job),
                2
            ),
        ]
    );
    let sent = launched_ids(&sim);
    assert_eq!(sent.len(), 5);
    assert!(
        requested[1..6].iter().all(|id| !sent.contains(id)),
        "skipped ids never reach DRS"
    );
    assert!(
        answer.complete,
        "skipped instances are final for this request"
    );
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_request_reports_the_same_jobs_and_launches_nothing_again() {
    let fleet = ready(250);
    let requested = fleet.ids();
    let sim = sim_with(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let first = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let calls_after_first = launches(&sim).len();
    let since = sim.next_call();
    let second = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        launches(&sim).len(),
        calls_after_first,
        "no launch call on redelivery"
    );
    assert_eq!(sim.jobs().len(), 3);
    assert_eq!(first.jobs, second.jobs);
    assert_eq!(first.counts, second.counts);
    assert_eq!(first.not_launched, second.not_launched);
    assert_promise(&sim, since, &requested, &second);

    // a different run id sees the same instances as busy in another run's jobs
    let mut other = request(&requested);
    other["runId"] = "run-2".into();
    let third = fb.handle(other, in_minutes(5)).await.unwrap();
    assert_eq!(third.counts.skipped, 250);
    assert_eq!(third.not_launched[0].reason, "ALREADY_IN_JOB");
}

#[tokio::test(start_paused = true)]
async fn a_second_round_with_the_same_run_id_only_reports_its_own_instances() {
    let fleet = ready(400);
    let ids = fleet.ids();
    let requested = ids[..300].to_vec();
    let sim = sim_with(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    sim.start_job(&ids[300..], &[("drs-failback:run-id", "someone-else")])
        .unwrap(); // 100 servers busy
    let fb = failback_in_process(&sim, &[("MAX_SERVERS_IN_FLIGHT", "300")], 1.0).await;
    let first = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(first.counts.launched, 200);
    assert_eq!(first.deferred_recovery_instance_ids, requested[200..]);
    // the next round: only the deferred ids, same run id; capacity has not changed
    let second = fb
        .handle(
            request(&first.deferred_recovery_instance_ids),
            in_minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(second.counts.deferred, 100);
    assert!(
        second.jobs.is_empty(),
        "jobs of the first round hold none of these instances"
    );
}

#[tokio::test(start_paused = true)]
async fn the_plan_fits_the_servers_and_jobs_already_in_flight() {
    let fleet = ready(750);
    let ids = fleet.ids();
    let requested = ids[..300].to_vec();
    let sim = sim_with(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    for busy in ids[300..].chunks(90) {
        // 450 servers busy, in five jobs of another tool
        sim.start_job(busy, &[]).unwrap();
    }
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 50, "500 - 450 servers left");
    assert_eq!(launches(&sim).len(), 1);
    let quota = &answer.not_launched[0];
    assert_eq!(
        (quota.outcome, quota.reason.as_str()),
        (OutcomeKind::Deferred, "QUOTA")
    );
    assert!(
        quota
            .message
            .as_deref()
            .unwrap()
            .contains("450 servers in active jobs")
    );
    assert_eq!(answer.deferred_recovery_instance_ids, requested[50..]);

    let sim = sim_with(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    for busy in ids[300..319].chunks(1) {
        sim.start_job(busy, &[]).unwrap();
    }
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.jobs.len(), 1, "one job slot of 20 left");
    assert_eq!(answer.counts.launched, 100);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_capacity_launches_everything_as_jobs_finish() {
    let fleet = ready(900);
    let requested = fleet.ids();
    let lifetime = Duration::from_secs(50);
    let sim = start(SimConfig {
        fleet,
        lifecycle: Lifecycle {
            pending: Duration::from_secs(10),
            started: lifetime - Duration::from_secs(10),
        },
        ..SimConfig::default()
    })
    .await;
    let settings = [
        ("WAIT_FOR_CAPACITY", "true"),
        ("CAPACITY_POLL_SECONDS", "20"),
    ];
    let fb = failback_in_process(&sim, &settings, 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 900);
    assert!(answer.complete);
    let first_wave = launches(&sim).iter().filter(|c| c.at_ms == 0).count();
    assert_eq!(first_wave, 5, "500 servers at first");
    let jobs = sim.jobs();
    let lifetime_ms = lifetime.as_millis() as u64;
    let in_flight_max = jobs
        .iter()
        .map(|job| {
            jobs.iter()
                .filter(|j| {
                    j.created_at_ms <= job.created_at_ms
                        && job.created_at_ms - j.created_at_ms < lifetime_ms
                })
                .map(|j| j.recovery_instance_ids.len())
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    assert!(
        in_flight_max <= 500,
        "never more than 500 servers in active jobs: {in_flight_max}"
    );
    assert!(
        launches(&sim).iter().all(|c| c.status == 200),
        "the simulator's quota never had to refuse"
    );
    assert_promise(&sim, 0, &requested, &answer);
}

#[tokio::test(start_paused = true)]
async fn without_waiting_what_does_not_fit_is_deferred_at_once() {
    let fleet = ready(900);
    let requested = fleet.ids();
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let started = tokio::time::Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 500);
    assert_eq!(answer.counts.deferred, 400);
    assert_eq!(tokio::time::Instant::now(), started, "no waiting");
}

#[tokio::test(start_paused = true)]
async fn ready_instances_cost_the_fewest_calls() {
    for count in [1, 199, 200, 201, 450, 1000] {
        let fleet = ready(count);
        let requested = fleet.ids();
        let sim = start(SimConfig {
            fleet,
            quotas: Quotas {
                servers_in_active_jobs: 5000,
                active_jobs: 100,
                ..Quotas::default()
            },
            ..SimConfig::default()
        })
        .await;
        let settings = [
            ("MAX_SERVERS_IN_FLIGHT", "5000"),
            ("MAX_ACTIVE_JOBS", "100"),
        ];
        let fb = failback_in_process(&sim, &settings, 1.0).await;
        let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
        assert_eq!(answer.counts.launched, count);
        assert_eq!(
            calls_of(&sim, Operation::DescribeRecoveryInstances).len(),
            count.div_ceil(200),
            "N = {count}"
        );
        assert_eq!(
            calls_of(&sim, Operation::DescribeJobs).len(),
            1,
            "N = {count}: the active jobs, once"
        );
        assert_eq!(launches(&sim).len(), count.div_ceil(100), "N = {count}");
    }
}

#[tokio::test(start_paused = true)]
async fn source_servers_resolve_to_their_recovery_instances() {
    let fleet = ready(3);
    let recovery = fleet.ids();
    let sources: Vec<String> = fleet
        .instances()
        .iter()
        .map(|i| i.source_server_id.clone())
        .collect();
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let payload = json!({
        "runId": RUN_ID,
        "sourceServerIDs": [sources[0], sources[1], "s-0000000000000000x"],
        "recoveryInstanceIDs": [recovery[1].clone(), recovery[2].clone()]
    });
    let answer = fb.handle(payload, in_minutes(5)).await.unwrap();
    assert_eq!(
        answer.counts.launched, 3,
        "the instance named twice is launched once"
    );
    assert_eq!(answer.requested, 4);
    assert_eq!(
        groups(&answer),
        [(OutcomeKind::Skipped, "NOT_FOUND".into(), None, 1)]
    );
    assert_eq!(
        answer.not_launched[0].recovery_instance_ids,
        ["s-0000000000000000x"]
    );
    assert_eq!(launched_ids(&sim).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_preflight_launches_nothing_and_defers_everything() {
    let fleet = ready(5);
    let requested = fleet.ids();
    let down = |operation| Fault::internal_error(operation, 100, 0, "read failed");
    let sim = start(SimConfig {
        fleet,
        faults: vec![
            down(Operation::DescribeJobs),
            down(Operation::DescribeRecoveryInstances),
        ],
        ..SimConfig::default()
    })
    .await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert!(launches(&sim).is_empty());
    assert_eq!(
        groups(&answer),
        [(OutcomeKind::Deferred, "SERVER_ERROR".into(), None, 5)]
    );
    assert_eq!(
        calls_of(&sim, Operation::DescribeJobs).len(),
        4,
        "a read is retried three times"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_plans_from_the_preflight() {
    let fleet = ready(250);
    let requested = fleet.ids();
    let fleet = fleet.with_state(&requested[0], FailbackState::FailbackNotReadyForLaunch);
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let mut payload = request(&requested);
    payload["dryRun"] = true.into();
    let answer = fb.handle(payload, in_minutes(5)).await.unwrap();
    assert!(launches(&sim).is_empty());
    assert_eq!(answer.planned_job_sizes, Some(vec![100, 100, 49]));
    assert_eq!(answer.counts.skipped, 1);
    assert_eq!(answer.counts.deferred, 249);
}

/// A dry run plans with the same planner as a real run: on the same DRS state, what it plans is
/// what the real run then starts, quotas included.
#[tokio::test(start_paused = true)]
async fn a_dry_run_plans_what_a_real_run_then_starts() {
    let fleet = ready(550);
    let ids = fleet.ids();
    let requested = ids[..250].to_vec();
    let sim = sim_with(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    for busy in ids[250..].chunks(100) {
        // 300 servers busy in another tool's jobs: 200 left
        sim.start_job(busy, &[]).unwrap();
    }
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let mut payload = request(&requested);
    payload["dryRun"] = true.into();
    let dry = fb.handle(payload, in_minutes(5)).await.unwrap();
    assert!(launches(&sim).is_empty());
    let planned = dry.planned_job_sizes.clone().expect("a dry run plans");

    let real = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let started: Vec<usize> = sim_jobs_of(&sim, RUN_ID)
        .iter()
        .map(|job| job.recovery_instance_ids.len())
        .collect();
    assert_eq!(planned, started, "planned and started agree");
    assert_eq!(planned, [100, 100]);
    assert_eq!(real.counts.deferred, 50, "what does not fit waits, in both");
    assert_eq!(dry.counts.deferred, 250, "a dry run launches nothing");
}
