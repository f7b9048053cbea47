//! The real handler, through the real AWS SDK clients over HTTP, against the simulator. Every
//! test checks the promise from the simulator's own records (calls, jobs, delivered events), on
//! paused tokio time: Retry-After waits, hangs and job lifecycles cost no real time.

mod support;

use std::fs;
use std::time::Duration;

use drs_failback::error::{ERROR_ACCOUNT_NOT_INITIALIZED, ERROR_INVALID_REQUEST};
use drs_failback::events::{DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_RUN_COMPLETED};
use drs_failback::launch::outcome::OutcomeKind;
use drs_sim::{FailbackState, Fault, Fleet, Lifecycle, Operation, Quotas, SimConfig};
use serde_json::Value;
use support::*;
use tokio::time::{Instant, sleep};

/// Exact call counts for a run where everything is ready and fits the quotas.
async fn launch_all_ready(count: usize, quotas: Quotas, settings: &[(&str, &str)]) {
    let fleet = ready(count);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        quotas,
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, settings).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, count);
    assert!(answer.complete);
    let mut sizes: Vec<usize> = sim
        .jobs()
        .iter()
        .map(|j| j.recovery_instance_ids.len())
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut expected = vec![100; count / 100];
    if !count.is_multiple_of(100) {
        expected.push(count % 100);
    }
    assert_eq!(sizes, expected);

    let jobs = count.div_ceil(100);
    let events = jobs + 1; // one per job and the run summary; nothing was left out
    assert_eq!(
        calls_of(&sim, Operation::DescribeRecoveryInstances).len(),
        count.div_ceil(200)
    );
    assert_eq!(calls_of(&sim, Operation::StartFailbackLaunch).len(), jobs);
    assert_eq!(
        calls_of(&sim, Operation::PutEvents).len(),
        events.div_ceil(10)
    );
    assert_eq!(sim.delivered_events().len(), events);
    assert_eq!(answer.events.published, events);
    // One DescribeJobs: the active jobs, for the quotas. No instance had a job before.
    assert_eq!(calls_of(&sim, Operation::DescribeJobs).len(), 1);
    for call in calls_of(&sim, Operation::DescribeRecoveryInstances) {
        assert!(call.recovery_instance_ids.len() <= 200);
    }
}

#[tokio::test(start_paused = true)]
async fn ready_250_make_three_jobs_with_exact_call_counts() {
    launch_all_ready(250, Quotas::default(), &[]).await;
}

#[tokio::test(start_paused = true)]
async fn ready_450_make_five_jobs_with_exact_call_counts() {
    launch_all_ready(450, Quotas::default(), &[]).await;
}

/// Eleven jobs make twelve events: two PutEvents calls.
#[tokio::test(start_paused = true)]
async fn ready_1050_make_eleven_jobs_and_two_put_events_calls() {
    let quotas = Quotas {
        servers_per_job: 100,
        servers_in_active_jobs: 2000,
        active_jobs: 50,
    };
    let settings = [("MAX_SERVERS_IN_FLIGHT", "2000"), ("MAX_ACTIVE_JOBS", "50")];
    launch_all_ready(1050, quotas, &settings).await;
}

#[tokio::test(start_paused = true)]
async fn throttled_calls_are_resent_no_earlier_than_retry_after() {
    let fleet = ready(150);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        faults: vec![Fault::Throttle {
            operation: Operation::StartFailbackLaunch,
            calls: 3,
            retry_after_seconds: 4,
        }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 150);
    let launches = calls_of(&sim, Operation::StartFailbackLaunch);
    let throttled: Vec<_> = launches.iter().filter(|c| c.status == 429).collect();
    assert_eq!(throttled.len(), 3);
    assert_eq!(launches.len(), 2 + 3, "two chunks, three throttled resends");
    for (index, call) in launches.iter().enumerate().filter(|(_, c)| c.status == 429) {
        let resend = launches[index + 1..]
            .iter()
            .find(|c| c.recovery_instance_ids == call.recovery_instance_ids)
            .expect("a throttled chunk is resent");
        assert!(
            resend.at_ms >= call.at_ms + 4_000,
            "resent {} ms after a Retry-After of 4 s",
            resend.at_ms - call.at_ms
        );
    }
    assert_eq!(sim.jobs().len(), 2);
}

