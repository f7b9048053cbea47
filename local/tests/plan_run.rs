//! The sample plan (`events/plan-three-steps.json`: databases with a critical primary and a wait →
//! app servers by tag selector, one failure tolerated, then an approval → web by source server)
//! run end to end by `plan::run_plan` — the plan semantics in-process, through the real function
//! and SDK clients against the simulator, on paused time — as `drs-failback-local` runs it.

mod common;

use common::settings;
use drs_failback::drs::Target;
use std::time::Duration;

use drs_failback::config::Config;
use drs_failback::events::{DETAIL_TYPE_JOB_COMPLETED, DETAIL_TYPE_STEP_FINISHED};
use drs_failback::finish::answer::FinishAnswer;
use drs_failback::plan::StepPlan;
use drs_failback_local::arc::Progress;
use drs_failback_local::fleet::demo_fleet;
use drs_failback_local::plan::{
    Approval, PlanEnd, PlanFinished, PlanHooks, StepReport, StepStatus, run_plan,
};
use drs_sim::{FailbackState, Fleet, LaunchResult, Lifecycle, SimConfig, SimHandle, Simulator};
use serde_json::Value;
use tokio::time::Instant;

const TEN_MINUTES: Lifecycle = Lifecycle {
    pending: Duration::from_secs(60),
    started: Duration::from_secs(540),
};
const CRITICAL_DATABASE: &str = "i-0e1b2c3d4e5f60001";

fn sample() -> Value {
    common::sample("plan-three-steps.json")
}

async fn sim(fleet: Fleet) -> SimHandle {
    Simulator::start(SimConfig {
        fleet,
        lifecycle: TEN_MINUTES,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// Records what a person would see, and answers approvals as told.
struct Seen<'a> {
    answer: Approval,
    asked: Vec<(String, String)>,
    started: Vec<(usize, String, usize)>,
    progress: usize,
    ended: Vec<(String, StepStatus)>,
    /// Done as each step starts (after the plan was accepted).
    on_start: Option<Box<dyn FnMut(usize) + 'a>>,
}

impl Seen<'_> {
    fn answering(answer: Approval) -> Self {
        Seen {
            answer,
            asked: Vec::new(),
            started: Vec::new(),
            progress: 0,
            ended: Vec::new(),
            on_start: None,
        }
    }
}

impl PlanHooks for Seen<'_> {
    fn step_started(&mut self, index: usize, step: &StepPlan, _: usize) {
        if let Some(on_start) = &mut self.on_start {
            on_start(index);
        }
        self.started
            .push((index, step.name.clone(), step.instances));
    }
    fn progress(&mut self, _: usize, _: usize, _: Option<&Target>, _: &Progress) {
        self.progress += 1;
    }
    fn step_ended(&mut self, _: usize, report: &StepReport) {
        self.ended.push((report.name.clone(), report.status));
    }
    fn approve(&mut self, done: &StepReport, next: &StepPlan) -> Approval {
        self.asked.push((done.name.clone(), next.name.clone()));
        self.answer.clone()
    }
    fn approve_finishing(&mut self, listed: &FinishAnswer) -> Approval {
        self.asked
            .push(("finishing".into(), listed.finishing.name().into()));
        self.answer.clone()
    }
}

async fn run(sim: &SimHandle, seen: &mut Seen<'_>) -> PlanFinished {
    let failback = drs_failback::aws::failback(
        Config::from_pairs(&[]).unwrap(),
        &sim.in_process_sdk_config().await,
    );
    match run_plan(&failback, sample(), &settings(), 1.0, seen)
        .await
        .unwrap()
    {
        PlanEnd::Finished(finished) => *finished,
        PlanEnd::DryRun(_) => panic!("not a dry run"),
    }
}

fn statuses(plan: &PlanFinished) -> Vec<(&str, StepStatus, Option<&str>)> {
    plan.steps
        .iter()
        .map(|s| (s.name.as_str(), s.status, s.reason.as_deref()))
        .collect()
}

fn delivered(sim: &SimHandle, detail_type: &str) -> Vec<Value> {
    sim.delivered_events()
        .into_iter()
        .filter(|e| e.detail_type == detail_type)
        .map(|e| e.detail)
        .collect()
}

