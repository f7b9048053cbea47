//! Tracking a run's jobs to the end: the real handler and SDK clients against the simulator, whose
//! jobs run on the paused tokio clock and end each instance as its fleet entry says (launched,
//! failed with a job log event, terminated).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use drs_failback::events::{DETAIL_TYPE_JOB_COMPLETED, DETAIL_TYPE_RUN_FINISHED};
use drs_failback::launch::answer::LaunchAnswer;
use drs_failback::track::finish::Listing;
use drs_sim::{Fault, Fleet, LaunchResult, Lifecycle, Operation, Quotas, SimConfig, SimHandle};
use serde_json::{Value, json};
use support::*;
use tokio::time::{Instant, sleep};

/// Jobs take 10 s: PENDING 2 s, STARTED 8 s.
const JOBS: Lifecycle = Lifecycle {
    pending: Duration::from_secs(2),
    started: Duration::from_secs(8),
};

async fn sim_of(fleet: Fleet, shape: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig {
        fleet,
        lifecycle: JOBS,
        quotas: Quotas {
            servers_in_active_jobs: 10_000,
            active_jobs: 1000,
            ..Quotas::default()
        },
        ..SimConfig::default()
    };
    shape(&mut config);
    start(config).await
}

const UNLIMITED: [(&str, &str); 2] = [
    ("MAX_SERVERS_IN_FLIGHT", "10000"),
    ("MAX_ACTIVE_JOBS", "1000"),
];

fn track(answer_jobs: &[String], reported: &[String]) -> Value {
    json!({"action": "track", "runId": RUN_ID, "jobIDs": answer_jobs, "reportedJobIDs": reported})
}

/// DescribeJobs answers 500 from now on.
fn describe_jobs_down(sim: &SimHandle) {
    sim.inject(Fault::internal_error(
        Operation::DescribeJobs,
        1000,
        0,
        "down",
    ));
}

fn job_ids(answer: &LaunchAnswer) -> Vec<String> {
    answer.jobs.iter().map(|j| j.job_id.clone()).collect()
}

#[tokio::test(start_paused = true)]
async fn every_instance_came_back_and_each_job_is_announced_once() {
    let fleet = ready(250);
    let requested = fleet.ids();
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    let launched = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let jobs = job_ids(&launched);
    assert_eq!(jobs.len(), 3);

    // Before the jobs end: running, nothing announced.
    let early = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(!early.complete);
    assert_eq!(early.counts.running, 250);
    assert_eq!(early.running_job_ids, jobs);
    assert!(early.reported_job_ids.is_empty());
    assert!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).is_empty());

    sleep(Duration::from_secs(11)).await;
    let done = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(done.complete);
    assert_eq!(done.counts.succeeded, 250);
    assert!(done.running_job_ids.is_empty());
    assert_eq!(done.reported_job_ids, jobs);
    let one = &done.jobs[0].instances.as_ref().unwrap()[0];
    assert_eq!(
        one.launch_status.as_ref().map(|s| s.as_str()),
        Some("LAUNCHED")
    );
    assert_eq!(
        one.failback_state.as_ref().map(|s| s.as_str()),
        Some("FAILBACK_COMPLETED")
    );
    assert!(one.source_server_id.is_some());
    let events = delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED);
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["runId"], RUN_ID);
    assert_eq!(events[0]["counts"]["succeeded"], 100);

    // Passing back what was reported: no second event.
    let again = fb
        .handle_track(track(&jobs, &done.reported_job_ids), in_minutes(5))
        .await
        .unwrap();
    assert!(again.complete);
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).len(), 3);
    assert_eq!(results(&again).len(), 250);
}