/// The simulated account's quota is smaller than the function believes: DRS answers 402, the
/// refused chunk goes in halves until the room DRS has (150) is full — one halving per refusal,
/// so the calls stay logarithmic — and the rest is deferred without further calls.
#[tokio::test(start_paused = true)]
async fn quota_refusal_fills_the_room_then_defers() {
    let fleet = ready(250);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        quotas: Quotas {
            servers_in_active_jobs: 150,
            ..Quotas::default()
        },
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")]).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    let launches = calls_of(&sim, Operation::StartFailbackLaunch);
    let sizes: Vec<(usize, u16)> = launches
        .iter()
        .map(|c| (c.recovery_instance_ids.len(), c.status))
        .collect();
    assert_eq!(
        sizes,
        [
            (100, 200),
            (100, 402),
            (50, 200),
            (50, 402),
            (25, 402),
            (13, 402),
            (7, 402),
            (4, 402),
            (2, 402),
            (1, 402)
        ]
    );
    assert_eq!(answer.counts.launched, 150);
    assert_eq!(answer.counts.deferred, 100);
    assert!(
        answer
            .not_launched
            .iter()
            .all(|g| g.outcome == OutcomeKind::Deferred && g.reason == "QUOTA")
    );
    assert!(!answer.complete);
}

/// Jobs of another run already fill most of the quota: pre-flight sees them and sends only what
/// fits; the rest is deferred without a call.
#[tokio::test(start_paused = true)]
async fn active_jobs_of_another_run_leave_room_for_one_chunk() {
    let fleet = ready(250);
    let quota = [("MAX_SERVERS_IN_FLIGHT", "150")];
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        quotas: Quotas {
            servers_in_active_jobs: 150,
            ..Quotas::default()
        },
        lifecycle: Lifecycle {
            pending: Duration::from_secs(600),
            started: Duration::from_secs(600),
        },
        ..SimConfig::default()
    })
    .await;
    let ids = fleet.ids();
    let other = failback(&sim, &quota).await;
    let first = other
        .handle(
            serde_json::json!({"runId": "run-other", "recoveryInstanceIDs": ids[..100]}),
            in_minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(first.counts.launched, 100);

    let since = sim.next_call();
    let fb = failback(&sim, &quota).await;
    let requested = ids[100..].to_vec();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, since, &requested, &answer);
    let launches: Vec<_> = sim
        .calls_since(since)
        .iter()
        .filter(|c| c.operation == Operation::StartFailbackLaunch)
        .cloned()
        .collect();
    assert_eq!(launches.len(), 1, "only the 50 that fit are sent");
    assert_eq!(launches[0].recovery_instance_ids.len(), 50);
    assert_eq!(launches[0].status, 200);
    assert_eq!((answer.counts.launched, answer.counts.deferred), (50, 100));
    assert!(
        answer
            .not_launched
            .iter()
            .all(|g| g.reason == "QUOTA" && g.outcome == OutcomeKind::Deferred)
    );
}

#[tokio::test(start_paused = true)]
async fn not_ready_instances_are_skipped_with_their_state_and_never_sent() {
    let base = ready(120);
    let ids = base.ids();
    let fleet = base
        .with_state(&ids[3], FailbackState::FailbackNotStarted)
        .with_state(&ids[50], FailbackState::FailbackError)
        .with_state(&ids[110], FailbackState::FailbackNotReadyForLaunch);
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let answer = fb.handle(request(&ids), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &ids, &answer);
    assert_eq!(answer.counts.launched, 117);
    for (index, state) in [
        (3, "FAILBACK_NOT_STARTED"),
        (50, "FAILBACK_ERROR"),
        (110, "FAILBACK_NOT_READY_FOR_LAUNCH"),
    ] {
        assert_eq!(
            outcome_of(&answer, &ids[index]),
            Some((OutcomeKind::Skipped, state.to_owned()))
        );
    }
    for call in calls_of(&sim, Operation::StartFailbackLaunch) {
        assert_eq!(call.status, 200, "nothing sent is refused");
    }
}

