//! Launching and tracking in other accounts and regions: the function assumes the role each
//! target account grants (STS AssumeRole with the external id), keeps a DRS client per account
//! and region while its keys last, and a place it cannot reach fails alone, its instances
//! skipped `TARGET_UNREACHABLE`. All through the real SDK clients against drs-sim's accounts
//! and regions.

mod support;

use std::time::Duration;

use drs_failback::error::HandlerError;
use drs_sim::{Fault, Fleet, Operation, Role, SimConfig, SimHandle};
use serde_json::{Value, json};
use support::*;
use tokio::time::Instant;

const HOME: &str = "111122223333";
const APPS: &str = "222233334444";
const NO_ROLE: &str = "333344445555";
const EXTERNAL_ID: &str = "failback-hub-7";
const HOME_ID: &str = "i-0a0000000000000a1";
const EAST: [&str; 2] = ["i-0b0000000000000b1", "i-0b0000000000000b2"];
const WEST: [&str; 2] = ["i-0c0000000000000c1", "i-0c0000000000000c2"];
const ORPHAN: &str = "i-0d0000000000000d1";

/// The hub (111122223333, us-east-1) and an application account (222233334444) in two regions
/// that grants the role, and an account that grants none.
fn world() -> SimConfig {
    let home = SimConfig {
        fleet: Fleet::matching([HOME_ID]),
        ..SimConfig::default()
    };
    let at = |account: &str, region: &str, ids: &[&str]| SimConfig {
        account_id: account.into(),
        region: region.into(),
        fleet: Fleet::matching(ids.iter().copied()),
        ..home.target_base()
    };
    SimConfig {
        targets: vec![
            at(APPS, "us-east-1", &EAST),
            at(APPS, "us-west-2", &WEST),
            at(NO_ROLE, "us-east-1", &[ORPHAN]),
        ],
        roles: vec![Role {
            account_id: APPS.into(),
            name: "drs-failback-target".into(),
            external_id: Some(EXTERNAL_ID.into()),
        }],
        ..home
    }
}

const SETTINGS: &[(&str, &str)] = &[
    ("HOME_ACCOUNT_ID", HOME),
    ("AWS_REGION", "us-east-1"),
    ("TARGET_EXTERNAL_ID", EXTERNAL_ID),
];

fn launch(account: &str, region: &str, ids: &[&str]) -> Value {
    json!({
        "action": "launch",
        "runId": RUN_ID,
        "target": {"account": account, "region": region},
        "recoveryInstanceIDs": ids,
    })
}

async fn answer(f: &SimFailback, payload: Value) -> Result<Value, HandlerError> {
    let deadline = Instant::now() + Duration::from_secs(600);
    f.dispatch(payload, deadline)
        .await
        .map(|reply| serde_json::to_value(reply).unwrap())
}

