//! What a run publishes, and what happens when EventBridge fails part or all of it.

mod common;

use common::*;
use drs_failback::events::{
    DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_NOT_LAUNCHED, DETAIL_TYPE_RUN_COMPLETED,
};

#[tokio::test(start_paused = true)]
async fn each_job_and_the_summary_carry_the_run_id() {
    let mut requested = ids(230);
    requested.push("bogus".into());
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let started = fb.publisher.delivered_of(DETAIL_TYPE_JOB_STARTED);
    assert_eq!(started.len(), 3);
    for (event, job) in started.iter().zip(&answer.jobs) {
        assert_eq!(event["runId"], "run-1");
        assert_eq!(event["jobID"], job.job_id.as_str());
        assert_eq!(
            event["recoveryInstanceIDs"].as_array().unwrap().len(),
            job.recovery_instance_ids.len()
        );
    }
    let job_entries: Vec<_> = fb
        .publisher
        .delivered()
        .into_iter()
        .filter(|e| e.detail_type == DETAIL_TYPE_JOB_STARTED)
        .collect();
    assert!(
        job_entries
            .iter()
            .all(|e| e.resources.len() == 1 && e.source == "drs-failback")
    );
    let not_launched = fb.publisher.delivered_of(DETAIL_TYPE_NOT_LAUNCHED);
    assert_eq!(not_launched.len(), 1);
    assert_eq!(not_launched[0]["notLaunched"][0]["reason"], "MALFORMED_ID");
    let summary = &fb.publisher.delivered_of(DETAIL_TYPE_RUN_COMPLETED)[0];
    assert_eq!(summary["runId"], "run-1");
    assert_eq!(summary["counts"]["launched"], 230);
    assert_eq!(summary["counts"]["rejected"], 1);
    assert_eq!(summary["jobIDs"].as_array().unwrap().len(), 3);
    assert_eq!(
        *fb.publisher.calls.lock().unwrap(),
        [5],
        "five events, one PutEvents call"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_entries_are_resent_and_delivered() {
    let fb = failback(config(&[]), FakeDrs::default(), 1.0);
    *fb.publisher.fail_entries.lock().unwrap() = 2;
    let answer = fb.handle(request(&ids(300)), in_minutes(5)).await.unwrap();
    assert_eq!(answer.events.published, 4);
    assert_eq!(answer.events.undelivered, 0);
    assert_eq!(
        *fb.publisher.calls.lock().unwrap(),
        [4, 2],
        "only the failed entries are resent"
    );
    assert_eq!(fb.publisher.delivered_of(DETAIL_TYPE_JOB_STARTED).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_eventbridge_outage_is_reported_and_launch_results_are_kept() {
    let fb = failback(
        config(&[("PUBLISH_MAX_ATTEMPTS", "3")]),
        FakeDrs::default(),
        1.0,
    );
    *fb.publisher.fail_calls.lock().unwrap() = 100;
    let requested = ids(300);
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(
        *fb.publisher.calls.lock().unwrap(),
        [4, 4, 4],
        "bounded resends"
    );
    assert_eq!(answer.events.published, 0);
    assert_eq!(answer.events.undelivered, 4);
    assert_eq!(
        answer.counts.launched, 300,
        "the answer still carries every result"
    );
    assert_promise(&requested, &answer, &fb.drs);
}