/// An instance turns not-ready between pre-flight and the launch: DRS refuses the chunk with a
/// ConflictException naming it; that one is rejected, the rest of the chunk launched.
#[tokio::test(start_paused = true)]
async fn an_instance_that_turns_not_ready_after_preflight_is_isolated() {
    let fleet = ready(40);
    let ids = fleet.ids();
    // One simulated second per call: a window, on the paused clock, between the pre-flight read
    // and the launch, for the instance to change state in.
    let sim = start(SimConfig {
        fleet,
        latency: Some(Duration::from_secs(1)),
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let victim = ids[17].clone();
    let race = async {
        while calls_of(&sim, Operation::DescribeRecoveryInstances).is_empty() {
            sleep(Duration::from_millis(10)).await;
        }
        assert!(calls_of(&sim, Operation::StartFailbackLaunch).is_empty());
        assert!(sim.set_instance_state(&victim, FailbackState::FailbackNotReadyForLaunch));
    };
    let (answer, ()) = tokio::join!(fb.handle(request(&ids), in_minutes(5)), race);
    let answer = answer.unwrap();

    assert_promise(&sim, 0, &ids, &answer);
    let launches = calls_of(&sim, Operation::StartFailbackLaunch);
    assert_eq!(launches.len(), 2, "the refused chunk, then the rest of it");
    assert_eq!(launches[0].error_type.as_deref(), Some("ConflictException"));
    assert_eq!(launches[0].recovery_instance_ids.len(), 40);
    assert_eq!(launches[1].status, 200);
    assert_eq!(launches[1].recovery_instance_ids.len(), 39);
    assert!(!launches[1].recovery_instance_ids.contains(&victim));
    assert_eq!(answer.counts.launched, 39);
    let group = answer
        .not_launched
        .iter()
        .find(|g| g.recovery_instance_ids == [victim.clone()])
        .expect("the culprit is reported");
    assert_eq!(group.outcome, OutcomeKind::Rejected);
    assert_eq!(group.code.as_deref(), Some("ConflictException"));
}

#[tokio::test(start_paused = true)]
async fn unknown_ids_are_skipped_not_found_and_never_sent() {
    let fleet = ready(30);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let unknown = ["i-0123456789abcdef0".to_owned(), "i-deadbeef".to_owned()];
    let mut requested = fleet.ids();
    requested.insert(5, unknown[0].clone());
    requested.push(unknown[1].clone());
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 30);
    for id in &unknown {
        assert_eq!(
            outcome_of(&answer, id),
            Some((OutcomeKind::Skipped, "NOT_FOUND".to_owned()))
        );
        assert!(
            calls_of(&sim, Operation::StartFailbackLaunch)
                .iter()
                .all(|c| !c.recovery_instance_ids.contains(id))
        );
    }
    let launches = calls_of(&sim, Operation::StartFailbackLaunch);
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0].status, 200);
}

#[tokio::test(start_paused = true)]
async fn failed_event_entries_are_resent_until_delivered() {
    let fleet = ready(250);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        faults: vec![Fault::FailPutEventsEntries { entries: 2 }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.events.undelivered, 0);
    assert_eq!(answer.events.published, 4);
    let puts = calls_of(&sim, Operation::PutEvents);
    assert_eq!(
        puts.iter().map(|c| c.entries).collect::<Vec<_>>(),
        [4, 2],
        "only the two failed entries are resent"
    );
    let delivered = sim.delivered_events();
    assert_eq!(delivered.len(), 4, "each event delivered once");
    let started: Vec<_> = delivered
        .iter()
        .filter(|e| e.detail_type == DETAIL_TYPE_JOB_STARTED)
        .collect();
    assert_eq!(started.len(), 3);
    for event in started {
        assert_eq!(event.source, "drs-failback");
        assert_eq!(event.event_bus_name, "default");
        assert_eq!(event.resources.len(), 1, "the job ARN");
    }
}

