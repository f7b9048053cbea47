//! Pre-flight, redelivery, source servers and quota-aware planning, on paused tokio time.

mod common;

use std::time::Duration;

use common::*;
use drs_failback::outcome::{Answer, OutcomeKind};
use serde_json::json;

fn groups(answer: &Answer) -> Vec<(OutcomeKind, String, Option<String>, usize)> {
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

fn launched_ids(drs: &FakeDrs) -> Vec<String> {
    drs.calls().into_iter().flat_map(|c| c.ids).collect()
}

#[tokio::test(start_paused = true)]
async fn only_ready_instances_are_sent() {
    let requested = ids(10);
    let drs = FakeDrs::scripted([]);
    drs.remove(&requested[1]);
    drs.set_state(&requested[2], "FAILBACK_NOT_STARTED");
    drs.set_state(&requested[3], "FAILBACK_COMPLETED");
    let other_job = drs.add_job(Some("another-run"), "STARTED", &requested[4..6]);
    let fb = failback(config(&[]), drs, 1.0);
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
    let sent = launched_ids(&fb.drs);
    assert_eq!(sent.len(), 5);
    assert!(
        requested[1..6].iter().all(|id| !sent.contains(id)),
        "skipped ids never reach DRS"
    );
    assert!(
        answer.complete,
        "skipped instances are final for this request"
    );
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_request_reports_the_same_jobs_and_launches_nothing_again() {
    let requested = ids(250);
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let first = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let calls_after_first = fb.drs.calls().len();
    let second = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        fb.drs.calls().len(),
        calls_after_first,
        "no launch call on redelivery"
    );
    assert_eq!(fb.drs.created_jobs().len(), 3);
    assert_eq!(first.jobs, second.jobs);
    assert_eq!(first.counts, second.counts);
    assert_eq!(first.not_launched, second.not_launched);
    assert_promise(&requested, &second, &fb.drs);

    // a different run id sees the same instances as busy in another run's jobs
    let mut other = request(&requested);
    other["runId"] = "run-2".into();
    let third = fb.handle(other, in_minutes(5)).await.unwrap();
    assert_eq!(third.counts.skipped, 250);
    assert_eq!(third.not_launched[0].reason, "ALREADY_IN_JOB");
}

#[tokio::test(start_paused = true)]
async fn a_second_round_with_the_same_run_id_only_reports_its_own_instances() {
    let requested = ids(300);
    let drs = FakeDrs::scripted([]);
    drs.add_job(Some("someone-else"), "STARTED", &ids(500)[400..]); // 100 servers busy
    let fb = failback(config(&[("MAX_SERVERS_IN_FLIGHT", "300")]), drs, 1.0);
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
    let requested = ids(300);
    let drs = FakeDrs::scripted([]);
    drs.add_job(Some("other"), "PENDING", &ids(1000)[550..1000]); // 450 servers busy
    let fb = failback(config(&[]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 50, "500 - 450 servers left");
    assert_eq!(fb.drs.calls().len(), 1);
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

    let drs = FakeDrs::scripted([]);
    for n in 0..19 {
        drs.add_job(Some("other"), "STARTED", &ids(2000)[1000 + n..1001 + n]);
    }
    let fb = failback(config(&[]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.jobs.len(), 1, "one job slot of 20 left");
    assert_eq!(answer.counts.launched, 100);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_capacity_launches_everything_as_jobs_finish() {
    let requested = ids(900);
    let drs = FakeDrs::scripted([]);
    *drs.job_lifetime.lock().unwrap() = Duration::from_secs(50).into();
    let settings = [
        ("WAIT_FOR_CAPACITY", "true"),
        ("CAPACITY_POLL_SECONDS", "20"),
    ];
    let fb = failback(config(&settings), drs, 1.0);
    let started = tokio::time::Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 900);
    assert!(answer.complete);
    let first_wave = fb.drs.calls().iter().filter(|c| c.at == started).count();
    assert_eq!(first_wave, 5, "500 servers at first");
    let mut in_flight_max = 0;
    for call in fb.drs.calls() {
        let active: usize = fb
            .drs
            .calls()
            .iter()
            .filter(|c| c.at <= call.at && call.at - c.at < Duration::from_secs(50))
            .map(|c| c.ids.len())
            .sum();
        in_flight_max = in_flight_max.max(active);
    }
    assert!(
        in_flight_max <= 500,
        "never more than 500 servers in active jobs: {in_flight_max}"
    );
    assert_promise(&requested, &answer, &fb.drs);
}

#[tokio::test(start_paused = true)]
async fn without_waiting_what_does_not_fit_is_deferred_at_once() {
    let requested = ids(900);
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let started = tokio::time::Instant::now();
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.counts.launched, 500);
    assert_eq!(answer.counts.deferred, 400);
    assert_eq!(tokio::time::Instant::now(), started, "no waiting");
}

#[tokio::test(start_paused = true)]
async fn ready_instances_cost_the_fewest_calls() {
    for count in [1, 199, 200, 201, 450, 1000] {
        let requested = ids(count);
        let settings = [
            ("MAX_SERVERS_IN_FLIGHT", "5000"),
            ("MAX_ACTIVE_JOBS", "100"),
        ];
        let fb = failback(config(&settings), FakeDrs::default(), 1.0);
        let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
        assert_eq!(answer.counts.launched, count);
        assert_eq!(
            fb.drs.reads_of("DescribeRecoveryInstances"),
            count.div_ceil(200),
            "N = {count}"
        );
        assert_eq!(
            fb.drs.reads_of("DescribeJobs"),
            1,
            "N = {count}: the active jobs, once"
        );
        assert_eq!(fb.drs.calls().len(), count.div_ceil(100), "N = {count}");
    }
}

#[tokio::test(start_paused = true)]
async fn source_servers_resolve_to_their_recovery_instances() {
    let recovery = ids(3);
    let drs = FakeDrs::scripted([]);
    drs.link("s-00000000000000000", &recovery[0]);
    drs.link("s-00000000000000001", &recovery[1]);
    let fb = failback(config(&[]), drs, 1.0);
    let payload = json!({
        "runId": "run-1",
        "sourceServerIDs": ["s-00000000000000000", "s-00000000000000001", "s-0000000000000000x"],
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
    let sent = launched_ids(&fb.drs);
    assert_eq!(sent.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_preflight_launches_nothing_and_defers_everything() {
    let requested = ids(5);
    let drs = FakeDrs::default();
    *drs.failing_reads.lock().unwrap() = 100;
    let fb = failback(config(&[]), drs, 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert!(fb.drs.calls().is_empty());
    assert_eq!(
        groups(&answer),
        [(OutcomeKind::Deferred, "SERVER_ERROR".into(), None, 5)]
    );
    assert_eq!(
        fb.drs.reads_of("DescribeJobs"),
        4,
        "a read is retried three times"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_plans_from_the_preflight() {
    let requested = ids(250);
    let drs = FakeDrs::scripted([]);
    drs.set_state(&requested[0], "FAILBACK_NOT_READY_FOR_LAUNCH");
    let fb = failback(config(&[]), drs, 1.0);
    let mut payload = request(&requested);
    payload["dryRun"] = true.into();
    let answer = fb.handle(payload, in_minutes(5)).await.unwrap();
    assert!(fb.drs.calls().is_empty());
    assert_eq!(answer.planned_job_sizes, Some(vec![100, 100, 49]));
    assert_eq!(answer.counts.skipped, 1);
    assert_eq!(answer.counts.deferred, 249);
}
