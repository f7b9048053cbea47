//! The workloads: the real handler, through the real AWS SDK clients over HTTP, against the
//! in-process simulator, in real time. Each run gets a fresh simulator, so its call records are
//! that run's alone.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use drs_failback::aws::drs::SdkDrs;
use drs_failback::aws::eventbridge::SdkEventBridge;
use drs_failback::config::Config;
use drs_failback::handler::Failback;
use drs_failback::launch::outcome::OutcomeKind;
use drs_sim::{
    CallRecord, FailbackState, Fault, Fleet, Lifecycle, Operation, Quotas, SimConfig, SimHandle,
    Simulator,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cpu;

/// Added by the simulator before it handles any API call.
pub const LATENCY: Duration = Duration::from_millis(50);
/// The simulator's token bucket on StartFailbackLaunch in the throttling profile.
pub const RATE_PER_SECOND: f64 = 2.0;
pub const BURST: u32 = 2;
/// A Lambda-like deadline: the longest Lambda timeout.
pub const DEADLINE: Duration = Duration::from_secs(900);
/// The function's default `MAX_CONCURRENT_LAUNCHES`, also the ideal client's calls in flight.
pub const CONCURRENCY: usize = 4;
/// The function's default `MAX_INSTANCES_PER_JOB` (the DRS quota of servers per job).
pub const PER_JOB: usize = 100;
/// DescribeRecoveryInstances takes at most this many ids per call.
pub const IDS_PER_READ: usize = 200;
/// PutEvents takes at most this many entries per call.
pub const EVENTS_PER_PUT: usize = 10;
/// Quota pressure: the DRS default quotas (servers in active jobs, active jobs).
pub const QUOTA_SERVERS: usize = 500;
pub const QUOTA_JOBS: usize = 20;
/// Quota pressure: a job holds its servers this long (PENDING, then STARTED) after creation.
pub const JOB_PENDING: Duration = Duration::from_secs(1);
pub const JOB_STARTED: Duration = Duration::from_secs(2);
/// Quota pressure: `CAPACITY_POLL_SECONDS`, the shortest the function allows.
pub const POLL_SECONDS: u64 = 1;

/// Quotas high enough that only the profile's own limit binds.
pub const RAISED_QUOTAS: Quotas = Quotas {
    servers_per_job: PER_JOB,
    servers_in_active_jobs: 10_000,
    active_jobs: 100,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Profile {
    NoFaults,
    Throttling,
    QuotaPressure,
}

impl Profile {
    pub const ALL: [Profile; 3] = [
        Profile::NoFaults,
        Profile::Throttling,
        Profile::QuotaPressure,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::NoFaults => "no faults",
            Profile::Throttling => "throttling",
            Profile::QuotaPressure => "quota pressure",
        }
    }

    pub fn variants(self) -> &'static [Variant] {
        match self {
            // Pacing only acts once DRS throttles: without throttling it cannot differ.
            Profile::Throttling => &[Variant::Project, Variant::Unpaced, Variant::Baseline],
            _ => &[Variant::Project, Variant::Baseline],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Variant {
    /// The function as shipped: its own retry policy and adaptive pacing, SDK retries off.
    Project,
    /// The same with `ADAPTIVE_PACING=false`: what pacing adds.
    Unpaced,
    /// The peer: the SDK's standard retry mode retries; the function's own retrying is off.
    Baseline,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Project => "project",
            Variant::Unpaced => "project, pacing off",
            Variant::Baseline => "baseline: SDK standard retry",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Variant::Project => "project",
            Variant::Unpaced => "unpaced",
            Variant::Baseline => "baseline",
        }
    }
}

/// The operations counted, in table order.
pub const OPERATIONS: [Operation; 4] = [
    Operation::StartFailbackLaunch,
    Operation::DescribeRecoveryInstances,
    Operation::DescribeJobs,
    Operation::PutEvents,
];

/// The fewest calls of each operation that can do the job (every instance launched).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minimum {
    pub launches: usize,
    pub describe_instances: usize,
    pub describe_jobs: usize,
    pub put_events: usize,
}

impl Minimum {
    pub fn of(profile: Profile, n: usize) -> Minimum {
        let jobs = n.div_ceil(PER_JOB);
        // One Job Started event per job and the run summary.
        let events = jobs + 1;
        Minimum {
            launches: jobs,
            describe_instances: n.div_ceil(IDS_PER_READ),
            // The active jobs once; under quota pressure once more per later wave, to see the
            // capacity freed.
            describe_jobs: match profile {
                Profile::QuotaPressure => waves(n),
                _ => 1,
            },
            put_events: events.div_ceil(EVENTS_PER_PUT),
        }
    }