#[tokio::test(start_paused = true)]
async fn failed_instances_say_why() {
    let mut fleet = ready(6);
    let ids = fleet.ids();
    fleet.set_failure(&ids[1], "CONVERSION_FAIL");
    fleet.set_launch_result(&ids[2], LaunchResult::Failed);
    fleet.set_launch_result(&ids[3], LaunchResult::Terminated);
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    sleep(Duration::from_secs(11)).await;
    let answer = fb
        .handle_track(track(&job_ids(&launched), &[]), in_minutes(5))
        .await
        .unwrap();
    let found = results(&answer);
    let result = |k: usize| found[&ids[k]].clone();
    assert_eq!(result(0), ("succeeded".into(), None));
    assert_eq!(result(1), ("failed".into(), Some("CONVERSION_FAIL".into())));
    assert_eq!(result(2), ("failed".into(), Some("LAUNCH_FAILED".into())));
    assert_eq!(result(3), ("failed".into(), Some("LAUNCH_FAILED".into())));
    assert_eq!((answer.counts.succeeded, answer.counts.failed), (3, 3));
    let terminated = answer.jobs[0]
        .instances
        .as_ref()
        .unwrap()
        .iter()
        .find(|r| r.id() == ids[3])
        .unwrap()
        .clone();
    assert_eq!(
        terminated.launch_status.as_ref().map(|s| s.as_str()),
        Some("TERMINATED")
    );
    assert_eq!(
        terminated.failback_state.as_ref().map(|s| s.as_str()),
        Some("FAILBACK_ERROR")
    );
    assert!(terminated.message.unwrap().contains("terminated"));
}

#[tokio::test(start_paused = true)]
async fn servers_listed_without_recovery_instance_ids_are_matched_by_source_server() {
    let fleet = ready(5);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |c| c.completed_jobs_without_instance_ids = true).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    sleep(Duration::from_secs(11)).await;
    let answer = fb
        .handle_track(track(&job_ids(&launched), &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(answer.complete);
    let found: BTreeSet<String> = results(&answer).into_keys().collect();
    assert_eq!(found, ids.iter().cloned().collect::<BTreeSet<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_job_drs_does_not_show_is_unknown_not_done() {
    let fleet = ready(5);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |c| c.visibility_lag = Duration::from_secs(5)).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    let mut jobs = job_ids(&launched);
    jobs.push("drsjob-00000000000000000".into());
    let answer = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(!answer.complete);
    assert!(
        answer
            .jobs
            .iter()
            .all(|j| j.status.as_str() == "UNKNOWN" && !j.done)
    );
    assert_eq!(answer.running_job_ids, jobs);
    sleep(Duration::from_secs(11)).await;
    let later = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert_eq!(later.counts.succeeded, 5);
    assert_eq!(later.running_job_ids, ["drsjob-00000000000000000"]);
}

#[tokio::test(start_paused = true)]
async fn a_tracking_call_near_its_deadline_answers_in_time() {
    let fleet = ready(5);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    sleep(Duration::from_secs(11)).await;
    // 3.5 s: the margin leaves half a second, too little for any read.
    let deadline = Instant::now() + Duration::from_millis(3_500);
    let answer = fb
        .handle_track(track(&job_ids(&launched), &[]), deadline)
        .await
        .unwrap();
    assert!(Instant::now() <= deadline);
    assert!(!answer.complete);
    assert!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_final_call_sums_up_the_run() {
    let mut fleet = ready(120);
    let ids = fleet.ids();
    for id in &ids[..7] {
        fleet.set_failure(id, "SNAPSHOT_FAIL");
    }
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    sleep(Duration::from_secs(11)).await;
    let mut payload = track(&job_ids(&launched), &[]);
    payload["final"] = true.into();
    payload["notLaunched"] = 4.into();
    let answer = fb.handle_track(payload, in_minutes(5)).await.unwrap();
    let finished = answer.finished.expect("a final call sums up");
    assert_eq!(
        (finished.succeeded, finished.failed, finished.not_launched),
        (113, 7, 4)
    );
    let summary = delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED);
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["counts"]["notLaunched"], 4);
    assert_eq!(summary[0]["failed"][0]["reason"], "SNAPSHOT_FAIL");
    assert_eq!(
        summary[0]["failed"][0]["recoveryInstanceIDs"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
}

/// The largest run accepted: 5000 instances in 50 jobs, a third failing. The answer stays under
/// the 256 KB state limit (each job's instances grouped), every event under its own.
#[tokio::test(start_paused = true)]
async fn the_answer_stays_small_at_the_largest_run() {
    let mut fleet = ready(5000);
    let ids = fleet.ids();
    for id in ids.iter().step_by(3) {
        fleet.set_failure(id, "CONVERSION_FAIL");
    }
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(10)).await.unwrap();
    assert_eq!(launched.counts.launched, 5000);
    sleep(Duration::from_secs(11)).await;
    let mut payload = track(&job_ids(&launched), &[]);
    payload["final"] = true.into();
    let answer = fb.handle_track(payload, in_minutes(10)).await.unwrap();
    let bytes = serde_json::to_vec(&answer).unwrap().len();
    assert!(bytes < 256 * 1024, "{bytes} bytes");
    assert_eq!(answer.listing, Listing::JobGroups);
    assert_eq!(results(&answer).len(), 5000);
    assert_eq!(answer.counts.failed, 1667);
    assert_eq!(answer.events.undelivered, 0);
    for event in sim.delivered_events() {
        assert!(event.detail.to_string().len() <= 24 * 1024);
    }
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).len(), 50);
    assert!(!delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_track_request_is_checked_like_a_launch() {
    let sim = sim_of(ready(1), |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let error = fb
        .handle_track(
            json!({"action": "track", "runId": RUN_ID, "jobIDs": ["drsjob-1"]}),
            in_minutes(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidFailbackRequest");
    assert!(error.to_string().contains("jobIDs[0]"), "{error}");
    assert!(sim.calls().is_empty(), "no call of any kind");
}

/// DRS users report a COMPLETED job whose servers still say PENDING while the instances convert:
/// the instances' failback state is the final word, and the job is announced only once it is.
#[tokio::test(start_paused = true)]
async fn a_completed_job_is_done_only_when_its_instances_are_final() {
    let mut fleet = ready(4);
    let ids = fleet.ids();
    fleet.set_failure(&ids[0], "CONVERSION_FAIL");
    let sim = sim_of(fleet, |c| {
        c.launch_status_stays_pending = true;
        c.final_state_lag = Duration::from_secs(30);
    })
    .await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    let jobs = job_ids(&launched);
    sleep(Duration::from_secs(11)).await;
    let early = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert_eq!(early.jobs[0].status.as_str(), "COMPLETED");
    assert!(!early.complete && !early.jobs[0].done);
    assert_eq!(early.counts.running, 4);
    assert!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).is_empty());

    sleep(Duration::from_secs(30)).await;
    let done = fb
        .handle_track(track(&jobs, &early.reported_job_ids), in_minutes(5))
        .await
        .unwrap();
    assert!(done.complete);
    assert_eq!((done.counts.succeeded, done.counts.failed), (3, 1));
    assert_eq!(
        results(&done)[&ids[0]],
        ("failed".into(), Some("CONVERSION_FAIL".into()))
    );
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).len(), 1);
}

/// EventBridge down during the call that sees a job done: the job is not reported, so the next
/// call announces it — once.
#[tokio::test(start_paused = true)]
async fn an_event_that_could_not_be_delivered_is_announced_by_the_next_call() {
    let fleet = ready(3);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    let jobs = job_ids(&launched);
    sleep(Duration::from_secs(11)).await;
    sim.inject(Fault::PutEventsDown { calls: 100 });
    let down = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(down.complete);
    assert_eq!(down.events.undelivered, 1);
    assert!(down.reported_job_ids.is_empty());
    assert_eq!(
        down.running_job_ids, jobs,
        "asked after again, to be announced"
    );
    sim.clear_faults();
    let up = fb
        .handle_track(track(&jobs, &down.reported_job_ids), in_minutes(5))
        .await
        .unwrap();
    assert_eq!(up.reported_job_ids, jobs);
    assert!(up.running_job_ids.is_empty());
    let again = fb
        .handle_track(track(&jobs, &up.reported_job_ids), in_minutes(5))
        .await
        .unwrap();
    assert_eq!(again.events.published, 0);
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).len(), 1);
}