fn launched(sim: &SimHandle) -> Vec<String> {
    sim.jobs()
        .into_iter()
        .flat_map(|j| j.recovery_instance_ids)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn every_step_in_order_and_every_instance_succeeded() {
    let fleet = demo_fleet(&sample(), FailbackState::FailbackReadyForLaunch);
    assert_eq!(
        fleet.len(),
        7,
        "2 databases, 3 tagged app servers, 2 web servers"
    );
    let sim = sim(fleet).await;
    let mut seen = Seen::answering(Approval::Given);
    let started = Instant::now();
    let plan = run(&sim, &mut seen).await;
    assert!(plan.complete, "{:?}", statuses(&plan));
    assert_eq!(
        statuses(&plan),
        [
            ("databases", StepStatus::Finished, None),
            ("app-servers", StepStatus::Finished, None),
            ("web", StepStatus::Finished, None)
        ]
    );
    let out = plan.output();
    assert_eq!(out["counts"]["succeeded"], 7);
    assert_eq!(out["counts"]["failed"], 0);
    assert_eq!(out["halted"], Value::Null);
    assert_eq!(
        seen.started,
        [
            (0, "databases".into(), 2),
            (1, "app-servers".into(), 3),
            (2, "web".into(), 2)
        ]
    );
    assert_eq!(seen.asked, [("app-servers".into(), "web".into())]);
    assert!(seen.progress > 0);
    // Strictly in order: each step's jobs start after the step before ended (jobs take ten
    // minutes; databases wait five more).
    let jobs = sim.jobs();
    assert_eq!(jobs.len(), 3);
    assert!(jobs[1].created_at_ms >= jobs[0].created_at_ms + 600_000 + 300_000);
    assert!(jobs[2].created_at_ms >= jobs[1].created_at_ms + 600_000);
    assert!(started.elapsed() >= Duration::from_secs(3 * 600 + 300));
    let steps: Vec<Value> = delivered(&sim, DETAIL_TYPE_STEP_FINISHED)
        .into_iter()
        .map(|d| d["step"].clone())
        .collect();
    assert_eq!(steps, ["databases", "app-servers", "web"]);
    assert_eq!(delivered(&sim, DETAIL_TYPE_JOB_COMPLETED).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_critical_database_that_fails_stops_the_plan_before_step_two() {
    let mut fleet = demo_fleet(&sample(), FailbackState::FailbackReadyForLaunch);
    fleet.set_failure(CRITICAL_DATABASE, "CONVERSION_FAIL");
    let sim = sim(fleet).await;
    let mut seen = Seen::answering(Approval::Given);
    let plan = run(&sim, &mut seen).await;
    assert!(!plan.complete);
    assert_eq!(
        statuses(&plan),
        [
            ("databases", StepStatus::Halted, Some("CRITICAL_FAILED")),
            ("app-servers", StepStatus::NotStarted, Some("PLAN_HALTED")),
            ("web", StepStatus::NotStarted, Some("PLAN_HALTED"))
        ]
    );
    assert_eq!(
        plan.halted,
        Some(("databases".into(), "CRITICAL_FAILED".into()))
    );
    let databases = &plan.steps[0].groups[0].finished.answer;
    let verdict = databases.verdict.as_ref().unwrap();
    assert_eq!(verdict.critical_failed, [CRITICAL_DATABASE]);
    assert_eq!(
        launched(&sim),
        ["i-0e1b2c3d4e5f60001", "i-0e1b2c3d4e5f60002"],
        "nothing of step two launched"
    );
    assert!(seen.asked.is_empty());
    assert_eq!(seen.started.len(), 1);

    // The operator fixes the cause; the plan runs again with the same run id and goes on from
    // where it stopped: the database that came back is not launched again.
    sim.set_launch_result(CRITICAL_DATABASE, LaunchResult::Launched);
    sim.set_instance_state(CRITICAL_DATABASE, FailbackState::FailbackReadyForLaunch);
    let mut seen = Seen::answering(Approval::Given);
    let resumed = run(&sim, &mut seen).await;
    assert!(resumed.complete, "{:?}", statuses(&resumed));
    let launches: Vec<Vec<String>> = sim
        .jobs()
        .into_iter()
        .map(|j| j.recovery_instance_ids)
        .collect();
    assert_eq!(launches.len(), 4, "{launches:?}");
    assert_eq!(
        launches[1],
        [CRITICAL_DATABASE],
        "only the failed one again"
    );
    let counts = &resumed.output()["counts"];
    assert_eq!(counts["succeeded"], 7);
    assert_eq!(
        counts["failed"], 0,
        "each instance counted by its latest attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn one_app_server_failing_is_tolerated_two_are_not() {
    let mut fleet = demo_fleet(&sample(), FailbackState::FailbackReadyForLaunch);
    let app: Vec<String> = fleet
        .instances()
        .iter()
        .filter(|i| i.tags.get("Tier").is_some_and(|t| t == "app"))
        .map(|i| i.recovery_instance_id.clone())
        .collect();
    assert_eq!(app.len(), 3);
    fleet.set_failure(&app[0], "LAUNCH_FAILED");
    let sim1 = sim(fleet.clone()).await;
    let plan = run(&sim1, &mut Seen::answering(Approval::Given)).await;
    assert_eq!(plan.steps[1].status, StepStatus::Finished);
    assert!(plan.complete, "a failed instance has its final result");
    assert_eq!(plan.output()["counts"]["failed"], 1);

    fleet.set_failure(&app[1], "LAUNCH_FAILED");
    let sim2 = sim(fleet).await;
    let plan = run(&sim2, &mut Seen::answering(Approval::Given)).await;
    assert_eq!(
        statuses(&plan)[1..],
        [
            ("app-servers", StepStatus::Halted, Some("TOO_MANY_FAILED")),
            ("web", StepStatus::NotStarted, Some("PLAN_HALTED"))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_or_unanswered_approval_stops_the_plan_before_the_web_tier() {
    for (answer, reason) in [
        (
            Approval::Refused("change board said no".into()),
            "APPROVAL_REFUSED",
        ),
        (Approval::TimedOut, "APPROVAL_TIMED_OUT"),
    ] {
        let fleet = demo_fleet(&sample(), FailbackState::FailbackReadyForLaunch);
        let sim = sim(fleet).await;
        let mut seen = Seen::answering(answer.clone());
        let plan = run(&sim, &mut seen).await;
        assert_eq!(
            statuses(&plan),
            [
                ("databases", StepStatus::Finished, None),
                ("app-servers", StepStatus::Halted, Some(reason)),
                ("web", StepStatus::NotStarted, Some("PLAN_HALTED"))
            ]
        );
        assert_eq!(seen.asked.len(), 1);
        assert_eq!(launched(&sim).len(), 5, "web not launched");
        if let Approval::Refused(why) = answer {
            assert_eq!(plan.steps[1].error.as_deref(), Some(why.as_str()));
        }
    }
}

/// A web server tagged Tier=app after the plan was accepted: the app servers' selector matches
/// it, but the web step names its source server — it stays there, launched once, counted once.
#[tokio::test(start_paused = true)]
async fn an_instance_tagged_after_acceptance_stays_in_the_step_that_names_it() {
    let fleet = demo_fleet(&sample(), FailbackState::FailbackReadyForLaunch);
    let source = sample()["steps"][2]["sourceServerIDs"][0].clone();
    let web = fleet
        .instances()
        .iter()
        .find(|i| source == i.source_server_id.as_str())
        .map(|i| i.recovery_instance_id.clone())
        .expect("the demo fleet's first web server");
    let sim = sim(fleet).await;
    let mut seen = Seen::answering(Approval::Given);
    seen.on_start = Some(Box::new(|index| {
        if index == 0 {
            assert!(sim.set_tags(&web, &[("Tier", "app")]));
        }
    }));
    let plan = run(&sim, &mut seen).await;
    assert!(plan.complete, "{:?}", statuses(&plan));
    let out = plan.output();
    assert_eq!(out["counts"]["succeeded"], 7, "each instance once");
    let app = &plan.steps[1].groups[0].finished;
    assert_eq!(
        app.answer.finished.as_ref().unwrap().succeeded,
        3,
        "the app servers alone"
    );
    let job_of_web: Vec<_> = sim
        .jobs()
        .into_iter()
        .filter(|j| j.recovery_instance_ids.contains(&web))
        .map(|j| j.tags.get("drs-failback:step").cloned())
        .collect();
    assert_eq!(
        job_of_web,
        [Some("web".to_owned())],
        "launched once, by its own step"
    );
    assert_eq!(delivered(&sim, DETAIL_TYPE_JOB_COMPLETED).len(), 3);
    let app_finished = delivered(&sim, DETAIL_TYPE_STEP_FINISHED)
        .into_iter()
        .find(|d| d["step"] == "app-servers")
        .unwrap();
    assert_eq!(
        app_finished["heldByOtherSteps"],
        serde_json::json!([{"step": "web", "count": 1, "recoveryInstanceIDs": [web]}]),
        "the app servers' Step Finished names the instance the web step holds"
    );
}

/// The app servers untagged after the plan was accepted: their step's selector matches nothing,
/// and the function refuses that launch (InvalidFailbackRequest). As the state machine, the
/// refusal is not sent again: the step sums up and the plan halts LAUNCH_ERROR.
#[tokio::test(start_paused = true)]
async fn a_later_steps_refused_launch_halts_the_plan() {
    let fleet = demo_fleet(&sample(), FailbackState::FailbackReadyForLaunch);
    let app: Vec<String> = fleet
        .instances()
        .iter()
        .filter(|i| i.tags.get("Tier").map(String::as_str) == Some("app"))
        .map(|i| i.recovery_instance_id.clone())
        .collect();
    assert!(!app.is_empty());
    let sim = sim(fleet).await;
    let mut seen = Seen::answering(Approval::Given);
    seen.on_start = Some(Box::new(|index| {
        if index == 1 {
            for id in &app {
                assert!(sim.set_tags(id, &[("Tier", "retired")]));
            }
        }
    }));
    let plan = run(&sim, &mut seen).await;
    assert_eq!(
        statuses(&plan),
        [
            ("databases", StepStatus::Finished, None),
            ("app-servers", StepStatus::Halted, Some("LAUNCH_ERROR")),
            ("web", StepStatus::NotStarted, Some("PLAN_HALTED"))
        ]
    );
    let launches = sim
        .calls_since(0)
        .into_iter()
        .filter(|c| c.operation == drs_sim::Operation::StartFailbackLaunch)
        .count();
    assert_eq!(launches, 1, "only the databases' launch reached DRS");
}

/// The sample plan with finishings (`events/plan-finish.json`), run as `drs-failback-local` runs
/// it on a stack that allows both: the databases disconnected right after their step, an app
/// server still replicating waited for, one failing; once approved, what the run brought back is
/// terminated and followed to the end, the failed one kept; the summaries carry the finishings.
#[tokio::test(start_paused = true)]
async fn a_plan_that_ends_with_a_finish_terminates_what_came_back() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/plan-finish.json");
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut fleet = demo_fleet(&sample, FailbackState::FailbackReadyForLaunch);
    let failing = "i-0f1b2c3d4e5f60004";
    let replicating = "i-0f1b2c3d4e5f60005";
    fleet.set_launch_result(failing, LaunchResult::Failed);
    fleet.set_replication(
        replicating,
        drs_sim::Replication {
            total_bytes: 10 << 30,
            bytes_per_second: 50 << 20,
            connects_after_seconds: 0,
            never_connects: false,
            stalls_after_seconds: None,
            disconnects_after_seconds: None,
            initiating_seconds: None,
        },
    );
    let sim = sim(fleet).await;
    let failback = drs_failback::aws::failback(
        Config::from_pairs(&[("FINISHING_ACTIONS", "disconnect-and-terminate")]).unwrap(),
        &sim.in_process_sdk_config().await,
    );
    let mut seen = Seen::answering(Approval::Given);
    let PlanEnd::Finished(finished) = run_plan(&failback, sample, &settings(), 1.0, &mut seen)
        .await
        .unwrap()
    else {
        panic!("not a dry run")
    };
    let output = finished.output();
    assert_eq!(output["complete"], true, "{output}");
    assert_eq!(
        seen.asked,
        [
            ("finishing".to_owned(), "disconnect".to_owned()),
            ("finishing".to_owned(), "terminate".to_owned())
        ]
    );
    let databases = &output["steps"][0]["finish"];
    assert_eq!(databases["status"], "finished", "{databases}");
    assert_eq!(databases["counts"]["done"], 2);
    let finish = &output["finish"];
    assert_eq!(finish["status"], "finished", "{finish}");
    assert_eq!(finish["counts"]["done"], 4);
    assert_eq!(finish["counts"]["notEligible"], 1);
    let listed: Vec<String> = sim
        .instances()
        .into_iter()
        .map(|i| i.recovery_instance_id)
        .collect();
    assert_eq!(listed, [failing], "only the failed instance is left");
}