    pub fn get(&self, operation: Operation) -> usize {
        match operation {
            Operation::StartFailbackLaunch => self.launches,
            Operation::DescribeRecoveryInstances => self.describe_instances,
            Operation::DescribeJobs => self.describe_jobs,
            Operation::PutEvents => self.put_events,
            // A launch reads no job log, and finishes nothing.
            Operation::DescribeJobLogItems
            | Operation::DisconnectRecoveryInstance
            | Operation::TerminateRecoveryInstances => 0,
        }
    }
}

/// Waves of launches the in-flight budget forces under quota pressure.
pub fn waves(n: usize) -> usize {
    n.div_ceil(QUOTA_SERVERS).max(1)
}

/// The ideal wall time: the minimum calls, at most `CONCURRENCY` in flight, each taking the
/// simulator's latency, launches paced exactly at the admitted rate, and no wait beyond what
/// the service imposes. Phases in order: reads (DescribeJobs and every DescribeRecoveryInstances,
/// independent of each other), launches, PutEvents.
pub fn ideal(profile: Profile, n: usize) -> Duration {
    let minimum = Minimum::of(profile, n);
    let rounds = |calls: usize| u32::try_from(calls.div_ceil(CONCURRENCY)).unwrap_or(u32::MAX);
    let reads = LATENCY * rounds(1 + minimum.describe_instances);
    let publish = LATENCY * rounds(minimum.put_events);
    let launches = match profile {
        Profile::NoFaults => LATENCY * rounds(minimum.launches),
        Profile::Throttling => {
            let paced = minimum.launches.saturating_sub(BURST as usize);
            if paced == 0 {
                LATENCY * rounds(minimum.launches)
            } else {
                // The burst at once, then one call per token; the last one's latency.
                Duration::from_secs_f64(paced as f64 / RATE_PER_SECOND) + LATENCY
            }
        }
        Profile::QuotaPressure => {
            let mut total = Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let servers = left.min(QUOTA_SERVERS);
                left -= servers;
                total += LATENCY * rounds(servers.div_ceil(PER_JOB));
            }
            let gaps = u32::try_from(waves(n) - 1).unwrap_or(u32::MAX);
            total + (JOB_PENDING + JOB_STARTED) * gaps
        }
    };
    reads + launches + publish
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct OpCalls {
    pub total: usize,
    pub ok: usize,
    /// 429.
    pub throttled: usize,
    /// 402 (quota), 409 (conflict), 400 (validation).
    pub refused: usize,
    /// Anything else (5xx).
    pub failed: usize,
}

impl OpCalls {
    pub fn wasted(&self) -> usize {
        self.throttled + self.refused
    }
}

/// How the launches went over time: did the rate converge?
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct LaunchTimeline {
    /// Admitted launches per second from the first admitted call to the last.
    pub admitted_rate: Option<f64>,
    /// Throttled calls in the first and the second half of the launch window.
    pub throttled_first_half: usize,
    pub throttled_second_half: usize,
    pub calls_second_half: usize,
    /// Throttled launches that arrived within a second of the first launch: the cost of learning
    /// the rate.
    pub throttled_first_second: usize,
    /// Launches that arrived within 100 ms of the first one: sent together, before any answer.
    pub first_round: usize,
    /// Throttled launches that arrived together (within 250 ms of the previous throttled one):
    /// how many such bursts, and the largest.
    pub throttle_bursts: usize,
    pub largest_throttle_burst: usize,
    /// First call of the run to the first launch call (milliseconds, arrival at the simulator).
    pub before_first_launch_ms: u64,
    /// First launch call to the last one.
    pub launch_window_ms: u64,
    /// First call of the run to the last launch call.
    pub to_last_launch_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub profile: Profile,
    pub variant: Variant,
    pub n: usize,
    pub wall: Duration,
    pub ideal: Duration,
    /// CPU of the thread the handler ran on (function + SDK + its HTTP client).
    pub handler_cpu: Duration,
    /// CPU of the whole bench process during the run (adds the simulator).
    pub process_cpu: Duration,
    pub calls: Vec<(Operation, OpCalls)>,
    pub minimum: Minimum,
    pub launched: usize,
    pub skipped: usize,
    pub rejected: usize,
    pub deferred: usize,
    /// Deferred instances by reason.
    pub deferred_reasons: BTreeMap<String, usize>,
    pub events_published: usize,
    pub events_undelivered: usize,
    pub jobs_created: usize,
    /// Instances the simulator holds in more than one job (must be 0).
    pub in_two_jobs: usize,
    pub timeline: LaunchTimeline,
    pub error: Option<String>,
    /// Every repetition of this profile, N and variant (this run is the median by wall time).
    pub repeats: Vec<Repeat>,
    /// Every StartFailbackLaunch: milliseconds since the run's first call, and the status.
    pub launches: Vec<(u64, u16)>,
}