/// A run's last call gets back the launch answer's not-launched groups as they were: its answer
/// then accounts for every requested instance — a result for each launched one, an outcome and
/// reason for each other.
#[tokio::test(start_paused = true)]
async fn the_last_answer_accounts_for_every_requested_instance() {
    let mut fleet = ready(6);
    let ids = fleet.ids();
    fleet.set_state(&ids[5], drs_sim::FailbackState::FailbackNotReadyForLaunch);
    fleet.set_failure(&ids[0], "CONVERSION_FAIL");
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let mut requested = ids.clone();
    requested.push("not-an-id".into());
    let launched = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(launched.counts.launched, 5);
    sleep(Duration::from_secs(11)).await;
    let mut payload = track(&job_ids(&launched), &[]);
    payload["final"] = true.into();
    payload["notLaunched"] = serde_json::to_value(&launched.not_launched).unwrap();
    let answer = fb.handle_track(payload, in_minutes(5)).await.unwrap();
    let finished = answer.finished.unwrap();
    assert_eq!(
        (finished.succeeded, finished.failed, finished.not_launched),
        (4, 1, 2)
    );
    assert_eq!(answer.not_launched, launched.not_launched);
    let mut accounted: Vec<String> = results(&answer).into_keys().collect();
    accounted.extend(
        answer
            .not_launched
            .iter()
            .flat_map(|g| g.recovery_instance_ids.clone()),
    );
    accounted.sort();
    requested.sort();
    assert_eq!(accounted, requested);
}

