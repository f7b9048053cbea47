//! Failback plans through the real handler and SDK clients against the simulator: the plan
//! checked up front (every refusal names the step and the field, and nothing launches), its dry
//! run, tag selectors resolved when a step starts, a step's verdict from its last tracking call,
//! and a halted plan resumed with the same run id.

mod support;

use std::time::Duration;

use drs_failback::events::{DETAIL_TYPE_JOB_COMPLETED, DETAIL_TYPE_STEP_FINISHED};
use drs_failback::launch::answer::LaunchAnswer;
use drs_failback::request::MAX_PLAN_STEPS;
use drs_sim::{FailbackState, Fleet, LaunchResult, Lifecycle, Operation, SimConfig, SimHandle};
use serde_json::{Value, json};
use support::*;
use tokio::time::sleep;

/// Jobs take 10 s.
const JOBS: Lifecycle = Lifecycle {
    pending: Duration::from_secs(2),
    started: Duration::from_secs(8),
};

async fn sim_of(fleet: Fleet) -> SimHandle {
    unkind_sim_of(fleet, |_| {}).await
}

async fn unkind_sim_of(fleet: Fleet, shape: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig {
        fleet,
        lifecycle: JOBS,
        ..SimConfig::default()
    };
    shape(&mut config);
    start(config).await
}

/// Ten ready instances: 0-3 tagged Tier=db, 4-7 Tier=app, 8-9 untagged.
fn tiered() -> Fleet {
    let mut fleet = ready(10);
    for (n, id) in fleet.ids().iter().enumerate() {
        match n {
            0..=3 => fleet.set_tags(id, &[("Tier", "db"), ("Site", "paris")]),
            4..=7 => fleet.set_tags(id, &[("Tier", "app")]),
            _ => true,
        };
    }
    fleet
}

fn plan(steps: Value) -> Value {
    json!({"action": "plan", "runId": RUN_ID, "tags": {"Change": "CHG-1"}, "steps": steps})
}

