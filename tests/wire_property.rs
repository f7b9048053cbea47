//! Nothing lost, nothing twice, on the wire: random fault sequences injected into the simulator
//! (throttling of launches and reads, a steady rate limit, 500s before and after the job, hangs,
//! PutEvents failures, a quota smaller than the function believes), random not-ready, unknown,
//! malformed, duplicate and already-busy instances, random settings (chunk size, concurrency,
//! call timeout, waiting for capacity, adaptive pacing) and deadlines, and sometimes the same
//! request delivered twice. After every invocation the promise is checked from the simulator's records.
//! Each case starts a simulator on paused tokio time, so no case waits for real.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use drs_failback::outcome::OutcomeKind;
use drs_sim::{FailbackState, Fault, Fleet, Operation, Quotas, SimConfig};
use proptest::prelude::*;
use serde_json::json;
use support::*;
use tokio::time::Instant;

const NOT_READY: [FailbackState; 4] = [
    FailbackState::FailbackNotStarted,
    FailbackState::FailbackInProgress,
    FailbackState::FailbackError,
    FailbackState::FailbackNotReadyForLaunch,
];

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => (1u32..4, 0u32..12).prop_map(|(calls, retry_after_seconds)| Fault::Throttle {
            operation: Operation::StartFailbackLaunch,
            calls,
            retry_after_seconds,
        }),
        1 => (
            prop_oneof![
                Just(Operation::DescribeRecoveryInstances),
                Just(Operation::DescribeJobs)
            ],
            1u32..3,
            0u32..5
        )
            .prop_map(|(operation, calls, retry_after_seconds)| Fault::Throttle {
                operation,
                calls,
                retry_after_seconds,
            }),
        2 => (1u32..3).prop_map(|calls| Fault::InternalErrorBeforeCreate { calls }),
        2 => (1u32..3).prop_map(|calls| Fault::InternalErrorAfterCreate { calls }),
        2 => (1u32..3, 1u32..90).prop_map(|(calls, seconds)| Fault::HangAfterAccept {
            calls,
            seconds: f64::from(seconds),
        }),
        1 => (1u32..4).prop_map(|entries| Fault::FailPutEventsEntries { entries }),
        // Stays for the whole run: a steady service rate the function must live with.
        1 => (1u32..4, 1u32..5).prop_map(|(per_second, burst)| Fault::RateLimit {
            operation: Operation::StartFailbackLaunch,
            per_second: f64::from(per_second) / 2.0,
            burst,
        }),
        1 => (1u32..4).prop_map(|calls| Fault::PutEventsDown { calls }),
    ]
}

/// Throttled reads after an ambiguous launch: when DRS keeps throttling the reads that would
/// settle it until no time is left, the job DRS did create is reported deferred AMBIGUOUS instead
/// of launched (the README's limits; the next round's pre-flight finds it). Such cases get a
/// deadline that leaves room for the reads; every other case keeps its random deadline.
fn needs_time_to_reconcile(fault: &Fault, _call_timeout_ms: u64) -> bool {
    matches!(fault, Fault::Throttle { operation, .. } if *operation != Operation::StartFailbackLaunch)
}

#[derive(Debug, Clone)]
struct Case {
    fleet_size: usize,
    not_ready: Vec<(usize, usize)>,
    unknown: usize,
    malformed: usize,
    duplicates: usize,
    /// Requested instances launched first by another run, so they are busy in its job.
    busy: usize,
    faults: Vec<Fault>,
    servers_in_active_jobs: usize,
    per_job: usize,
    concurrency: usize,
    call_timeout_ms: u64,
    deadline_s: u64,
    redeliver: bool,
    /// `Some(poll seconds)`: WAIT_FOR_CAPACITY on.
    wait_for_capacity: Option<u64>,
    adaptive_pacing: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            1usize..260,
            proptest::collection::vec((0usize..260, 0usize..NOT_READY.len()), 0..4),
            0usize..3,
            0usize..3,
            0usize..6,
            prop_oneof![3 => Just(0usize), 1 => 1usize..30],
        ),
        proptest::collection::vec(fault(), 0..6),
        (
            prop_oneof![3 => Just(500usize), 1 => 30usize..300],
            prop_oneof![Just(100usize), 20usize..100],
            1usize..5,
            prop_oneof![Just(10_000u64), 1_000u64..20_000],
            prop_oneof![2 => Just(600u64), 1 => 5u64..120],
            any::<bool>(),
        ),
        (
            prop_oneof![3 => Just(None), 1 => (5u64..60).prop_map(Some)],
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (fleet_size, not_ready, unknown, malformed, duplicates, busy),
                faults,
                (
                    servers_in_active_jobs,
                    per_job,
                    concurrency,
                    call_timeout_ms,
                    deadline_s,
                    redeliver,
                ),
                (wait_for_capacity, adaptive_pacing),
            )| Case {
                fleet_size,
                not_ready,
                unknown,
                malformed,
                duplicates,
                busy,
                faults,
                servers_in_active_jobs,
                per_job,
                concurrency,
                call_timeout_ms,
                deadline_s,
                redeliver,
                wait_for_capacity,
                adaptive_pacing,
            },
        )
}