/// A run that launched nothing still ends with a summary.
#[tokio::test(start_paused = true)]
async fn a_run_that_launched_nothing_is_summed_up() {
    let sim = sim_of(ready(1), |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let payload = json!({"action": "track", "runId": RUN_ID, "jobIDs": [], "final": true,
        "notLaunched": [{"outcome": "skipped", "reason": "NOT_FOUND",
                         "recoveryInstanceIDs": ["i-0000000000000dead"]}]});
    let answer = fb.handle_track(payload, in_minutes(5)).await.unwrap();
    assert!(answer.complete);
    assert_eq!(answer.finished.unwrap().not_launched, 1);
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED).len(), 1);
    assert!(
        calls_of(&sim, drs_sim::Operation::DescribeJobs).is_empty(),
        "no job to read"
    );
}

/// The run's last call must not sum up what it could not read: when DRS cannot be read it fails
/// with `DrsReadFailed` (which the state machine retries); an ordinary call tracks the jobs as
/// unknown and goes on.
#[tokio::test(start_paused = true)]
async fn the_last_call_fails_rather_than_sum_up_what_it_could_not_read() {
    let fleet = ready(3);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    let jobs = job_ids(&launched);
    sleep(Duration::from_secs(11)).await;
    describe_jobs_down(&sim);
    let ordinary = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(!ordinary.complete);
    assert_eq!(ordinary.jobs[0].status.as_str(), "UNKNOWN");
    let mut last = track(&jobs, &[]);
    last["final"] = true.into();
    let error = fb
        .handle_track(last.clone(), in_minutes(5))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "DrsReadFailed");
    assert!(delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED).is_empty());
    sim.clear_faults();
    let answer = fb.handle_track(last, in_minutes(5)).await.unwrap();
    assert_eq!(answer.finished.unwrap().succeeded, 3);
}

