//! The quota-bound pipeline: a whole failback of 5 000 instances through DRS's default quotas
//! (500 servers in active jobs, 100 per job) with jobs that take 20.5 minutes, run as the state
//! machine runs it (`drs_failback_local::arc`, the function's own dispatch, the real SDK clients
//! handed to the simulator in-process). Hours of DRS time on a paused clock: what is measured is
//! the orchestration — how close the run comes to the ideal pipeline (the quota kept full, each
//! wave launched the moment the one before finishes) and how much it polls — not CPU.

use std::time::Duration;

use drs_failback::config::Config;
use drs_failback_local::arc::{ArcEnd, ArcSettings, Finished, run_whole};
use drs_sim::{
    FailbackState, Fleet, Lifecycle, Operation, Quotas, SimConfig, SimHandle, Simulator,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;

pub const N: usize = 5000;
pub const SERVERS_IN_FLIGHT: usize = 500;
pub const PER_JOB: usize = 100;
/// A failback launch job: PENDING 2 minutes, then 18.5 minutes of conversion and boot — not a
/// whole number of tracking intervals, so a wave's end falls between two tracking calls.
pub const JOB: Lifecycle = Lifecycle {
    pending: Duration::from_secs(120),
    started: Duration::from_secs(1110),
};
/// `TrackIntervalSeconds`' default in template.yaml.
pub const TRACK_INTERVAL: Duration = Duration::from_secs(60);
/// Every DRS call takes this long (in-process, on the paused clock).
pub const CALL_LATENCY: Duration = Duration::from_millis(150);
/// One instance in this many fails converting: tracking reads the job logs too.
const FAIL_EVERY: usize = 50;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pipeline {
    pub wall: Duration,
    pub ideal: Duration,
    pub rounds: usize,
    pub tracking_calls: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub complete: bool,
    /// DRS calls of each read operation over the run.
    pub reads: Vec<(Operation, usize)>,
}

impl Pipeline {
    /// The run's throughput as a share of the ideal pipeline's.
    pub fn throughput(&self) -> f64 {
        self.ideal.as_secs_f64() / self.wall.as_secs_f64()
    }

    pub fn per_minute(&self, calls: usize) -> f64 {
        calls as f64 / (self.wall.as_secs_f64() / 60.0)
    }
}

/// The ideal pipeline: ⌈N / quota⌉ waves back to back, each as long as a job.
pub fn ideal() -> Duration {
    let waves = N.div_ceil(SERVERS_IN_FLIGHT) as u32;
    (JOB.pending + JOB.started) * waves
}

pub fn run() -> Result<Pipeline, String> {
    paused()?.block_on(measure(Duration::ZERO))
}

/// Jobs of varying length: PENDING 2 minutes, then STARTED 13 to 38 minutes (15–40 in all),
/// spread evenly over the jobs (the simulator's `started_spread`).
const VARYING_STARTED: Duration = Duration::from_secs(13 * 60);
const VARYING_SPREAD: Duration = Duration::from_secs(25 * 60);

/// The shortest and longest job of the varying case.
pub fn varying_range() -> (Duration, Duration) {
    let shortest = JOB.pending + VARYING_STARTED;
    (shortest, shortest + VARYING_SPREAD)
}

/// The same whole failback with jobs of varying length, against its own ideal.
pub fn run_varying() -> Result<Pipeline, String> {
    paused()?.block_on(measure(VARYING_SPREAD))
}

fn paused() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

/// The ideal pipeline for jobs of varying length: the quota's job slots each take the next job
/// the moment theirs ends (the k-th job created lasting what the simulator gives the k-th).
pub fn varying_ideal() -> Duration {
    let slots = SERVERS_IN_FLIGHT / PER_JOB;
    let jobs = N.div_ceil(PER_JOB);
    let mut free = vec![Duration::ZERO; slots];
    for k in 0..jobs {
        let share = (k as f64 * 0.618_033_988_749_895).fract();
        let took = JOB.pending + VARYING_STARTED + VARYING_SPREAD.mul_f64(share);
        let slot = (0..slots).min_by_key(|&s| free[s]).unwrap_or(0);
        free[slot] += took;
    }
    free.into_iter().max().unwrap_or_default()
}

/// The quota-bound world both whole-failback cases run in: the simulator holding `fleet` with
/// DRS's default quotas, 20.5-minute jobs and a latency per call; the function against it through
/// the real SDK clients, in-process; the state machine's settings.
pub async fn world(fleet: Fleet) -> Result<(SimHandle, SimFailback, ArcSettings), String> {
    world_with(fleet, Duration::ZERO).await
}

async fn world_with(
    fleet: Fleet,
    started_spread: Duration,
) -> Result<(SimHandle, SimFailback, ArcSettings), String> {
    let mut lifecycle = JOB;
    if !started_spread.is_zero() {
        lifecycle.started = VARYING_STARTED;
    }
    let sim = Simulator::start(SimConfig {
        fleet,
        lifecycle,
        started_spread,
        ..quota_bound()
    })
    .await
    .map_err(|e| format!("simulator: {e}"))?;
    let in_flight = SERVERS_IN_FLIGHT.to_string();
    let config = Config::from_pairs(&[("MAX_SERVERS_IN_FLIGHT", in_flight.as_str())])
        .map_err(|e| format!("config: {e}"))?;
    // The benchmark measures the calls, not the metrics lines.
    // DRS dates follow the paused clock: so must the function's, for a job's age.
    let failback = drs_failback::aws::failback(config, &sim.in_process_sdk_config().await)
        .with_wall_clock(drs_failback::retry::deadline::following_tokio())
        .with_metrics_output(|_| {});
    let settings = ArcSettings {
        track_interval: TRACK_INTERVAL,
        time_limit: Duration::from_secs(12 * 3600),
        max_rounds: 100,
        invocation_timeout: Duration::from_secs(300),
        crashes_after_launch: 0,
    };
    Ok((sim, failback, settings))
}

/// A simulated account and region at DRS's default quotas, with the pipeline's jobs and call
/// latency, and no instance yet.
pub fn quota_bound() -> SimConfig {
    SimConfig {
        lifecycle: JOB,
        latency: Some(CALL_LATENCY),
        quotas: Quotas {
            servers_in_active_jobs: SERVERS_IN_FLIGHT,
            servers_per_job: PER_JOB,
            ..Quotas::default()
        },
        page_size: 1000,
        ..SimConfig::default()
    }
}

/// A whole failback of `request`, as the state machine runs it, and the simulated time it took.
pub async fn run_to_end(
    failback: &SimFailback,
    request: serde_json::Value,
    settings: &ArcSettings,
) -> Result<(Finished, Duration), String> {
    let started = Instant::now();
    let end = run_whole(failback, request, settings, |_| {})
        .await
        .map_err(|e| format!("the run failed: {e}"))?;
    match end {
        ArcEnd::Finished(finished) => Ok((*finished, started.elapsed())),
        ArcEnd::DryRun(_) => Err("a dry run".into()),
    }
}

/// The function as the benchmark runs it: the SDK adapters, handed to the simulator.
pub type SimFailback = drs_failback::handler::Failback<
    drs_failback::aws::drs::SdkDrs,
    drs_failback::aws::eventbridge::SdkEventBridge,
>;

async fn measure(started_spread: Duration) -> Result<Pipeline, String> {
    let mut fleet = Fleet::generated(N, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    for id in ids.iter().step_by(FAIL_EVERY) {
        fleet.set_failure(id, "CONVERSION_FAIL");
    }
    let (sim, failback, settings) = world_with(fleet, started_spread).await?;
    let (finished, wall) = run_to_end(
        &failback,
        json!({"runId": "bench-pipeline", "recoveryInstanceIDs": ids}),
        &settings,
    )
    .await?;
    let calls = sim.calls();
    let reads = [
        Operation::DescribeJobs,
        Operation::DescribeRecoveryInstances,
        Operation::DescribeJobLogItems,
    ]
    .into_iter()
    .map(|op| (op, calls.iter().filter(|c| c.operation == op).count()))
    .collect();
    sim.shutdown();
    Ok(Pipeline {
        wall,
        ideal: if started_spread.is_zero() {
            ideal()
        } else {
            varying_ideal()
        },
        rounds: finished.progress.rounds,
        tracking_calls: finished.progress.tracking_calls,
        succeeded: finished.answer.counts.succeeded,
        failed: finished.answer.counts.failed,
        complete: finished.complete,
        reads,
    })
}