#[tokio::test(start_paused = true)]
async fn a_plan_is_refused_up_front_naming_the_step_and_the_field() {
    let fleet = tiered();
    let ids = fleet.ids();
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let source_of_0 = sim.instances()[0].source_server_id.clone();
    let many_steps: Vec<Value> = (0..=MAX_PLAN_STEPS)
        .map(|n| json!({"name": format!("s{n}"), "recoveryInstanceIDs": [ids[0]]}))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (plan(json!([])), "steps is empty"),
        (plan(json!({})), "steps must be an array"),
        (
            plan(json!([{"name": "db", "recoveryInstanceIDs": [ids[0]], "critcal": true}])),
            "steps[0] (db): unknown field \"critcal\"",
        ),
        (
            plan(json!([{"recoveryInstanceIDs": [ids[0]]}])),
            "steps[0]: name is missing",
        ),
        (
            plan(json!([{"name": "db"}])),
            "steps[0] (db): the step lists no instances",
        ),
        (
            plan(json!([{"name": "db", "recoveryInstanceIDs": []}])),
            "steps[0] (db): the step lists no instances",
        ),
        (
            plan(json!([{"name": "db", "recoveryInstanceIDs": [ids[0], "i-typo"]}])),
            "steps[0] (db): recoveryInstanceIDs[1] \"i-typo\" is not a well-formed id",
        ),
        (
            plan(json!([
                {"name": "db", "recoveryInstanceIDs": [ids[0]]},
                {"name": "db", "recoveryInstanceIDs": [ids[1]]}
            ])),
            "steps[0] and steps[1] are both named \"db\"",
        ),
        (
            plan(json!([
                {"name": "db", "recoveryInstanceIDs": [ids[0]]},
                {"name": "app", "recoveryInstanceIDs": [ids[1], ids[0]]}
            ])),
            "is in steps[0] (db) recoveryInstanceIDs and in steps[1] (app) recoveryInstanceIDs",
        ),
        // The same instance reached twice only once DRS is read: by its source server, by a tag.
        (
            plan(json!([
                {"name": "db", "recoveryInstanceIDs": [ids[0]]},
                {"name": "app", "sourceServerIDs": [source_of_0]}
            ])),
            "is in steps[0] (db) recoveryInstanceIDs and in steps[1] (app) sourceServerIDs",
        ),
        (
            plan(json!([
                {"name": "db", "selector": {"tags": {"Tier": "db"}}},
                {"name": "paris", "selector": {"tags": {"Site": "paris"}}}
            ])),
            "is in steps[0] (db) selector and in steps[1] (paris) selector",
        ),
        (
            plan(json!([{"name": "web", "selector": {"tags": {"Tier": "web"}}}])),
            "steps[0] (web): selector matches no recovery instance",
        ),
        (
            plan(json!([{"name": "db", "selector": {"tags": {}}}])),
            "steps[0] (db): selector.tags is empty",
        ),
        (
            plan(json!([{"name": "db", "recoveryInstanceIDs": ["i-0123456789abcdef0"]}])),
            "steps[0] (db): recoveryInstanceIDs[0] i-0123456789abcdef0 is not a recovery instance in this account",
        ),
        (
            plan(json!([{"name": "db", "recoveryInstanceIDs": [ids[0]], "critical": [ids[1]]}])),
            "steps[0] (db): critical[0]",
        ),
        (
            plan(
                json!([{"name": "db", "selector": {"tags": {"Tier": "db"}}, "critical": [ids[5]]}]),
            ),
            "steps[0] (db): critical[0]",
        ),
        (
            plan(json!([{"name": "db!", "recoveryInstanceIDs": [ids[0]]}])),
            "steps[0]: name must be 1-64 letters",
        ),
        (
            plan(json!([{"name": "db", "recoveryInstanceIDs": [ids[0]], "maxFailed": -1}])),
            "steps[0] (db): maxFailed must be a whole number",
        ),
        (
            plan(json!([
                {"name": "db", "recoveryInstanceIDs": [ids[0]], "waitAfterSeconds": 86401},
                {"name": "app", "recoveryInstanceIDs": [ids[1]]}
            ])),
            "steps[0] (db): waitAfterSeconds must be a whole number of seconds from 0 to 86400",
        ),
        (
            plan(json!([{"name": "db", "recoveryInstanceIDs": [ids[0]], "approval": true}])),
            "approval is set on the last step",
        ),
        (
            plan(Value::Array(many_steps)),
            "steps has 51 entries; at most 50",
        ),
        (
            json!({"action": "plan", "runId": RUN_ID, "recoveryInstanceIDs": [ids[0]],
                "steps": [{"name": "db", "recoveryInstanceIDs": [ids[1]]}]}),
            "a plan names its instances inside its steps",
        ),
    ];
    for (payload, says) in cases {
        let error = fb
            .handle_plan(payload.clone(), in_minutes(5))
            .await
            .expect_err(&payload.to_string());
        assert_eq!(error.error_type(), "InvalidFailbackRequest", "{says}");
        assert!(error.to_string().contains(says), "{says:?} not in {error}");
    }
    let too_big = drs_failback::aws::failback(
        config(&[("MAX_REQUEST_INSTANCES", "3")]),
        &sim.in_process_sdk_config().await,
    );
    let error = too_big
        .handle_plan(
            plan(json!([
                {"name": "db", "recoveryInstanceIDs": [ids[0], ids[1]]},
                {"name": "app", "recoveryInstanceIDs": [ids[2], ids[3]]}
            ])),
            in_minutes(5),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the plan's steps have 4 instances, more than MAX_REQUEST_INSTANCES (3)"),
        "{error}"
    );
    assert!(launches(&sim).is_empty(), "nothing launched");
    assert!(sim.delivered_events().is_empty(), "nothing announced");
}