/// A source server can have had other recovery instances (an earlier failover): when a completed
/// job lists its servers by source server only, the instance it failed back is the one naming
/// the job, not the first one DRS lists.
#[tokio::test(start_paused = true)]
async fn the_instance_matched_by_source_server_is_the_one_of_this_job() {
    let mut fleet = Fleet::new();
    let mut older = drs_sim::FleetInstance::new("i-0aaaaaaaaaaaaaaa1");
    older.source_server_id = "s-0123456789abcdef0".into();
    older.state = drs_sim::FailbackState::FailbackNotStarted;
    let mut current = drs_sim::FleetInstance::new("i-0bbbbbbbbbbbbbbb2");
    current.source_server_id = "s-0123456789abcdef0".into();
    fleet.try_push(older).unwrap();
    fleet.try_push(current).unwrap();
    let sim = sim_of(fleet, |c| c.completed_jobs_without_instance_ids = true).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb
        .handle(request(&["i-0bbbbbbbbbbbbbbb2".into()]), in_minutes(5))
        .await
        .unwrap();
    sleep(Duration::from_secs(11)).await;
    let answer = fb
        .handle_track(track(&job_ids(&launched), &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(answer.complete);
    assert_eq!(
        results(&answer),
        BTreeMap::from([(
            "i-0bbbbbbbbbbbbbbb2".to_owned(),
            ("succeeded".to_owned(), None)
        )])
    );
}

/// A job DRS has finished whose instances never reach a final state is still announced, by the
/// run's last call, with those instances running; the run's summary names them and their job.
#[tokio::test(start_paused = true)]
async fn the_last_call_announces_every_finished_job_and_names_what_still_runs() {
    let fleet = ready(3);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |c| c.final_state_lag = Duration::from_secs(3600)).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launched = fb.handle(request(&ids), in_minutes(5)).await.unwrap();
    let jobs = job_ids(&launched);
    sleep(Duration::from_secs(11)).await;
    let before = fb
        .handle_track(track(&jobs, &[]), in_minutes(5))
        .await
        .unwrap();
    assert!(delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).is_empty());
    let mut last = track(&jobs, &before.reported_job_ids);
    last["final"] = true.into();
    let answer = fb.handle_track(last, in_minutes(5)).await.unwrap();
    assert!(!answer.complete);
    let completed = delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED);
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["done"], false);
    assert_eq!(completed[0]["counts"]["running"], 3);
    let summary = delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED);
    assert_eq!(summary[0]["counts"]["running"], 3);
    assert_eq!(summary[0]["runningJobIDs"], json!(jobs));
    assert_eq!(
        summary[0]["running"][0]["recoveryInstanceIDs"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// The other extreme of the largest run: 5 000 instances in 5 000 jobs of one (quota freeing one
/// server at a time), a third failing, summed up by one final call that passes back all 5 000 job
/// ids as reported. Only the whole run's instances grouped fit: the answer says so, and stays
/// under the 256 KB a Step Functions state may hold.
#[tokio::test(start_paused = true)]
async fn the_answer_fits_a_run_of_thousands_of_one_instance_jobs() {
    let mut fleet = ready(5000);
    let ids = fleet.ids();
    for id in ids.iter().step_by(3) {
        fleet.set_failure(id, "CONVERSION_FAIL");
    }
    let sim = sim_of(fleet, |c| {
        c.quotas.active_jobs = 5000;
        c.page_size = 1000;
    })
    .await;
    let tag = [(drs_failback::drs::tags::RUN_ID_TAG_KEY, RUN_ID)];
    let jobs: Vec<String> = ids
        .iter()
        .map(|id| sim.start_job(std::slice::from_ref(id), &tag).unwrap())
        .collect();
    sleep(Duration::from_secs(11)).await;
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    let mut payload = track(&jobs, &jobs);
    payload["final"] = true.into();
    let answer = fb.handle_track(payload, in_minutes(10)).await.unwrap();
    let bytes = serde_json::to_vec(&answer).unwrap().len();
    assert!(bytes < 256 * 1024, "{bytes} bytes");
    assert_eq!(answer.listing, Listing::RunGroups);
    assert!(answer.jobs.is_empty());
    assert_eq!(results(&answer).len(), 5000);
    assert_eq!(
        (answer.counts.succeeded, answer.counts.failed),
        (3333, 1667)
    );
    assert!(answer.complete);
}

/// Step Functions' status event for an execution of run `run_id` that ended `status`.
fn execution_ended(status: &str, run_id: &str, started: std::time::SystemTime) -> Value {
    let start_ms = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    json!({"version": "0", "id": "e-1", "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": "111122223333", "time": "2026-12-03T10:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:states:us-east-1:111122223333:execution:failback:exec-1"],
        "detail": {"executionArn": "arn:aws:states:us-east-1:111122223333:execution:failback:exec-1",
            "stateMachineArn": "arn:aws:states:us-east-1:111122223333:stateMachine:failback",
            "name": "exec-1", "status": status, "startDate": start_ms, "stopDate": start_ms + 60_000,
            "input": json!({"runId": run_id, "recoveryInstanceIDs": []}).to_string(),
            "inputDetails": {"included": true}, "output": null}})
}

/// An execution aborted (or timed out, or failed) in the middle of a run publishes no summary of
/// its own: Step Functions' status event, routed to the function, still ends the run with a
/// `Failback Run Finished` — how the execution ended, complete false, and every result of the
/// run's jobs that DRS shows (found by the run id, other runs' jobs left out), no job announced
/// twice.
#[tokio::test(start_paused = true)]
async fn an_aborted_execution_still_ends_its_run_with_what_is_known() {
    let fleet = ready(6);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |_| {}).await;
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    let started = std::time::SystemTime::now();
    fb.handle(request(&ids[..4]), in_minutes(5)).await.unwrap();
    let other = json!({"runId": "another-run", "recoveryInstanceIDs": &ids[4..]});
    fb.handle(other, in_minutes(5)).await.unwrap();
    sleep(Duration::from_secs(30)).await;
    for (status, expected) in [
        ("ABORTED", "ABORTED"),
        ("TIMED_OUT", "TIMED_OUT"),
        ("FAILED", "FAILED"),
    ] {
        let before = delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED).len();
        let answer = fb
            .handle_track(execution_ended(status, RUN_ID, started), in_minutes(5))
            .await
            .unwrap();
        assert_eq!(answer.run_id, RUN_ID);
        assert_eq!(
            answer.counts.succeeded, 4,
            "the run's four, not the other run's two"
        );
        let finished = delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED);
        assert_eq!(finished.len(), before + 1);
        let detail = finished.last().unwrap();
        assert_eq!(detail["status"], expected);
        assert_eq!(detail["complete"], false);
        assert_eq!(detail["runId"], RUN_ID);
        assert!(
            detail["executionArn"]
                .as_str()
                .unwrap()
                .ends_with(":exec-1")
        );
        assert_eq!(detail["counts"]["succeeded"], 4);
    }
    assert!(
        delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED).is_empty(),
        "no job announced by these calls: the execution may have announced them"
    );
}