fn launched_ids(sim: &SimHandle) -> Vec<String> {
    let mut ids: Vec<String> = sim
        .jobs()
        .iter()
        .flat_map(|j| j.recovery_instance_ids.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_launch_in_a_target_account_and_region_goes_through_its_role() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let west = answer(&f, launch(APPS, "us-west-2", &WEST)).await.unwrap();
    assert_eq!(west["counts"]["launched"], 2, "{west}");
    assert_eq!(
        west["target"],
        json!({"account": APPS, "region": "us-west-2"})
    );
    let east = answer(&f, launch(APPS, "us-east-1", &EAST)).await.unwrap();
    assert_eq!(east["counts"]["launched"], 2, "{east}");
    // Each place got its own instances, in its own jobs; the hub's own DRS saw no launch.
    assert_eq!(launched_ids(&sim.at(APPS, "us-west-2").unwrap()), WEST);
    assert_eq!(launched_ids(&sim.at(APPS, "us-east-1").unwrap()), EAST);
    assert!(sim.jobs().is_empty());
    // One AssumeRole per account and region, kept for the calls after.
    assert_eq!(sim.sts_sessions(), 2);
    let job = west["jobs"][0]["jobID"].as_str().unwrap().to_owned();
    let track = json!({"action": "track", "runId": RUN_ID, "jobIDs": [job],
                       "target": {"account": APPS, "region": "us-west-2"}});
    let tracked = answer(&f, track).await.unwrap();
    assert!(tracked["jobs"].is_array(), "{tracked}");
    assert_eq!(sim.sts_sessions(), 2);
    // Every event of a target's launch says where it was.
    let events = sim.delivered_events();
    assert_eq!(
        events[0].detail["target"]["region"], "us-west-2",
        "{:?}",
        events[0]
    );
    // The hub's own instances: no target, no role.
    let home = json!({"action": "launch", "runId": RUN_ID, "recoveryInstanceIDs": [HOME_ID]});
    let home = answer(&f, home).await.unwrap();
    assert_eq!(home["counts"]["launched"], 1);
    assert_eq!(
        home["target"],
        json!({"account": HOME, "region": "us-east-1"})
    );
    assert_eq!(sim.sts_sessions(), 2);
}

#[tokio::test]
async fn an_account_without_the_role_fails_alone() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let orphan = answer(&f, launch(NO_ROLE, "us-east-1", &[ORPHAN]))
        .await
        .unwrap();
    assert_eq!(orphan["counts"]["skipped"], 1, "{orphan}");
    let group = &orphan["notLaunched"][0];
    assert_eq!(group["reason"], "TARGET_UNREACHABLE");
    assert_eq!(group["code"], "AccessDenied");
    assert!(
        group["message"]
            .as_str()
            .unwrap()
            .contains("333344445555:role/drs-failback-target"),
        "{group}"
    );
    assert_eq!(orphan["unreachable"]["code"], "AccessDenied");
    assert!(sim.at(NO_ROLE, "us-east-1").unwrap().calls().is_empty());
    // The others go on.
    let west = answer(&f, launch(APPS, "us-west-2", &WEST)).await.unwrap();
    assert_eq!(west["counts"]["launched"], 2);
    // Its jobs cannot be read either: the tracking call fails, to be sent again.
    let track = json!({"action": "track", "runId": RUN_ID, "jobIDs": ["drsjob-0123456789abcdefg"],
                       "target": {"account": NO_ROLE, "region": "us-east-1"}});
    let error = answer(&f, track).await.unwrap_err();
    assert_eq!(error.error_type(), "TargetUnreachable");
    assert!(
        error.to_string().contains("333344445555/us-east-1"),
        "{error}"
    );
}

#[tokio::test]
async fn a_region_not_enabled_fails_alone() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let answer = answer(&f, launch(APPS, "eu-west-1", &WEST)).await.unwrap();
    assert_eq!(answer["counts"]["skipped"], 2, "{answer}");
    assert_eq!(answer["notLaunched"][0]["reason"], "TARGET_UNREACHABLE");
    assert_eq!(answer["notLaunched"][0]["code"], "DrsAccessDenied");
}