#[tokio::test(start_paused = true)]
async fn an_event_bus_outage_leaves_the_launch_results_intact() {
    let fleet = ready(250);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        faults: vec![Fault::PutEventsDown { calls: 100 }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.events.undelivered, 4);
    assert_eq!(answer.events.published, 0);
    assert!(sim.delivered_events().is_empty());
    assert_eq!(
        calls_of(&sim, Operation::PutEvents).len(),
        3,
        "PUBLISH_MAX_ATTEMPTS rounds"
    );
    assert_eq!(answer.counts.launched, 250);
    assert_eq!(answer.jobs.len(), 3);
    assert!(answer.complete);
}

/// A 500 that created nothing: the function reads the instances, sees no job, and resends.
#[tokio::test(start_paused = true)]
async fn a_500_before_the_job_is_reconciled_then_resent() {
    let fleet = ready(60);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        faults: vec![Fault::InternalErrorBeforeCreate { calls: 1 }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    let calls = sim.calls();
    let failed = calls
        .iter()
        .position(|c| c.operation == Operation::StartFailbackLaunch)
        .unwrap();
    assert_eq!(calls[failed].status, 500);
    assert_eq!(calls[failed].job_id, None);
    let resent = calls[failed + 1..]
        .iter()
        .position(|c| c.operation == Operation::StartFailbackLaunch)
        .map(|p| p + failed + 1)
        .expect("resent");
    assert!(
        calls[failed + 1..resent]
            .iter()
            .any(|c| c.operation == Operation::DescribeRecoveryInstances
                && c.recovery_instance_ids == requested),
        "the instances are read back before the resend"
    );
    assert_eq!(calls[resent].status, 200);
    assert_eq!(sim.jobs().len(), 1);
    assert_eq!(answer.counts.launched, 60);
}

/// A 500 after DRS created the job: reconciliation finds the job (by the run-id tag) and reports
/// the instances launched in it; the chunk is not sent again.
#[tokio::test(start_paused = true)]
async fn a_500_after_the_job_is_reported_launched_and_not_resent() {
    let fleet = ready(160);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        faults: vec![Fault::InternalErrorAfterCreate { calls: 1 }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[("MAX_CONCURRENT_LAUNCHES", "1")]).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    let launches = calls_of(&sim, Operation::StartFailbackLaunch);
    assert_eq!(launches.len(), 2, "each chunk sent once");
    assert_eq!(launches[0].status, 500);
    let created = launches[0].job_id.clone().expect("the 500 created a job");
    assert_eq!(sim.jobs().len(), 2);
    let job = answer
        .jobs
        .iter()
        .find(|j| j.job_id == created)
        .expect("the job behind the 500 is in the answer");
    assert_eq!(job.recovery_instance_ids, launches[0].recovery_instance_ids);
    assert_eq!(answer.counts.launched, 160);
    assert!(answer.complete);
}

#[tokio::test(start_paused = true)]
async fn a_hang_past_the_call_timeout_is_reconciled_as_launched() {
    let fleet = ready(50);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        faults: vec![Fault::HangAfterAccept {
            calls: 1,
            seconds: 120.0,
        }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[("LAUNCH_CALL_TIMEOUT_MS", "2000")]).await;
    let requested = fleet.ids();
    let started = Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    let launches = calls_of(&sim, Operation::StartFailbackLaunch);
    assert_eq!(launches.len(), 1, "not resent");
    assert!(launches[0].job_id.is_some());
    assert_eq!(answer.counts.launched, 50);
    assert_eq!(answer.jobs.len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "did not wait for the hang"
    );
}

/// Every launch hangs far beyond the invocation (the answer would come in an hour), chunks go one
/// at a time, and the invocation has 60 s. Settings of the hang-past-the-deadline scenarios.
const HANG_SETTINGS: [(&str, &str); 3] = [
    ("LAUNCH_CALL_TIMEOUT_MS", "15000"),
    ("DEADLINE_MARGIN_MS", "3000"),
    ("MAX_CONCURRENT_LAUNCHES", "1"),
];

async fn hanging_sim(fleet: &Fleet) -> drs_sim::SimHandle {
    start(SimConfig {
        fleet: fleet.clone(),
        faults: vec![Fault::HangAfterAccept {
            calls: 10,
            seconds: 3_600.0,
        }],
        ..SimConfig::default()
    })
    .await
}

/// The answer comes before the deadline, with what could not be finished deferred, and no
/// instance goes into two jobs. Sending `deferredRecoveryInstanceIDs` back under the same run id
/// (what the state machine does) settles everything: together the two answers report every job
/// the simulator created, and the second keeps the whole promise.
#[tokio::test(start_paused = true)]
async fn a_hang_past_the_deadline_answers_in_time_and_the_deferred_rest_converges() {
    let fleet = ready(300);
    let sim = hanging_sim(&fleet).await;
    let fb = failback(&sim, &HANG_SETTINGS).await;
    let requested = fleet.ids();
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = fb.handle(request(&requested), deadline).await.unwrap();
    assert!(Instant::now() <= deadline, "answered after the deadline");
    assert!(!first.complete);
    assert!(first.counts.launched >= 100, "the first hang is reconciled");
    assert_eq!(first.counts.launched + first.counts.deferred, 300);
    assert!(
        calls_of(&sim, Operation::StartFailbackLaunch).len() <= 2,
        "no launch starts without time to finish it"
    );

    let since = sim.next_call();
    let rest = first.deferred_recovery_instance_ids.clone();
    let second = fb.handle(request(&rest), in_minutes(5)).await.unwrap();
    assert_promise(&sim, since, &rest, &second);
    assert!(second.complete);
    let reported: std::collections::BTreeSet<String> = first
        .jobs
        .iter()
        .chain(&second.jobs)
        .map(|j| j.job_id.clone())
        .collect();
    let created: std::collections::BTreeSet<String> =
        sim.jobs().into_iter().map(|j| j.job_id).collect();
    assert_eq!(reported, created, "every job is in one of the two answers");
    assert_eq!(created.len(), 3);
}

/// A launch starts only when its call and the two reads that would settle it fit before
/// `deadline - DEADLINE_MARGIN_MS`: a call that hangs past its timeout is still reconciled, and
/// the job DRS did create is reported in the same answer (with its event).
#[tokio::test(start_paused = true)]
async fn a_hang_past_the_deadline_keeps_the_promise_in_the_same_answer() {
    let fleet = ready(300);
    let sim = hanging_sim(&fleet).await;
    let fb = failback(&sim, &HANG_SETTINGS).await;
    let requested = fleet.ids();
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = fb.handle(request(&requested), deadline).await.unwrap();
    assert!(Instant::now() <= deadline, "answered after the deadline");
    assert_promise(&sim, 0, &requested, &answer);
}

/// The same request again (an EventBridge redelivery, a Lambda retry): pre-flight finds the jobs
/// the first delivery created by their run-id tag, and nothing is launched twice.
#[tokio::test(start_paused = true)]
async fn a_redelivered_request_reports_the_same_jobs_and_creates_none() {
    let base = ready(260);
    let ids = base.ids();
    let fleet = base.with_state(&ids[7], FailbackState::FailbackNotStarted);
    let sim = start(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await;
    let mut requested = ids.clone();
    requested.push("not-an-id".to_owned());
    requested.push("i-0123456789abcdef0".to_owned());
    let fb = failback(&sim, &[]).await;
    let first = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_promise(&sim, 0, &requested, &first);
    let jobs_after_first = sim.jobs();
    assert_eq!(jobs_after_first.len(), 3);

    // Once while the jobs still run, once after they completed.
    for pause in [Duration::ZERO, Duration::from_secs(600)] {
        tokio::time::advance(pause).await;
        let since = sim.next_call();
        let again = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
        assert_promise(&sim, since, &requested, &again);
        assert_eq!(jobs_by_id(&again), jobs_by_id(&first));
        assert_eq!(again.counts, first.counts);
        assert_eq!(sim.jobs().len(), 3, "no new job");
        assert!(
            sim.calls_since(since)
                .iter()
                .all(|c| c.operation != Operation::StartFailbackLaunch),
            "nothing sent to StartFailbackLaunch"
        );
        for id in &requested {
            assert_eq!(
                outcome_of(&again, id).map(|o| o.0),
                outcome_of(&first, id).map(|o| o.0),
                "{id}"
            );
        }
    }
}

fn samples() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut files: Vec<(String, Value)> = fs::read_dir(dir)
        .expect("events/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            (name, value)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[tokio::test(start_paused = true)]
async fn malformed_requests_are_refused_without_any_call() {
    let sim = start(SimConfig {
        fleet: ready(10),
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let invalid: Vec<(String, Value)> = samples()
        .into_iter()
        .filter(|(name, _)| name.starts_with("invalid-"))
        .collect();
    assert!(invalid.len() >= 7);
    for (name, payload) in invalid {
        let error = fb.handle(payload, in_minutes(5)).await.expect_err(&name);
        assert_eq!(error.error_type(), ERROR_INVALID_REQUEST, "{name}");
    }
    assert!(sim.calls().is_empty(), "no call reached the simulator");
    assert!(sim.delivered_events().is_empty());
}

/// Every valid sample through the wire: each with a fleet made of its own ids.
#[tokio::test(start_paused = true)]
async fn every_valid_sample_keeps_the_promise_on_the_wire() {
    // Plans run step by step in the state machine (tests/plan.rs, local/tests/plan_run.rs).
    for (name, payload) in samples()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("invalid-") && !name.starts_with("plan-"))
    {
        let ids: Vec<String> = payload
            .get("detail")
            .unwrap_or(&payload)
            .get("recoveryInstanceIDs")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let sim = start(SimConfig {
            fleet: Fleet::matching(&ids),
            ..SimConfig::default()
        })
        .await;
        let fb = failback(&sim, &[]).await;
        let answer = fb.handle(payload, in_minutes(5)).await.unwrap();
        assert_promise(&sim, 0, &ids, &answer);
        assert!(answer.complete != answer.dry_run, "{name}");
        let valid: std::collections::BTreeSet<&String> =
            ids.iter().filter(|id| well_formed(id)).collect();
        if answer.dry_run {
            assert!(calls_of(&sim, Operation::StartFailbackLaunch).is_empty());
            assert_eq!(answer.counts.deferred, valid.len(), "{name}");
            let planned: usize = answer.planned_job_sizes.iter().flatten().sum();
            assert_eq!(planned, valid.len(), "{name}");
        } else {
            assert_eq!(answer.counts.launched, valid.len(), "{name}");
        }
        assert_eq!(
            answer.counts.rejected,
            answer.requested - valid.len(),
            "{name}"
        );
        let summary = sim
            .delivered_events()
            .into_iter()
            .filter(|e| e.detail_type == DETAIL_TYPE_RUN_COMPLETED)
            .count();
        assert_eq!(summary, 1, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_uninitialized_account_is_an_error() {
    let fleet = ready(5);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        account_initialized: false,
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let error = fb
        .handle(request(&fleet.ids()), in_minutes(5))
        .await
        .expect_err("DRS is not initialised");
    assert_eq!(error.error_type(), ERROR_ACCOUNT_NOT_INITIALIZED);
    assert!(sim.jobs().is_empty());
    assert!(calls_of(&sim, Operation::StartFailbackLaunch).is_empty());
    assert!(
        sim.calls()
            .iter()
            .all(|c| c.error_type.as_deref() == Some("UninitializedAccountException"))
    );
}

/// `cargo lambda watch` (1.9.2) answers every `/runtime/invocation/next` with the constant
/// `Lambda-Runtime-Deadline-Ms: 600000` (1970). Real Lambda never hands over a past deadline, so
/// one from long ago is a placeholder: the function then takes Lambda's longest timeout.
#[tokio::test(start_paused = true)]
async fn the_cargo_lambda_watch_placeholder_deadline_still_launches() {
    let fleet = ready(5);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let mut context = lambda_runtime::Context::default();
    context.request_id = "local-invoke".to_owned();
    context.deadline = 600_000;
    let requested = fleet.ids();
    let reply = fb
        .invoke(lambda_runtime::LambdaEvent::new(
            request(&requested),
            context,
        ))
        .await
        .unwrap();
    let drs_failback::handler::Reply::Launch(answer) = reply else {
        panic!("a launch answer expected");
    };
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 5, "{:?}", answer.not_launched);
}

/// Source servers named in the request are resolved through `DescribeRecoveryInstances` (filter
/// `sourceServerIDs`) to their recovery instances, which are then launched like the others; a
/// source server without a recovery instance is skipped NOT_FOUND.
#[tokio::test(start_paused = true)]
async fn source_servers_are_resolved_and_launched() {
    let fleet = ready(150);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        ..SimConfig::default()
    })
    .await;
    let fb = failback(&sim, &[]).await;
    let sources: Vec<String> = fleet.instances()[..120]
        .iter()
        .map(|i| i.source_server_id.clone())
        .collect();
    let unknown = "s-ffffffffffffffff0".to_owned();
    let mut payload = request(&fleet.ids()[100..150]);
    payload["sourceServerIDs"] = serde_json::json!(
        sources
            .iter()
            .chain(std::iter::once(&unknown))
            .collect::<Vec<_>>()
    );
    let answer = fb.handle(payload, in_minutes(5)).await.unwrap();

    // 120 resolved, 20 of them also named directly: 150 distinct instances, plus the unknown one
    let mut requested = fleet.ids();
    requested.push(unknown.clone());
    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 150);
    assert_eq!(
        outcome_of(&answer, &unknown),
        Some((OutcomeKind::Skipped, "NOT_FOUND".into()))
    );
    assert_eq!(calls_of(&sim, Operation::StartFailbackLaunch).len(), 2);
}

/// With `WAIT_FOR_CAPACITY`, what does not fit the 500 servers in active jobs is launched as the
/// simulator's jobs complete, never over the quota the simulator enforces.
#[tokio::test(start_paused = true)]
async fn waiting_for_capacity_launches_everything_as_jobs_complete() {
    let fleet = ready(1200);
    let sim = start(SimConfig {
        fleet: fleet.clone(),
        lifecycle: Lifecycle {
            pending: Duration::from_secs(10),
            started: Duration::from_secs(20),
        },
        ..SimConfig::default()
    })
    .await;
    let settings = [
        ("WAIT_FOR_CAPACITY", "true"),
        ("CAPACITY_POLL_SECONDS", "15"),
    ];
    let fb = failback(&sim, &settings).await;
    let requested = fleet.ids();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();

    assert_promise(&sim, 0, &requested, &answer);
    assert_eq!(answer.counts.launched, 1200);
    assert!(answer.complete);
    let quota_refusals = sim
        .calls()
        .iter()
        .filter(|c| c.error_type.as_deref() == Some("ServiceQuotaExceededException"))
        .count();
    assert_eq!(quota_refusals, 0, "the plan kept within the quota");
    assert!(
        calls_of(&sim, Operation::DescribeJobs).len() >= 3,
        "the active jobs were polled"
    );
}
