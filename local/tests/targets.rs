//! The sample plan across accounts and regions (`events/plan-across-accounts.json`: databases in
//! 222233334444/us-east-1 with a critical primary → app servers by tag in two accounts of
//! us-west-2, one failure tolerated across both → web in the hub and in 333344445555/us-east-1)
//! run end to end by `plan::run_plan`, each step's accounts and regions at once as the plan
//! execution's fan-out runs them, through the real function and SDK clients (STS AssumeRole into
//! each target account) against drs-sim's accounts and regions, on paused time.

mod common;

use common::settings;
use std::time::Duration;

use drs_failback::config::Config;
use drs_failback::drs::Target;
use drs_failback::finish::answer::FinishAnswer;
use drs_failback::plan::StepPlan;
use drs_failback_local::arc::Progress;
use drs_failback_local::fleet::{demo_fleet, demo_targets};
use drs_failback_local::plan::{
    Approval, PlanEnd, PlanFinished, PlanHooks, StepReport, StepStatus, run_plan,
};
use drs_sim::{FailbackState, Fault, Lifecycle, Operation, Role, SimConfig, SimHandle, Simulator};
use serde_json::Value;

const APPS: &str = "222233334444";
const WEB: &str = "333344445555";
const CRITICAL_DATABASE: &str = "i-0d1b2c3d4e5f60001";

fn sample() -> Value {
    common::sample("plan-across-accounts.json")
}

/// The hub and every account and region the sample reaches, each holding its instances; the
/// accounts in `roles` grant the function the target role.
async fn world(roles: &[&str], failing: Option<&str>) -> SimHandle {
    let ready = FailbackState::FailbackReadyForLaunch;
    let home = SimConfig {
        fleet: demo_fleet(&sample(), ready),
        lifecycle: Lifecycle {
            pending: Duration::from_secs(60),
            started: Duration::from_secs(540),
        },
        ..SimConfig::default()
    };
    let targets = demo_targets(&sample(), ready)
        .into_iter()
        .map(|(target, mut fleet)| {
            if let Some(id) = failing {
                fleet.set_failure(id, "CONVERSION_FAIL");
            }
            SimConfig {
                account_id: target.account,
                region: target.region,
                fleet,
                ..home.target_base()
            }
        })
        .collect();
    let roles = roles
        .iter()
        .map(|account| Role {
            account_id: (*account).into(),
            name: "drs-failback-target".into(),
            external_id: None,
        })
        .collect();
    Simulator::start(SimConfig {
        targets,
        roles,
        ..home
    })
    .await
    .unwrap()
}

#[derive(Default)]
struct Seen {
    started: Vec<(String, Vec<Option<Target>>)>,
    lines: Vec<(usize, Option<Target>)>,
}

impl PlanHooks for Seen {
    fn step_started(&mut self, _: usize, step: &StepPlan, _: usize) {
        let places = step.groups.iter().map(|g| g.target.clone()).collect();
        self.started.push((step.name.clone(), places));
    }
    fn progress(&mut self, _: usize, group: usize, target: Option<&Target>, _: &Progress) {
        self.lines.push((group, target.cloned()));
    }
    fn step_ended(&mut self, _: usize, _: &StepReport) {}
    fn approve(&mut self, _: &StepReport, _: &StepPlan) -> Approval {
        Approval::Given
    }
    fn approve_finishing(&mut self, _: &FinishAnswer) -> Approval {
        Approval::Refused("not asked here".into())
    }
}

async fn run(sim: &SimHandle, seen: &mut Seen) -> PlanFinished {
    let config = Config::from_pairs(&[
        ("HOME_ACCOUNT_ID", "111122223333"),
        ("AWS_REGION", "us-east-1"),
    ])
    .unwrap();
    let failback = drs_failback::aws::failback(config, &sim.in_process_sdk_config().await);
    match run_plan(&failback, sample(), &settings(), 1.0, seen)
        .await
        .unwrap()
    {
        PlanEnd::Finished(finished) => *finished,
        PlanEnd::DryRun(_) => panic!("not a dry run"),
    }
}

fn launched(sim: &SimHandle, account: &str, region: &str) -> usize {
    let at = sim.at(account, region).unwrap();
    at.jobs()
        .iter()
        .map(|j| j.recovery_instance_ids.len())
        .sum()
}