/// One repetition, for the spread.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Repeat {
    pub wall: Duration,
    pub wasted: f64,
    pub launched: usize,
}

/// Runs of the throttling profile depend on the jitter of the retry waits: repeat them and keep
/// the median.
pub fn repetitions(profile: Profile) -> usize {
    match profile {
        Profile::Throttling => 3,
        _ => 1,
    }
}

/// The median run by wall time, carrying every repetition's figures.
pub fn median(mut runs: Vec<Run>) -> Option<Run> {
    let repeats: Vec<Repeat> = runs
        .iter()
        .map(|r| Repeat {
            wall: r.wall,
            wasted: r.wasted_share(),
            launched: r.launched,
        })
        .collect();
    runs.sort_by_key(|r| r.wall);
    let middle = runs.len().checked_sub(1)? / 2;
    let mut run = runs.swap_remove(middle);
    run.repeats = repeats;
    Some(run)
}

impl Run {
    pub fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.ideal.as_secs_f64()
    }

    pub fn op(&self, operation: Operation) -> OpCalls {
        self.calls
            .iter()
            .find(|(op, _)| *op == operation)
            .map(|(_, calls)| *calls)
            .unwrap_or_default()
    }

    pub fn total_calls(&self) -> usize {
        self.calls.iter().map(|(_, c)| c.total).sum()
    }

    pub fn wasted_calls(&self) -> usize {
        self.calls.iter().map(|(_, c)| c.wasted()).sum()
    }

    /// Throttled or refused calls over all calls.
    pub fn wasted_share(&self) -> f64 {
        let total = self.total_calls();
        if total == 0 {
            0.0
        } else {
            self.wasted_calls() as f64 / total as f64
        }
    }

    pub fn complete(&self) -> bool {
        self.error.is_none() && self.launched == self.n
    }

    /// Every counted operation called exactly its minimum number of times.
    pub fn calls_exactly_minimum(&self) -> bool {
        OPERATIONS
            .iter()
            .all(|op| self.op(*op).total == self.minimum.get(*op))
    }
}

pub fn sim_config(profile: Profile, n: usize) -> SimConfig {
    SimConfig {
        fleet: Fleet::generated(n, FailbackState::FailbackReadyForLaunch),
        quotas: match profile {
            Profile::QuotaPressure => Quotas {
                servers_per_job: PER_JOB,
                servers_in_active_jobs: QUOTA_SERVERS,
                active_jobs: QUOTA_JOBS,
            },
            _ => RAISED_QUOTAS,
        },
        lifecycle: Lifecycle {
            pending: JOB_PENDING,
            started: JOB_STARTED,
        },
        latency: Some(LATENCY),
        faults: match profile {
            Profile::Throttling => vec![Fault::RateLimit {
                operation: Operation::StartFailbackLaunch,
                per_second: RATE_PER_SECOND,
                burst: BURST,
            }],
            _ => Vec::new(),
        },
        ..SimConfig::default()
    }
}

/// The function's settings (its environment variables) for a profile and variant; everything
/// not listed keeps its default.
pub fn settings(profile: Profile, variant: Variant) -> Vec<(&'static str, String)> {
    let mut settings: Vec<(&'static str, String)> = match profile {
        Profile::NoFaults | Profile::Throttling => vec![
            (
                "MAX_SERVERS_IN_FLIGHT",
                RAISED_QUOTAS.servers_in_active_jobs.to_string(),
            ),
            ("MAX_ACTIVE_JOBS", RAISED_QUOTAS.active_jobs.to_string()),
        ],
        Profile::QuotaPressure => vec![
            ("MAX_SERVERS_IN_FLIGHT", QUOTA_SERVERS.to_string()),
            ("MAX_ACTIVE_JOBS", QUOTA_JOBS.to_string()),
            ("WAIT_FOR_CAPACITY", "true".into()),
            ("CAPACITY_POLL_SECONDS", POLL_SECONDS.to_string()),
        ],
    };
    match variant {
        Variant::Project => {}
        Variant::Unpaced => settings.push(("ADAPTIVE_PACING", "false".into())),
        Variant::Baseline => {
            settings.push(("THROTTLE_MAX_RETRIES", "0".into()));
            settings.push(("ADAPTIVE_PACING", "false".into()));
        }
    }
    settings
}