/// A status event whose run's jobs cannot be read fails the invocation (Lambda sends the event to
/// the failure queue, whose alarm fires): it never publishes a summary that leaves jobs out.
#[tokio::test(start_paused = true)]
async fn an_ended_execution_whose_jobs_cannot_be_read_fails_loudly() {
    let sim = sim_of(ready(2), |_| {}).await;
    let fb = failback_in_process(&sim, &UNLIMITED, 1.0).await;
    describe_jobs_down(&sim);
    let error = fb
        .handle_track(
            execution_ended("ABORTED", RUN_ID, std::time::SystemTime::now()),
            in_minutes(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "DrsReadFailed", "{error}");
    assert!(delivered_of(&sim, DETAIL_TYPE_RUN_FINISHED).is_empty());
}

/// A tracking call that has seen a job of the step end learns its length from DRS's dates
/// (`jobSeconds`) and times the next call to just after the next running job should end: while
/// that is far off, every interval; once within two intervals, the one wait that meets it.
#[tokio::test(start_paused = true)]
async fn a_tracking_call_times_the_next_one_to_the_expected_end_of_a_job() {
    use drs_failback::launch::next::Next;
    let fleet = ready(2);
    let ids = fleet.ids();
    let sim = sim_of(fleet, |c| {
        c.lifecycle = Lifecycle {
            pending: Duration::from_secs(60),
            started: Duration::from_secs(540),
        }
    })
    .await;
    let fb = failback_in_process(&sim, &[], 0.0).await;
    let launch = |id: &str| json!({"runId": RUN_ID, "step": "db", "recoveryInstanceIDs": [id]});
    let first = fb.handle(launch(&ids[0]), in_minutes(5)).await.unwrap();
    sleep(Duration::from_secs(700)).await;
    let second = fb.handle(launch(&ids[1]), in_minutes(5)).await.unwrap();
    let jobs = [first.jobs[0].job_id.clone(), second.jobs[0].job_id.clone()];
    let track = |elapsed: u64, job_seconds: Option<u64>| {
        json!({"action": "track", "runId": RUN_ID, "step": "db", "jobIDs": jobs,
            "loop": {"limits": {"maxRounds": 10, "timeLimitSeconds": 7200, "trackIntervalSeconds": 60},
                "elapsedSeconds": elapsed, "rounds": 2, "runningJobs": 2, "calls": elapsed / 60,
                "executionSeconds": elapsed, "jobSeconds": job_seconds}})
    };
    // 60 s after the second launch: its job should end 540 s from now.
    sleep(Duration::from_secs(60)).await;
    let answer = fb
        .handle_track(track(760, None), in_minutes(5))
        .await
        .unwrap();
    assert_eq!(
        answer.job_seconds,
        Some(600),
        "the first job's length, as DRS dates it"
    );
    assert_eq!(answer.next, Some(Next::Track { wait_seconds: 60 }));
    // 65 s before its end (and the 5 s margin): the one wait that meets it.
    sleep(Duration::from_secs(480)).await;
    let answer = fb
        .handle_track(track(1240, Some(600)), in_minutes(5))
        .await
        .unwrap();
    let Some(Next::Track { wait_seconds }) = answer.next else {
        panic!("{:?}", answer.next);
    };
    assert!((64..=66).contains(&wait_seconds), "{wait_seconds}");
    sleep(Duration::from_secs(wait_seconds)).await;
    let answer = fb
        .handle_track(track(1240 + wait_seconds, Some(600)), in_minutes(5))
        .await
        .unwrap();
    assert!(answer.running_job_ids.is_empty(), "met at its end");
}