#[tokio::test(start_paused = true)]
async fn a_region_throttling_hard_holds_only_its_own_instances() {
    let sim = start(world()).await;
    sim.at(APPS, "us-west-2").unwrap().inject(Fault::Throttle {
        operation: Operation::StartFailbackLaunch,
        calls: 1000,
        retry_after_seconds: 5,
    });
    let f = failback_in_process(&sim, SETTINGS, 0.0).await;
    let east = answer(&f, launch(APPS, "us-east-1", &EAST)).await.unwrap();
    let west = answer(&f, launch(APPS, "us-west-2", &WEST)).await.unwrap();
    assert_eq!(east["counts"]["launched"], 2, "{east}");
    assert_eq!(west["counts"]["launched"], 0, "{west}");
    assert_eq!(west["counts"]["deferred"], 2, "{west}");
    assert_eq!(west["notLaunched"][0]["reason"], "THROTTLED");
    assert!(sim.at(APPS, "us-west-2").unwrap().jobs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn keys_are_renewed_before_they_expire() {
    let sim = start(world()).await;
    let f = failback_in_process(&sim, SETTINGS, 0.0).await;
    let read = || {
        json!({"action": "track", "runId": RUN_ID, "jobIDs": ["drsjob-0123456789abcdefg"],
                         "target": {"account": APPS, "region": "us-west-2"}})
    };
    answer(&f, read()).await.unwrap();
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    answer(&f, read()).await.unwrap();
    assert_eq!(sim.sts_sessions(), 1, "half an hour in, the keys are kept");
    tokio::time::advance(Duration::from_secs(25 * 60)).await;
    answer(&f, read()).await.expect("renewed, not expired");
    assert_eq!(sim.sts_sessions(), 2);
}

#[tokio::test]
async fn an_instance_named_by_its_arn_and_its_id_is_refused() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let arn = format!("arn:aws:drs:us-east-1:{HOME}:recovery-instance/{HOME_ID}");
    let twice = json!({"action": "launch", "runId": RUN_ID, "recoveryInstanceIDs": [HOME_ID, arn]});
    let error = answer(&f, twice).await.unwrap_err();
    assert_eq!(error.error_type(), "InvalidFailbackRequest");
    assert!(error.to_string().contains("named twice"), "{error}");
    // By ARN alone, it is the id of the call's place.
    let by_arn = json!({"action": "launch", "runId": RUN_ID, "recoveryInstanceIDs": [arn]});
    let answer_ = answer(&f, by_arn).await.unwrap();
    assert_eq!(answer_["counts"]["launched"], 1, "{answer_}");
    // An ARN of another place, in a call for this one.
    let west = format!("arn:aws:drs:us-west-2:{APPS}:recovery-instance/{}", WEST[0]);
    let elsewhere = json!({"action": "launch", "runId": RUN_ID, "recoveryInstanceIDs": [west]});
    let error = answer(&f, elsewhere).await.unwrap_err();
    assert!(
        error.to_string().contains("222233334444/us-west-2"),
        "{error}"
    );
    assert!(sim.at(APPS, "us-west-2").unwrap().jobs().is_empty());
}

#[tokio::test]
async fn a_place_never_reached_is_still_summed_up_without_reading_drs() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let orphan = answer(&f, launch(NO_ROLE, "us-east-1", &[ORPHAN]))
        .await
        .unwrap();
    let calls = sim.calls().len();
    let last = json!({"action": "track", "runId": RUN_ID, "jobIDs": [], "final": true,
        "step": "apps", "critical": true, "notLaunched": orphan["notLaunched"],
        "target": {"account": NO_ROLE, "region": "us-east-1"}});
    let summed = answer(&f, last).await.unwrap();
    assert_eq!(summed["verdict"]["failed"], 1, "{summed}");
    assert_eq!(summed["verdict"]["reason"], "CRITICAL_FAILED");
    // Only the step's event was published (home's EventBridge); DRS was read nowhere.
    let drs_calls = sim
        .calls()
        .iter()
        .skip(calls)
        .filter(|c| c.operation != Operation::PutEvents)
        .count();
    assert_eq!(drs_calls, 0);
    assert!(sim.at(NO_ROLE, "us-east-1").unwrap().calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn tracking_events_answers_and_metrics_say_where() {
    let sim = start(world()).await;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = std::sync::Arc::clone(&lines);
    let f = failback_in_process(&sim, SETTINGS, 0.0)
        .await
        .with_metrics_output(move |line| seen.lock().unwrap().push(line.to_owned()));
    let west = answer(&f, launch(APPS, "us-west-2", &WEST)).await.unwrap();
    let job = west["jobs"][0]["jobID"].as_str().unwrap().to_owned();
    let record: Value = serde_json::from_str(lines.lock().unwrap().last().unwrap()).unwrap();
    assert_eq!(record["target"], "222233334444/us-west-2");
    let dimensions = &record["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
    assert!(
        dimensions
            .as_array()
            .unwrap()
            .contains(&json!(["service", "target"])),
        "{dimensions}"
    );
    // The step's last call: its Job Completed and Step Finished name the place.
    let last = json!({"action": "track", "runId": RUN_ID, "jobIDs": [job], "final": true,
        "step": "apps", "target": {"account": APPS, "region": "us-west-2"}});
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut tracked = answer(&f, last.clone()).await.unwrap();
    while tracked["complete"] != true && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        tracked = answer(&f, last.clone()).await.unwrap();
    }
    assert_eq!(
        tracked["target"],
        json!({"account": APPS, "region": "us-west-2"})
    );
    let events = sim.delivered_events();
    for kind in ["Failback Launch Job Completed", "Failback Step Finished"] {
        let event = events
            .iter()
            .find(|e| e.detail_type == kind)
            .unwrap_or_else(|| panic!("{kind}"));
        assert_eq!(event.detail["target"]["region"], "us-west-2", "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn sts_busy_for_now_fails_the_call_to_be_made_again_never_skips_the_place() {
    let sim = start(world()).await;
    // More throttles than the SDK's own retries: the call fails, nothing is skipped.
    sim.throttle_assume_role(10);
    let f = failback_in_process(&sim, SETTINGS, 0.0).await;
    let error = answer(&f, launch(APPS, "us-west-2", &WEST))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "DrsReadFailed", "{error}");
    assert!(
        error.to_string().contains("222233334444/us-west-2"),
        "{error}"
    );
    assert!(sim.at(APPS, "us-west-2").unwrap().calls().is_empty());
    // Made again once STS answers: launched.
    sim.throttle_assume_role(0);
    let again = answer(&f, launch(APPS, "us-west-2", &WEST)).await.unwrap();
    assert_eq!(again["counts"]["launched"], 2, "{again}");
}

#[tokio::test]
async fn a_plan_reaching_a_region_not_enabled_is_checked_not_refused() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let far = format!("arn:aws:drs:eu-west-1:{APPS}:recovery-instance/{}", WEST[0]);
    let plan = json!({"action": "plan", "runId": RUN_ID, "steps": [
        {"name": "all", "recoveryInstanceIDs": [HOME_ID, far]}]});
    let checked = answer(&f, plan).await.unwrap();
    let groups = &checked["steps"][0]["groups"];
    assert_eq!(groups.as_array().unwrap().len(), 2, "{checked}");
    assert_eq!(groups[1]["target"]["region"], "eu-west-1");
    assert_eq!(
        groups[1]["unreachable"]["code"], "DrsAccessDenied",
        "{checked}"
    );
    assert_eq!(groups[1]["recoveryInstanceIDs"], json!([WEST[0]]));
}

#[tokio::test]
async fn a_critical_instance_is_never_lost_between_places() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let west = format!("arn:aws:drs:us-west-2:{APPS}:recovery-instance/{}", WEST[0]);
    // A bare critical id in a step with no instance in the function's own place.
    let plan = json!({"action": "plan", "runId": RUN_ID, "steps": [
        {"name": "db", "recoveryInstanceIDs": [west], "critical": [WEST[0]]}]});
    let error = answer(&f, plan).await.unwrap_err();
    assert!(error.to_string().contains("name it by its ARN"), "{error}");
    // A tracking call's critical ARN of another place than its own.
    let east = format!("arn:aws:drs:us-east-1:{APPS}:recovery-instance/{}", EAST[0]);
    let track = json!({"action": "track", "runId": RUN_ID, "jobIDs": [], "final": true, "step": "db",
        "critical": [east], "target": {"account": APPS, "region": "us-west-2"}});
    let error = answer(&f, track).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not the account and region of this call"),
        "{error}"
    );
}

#[tokio::test]
async fn a_plan_reaching_more_places_than_its_summary_holds_is_refused() {
    let sim = start(world()).await;
    let f = failback(&sim, SETTINGS).await;
    let regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "ap-south-1",
        "sa-east-1",
    ];
    let steps: Vec<Value> = (0..11)
        .map(|s| {
            let targets: Vec<Value> = regions.iter().map(|r| json!({"account": APPS, "region": r})).collect();
            json!({"name": format!("s{s}"), "selector": {"tags": {"Tier": "x"}, "targets": targets}})
        })
        .collect();
    let error = answer(
        &f,
        json!({"action": "plan", "runId": RUN_ID, "steps": steps}),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("at most 100"), "{error}");
}