/// One run: a fresh simulator on `infra`, the handler on `handler_rt` (a current-thread runtime,
/// as the Lambda binary uses).
pub fn run(
    infra: &tokio::runtime::Runtime,
    handler_rt: &tokio::runtime::Runtime,
    profile: Profile,
    variant: Variant,
    n: usize,
) -> Result<Run, String> {
    let config = sim_config(profile, n);
    let ids = config.fleet.ids();
    let sim = infra
        .block_on(Simulator::start(config))
        .map_err(|e| format!("the simulator did not start: {e}"))?;
    let result = handler_rt.block_on(drive(&sim, profile, variant, n, ids));
    infra.block_on(sim.stop());
    result
}

async fn drive(
    sim: &SimHandle,
    profile: Profile,
    variant: Variant,
    n: usize,
    ids: Vec<String>,
) -> Result<Run, String> {
    let pairs: HashMap<&str, String> = settings(profile, variant).into_iter().collect();
    let config = Config::from_lookup(|name| pairs.get(name).cloned())
        .map_err(|e| format!("bench settings refused: {e}"))?;
    // `sdk_config` only: the simulator's endpoint, static dummy credentials, a fixed region.
    let sdk = drs_sim::sdk_config(&sim.endpoint()).await;
    let failback = if variant == Variant::Baseline {
        let bus = config.event_bus_name.clone();
        let retrying = sdk
            .to_builder()
            .retry_config(RetryConfig::standard())
            .build();
        Failback::new(
            config,
            SdkDrs::with_sdk_retries(&retrying),
            SdkEventBridge::new(&sdk, bus),
        )
    } else {
        drs_failback::aws::failback(config, &sdk)
    };
    // The benchmark measures the calls, not the metrics lines.
    let failback = failback.with_metrics_output(|_| {});
    let run_id = format!(
        "bench-{}-{}-{n}",
        profile.name().replace(' ', "-"),
        variant.short()
    );
    let payload = json!({ "runId": run_id, "recoveryInstanceIDs": ids });

    let thread_before = cpu::thread();
    let process_before = cpu::process();
    let started = Instant::now();
    let answer = failback
        .handle(payload, tokio::time::Instant::now() + DEADLINE)
        .await;
    let wall = started.elapsed();
    let handler_cpu = cpu::thread().saturating_sub(thread_before);
    let process_cpu = cpu::process().saturating_sub(process_before);

    let records = sim.calls();
    let mut run = Run {
        profile,
        variant,
        n,
        wall,
        ideal: ideal(profile, n),
        handler_cpu,
        process_cpu,
        calls: OPERATIONS
            .iter()
            .map(|op| (*op, count(&records, *op)))
            .collect(),
        minimum: Minimum::of(profile, n),
        launched: 0,
        skipped: 0,
        rejected: 0,
        deferred: 0,
        deferred_reasons: BTreeMap::new(),
        events_published: 0,
        events_undelivered: 0,
        jobs_created: 0,
        in_two_jobs: 0,
        timeline: timeline(&records),
        error: None,
        repeats: Vec::new(),
        launches: launch_calls(&records),
    };
    let jobs = sim.jobs();
    run.jobs_created = jobs.len();
    let mut seen = HashMap::new();
    for job in &jobs {
        for id in &job.recovery_instance_ids {
            *seen.entry(id.as_str()).or_insert(0usize) += 1;
        }
    }
    run.in_two_jobs = seen.values().filter(|&&times| times > 1).count();
    match answer {
        Ok(answer) => {
            run.launched = answer.counts.launched;
            run.skipped = answer.counts.skipped;
            run.rejected = answer.counts.rejected;
            run.deferred = answer.counts.deferred;
            for group in &answer.not_launched {
                if group.outcome == OutcomeKind::Deferred {
                    *run.deferred_reasons
                        .entry(group.reason.clone())
                        .or_default() += group.recovery_instance_ids.len();
                }
            }
            run.events_published = answer.events.published;
            run.events_undelivered = answer.events.undelivered;
        }
        Err(error) => run.error = Some(error.to_string()),
    }
    Ok(run)
}