async fn run(case: Case) {
    let generated = Fleet::generated(
        case.fleet_size + case.unknown,
        FailbackState::FailbackReadyForLaunch,
    );
    let all_ids = generated.ids();
    // Unknown ids are well-formed ids the account does not have.
    let mut fleet: Fleet = generated
        .instances()
        .iter()
        .take(case.fleet_size)
        .cloned()
        .collect();
    for (index, state) in &case.not_ready {
        if let Some(id) = all_ids.get(index % case.fleet_size) {
            fleet.set_state(id, NOT_READY[*state]);
        }
    }
    let mut requested = all_ids.clone();
    requested.extend(all_ids.iter().take(case.duplicates).cloned());
    requested.extend((0..case.malformed).map(|n| format!("i-not-hex-{n}")));

    let sim = start(SimConfig {
        fleet,
        quotas: Quotas {
            servers_in_active_jobs: case.servers_in_active_jobs,
            ..Quotas::default()
        },
        ..SimConfig::default()
    })
    .await;
    let per_job = case.per_job.to_string();
    let concurrency = case.concurrency.to_string();
    let call_timeout = case.call_timeout_ms.to_string();
    let poll = case.wait_for_capacity.unwrap_or(30).to_string();
    let settings = [
        ("MAX_INSTANCES_PER_JOB", per_job.as_str()),
        ("MAX_CONCURRENT_LAUNCHES", concurrency.as_str()),
        ("LAUNCH_CALL_TIMEOUT_MS", call_timeout.as_str()),
        // At 20 per job the default 5000 would plan more chunks than the function allows.
        ("MAX_REQUEST_INSTANCES", "1000"),
        (
            "WAIT_FOR_CAPACITY",
            if case.wait_for_capacity.is_some() {
                "true"
            } else {
                "false"
            },
        ),
        ("CAPACITY_POLL_SECONDS", poll.as_str()),
        (
            "ADAPTIVE_PACING",
            if case.adaptive_pacing {
                "true"
            } else {
                "false"
            },
        ),
    ];

    let busy: Vec<String> = all_ids
        .iter()
        .take(case.busy.min(case.fleet_size))
        .cloned()
        .collect();
    if !busy.is_empty() {
        let other = failback(&sim, &settings).await;
        let answer = other
            .handle(
                json!({"runId": "run-other", "recoveryInstanceIDs": busy}),
                in_minutes(10),
            )
            .await
            .expect("the other run is accepted");
        assert_promise(&sim, 0, &busy, &answer);
    }
    // Faults are armed only for the run under test.
    for fault in &case.faults {
        sim.inject(fault.clone());
    }

    let deadline_s = if case
        .faults
        .iter()
        .any(|f| needs_time_to_reconcile(f, case.call_timeout_ms))
    {
        600
    } else {
        case.deadline_s
    };
    let fb = failback(&sim, &settings).await;
    let mut previous: Option<HashMap<String, String>> = None;
    for _ in 0..if case.redeliver { 2 } else { 1 } {
        let since = sim.calls().len();
        let deadline = Instant::now() + Duration::from_secs(deadline_s);
        let answer = fb
            .handle(request(&requested), deadline)
            .await
            .expect("the request is accepted");
        assert!(Instant::now() <= deadline, "answered after the deadline");
        assert_promise(&sim, since, &requested, &answer);
        // Skipped when pre-flight ran; deferred when there was no time even for that.
        for id in &busy {
            let (kind, _) = outcome_of(&answer, id).expect("busy ids have an outcome");
            assert!(
                matches!(kind, OutcomeKind::Skipped | OutcomeKind::Deferred),
                "{id} is busy in another run's job, yet {kind:?}"
            );
        }
        let job_of: HashMap<String, String> = answer
            .jobs
            .iter()
            .flat_map(|j| {
                j.recovery_instance_ids
                    .iter()
                    .map(move |id| (id.clone(), j.job_id.clone()))
            })
            .collect();
        // A redelivery reports every instance the first delivery launched in the same job.
        if let Some(previous) = previous {
            for (id, job) in previous {
                assert_eq!(job_of.get(&id), Some(&job), "{id} after redelivery");
            }
        }
        previous = Some(job_of);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_promise_holds_on_the_wire_whatever_fails(case in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(run(case));
    }
}
