//! The quota-bound pipeline when readiness arrives over time: a failback whose instances are still
//! replicating back when the run starts, each becoming FAILBACK_READY_FOR_LAUNCH at its own moment
//! over a few hours, run as the state machine runs it (a step that waits for readiness, tracked
//! every interval) against the simulator's failback replication on a paused clock. What is
//! measured is how long after DRS shows an instance ready its launch starts.

use std::time::Duration;

use drs_sim::{FailbackState, Fleet, Operation, Quotas, Replication, SimHandle};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::pipeline::{JOB, run_to_end, world};

pub const N: usize = 500;
/// Replication clients connect over this span, one after the other.
pub const SPREAD: Duration = Duration::from_secs(3 * 3600);
/// The step waits this long for the last of them.
pub const WAIT: Duration = Duration::from_secs(5 * 3600);
const GIB: u64 = 1 << 30;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Readiness {
    /// Seconds from DRS showing each instance ready to its launch call, sorted.
    pub latencies: Vec<u64>,
    /// The same, counted from when the quotas let it be launched: from readiness, or from the
    /// first moment after it that fewer than 20 jobs were active (DRS's quota on concurrent jobs:
    /// launching each instance as it turns ready takes a job slot per round), sorted.
    pub quota_permitting: Vec<u64>,
    /// Instances that turned ready while every job slot was taken.
    pub held_by_quota: usize,
    pub launched: usize,
    pub succeeded: usize,
    pub complete: bool,
    pub rounds: usize,
    pub tracking_calls: usize,
    pub wall: Duration,
    /// DescribeRecoveryInstances calls over the run (the waiting instances, read every round).
    pub instance_reads: usize,
}

impl Readiness {
    /// The latency at quantile `q` (0..=1), in seconds.
    pub fn quantile(&self, q: f64) -> u64 {
        quantile(&self.latencies, q)
    }

    pub fn max(&self) -> u64 {
        self.latencies.last().copied().unwrap_or(0)
    }

    /// Counted from when the quotas let it be launched.
    pub fn permitted_quantile(&self, q: f64) -> u64 {
        quantile(&self.quota_permitting, q)
    }

    pub fn permitted_max(&self) -> u64 {
        self.quota_permitting.last().copied().unwrap_or(0)
    }
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    let last = sorted.len().saturating_sub(1);
    let at = (q * last as f64).round() as usize;
    sorted.get(at.min(last)).copied().unwrap_or(0)
}

/// Instance `k`: 20 to 60 GiB at 50 MiB/s, its client connecting `k` × SPREAD / N into the run —
/// so readiness arrives throughout the run, at moments unrelated to the tracking interval.
fn replication(k: usize) -> Replication {
    Replication {
        total_bytes: (20 + (k as u64 * 7) % 41) * GIB,
        bytes_per_second: 50 << 20,
        connects_after_seconds: k as u64 * SPREAD.as_secs() / N as u64,
        never_connects: false,
        stalls_after_seconds: None,
        disconnects_after_seconds: None,
        initiating_seconds: None,
    }
}

pub fn run() -> Result<Readiness, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(measure())
}

async fn measure() -> Result<Readiness, String> {
    let mut fleet = Fleet::generated(N, FailbackState::FailbackReadyForLaunch);
    let ids = fleet.ids();
    let ready_at: Vec<u64> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| {
            let r = replication(k);
            fleet.set_replication(id, r.clone());
            r.ready_after_seconds().unwrap_or(u64::MAX)
        })
        .collect();
    let (sim, failback, settings) = world(fleet).await?;
    let (finished, wall) = run_to_end(
        &failback,
        json!({"runId": "bench-readiness", "recoveryInstanceIDs": ids,
               "waitForReadySeconds": WAIT.as_secs()}),
        &settings,
    )
    .await?;
    let launches = launches(&sim, &ids, &ready_at)?;
    let job_windows: Vec<(u64, u64)> = sim
        .jobs()
        .iter()
        .map(|j| {
            let created = j.created_at_ms / 1000;
            (created, created + (JOB.pending + JOB.started).as_secs())
        })
        .collect();
    let active_jobs = Quotas::default().active_jobs;
    let slot_free = |t: u64| {
        job_windows
            .iter()
            .filter(|(from, to)| (*from..*to).contains(&t))
            .count()
            < active_jobs
    };
    let mut latencies: Vec<u64> = launches.iter().map(|(ready, at)| at - ready).collect();
    latencies.sort_unstable();
    let mut held_by_quota = 0;
    let mut quota_permitting: Vec<u64> = launches
        .iter()
        .map(|&(ready, at)| {
            let permitted = (ready..=at).find(|t| slot_free(*t)).unwrap_or(at);
            held_by_quota += usize::from(permitted > ready);
            at - permitted
        })
        .collect();
    quota_permitting.sort_unstable();
    let instance_reads = sim
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::DescribeRecoveryInstances)
        .count();
    sim.shutdown();
    Ok(Readiness {
        launched: latencies.len(),
        latencies,
        quota_permitting,
        held_by_quota,
        succeeded: finished.answer.counts.succeeded,
        complete: finished.complete,
        rounds: finished.progress.rounds,
        tracking_calls: finished.progress.tracking_calls,
        wall,
        instance_reads,
    })
}

/// Each launched instance's (readiness, launch call that made its job), in seconds. A launch
/// before readiness would be a bug: it is an error, not a latency.
fn launches(sim: &SimHandle, ids: &[String], ready_at: &[u64]) -> Result<Vec<(u64, u64)>, String> {
    let mut launches = Vec::with_capacity(ids.len());
    for call in sim
        .calls()
        .into_iter()
        .filter(|c| c.operation == Operation::StartFailbackLaunch && c.job_id.is_some())
    {
        let at = call.at_ms / 1000;
        for id in &call.recovery_instance_ids {
            let k = ids
                .iter()
                .position(|i| i == id)
                .ok_or_else(|| format!("{id} launched, not in the fleet"))?;
            let ready = ready_at[k];
            if at < ready {
                return Err(format!(
                    "{id} launched at {at} s, before it was ready at {ready} s"
                ));
            }
            launches.push((ready, at));
        }
    }
    Ok(launches)
}
