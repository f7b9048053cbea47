//! Finishing a failback against the simulator through the real SDK: only the instances the run
//! brought back are disconnected or terminated — never one that failed, nor one a later run
//! launched, nor one of another run; a dry run lists what would be done and does nothing; a
//! terminate job is followed to the end and nothing is terminated twice; the results are
//! published once, when the finishing ends.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drs_failback::events::DETAIL_TYPE_FINISHED;
use drs_failback::finish::answer::{FinishAnswer, FinishNext};
use drs_failback::handler::Reply;
use drs_sim::{FailbackState, LaunchResult, Operation};
use serde_json::{Value, json};
use support::*;

const RUN: &str = "wave-finish";
/// As a stack deployed with FinishingActions disconnect-and-terminate.
const ALLOWED: &[(&str, &str)] = &[("FINISHING_ACTIONS", "disconnect-and-terminate")];

fn since_millis() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now - Duration::from_secs(60)).as_millis() as u64
}

/// A dry run (`approved: None`), or a finishing of the instances `approved`.
async fn finish(
    fb: &SimFailback,
    run: &str,
    finishing: &str,
    approved: Option<&[String]>,
    since: u64,
) -> FinishAnswer {
    let mut request = json!({"action": "finish", "runId": run, "finishing": finishing,
        "dryRun": approved.is_none(), "sinceMillis": since, "intervalSeconds": 60});
    if let Some(ids) = approved {
        request["recoveryInstanceIDs"] = json!(ids);
    }
    match fb
        .dispatch(request, in_minutes(5))
        .await
        .expect("finish answers")
    {
        Reply::Finish(answer) => answer,
        other => panic!("not a finish answer: {other:?}"),
    }
}

async fn launch(fb: &SimFailback, run: &str, ids: &[String]) {
    let request = json!({"runId": run, "recoveryInstanceIDs": ids});
    match fb
        .dispatch(request, in_minutes(5))
        .await
        .expect("launch answers")
    {
        Reply::Launch(answer) => assert_eq!(answer.counts.launched, ids.len(), "{answer:?}"),
        other => panic!("not a launch answer: {other:?}"),
    }
}