#[tokio::test(start_paused = true)]
async fn a_plan_is_answered_with_its_steps_and_a_plain_request_is_one_step() {
    let fleet = tiered();
    let ids = fleet.ids();
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb
        .handle_plan(
            plan(json!([
                {"name": "db", "recoveryInstanceIDs": [ids[0], ids[1]], "critical": true,
                 "waitAfterSeconds": 60, "approval": true},
                {"name": "app", "selector": {"tags": {"Tier": "app"}}, "maxFailed": 1}
            ])),
            in_minutes(5),
        )
        .await
        .unwrap();
    let out = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        out,
        json!({"runId": RUN_ID, "dryRun": false, "steps": [
            {"name": "db", "maxFailed": null, "waitAfterSeconds": 60, "approval": true,
             "instances": 2, "waitForReadySeconds": 0,
             "groups": [{"recoveryInstanceIDs": [ids[0], ids[1]], "critical": true, "instances": 2}]},
            {"name": "app", "maxFailed": 1, "waitAfterSeconds": 0, "approval": false,
             "instances": 4, "waitForReadySeconds": 0,
             "groups": [{"selector": {"tags": {"Tier": "app"}}, "critical": false, "instances": 4}]}
        ]})
    );
    // A plain request: one step named failback, its ids as given (a malformed one included, for
    // its launch to reject), and no DRS read.
    let before = sim.calls().len();
    let plain = fb
        .handle_plan(
            json!({"action": "plan", "runId": RUN_ID, "recoveryInstanceIDs": [ids[0], "bad"]}),
            in_minutes(5),
        )
        .await
        .unwrap();
    let out = serde_json::to_value(&plain).unwrap();
    assert_eq!(out["steps"][0]["name"], "failback");
    assert_eq!(
        out["steps"][0]["groups"][0]["recoveryInstanceIDs"],
        json!([ids[0], "bad"])
    );
    assert_eq!(out["steps"][0]["instances"], 2);
    assert_eq!(sim.calls().len(), before);
    assert!(launches(&sim).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_resolves_every_selector_and_reports_each_steps_launch() {
    let mut fleet = tiered();
    let ids = fleet.ids();
    fleet.set_state(&ids[5], FailbackState::FailbackNotStarted);
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[("MAX_INSTANCES_PER_JOB", "2")], 1.0).await;
    let mut payload = plan(json!([
        {"name": "db", "selector": {"tags": {"Tier": "db"}}, "critical": true},
        {"name": "app", "selector": {"tags": {"Tier": "app"}}, "maxFailed": 1}
    ]));
    payload["dryRun"] = json!(true);
    let answer = fb.handle_plan(payload, in_minutes(5)).await.unwrap();
    let out = serde_json::to_value(&answer).unwrap();
    assert_eq!(out["dryRun"], true);
    assert_eq!(out["steps"][0]["instances"], 4);
    assert_eq!(
        out["steps"][0]["groups"][0]["plannedJobSizes"],
        json!([2, 2])
    );
    assert_eq!(
        out["steps"][1]["groups"][0]["plannedJobSizes"],
        json!([2, 1])
    );
    assert_eq!(out["steps"][1]["counts"]["skipped"], 1);
    let skipped = &out["steps"][1]["groups"][0]["notLaunched"];
    assert!(
        skipped
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["outcome"] == "skipped"
                && g["reason"] == "FAILBACK_NOT_STARTED"
                && g["recoveryInstanceIDs"] == json!([ids[5]])),
        "{skipped}"
    );
    assert!(launches(&sim).is_empty(), "a dry run launches nothing");
    assert!(sim.delivered_events().is_empty(), "and announces nothing");
}

/// A rehearsal: the stored plan's text, read, dry-run and judged by the function. Instances not
/// due yet are no finding, an instance DRS no longer knows is; a plan naming a deleted instance,
/// or one that is not JSON, is refused (the rehearsal counts a refusal as failed itself).
#[tokio::test(start_paused = true)]
async fn a_rehearsal_dry_runs_the_stored_plan_and_judges_it() {
    use drs_failback::handler::dispatch::Reply;
    let mut fleet = tiered();
    let ids = fleet.ids();
    fleet.set_state(&ids[5], FailbackState::FailbackNotStarted);
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let rehearse = |stored: Value| {
        let fb = &fb;
        async move {
            let call = json!({"action": "rehearsal", "runId": "rehearsal-2026-12-04T060000",
                "plan": stored.to_string()});
            match fb.dispatch(call, in_minutes(5)).await {
                Ok(Reply::Rehearsal(answer)) => Ok(answer),
                Ok(other) => panic!("not a rehearsal's answer: {other:?}"),
                Err(error) => Err(error),
            }
        }
    };
    let ready = rehearse(json!({"runId": "wave-1", "steps": [
        {"name": "db", "selector": {"tags": {"Tier": "db"}}},
        {"name": "app", "selector": {"tags": {"Tier": "app"}}}]}))
    .await
    .unwrap();
    assert!(ready.ready, "{ready:?}");
    assert_eq!(
        (ready.run_id.as_str(), ready.steps, ready.instances),
        ("rehearsal-2026-12-04T060000", 2, 8)
    );

    let gone = "i-0fffffffffffffff0";
    let found = rehearse(json!({"recoveryInstanceIDs": [ids[0], gone]}))
        .await
        .unwrap();
    assert!(!found.ready);
    assert_eq!(
        serde_json::to_value(&found.findings).unwrap(),
        json!([{"step": "failback", "problem": "INSTANCES_GONE", "reason": "NOT_FOUND",
            "instances": 1, "recoveryInstanceIDs": [gone]}])
    );

    let named = rehearse(json!({"steps": [{"name": "db", "recoveryInstanceIDs": [ids[0], gone]}]}))
        .await
        .unwrap_err();
    assert_eq!(named.error_type(), "InvalidFailbackRequest", "{named}");
    let call = json!({"action": "rehearsal", "runId": "r-1", "plan": "{\"steps\": [}"});
    let garbled = fb.dispatch(call, in_minutes(5)).await.unwrap_err();
    assert!(
        garbled.to_string().contains("plan is not JSON"),
        "{garbled}"
    );
    assert!(launches(&sim).is_empty(), "a rehearsal launches nothing");
    assert!(sim.delivered_events().is_empty(), "and announces nothing");
}

