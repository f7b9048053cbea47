//! What a run publishes, and what happens when EventBridge fails part or all of it.

mod support;

use drs_failback::events::{
    DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_NOT_LAUNCHED, DETAIL_TYPE_RUN_COMPLETED,
};
use drs_sim::{Fault, Operation, SimConfig};
use support::*;

/// Entries of each PutEvents call, in order.
fn put_events_calls(sim: &drs_sim::SimHandle) -> Vec<usize> {
    calls_of(sim, Operation::PutEvents)
        .iter()
        .map(|c| c.entries)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn each_job_and_the_summary_carry_the_run_id() {
    let fleet = ready(230);
    let mut requested = fleet.ids();
    requested.push("bogus".into());
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    let started = delivered_of(&sim, DETAIL_TYPE_JOB_STARTED);
    assert_eq!(started.len(), 3);
    for (event, job) in started.iter().zip(&answer.jobs) {
        assert_eq!(event["runId"], RUN_ID);
        assert_eq!(event["jobID"], job.job_id.as_str());
        assert_eq!(
            event["recoveryInstanceIDs"].as_array().unwrap().len(),
            job.recovery_instance_ids.len()
        );
    }
    let job_entries: Vec<_> = sim
        .delivered_events()
        .into_iter()
        .filter(|e| e.detail_type == DETAIL_TYPE_JOB_STARTED)
        .collect();
    assert!(
        job_entries
            .iter()
            .all(|e| e.resources.len() == 1 && e.source == "drs-failback")
    );
    let not_launched = delivered_of(&sim, DETAIL_TYPE_NOT_LAUNCHED);
    assert_eq!(not_launched.len(), 1);
    assert_eq!(not_launched[0]["notLaunched"][0]["reason"], "MALFORMED_ID");
    let summary = &delivered_of(&sim, DETAIL_TYPE_RUN_COMPLETED)[0];
    assert_eq!(summary["runId"], RUN_ID);
    assert_eq!(summary["counts"]["launched"], 230);
    assert_eq!(summary["counts"]["rejected"], 1);
    assert_eq!(summary["jobIDs"].as_array().unwrap().len(), 3);
    assert_eq!(
        put_events_calls(&sim),
        [5],
        "five events, one PutEvents call"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_entries_are_resent_and_delivered() {
    let fleet = ready(300);
    let requested = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        faults: vec![Fault::FailPutEventsEntries { entries: 2 }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(answer.events.published, 4);
    assert_eq!(answer.events.undelivered, 0);
    assert_eq!(
        put_events_calls(&sim),
        [4, 2],
        "only the failed entries are resent"
    );
    assert_eq!(delivered_of(&sim, DETAIL_TYPE_JOB_STARTED).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn an_eventbridge_outage_is_reported_and_launch_results_are_kept() {
    let fleet = ready(300);
    let requested = fleet.ids();
    let sim = start(SimConfig {
        fleet,
        faults: vec![Fault::PutEventsDown { calls: 100 }],
        ..SimConfig::default()
    })
    .await;
    let fb = failback_in_process(&sim, &[("PUBLISH_MAX_ATTEMPTS", "3")], 1.0).await;
    let answer = fb.handle(request(&requested), in_minutes(5)).await.unwrap();
    assert_eq!(put_events_calls(&sim), [4, 4, 4], "bounded resends");
    assert_eq!(answer.events.published, 0);
    assert_eq!(answer.events.undelivered, 4);
    assert_eq!(
        answer.counts.launched, 300,
        "the answer still carries every result"
    );
    assert_promise(&sim, 0, &requested, &answer);
}