#[tokio::test(start_paused = true)]
async fn a_plan_across_two_accounts_and_two_regions_runs_each_step_in_every_place() {
    let sim = world(&[APPS, WEB], None).await;
    let mut seen = Seen::default();
    let plan = run(&sim, &mut seen).await;
    assert!(plan.complete, "{:?}", plan.output());
    let output = plan.output();
    assert_eq!(output["counts"]["succeeded"], 10);
    let app = Target::new(APPS, "us-west-2");
    let web = Target::new(WEB, "us-west-2");
    assert_eq!(
        seen.started[1],
        (
            "app-servers".to_owned(),
            vec![Some(app.clone()), Some(web.clone())]
        )
    );
    // One progress line per account and region.
    assert!(seen.lines.contains(&(0, Some(app))));
    assert!(seen.lines.contains(&(1, Some(web))));
    assert_eq!(launched(&sim, APPS, "us-east-1"), 2);
    assert_eq!(launched(&sim, APPS, "us-west-2"), 3);
    assert_eq!(launched(&sim, WEB, "us-west-2"), 3);
    assert_eq!(launched(&sim, WEB, "us-east-1"), 1);
    assert_eq!(launched(&sim, "111122223333", "us-east-1"), 1);
    // The step's part in each place, in its summary.
    assert_eq!(output["steps"][1]["targets"].as_array().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_critical_database_failing_in_one_account_halts_the_steps_in_the_others() {
    let sim = world(&[APPS, WEB], Some(CRITICAL_DATABASE)).await;
    let plan = run(&sim, &mut Seen::default()).await;
    let statuses: Vec<(StepStatus, Option<&str>)> = plan
        .steps
        .iter()
        .map(|s| (s.status, s.reason.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        [
            (StepStatus::Halted, Some("CRITICAL_FAILED")),
            (StepStatus::NotStarted, Some("PLAN_HALTED")),
            (StepStatus::NotStarted, Some("PLAN_HALTED")),
        ]
    );
    assert_eq!(launched(&sim, APPS, "us-west-2"), 0);
    assert_eq!(launched(&sim, WEB, "us-west-2"), 0);
    assert_eq!(launched(&sim, "111122223333", "us-east-1"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_account_without_the_role_fails_alone_and_the_step_counts_it() {
    // 333344445555 grants no role. Its web server, named by ARN, is skipped TARGET_UNREACHABLE;
    // its app servers, chosen by a tag nobody could read there, fail that place's launch: the
    // step halts LAUNCH_ERROR naming it, after the other account's app servers came back.
    let sim = world(&[APPS], None).await;
    let plan = run(&sim, &mut Seen::default()).await;
    let app = &plan.steps[1];
    assert_eq!(app.status, StepStatus::Halted);
    assert_eq!(app.reason.as_deref(), Some("LAUNCH_ERROR"));
    let error = app.error.as_deref().unwrap_or_default();
    assert!(error.contains("333344445555/us-west-2"), "{error}");
    assert!(error.contains("AccessDenied"), "{error}");
    let sum = app.sum.as_ref().unwrap();
    assert_eq!(sum.counts["succeeded"], 3);
    assert_eq!(launched(&sim, APPS, "us-west-2"), 3);
    assert_eq!(plan.steps[2].status, StepStatus::NotStarted);
}

#[tokio::test(start_paused = true)]
async fn an_instance_named_in_an_account_without_the_role_is_skipped_and_counted() {
    let sim = world(&[APPS], None).await;
    let mut plan = sample();
    // The app servers of the account without the role left out: the web step goes on.
    plan["steps"][1]["selector"]["targets"] =
        serde_json::json!([{"account": APPS, "region": "us-west-2"}]);
    let config = Config::from_pairs(&[
        ("HOME_ACCOUNT_ID", "111122223333"),
        ("AWS_REGION", "us-east-1"),
    ])
    .unwrap();
    let failback = drs_failback::aws::failback(config, &sim.in_process_sdk_config().await);
    let PlanEnd::Finished(plan) = run_plan(&failback, plan, &settings(), 1.0, &mut Seen::default())
        .await
        .unwrap()
    else {
        panic!("not a dry run");
    };
    let web = &plan.steps[2];
    assert_eq!(
        web.status,
        StepStatus::Finished,
        "no rule halts the web step: {:?}",
        web.sum
    );
    let sum = web.sum.as_ref().unwrap();
    assert_eq!(sum.counts["succeeded"], 1);
    assert_eq!(sum.counts["skipped"], 1);
    assert_eq!(sum.verdict.failed, 1);
    let unreachable = &web.groups[1].finished.answer;
    let group = &unreachable.not_launched[0];
    assert_eq!(group.reason, "TARGET_UNREACHABLE");
    assert_eq!(group.code.as_deref(), Some("AccessDenied"));
}

#[tokio::test(start_paused = true)]
async fn a_region_throttling_hard_does_not_hold_the_other_back() {
    let sim = world(&[APPS, WEB], None).await;
    // 333344445555/us-west-2 refuses every launch for ten minutes (quota-style throttling).
    sim.at(WEB, "us-west-2").unwrap().inject(Fault::Throttle {
        operation: Operation::StartFailbackLaunch,
        calls: 40,
        retry_after_seconds: 15,
    });
    let plan = run(&sim, &mut Seen::default()).await;
    let app = &plan.steps[1];
    let rounds: Vec<u64> = app
        .groups
        .iter()
        .map(|g| g.finished.progress.rounds as u64)
        .collect();
    assert_eq!(
        rounds[0], 1,
        "the other account launched in its first round"
    );
    assert!(
        rounds[1] > 1,
        "the throttled one took more rounds: {rounds:?}"
    );
    assert_eq!(launched(&sim, APPS, "us-west-2"), 3);
    assert_eq!(
        launched(&sim, WEB, "us-west-2"),
        3,
        "launched once the throttling ended"
    );
    assert!(plan.complete, "{:?}", plan.output());
}
