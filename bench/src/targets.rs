//! A failback across accounts and regions: 4 targets × 2 000 instances, each at DRS's default
//! quotas, run as the plan execution runs one step across them (`drs_failback_local::plan`: the
//! step's places side by side, each through the target role, then the step's sum), against drs-sim
//! holding each (account, region) with its own quotas, on a paused clock. Measured: the wall time
//! against one target alone (the places run in parallel, so it should barely grow), the calls each
//! target saw against the minimum, and the process's peak memory (the hub function and the
//! simulator of every target, in-process).

use std::time::Duration;

use drs_failback::config::Config;
use drs_failback::finish::answer::FinishAnswer;
use drs_failback::plan::StepPlan;
use drs_failback_local::arc::Progress;
use drs_failback_local::plan::{Approval, PlanEnd, PlanHooks, StepReport, run_plan};
use drs_sim::{
    FailbackState, Fleet, FleetInstance, Operation, Role, SimConfig, SimHandle, Simulator,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

use crate::pipeline::{PER_JOB, SERVERS_IN_FLIGHT, TRACK_INTERVAL, quota_bound};

pub const TARGETS: usize = 4;
pub const PER_TARGET: usize = 2000;
const HOME: &str = "111122223333";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Targets {
    /// One target alone, then all of them.
    pub alone: Duration,
    pub all: Duration,
    /// Each target's DRS calls in the run across all of them: launches, instance reads, job reads.
    pub calls: Vec<TargetCalls>,
    /// StartFailbackLaunch calls of one target alone (its minimum: ⌈2 000 / 100⌉).
    pub alone_launches: usize,
    pub succeeded: usize,
    pub complete: bool,
    /// STS AssumeRole calls over the run across all targets.
    pub assume_roles: usize,
    /// The process's peak resident memory after the run across all targets (VmHWM), in MB.
    pub peak_rss_mb: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetCalls {
    pub target: String,
    pub launches: usize,
    pub instance_reads: usize,
    pub job_reads: usize,
}

impl Targets {
    pub fn ratio(&self) -> f64 {
        self.all.as_secs_f64() / self.alone.as_secs_f64()
    }

    /// The fewest launch calls a target can take: ⌈its instances / instances per job⌉.
    pub fn minimum_launches() -> usize {
        PER_TARGET.div_ceil(PER_JOB)
    }
}

/// The `index`th target: two accounts, each in two regions.
fn place(index: usize) -> (String, &'static str) {
    let account = ["222233334444", "333344445555"][index / 2 % 2];
    let region = ["us-east-1", "us-west-2"][index % 2];
    (account.to_owned(), region)
}

/// Every target holding its 2 000 instances (tagged for the step's selector), with DRS's default
/// quotas, the pipeline's jobs and call latency, and the role the function assumes.
async fn world() -> Result<SimHandle, String> {
    let ids = Fleet::generated(TARGETS * PER_TARGET, FailbackState::FailbackReadyForLaunch).ids();
    let home = quota_bound();
    let mut targets = Vec::with_capacity(TARGETS);
    let mut roles = Vec::with_capacity(TARGETS);
    for (index, chunk) in ids.chunks(PER_TARGET).enumerate() {
        let mut fleet = Fleet::new();
        for id in chunk {
            let mut instance = FleetInstance::new(id.clone());
            instance.tags = [("Wave".to_owned(), "bench".to_owned())].into();
            fleet.try_push(instance).map_err(|e| e.to_string())?;
        }
        let (account, region) = place(index);
        targets.push(SimConfig {
            account_id: account.clone(),
            region: region.to_owned(),
            fleet,
            ..home.target_base()
        });
        roles.push(Role {
            account_id: account,
            name: "drs-failback-target".into(),
            external_id: None,
        });
    }
    Simulator::start(SimConfig {
        targets,
        roles,
        ..home
    })
    .await
    .map_err(|e| format!("simulator: {e}"))
}

struct Quiet;

impl PlanHooks for Quiet {
    fn step_started(&mut self, _: usize, _: &StepPlan, _: usize) {}
    fn progress(
        &mut self,
        _: usize,
        _: usize,
        _: Option<&drs_failback::drs::Target>,
        _: &Progress,
    ) {
    }
    fn step_ended(&mut self, _: usize, _: &StepReport) {}
    fn approve(&mut self, _: &StepReport, _: &StepPlan) -> Approval {
        Approval::Given
    }
    fn approve_finishing(&mut self, _: &FinishAnswer) -> Approval {
        Approval::Refused("no finishing here".into())
    }
}

/// One step over the first `count` targets: its simulated wall time, and whether it completed
/// with every instance back.
async fn step_over(
    sim: &SimHandle,
    count: usize,
    run_id: &str,
) -> Result<(Duration, usize, bool), String> {
    let in_flight = SERVERS_IN_FLIGHT.to_string();
    let config = Config::from_pairs(&[
        ("MAX_SERVERS_IN_FLIGHT", in_flight.as_str()),
        ("HOME_ACCOUNT_ID", HOME),
        ("AWS_REGION", "us-east-1"),
    ])
    .map_err(|e| format!("config: {e}"))?;
    let failback = drs_failback::aws::failback(config, &sim.in_process_sdk_config().await)
        .with_metrics_output(|_| {});
    let targets: Vec<_> = (0..count)
        .map(|i| {
            let (account, region) = place(i);
            json!({"account": account, "region": region})
        })
        .collect();
    let plan = json!({"runId": run_id, "steps": [{"name": "wave",
        "selector": {"tags": {"Wave": "bench"}, "targets": targets}}]});
    let settings = drs_failback_local::arc::ArcSettings {
        track_interval: TRACK_INTERVAL,
        time_limit: Duration::from_secs(12 * 3600),
        max_rounds: 100,
        invocation_timeout: Duration::from_secs(300),
        crashes_after_launch: 0,
    };
    let started = Instant::now();
    let end = run_plan(&failback, plan, &settings, 1.0, &mut Quiet)
        .await
        .map_err(|e| format!("the run failed: {e}"))?;
    let PlanEnd::Finished(finished) = end else {
        return Err("a dry run".into());
    };
    let output = finished.output();
    let succeeded = output["counts"]["succeeded"].as_u64().unwrap_or(0) as usize;
    Ok((started.elapsed(), succeeded, finished.complete))
}

fn count(sim: &SimHandle, op: Operation) -> usize {
    sim.calls().iter().filter(|c| c.operation == op).count()
}

pub fn run() -> Result<Targets, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let sim = world().await?;
        let (alone, _, _) = step_over(&sim, 1, "bench-one-target").await?;
        let (first, region) = place(0);
        let alone_launches = count(
            &sim.at(&first, region).ok_or("no first target")?,
            Operation::StartFailbackLaunch,
        );
        sim.stop().await;
        // A fresh world for the run across all of them: the first target's instances are back.
        let sim = world().await?;
        let (all, succeeded, complete) = step_over(&sim, TARGETS, "bench-all-targets").await?;
        let calls = (0..TARGETS)
            .map(|i| {
                let (account, region) = place(i);
                let at = sim.at(&account, region).ok_or("no target")?;
                Ok(TargetCalls {
                    target: format!("{account}/{region}"),
                    launches: count(&at, Operation::StartFailbackLaunch),
                    instance_reads: count(&at, Operation::DescribeRecoveryInstances),
                    job_reads: count(&at, Operation::DescribeJobs),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let assume_roles = sim.sts_sessions();
        sim.stop().await;
        Ok(Targets {
            alone,
            all,
            calls,
            alone_launches,
            succeeded,
            complete,
            assume_roles,
            peak_rss_mb: peak_rss_mb(),
        })
    })
}

/// VmHWM of this process, in MB (0 where /proc is not there).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