/// result → its instances, sorted.
fn by_result(answer: &FinishAnswer) -> Vec<(String, String, Vec<String>)> {
    let mut groups: Vec<(String, String, Vec<String>)> = answer
        .groups
        .iter()
        .map(|g| {
            let result = serde_json::to_value(g.result).unwrap();
            let mut ids = g.recovery_instance_ids.clone();
            ids.sort();
            (result.as_str().unwrap().to_owned(), g.reason.clone(), ids)
        })
        .collect();
    groups.sort();
    groups
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(start_paused = true)]
async fn terminate_only_what_the_run_brought_back_followed_to_the_end_once() {
    let mut fleet = ready(6);
    let ids = fleet.ids();
    fleet.set_launch_result(&ids[1], LaunchResult::Failed);
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, ALLOWED, 0.0).await;
    let since = since_millis();
    // ids 0..4 by this run (1 fails); 4 by another run; 5 never launched.
    launch(&fb, RUN, &ids[..4]).await;
    launch(&fb, "another-run", &ids[4..5]).await;
    // ids[3] fails back again under a later run: it is that run's now.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    sim.set_instance_state(&ids[3], FailbackState::FailbackReadyForLaunch);
    launch(&fb, "later-run", &ids[3..4]).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;

    let planned = finish(&fb, RUN, "terminate", None, since).await;
    assert_eq!(
        by_result(&planned),
        [
            (
                "notEligible".into(),
                "FAILBACK_ERROR".into(),
                sorted(&[&ids[1]])
            ),
            (
                "notEligible".into(),
                "NOT_THIS_RUN".into(),
                sorted(&[&ids[3]])
            ),
            (
                "planned".into(),
                "would terminate".into(),
                sorted(&[&ids[0], &ids[2]])
            ),
        ]
    );
    assert_eq!(planned.next, FinishNext::Done);
    assert!(
        calls_of(&sim, Operation::TerminateRecoveryInstances).is_empty(),
        "a dry run does nothing"
    );
    assert!(
        delivered_of(&sim, DETAIL_TYPE_FINISHED).is_empty(),
        "nor announces"
    );

    let approved = [ids[0].clone(), ids[2].clone()];
    let started = finish(&fb, RUN, "terminate", Some(&approved[..]), since).await;
    assert_eq!(started.counts.running, 2);
    assert!(!started.complete);
    assert_eq!(started.next, FinishNext::Finish { wait_seconds: 60 });
    assert_eq!(started.job_ids.len(), 1);
    // Asked again while the job runs (a redelivery, or the next interval): nothing sent again.
    let again = finish(&fb, RUN, "terminate", Some(&approved[..]), since).await;
    assert_eq!(again.counts.running, 2);
    let terminates = calls_of(&sim, Operation::TerminateRecoveryInstances);
    assert_eq!(terminates.len(), 1, "one terminate call");
    assert_eq!(
        sorted(
            &terminates[0]
                .recovery_instance_ids
                .iter()
                .collect::<Vec<_>>()
        ),
        sorted(&[&ids[0], &ids[2]])
    );
    assert!(
        delivered_of(&sim, DETAIL_TYPE_FINISHED).is_empty(),
        "not ended yet"
    );

    tokio::time::sleep(Duration::from_secs(3600)).await;
    let ended = finish(&fb, RUN, "terminate", Some(&approved[..]), since).await;
    assert!(ended.complete);
    assert_eq!(ended.next, FinishNext::Done);
    assert_eq!(ended.counts.done, 2);
    assert_eq!(ended.counts.not_eligible, 2);
    let announced = delivered_of(&sim, DETAIL_TYPE_FINISHED);
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0]["finishing"], "terminate");
    assert_eq!(announced[0]["counts"]["done"], 2);
    let listed: Vec<String> = sim
        .instances()
        .iter()
        .map(|i| i.recovery_instance_id.clone())
        .collect();
    assert!(listed.contains(&ids[1]) && listed.contains(&ids[4]) && listed.contains(&ids[5]));
    assert!(
        !listed.contains(&ids[0]) && !listed.contains(&ids[2]),
        "terminated: gone"
    );
    assert_eq!(
        calls_of(&sim, Operation::TerminateRecoveryInstances).len(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn disconnect_then_nothing_twice() {
    let fleet = ready(3);
    let ids = fleet.ids();
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, ALLOWED, 0.0).await;
    let since = since_millis();
    launch(&fb, RUN, &ids[..2]).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let done = finish(&fb, RUN, "disconnect", Some(&ids[..2]), since).await;
    assert!(done.complete, "{done:?}");
    assert_eq!(
        by_result(&done),
        [(
            "done".into(),
            "DISCONNECTED".into(),
            sorted(&[&ids[0], &ids[1]])
        )]
    );
    assert_eq!(
        calls_of(&sim, Operation::DisconnectRecoveryInstance).len(),
        2
    );
    let again = finish(&fb, RUN, "disconnect", Some(&ids[..2]), since).await;
    assert_eq!(again.counts.done, 2);
    assert_eq!(
        calls_of(&sim, Operation::DisconnectRecoveryInstance).len(),
        2,
        "an instance already disconnected is not disconnected again"
    );
    assert_eq!(
        delivered_of(&sim, DETAIL_TYPE_FINISHED).len(),
        2,
        "each call that ends it says so"
    );
}

/// DRS refusing a disconnect for good (a validation error) is that instance's failure, in DRS's
/// words; busy (a conflict: maybe in a job DRS does not list yet) waits for the next call;
/// throttling is waited out (Retry-After), not reported.
#[tokio::test(start_paused = true)]
async fn refusals_fail_conflicts_wait_and_throttling_is_waited_out() {
    let fleet = ready(3);
    let ids = fleet.ids();
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, ALLOWED, 0.0).await;
    let since = since_millis();
    launch(&fb, RUN, &ids).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    sim.inject(drs_sim::Fault::Throttle {
        operation: Operation::DisconnectRecoveryInstance,
        calls: 2,
        retry_after_seconds: 1,
    });
    let refusal = |error: &str, message: &str, status: u16| drs_sim::Fault::Fail {
        operation: Operation::DisconnectRecoveryInstance,
        calls: 1,
        after: 0,
        status,
        error_type: error.into(),
        message: message.into(),
        members: Default::default(),
        retry_after: None,
    };
    let done = finish(&fb, RUN, "disconnect", Some(&ids[..1]), since).await;
    assert_eq!(done.counts.done, 1, "{done:?}");
    assert_eq!(
        calls_of(&sim, Operation::DisconnectRecoveryInstance).len(),
        3,
        "two throttled, then done"
    );
    sim.inject(refusal("ValidationException", "bad", 400));
    sim.inject(refusal("ConflictException", "busy", 409));
    let answer = finish(&fb, RUN, "disconnect", Some(&ids), since).await;
    assert_eq!(
        by_result(&answer),
        [
            ("deferred".into(), "BUSY".into(), vec![ids[2].clone()]),
            ("done".into(), "DISCONNECTED".into(), vec![ids[0].clone()]),
            (
                "failed".into(),
                "ValidationException: bad".into(),
                vec![ids[1].clone()]
            ),
        ]
    );
    assert!(!answer.complete, "the busy one is asked again");
    assert_eq!(answer.next, FinishNext::Finish { wait_seconds: 60 });
    let value: Value = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        value["counts"],
        json!({"done": 1, "failed": 1, "running": 0, "notEligible": 0, "deferred": 1, "planned": 0})
    );
}

/// Only what the operator approved is finished; nothing is finished from an event, nor when the
/// deployment does not allow it.
#[tokio::test(start_paused = true)]
async fn only_the_approved_and_only_as_allowed() {
    let fleet = ready(2);
    let ids = fleet.ids();
    let sim = start_with(fleet).await;
    let fb = failback_in_process(&sim, ALLOWED, 0.0).await;
    let since = since_millis();
    launch(&fb, RUN, &ids).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let answer = finish(&fb, RUN, "terminate", Some(&ids[..1]), since).await;
    assert_eq!(
        by_result(&answer),
        [
            (
                "notEligible".into(),
                "NOT_APPROVED".into(),
                vec![ids[1].clone()]
            ),
            ("running".into(), "TERMINATED".into(), vec![ids[0].clone()]),
        ]
    );
    let event = json!({"version": "0", "id": "ev-1", "detail-type": "Failback Launch Requested",
        "source": "drs-failback.runbook", "account": "111122223333", "time": "2026-12-03T00:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"action": "finish", "runId": RUN, "finishing": "terminate", "sinceMillis": since,
            "recoveryInstanceIDs": [ids[1]]}});
    let error = fb
        .dispatch(event, in_minutes(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"finish\" is not accepted in an event"),
        "{error}"
    );
    let closed = failback_in_process(&sim, &[("FINISHING_ACTIONS", "disconnect")], 0.0).await;
    let request = json!({"action": "finish", "runId": RUN, "finishing": "terminate",
        "sinceMillis": since, "recoveryInstanceIDs": [ids[1]]});
    let error = closed
        .dispatch(request, in_minutes(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"terminate\" is not enabled for this deployment"),
        "{error}"
    );
    assert_eq!(
        calls_of(&sim, Operation::TerminateRecoveryInstances).len(),
        1
    );
}