fn count(records: &[CallRecord], operation: Operation) -> OpCalls {
    let mut calls = OpCalls::default();
    for record in records.iter().filter(|r| r.operation == operation) {
        calls.total += 1;
        match record.status {
            200..=299 => calls.ok += 1,
            429 => calls.throttled += 1,
            400 | 402 | 409 => calls.refused += 1,
            _ => calls.failed += 1,
        }
    }
    calls
}

fn launch_calls(records: &[CallRecord]) -> Vec<(u64, u16)> {
    let start = records.iter().map(|r| r.at_ms).min().unwrap_or(0);
    let mut launches: Vec<(u64, u16)> = records
        .iter()
        .filter(|r| r.operation == Operation::StartFailbackLaunch)
        .map(|r| (r.at_ms - start, r.status))
        .collect();
    launches.sort_unstable();
    launches
}

fn timeline(records: &[CallRecord]) -> LaunchTimeline {
    // Records are kept in the order calls finished; `at_ms` is when each arrived.
    let mut launches: Vec<&CallRecord> = records
        .iter()
        .filter(|r| r.operation == Operation::StartFailbackLaunch)
        .collect();
    launches.sort_by_key(|r| r.at_ms);
    let (Some(first), Some(last)) = (launches.first(), launches.last()) else {
        return LaunchTimeline::default();
    };
    let run_start = records.iter().map(|r| r.at_ms).min().unwrap_or(first.at_ms);
    let middle = first.at_ms + (last.at_ms - first.at_ms) / 2;
    let admitted: Vec<u64> = launches
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.at_ms)
        .collect();
    let admitted_rate = match (admitted.first(), admitted.last()) {
        (Some(a), Some(b)) if b > a => Some((admitted.len() - 1) as f64 / ((b - a) as f64 / 1e3)),
        _ => None,
    };
    let throttled = |r: &&&CallRecord| r.status == 429;
    let mut bursts: Vec<usize> = Vec::new();
    let mut previous: Option<u64> = None;
    for call in launches.iter().filter(|r| r.status == 429) {
        match (previous, bursts.last_mut()) {
            (Some(at), Some(size)) if call.at_ms <= at + 250 => *size += 1,
            _ => bursts.push(1),
        }
        previous = Some(call.at_ms);
    }
    LaunchTimeline {
        admitted_rate,
        throttled_first_half: launches
            .iter()
            .filter(|r| r.at_ms <= middle)
            .filter(throttled)
            .count(),
        throttled_second_half: launches
            .iter()
            .filter(|r| r.at_ms > middle)
            .filter(throttled)
            .count(),
        calls_second_half: launches.iter().filter(|r| r.at_ms > middle).count(),
        throttled_first_second: launches
            .iter()
            .filter(|r| r.at_ms <= first.at_ms + 1_000)
            .filter(throttled)
            .count(),
        first_round: launches
            .iter()
            .filter(|r| r.at_ms <= first.at_ms + 100)
            .count(),
        throttle_bursts: bursts.len(),
        largest_throttle_burst: bursts.iter().copied().max().unwrap_or(0),
        before_first_launch_ms: first.at_ms - run_start,
        launch_window_ms: last.at_ms - first.at_ms,
        to_last_launch_ms: last.at_ms - run_start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_calls_follow_the_api_limits() {
        let m = Minimum::of(Profile::NoFaults, 5000);
        assert_eq!(
            (
                m.launches,
                m.describe_instances,
                m.describe_jobs,
                m.put_events
            ),
            (50, 25, 1, 6)
        );
        let m = Minimum::of(Profile::NoFaults, 100);
        assert_eq!(
            (
                m.launches,
                m.describe_instances,
                m.describe_jobs,
                m.put_events
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(Minimum::of(Profile::QuotaPressure, 5000).describe_jobs, 10);
    }

    #[test]
    fn ideal_times() {
        // 26 reads in 7 rounds, 50 launches in 13, 6 PutEvents in 2.
        assert_eq!(ideal(Profile::NoFaults, 5000), LATENCY * (7 + 13 + 2));
        // 48 launches after the burst of 2 at 2 per second.
        assert_eq!(
            ideal(Profile::Throttling, 5000),
            LATENCY * 7 + Duration::from_secs(24) + LATENCY + LATENCY * 2
        );
        assert_eq!(ideal(Profile::Throttling, 100), LATENCY * 3);
        // 10 waves of 5 jobs (2 rounds each), 9 gaps of 3 s.
        assert_eq!(
            ideal(Profile::QuotaPressure, 5000),
            LATENCY * 7 + LATENCY * 20 + Duration::from_secs(27) + LATENCY * 2
        );
    }
}