/// A step's arc as the state machine runs it, in short: launch, wait for the jobs, the final
/// tracking call with the step's rules.
async fn run_step(
    fb: &SimFailback,
    launch: Value,
    critical: Value,
    max_failed: Value,
) -> (LaunchAnswer, Value) {
    let answer = fb.handle(launch.clone(), in_minutes(5)).await.unwrap();
    sleep(Duration::from_secs(11)).await;
    let jobs: Vec<&str> = answer.jobs.iter().map(|j| j.job_id.as_str()).collect();
    let not_launched = serde_json::to_value(&answer.not_launched).unwrap();
    let held = serde_json::to_value(&answer.held_by_other_steps).unwrap();
    let tracked = fb
        .handle_track(
            json!({"action": "track", "runId": RUN_ID, "step": launch["step"], "jobIDs": jobs,
                "final": true, "notLaunched": not_launched, "critical": critical,
                "maxFailed": max_failed, "heldByOtherSteps": held}),
            in_minutes(5),
        )
        .await
        .unwrap();
    (answer, serde_json::to_value(&tracked).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_selector_step_launches_what_its_tags_match_when_it_starts() {
    let fleet = tiered();
    let ids = fleet.ids();
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    // Tagged after the plan was checked: the step resolves its selector when it starts.
    sim.set_tags(&ids[8], &[("Tier", "app")]);
    let (answer, tracked) = run_step(
        &fb,
        json!({"runId": RUN_ID, "step": "app", "selector": {"tags": {"Tier": "app"}},
            "tags": {"Change": "CHG-1"}}),
        json!(false),
        Value::Null,
    )
    .await;
    assert_eq!(answer.step.as_deref(), Some("app"));
    let mut launched: Vec<String> = launched_ids(&sim);
    launched.sort();
    let mut expected = vec![
        ids[4].clone(),
        ids[5].clone(),
        ids[6].clone(),
        ids[7].clone(),
        ids[8].clone(),
    ];
    expected.sort();
    assert_eq!(launched, expected);
    assert_eq!(tracked["verdict"]["halt"], false);
    assert_eq!(tracked["finished"]["succeeded"], 5);
    let error = fb
        .handle(
            json!({"runId": RUN_ID, "step": "web", "selector": {"tags": {"Tier": "web"}}}),
            in_minutes(5),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("selector matches no recovery instance"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_steps_last_call_gives_its_verdict_and_announces_the_step() {
    let mut fleet = tiered();
    let ids = fleet.ids();
    fleet.set_failure(&ids[1], "CONVERSION_FAIL");
    fleet.set_state(&ids[3], FailbackState::FailbackNotStarted);
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let step = |critical: Value, max_failed: Value| {
        let fb = &fb;
        let ids = ids.clone();
        async move {
            let launch = json!({"runId": RUN_ID, "step": "db",
                "recoveryInstanceIDs": [ids[0], ids[1], ids[2], ids[3]]});
            run_step(fb, launch, critical, max_failed).await.1
        }
    };
    // One failed (CONVERSION_FAIL) and one skipped (not ready): two did not come back.
    let cases = [
        (json!(false), Value::Null, false, Value::Null),
        (json!(false), json!(2), false, Value::Null),
        (json!(false), json!(1), true, json!("TOO_MANY_FAILED")),
        (json!([ids[0]]), Value::Null, false, Value::Null),
        (json!([ids[1]]), Value::Null, true, json!("CRITICAL_FAILED")),
        (json!([ids[3]]), json!(5), true, json!("CRITICAL_FAILED")),
        (json!(true), Value::Null, true, json!("CRITICAL_FAILED")),
    ];
    for (critical, max_failed, halt, reason) in cases {
        let tracked = step(critical.clone(), max_failed.clone()).await;
        let verdict = &tracked["verdict"];
        assert_eq!(verdict["halt"], halt, "{critical} {max_failed}: {verdict}");
        assert_eq!(verdict["reason"], reason, "{critical} {max_failed}");
        assert_eq!(verdict["failed"], 2);
        assert_eq!(tracked["step"], "db");
    }
    let finished = delivered_of(&sim, DETAIL_TYPE_STEP_FINISHED);
    assert_eq!(finished.len(), 7, "one per step's last call");
    let last = &finished[6];
    assert_eq!(last["step"], "db");
    assert_eq!(last["verdict"]["criticalFailed"], json!([ids[1], ids[3]]));
    assert_eq!(
        last["succeeded"][0]["recoveryInstanceIDs"],
        json!([ids[0], ids[2]])
    );
    assert_eq!(last["failed"][0]["reason"], "CONVERSION_FAIL");
    assert!(
        delivered_of(&sim, "Failback Run Finished").is_empty(),
        "a step is not the run"
    );
    let completed = delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED);
    assert!(
        completed.iter().all(|e| e["step"] == "db"),
        "jobs name their step"
    );
}

/// A halted step resent with the same run id, on a DRS that shows what it does plainly, one whose
/// `launchStatus` stays PENDING until the instance's state is final (so the first job's entry for
/// the instance launched again never says FAILED), and one whose completed jobs drop the
/// recovery instance ids.
#[tokio::test(start_paused = true)]
async fn a_halted_step_resumes_with_the_same_run_id_launching_only_what_did_not_come_back() {
    let shapes: [fn(&mut SimConfig); 3] = [
        |_| {},
        |c| c.launch_status_stays_pending = true,
        |c| c.completed_jobs_without_instance_ids = true,
    ];
    for (case, shape) in shapes.into_iter().enumerate() {
        resume_after_a_halt(case, shape, LaunchResult::Failed).await;
    }
    // The first attempt's job says LAUNCHED although the failback failed: only the instance's
    // state (which now names the second job) told, so the first job's entry must not wait for it.
    resume_after_a_halt(3, |_| {}, LaunchResult::LaunchedThenFailed).await;
}

async fn resume_after_a_halt(case: usize, shape: fn(&mut SimConfig), failure: LaunchResult) {
    let mut fleet = tiered();
    let ids = fleet.ids();
    fleet.set_failure(&ids[1], "CONVERSION_FAIL");
    fleet.set_launch_result(&ids[1], failure);
    let sim = unkind_sim_of(fleet, shape).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let launch = json!({"runId": RUN_ID, "step": "db", "tags": {"Change": "CHG-1"},
        "recoveryInstanceIDs": [ids[0], ids[1], ids[2]]});
    let (first, tracked) = run_step(&fb, launch.clone(), json!(true), Value::Null).await;
    assert_eq!(tracked["verdict"]["reason"], "CRITICAL_FAILED");
    assert_eq!(launches(&sim).len(), 1);

    // The operator fixes the cause: DRS shows the failed instance ready for launch again.
    sim.set_launch_result(&ids[1], LaunchResult::Launched);
    sim.set_instance_state(&ids[1], FailbackState::FailbackReadyForLaunch);
    // The same step, resent with the same run id (a new execution of the plan).
    let (again, tracked) = run_step(&fb, launch, json!(true), Value::Null).await;
    let calls = launches(&sim);
    assert_eq!(calls.len(), 2, "one more launch");
    assert_eq!(
        calls[1].recovery_instance_ids,
        [ids[1].clone()],
        "only the failed one"
    );
    assert_eq!(again.counts.launched, 3);
    assert_eq!(
        again.jobs[0].job_id, first.jobs[0].job_id,
        "the others stay in their job"
    );
    assert_eq!(tracked["verdict"]["halt"], false, "case {case}: {tracked}");
    assert_eq!(
        tracked["complete"], true,
        "case {case}: no job waits for ever"
    );
    assert_eq!(tracked["finished"]["succeeded"], 3);
    assert_eq!(
        tracked["finished"]["failed"], 0,
        "case {case}: each instance counted once, by its latest attempt"
    );
    let finished = delivered_of(&sim, DETAIL_TYPE_STEP_FINISHED);
    assert_eq!(
        finished[1]["succeeded"][0]["recoveryInstanceIDs"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(
        finished[1]["failed"].as_array().unwrap().is_empty(),
        "{}",
        finished[1]
    );
    // The first job's answer says why its attempt ended.
    let first_job = tracked["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["jobID"] == first.jobs[0].job_id.as_str())
        .unwrap();
    let retried = first_job["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["recoveryInstanceID"] == ids[1].as_str())
        .unwrap();
    assert_eq!(retried["result"], "failed");
    assert_eq!(retried["reason"], "CONVERSION_FAIL");
    assert_eq!(
        calls_of(&sim, Operation::StartFailbackLaunch).len(),
        2,
        "nothing launched twice"
    );
}

#[tokio::test(start_paused = true)]
async fn what_a_plan_reaches_through_drs_is_checked_as_what_it_names() {
    let mut fleet = tiered();
    let ids = fleet.ids();
    fleet.set_state(&ids[9], FailbackState::FailbackNotStarted);
    fleet.set_tags(&ids[9], &[("aws:cloudformation:stack-name", "web")]);
    let sim = sim_of(fleet).await;
    let source_of = |n: usize| sim.instances()[n].source_server_id.clone();
    let small = drs_failback::aws::failback(
        config(&[("MAX_REQUEST_INSTANCES", "3")]),
        &sim.in_process_sdk_config().await,
    );
    // A selector reaching more than a request may hold: refused up front, and at launch.
    let error = small
        .handle_plan(
            plan(json!([{"name": "app", "selector": {"tags": {"Tier": "app"}}}])),
            in_minutes(5),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("steps[0] (app): recoveryInstanceIDs and sourceServerIDs have 4 entries, more than MAX_REQUEST_INSTANCES (3)"),
        "{error}"
    );
    let error = small
        .handle(
            json!({"runId": RUN_ID, "step": "app", "selector": {"tags": {"Tier": "app"}}}),
            in_minutes(5),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("selector reaches 4 instances"),
        "{error}"
    );
    assert!(launches(&sim).is_empty());

    // A critical source server on a step that lists recovery instances, and a selector on an
    // AWS tag: both fine; the critical one is named by its recovery instance too.
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let answer = fb
        .handle_plan(
            plan(json!([
                {"name": "db", "recoveryInstanceIDs": [ids[0], ids[1]], "critical": [source_of(1)]},
                {"name": "web", "selector": {"tags": {"aws:cloudformation:stack-name": "web"}},
                 "critical": [source_of(9)]}
            ])),
            in_minutes(5),
        )
        .await
        .unwrap();
    let out = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        out["steps"][0]["groups"][0]["critical"],
        json!([source_of(1), ids[1]])
    );
    let critical = out["steps"][1]["groups"][0]["critical"].clone();
    assert_eq!(critical, json!([source_of(9), ids[9]]));
    // The web server is not ready: skipped, so it did not come back — a critical failure, though
    // it was named by its source server and the skip names its recovery instance.
    let (_, tracked) = run_step(
        &fb,
        json!({"runId": RUN_ID, "step": "web", "selector": out["steps"][1]["groups"][0]["selector"]}),
        critical,
        Value::Null,
    )
    .await;
    assert_eq!(tracked["verdict"]["reason"], "CRITICAL_FAILED", "{tracked}");
    assert_eq!(tracked["verdict"]["criticalFailed"], json!([ids[9]]));
}

#[tokio::test(start_paused = true)]
async fn a_steps_rules_need_a_step() {
    let sim = sim_of(ready(1)).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    for rule in [json!({"critical": true}), json!({"maxFailed": 1})] {
        let mut request = json!({"action": "track", "runId": RUN_ID, "jobIDs": [], "final": true});
        request
            .as_object_mut()
            .unwrap()
            .extend(rule.as_object().unwrap().clone());
        let error = fb.handle_track(request, in_minutes(5)).await.unwrap_err();
        assert!(
            error.to_string().contains("applies to a plan step"),
            "{error}"
        );
    }
}

/// The plan answer is a Step Functions task output: under 256 KB for the largest plans, dry
/// runs included (a dry run does not repeat every id).
#[tokio::test(start_paused = true)]
async fn the_largest_plans_answer_under_256_kb() {
    let fleet = Fleet::generated(5000, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let sources: Vec<String> = sim
        .instances()
        .into_iter()
        .map(|i| i.source_server_id)
        .collect();
    let malformed: Vec<String> = (0..5000).map(|n| format!("{n:0>32}")).collect();
    let by_ids: Vec<Value> = ids
        .chunks(100)
        .enumerate()
        .map(|(n, chunk)| json!({"name": format!("wave-{n:02}"), "recoveryInstanceIDs": chunk}))
        .collect();
    let by_sources: Vec<Value> = sources
        .chunks(100)
        .enumerate()
        .map(|(n, chunk)| json!({"name": format!("wave-{n:02}"), "sourceServerIDs": chunk}))
        .collect();
    for (what, payload) in [
        ("50 steps of 100 ids", plan(Value::Array(by_ids.clone()))),
        (
            "50 steps of 100 source servers",
            plan(Value::Array(by_sources)),
        ),
        ("a dry run of 50 steps", {
            let mut p = plan(Value::Array(by_ids));
            p["dryRun"] = json!(true);
            p
        }),
        (
            "a plain dry run of 5000 malformed ids",
            json!({"action": "plan", "runId": RUN_ID, "dryRun": true, "recoveryInstanceIDs": malformed}),
        ),
    ] {
        let answer = fb.handle_plan(payload, in_minutes(14)).await.unwrap();
        let size = serde_json::to_vec(&answer).unwrap().len();
        assert!(size < 256 * 1024, "{what}: {size} bytes");
    }
}

/// A selector is resolved when its step starts: an instance an earlier step launched, tagged
/// since with this step's tags, stays the earlier step's — neither launched again nor tracked
/// (and announced) a second time under this step.
#[tokio::test(start_paused = true)]
async fn a_selector_leaves_an_earlier_steps_instance_to_that_step() {
    let fleet = tiered();
    let ids = fleet.ids();
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let (db, _) = run_step(
        &fb,
        json!({"runId": RUN_ID, "step": "db", "recoveryInstanceIDs": [ids[0], ids[1]]}),
        json!(false),
        Value::Null,
    )
    .await;
    sim.set_tags(&ids[0], &[("Tier", "app")]);
    let (app, tracked) = run_step(
        &fb,
        json!({"runId": RUN_ID, "step": "app", "selector": {"tags": {"Tier": "app"}}}),
        json!(false),
        Value::Null,
    )
    .await;
    assert!(
        !app.jobs.iter().any(|j| j.job_id == db.jobs[0].job_id),
        "the database's job is not this step's"
    );
    assert_eq!(app.counts.launched, 4);
    assert_eq!(app.requested, 4);
    let held = serde_json::to_value(&app.held_by_other_steps).unwrap();
    assert_eq!(
        held,
        json!([{"step": "db", "recoveryInstanceIDs": [ids[0]]}]),
        "the instance has an outcome naming the step that holds it"
    );
    assert_eq!(tracked["finished"]["succeeded"], 4);
    let completed = delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED);
    assert_eq!(
        completed.len(),
        2,
        "each job announced once, under its own step"
    );
    let job_tags: Vec<Option<String>> = sim
        .jobs()
        .iter()
        .map(|j| j.tags.get("drs-failback:step").cloned())
        .collect();
    assert_eq!(job_tags, [Some("db".into()), Some("app".into())]);
}

/// An instance tagged after the plan was accepted so that step 1's selector matches it, while
/// step 2 names it (or its source server) explicitly: the author's order stands — step 1 leaves
/// it to step 2 (an outcome naming step 2, not counted by step 1), step 2 launches it in its own
/// job, and every instance is counted once and every job announced once.
#[tokio::test(start_paused = true)]
async fn a_selector_leaves_a_later_steps_named_instance_to_that_step() {
    let fleet = tiered();
    let ids = fleet.ids();
    let source_9 = fleet.get(&ids[9]).unwrap().source_server_id.clone();
    let sim = sim_of(fleet).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let steps = json!([
        {"name": "app", "selector": {"tags": {"Tier": "app"}}},
        {"name": "late", "recoveryInstanceIDs": [ids[8]]},
        {"name": "by-source", "sourceServerIDs": [source_9]}
    ]);
    fb.handle_plan(plan(steps), in_minutes(5)).await.unwrap();
    sim.set_tags(&ids[8], &[("Tier", "app")]);
    sim.set_tags(&ids[9], &[("Tier", "app")]);
    // What the state machine passes a selector step: the other steps' explicit ids.
    let other_steps = json!([
        {"step": "late", "recoveryInstanceIDs": [ids[8]]},
        {"step": "by-source", "sourceServerIDs": [source_9]}
    ]);
    let (app, app_tracked) = run_step(
        &fb,
        json!({"runId": RUN_ID, "step": "app", "selector": {"tags": {"Tier": "app"}},
            "otherSteps": other_steps}),
        json!(false),
        Value::Null,
    )
    .await;
    assert_eq!((app.requested, app.counts.launched), (4, 4));
    assert_eq!(
        serde_json::to_value(&app.held_by_other_steps).unwrap(),
        json!([{"step": "late", "recoveryInstanceIDs": [ids[8]]},
               {"step": "by-source", "recoveryInstanceIDs": [ids[9]]}])
    );
    let (late, late_tracked) = run_step(
        &fb,
        json!({"runId": RUN_ID, "step": "late", "recoveryInstanceIDs": [ids[8]]}),
        json!(false),
        Value::Null,
    )
    .await;
    assert_eq!(late.counts.launched, 1);
    assert_ne!(late.jobs[0].job_id, app.jobs[0].job_id, "its own job");
    // The app step's Failback Step Finished names what the other steps hold, uncounted.
    let finished = delivered_of(&sim, DETAIL_TYPE_STEP_FINISHED);
    let app_finished = finished.iter().find(|d| d["step"] == "app").unwrap();
    assert_eq!(
        app_finished["heldByOtherSteps"],
        json!([{"step": "late", "count": 1, "recoveryInstanceIDs": [ids[8]]},
               {"step": "by-source", "count": 1, "recoveryInstanceIDs": [ids[9]]}])
    );
    assert_eq!(app_finished["counts"]["succeeded"], 4);
    let (by_source, _) = run_step(
        &fb,
        json!({"runId": RUN_ID, "step": "by-source", "sourceServerIDs": [source_9]}),
        json!(false),
        Value::Null,
    )
    .await;
    assert_eq!(by_source.counts.launched, 1);
    // Counted once: 4 + 1 + 1 launched, each in one step's results.
    assert_eq!(app_tracked["finished"]["succeeded"], 4);
    assert_eq!(late_tracked["finished"]["succeeded"], 1);
    let launched = launched_ids(&sim);
    assert_eq!(
        launched.len(),
        6,
        "each instance launched once: {launched:?}"
    );
    let completed = delivered_of(&sim, DETAIL_TYPE_JOB_COMPLETED);
    assert_eq!(completed.len(), 3, "each job announced once");
    let job_steps: Vec<Option<String>> = sim
        .jobs()
        .iter()
        .map(|j| j.tags.get("drs-failback:step").cloned())
        .collect();
    assert_eq!(
        job_steps,
        [
            Some("app".into()),
            Some("late".into()),
            Some("by-source".into())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn other_steps_is_checked() {
    let sim = sim_of(tiered()).await;
    let fb = failback_in_process(&sim, &[], 1.0).await;
    let cases = [
        (
            json!([{"step": "", "recoveryInstanceIDs": []}]),
            "otherSteps[0]: otherSteps[].step must be",
        ),
        (
            json!([{"step": "a", "recoveryInstanceIDs": ["bad"]}]),
            "otherSteps[0].recoveryInstanceIDs[0] \"bad\" is not a well-formed id",
        ),
        (
            json!([{"step": "a", "sourceServerIDs": ["i-12345678"]}]),
            "otherSteps[0].sourceServerIDs[0]",
        ),
        (
            json!([{"step": "a", "recoveryInstanceIds": []}]),
            "unknown field",
        ),
        (json!({"step": "a"}), "otherSteps"),
    ];
    for (other_steps, expected) in cases {
        let error = fb
            .handle(
                json!({"runId": RUN_ID, "step": "app", "selector": {"tags": {"Tier": "app"}},
                    "otherSteps": other_steps}),
                in_minutes(5),
            )
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{other_steps} -> {error}"
        );
    }
    assert!(launched_ids(&sim).is_empty());
}

/// A plan's finish is accepted only when the deployment allows it (the role holds only those
/// permissions), and comes back in the plan's answer for the state machine to carry out.
#[tokio::test(start_paused = true)]
async fn a_finish_the_deployment_does_not_allow_is_refused_up_front() {
    let fleet = tiered();
    let ids = fleet.ids();
    let sim = sim_of(fleet).await;
    let mut body = plan(json!([{"name": "db", "recoveryInstanceIDs": [ids[0]]}]));
    body["finish"] = json!("terminate");
    let closed = failback_in_process(&sim, &[], 1.0).await;
    let error = closed
        .handle_plan(body.clone(), in_minutes(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("finish \"terminate\" is not enabled for this deployment")
            && error.contains("FinishingActions terminate"),
        "{error}"
    );
    let only_disconnect =
        failback_in_process(&sim, &[("FINISHING_ACTIONS", "disconnect")], 1.0).await;
    assert!(
        only_disconnect
            .handle_plan(body.clone(), in_minutes(5))
            .await
            .is_err()
    );
    let open = failback_in_process(&sim, &[("FINISHING_ACTIONS", "terminate")], 1.0).await;
    let answer = open.handle_plan(body.clone(), in_minutes(5)).await.unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap()["finish"],
        "terminate"
    );
    body["finish"] = json!("delete");
    let error = open
        .handle_plan(body, in_minutes(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("finish must be \"disconnect\" or \"terminate\""),
        "{error}"
    );
    assert!(launches(&sim).is_empty());
}

/// A step's finish is checked like the plan's, naming the step; a plan may finish after at most
/// MAX_FINISHING_STEPS of its steps (each adds a list and an approval to its execution's history).
#[tokio::test(start_paused = true)]
async fn a_steps_finish_is_checked_and_finishing_steps_are_bounded() {
    let fleet = tiered();
    let ids = fleet.ids();
    let sim = sim_of(fleet).await;
    let closed = failback_in_process(&sim, &[], 1.0).await;
    let body =
        plan(json!([{"name": "db", "recoveryInstanceIDs": [ids[0]], "finish": "disconnect"}]));
    let error = closed
        .handle_plan(body.clone(), in_minutes(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("steps[0] (db): finish \"disconnect\" is not enabled"),
        "{error}"
    );
    let open = failback_in_process(&sim, &[("FINISHING_ACTIONS", "disconnect")], 1.0).await;
    let answer = open.handle_plan(body, in_minutes(5)).await.unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap()["steps"][0]["finish"],
        "disconnect"
    );
    let many: Vec<Value> = (0..5)
        .map(|k| json!({"name": format!("s{k}"), "recoveryInstanceIDs": [ids[k]], "finish": "disconnect"}))
        .collect();
    let error = open
        .handle_plan(plan(json!(many)), in_minutes(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("finish is set on 5 steps; at most 4"),
        "{error}"
    );
}
