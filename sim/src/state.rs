//! The simulated account: instances, jobs, pending faults, and what was called and delivered.
//! One mutex guards it all; handlers are synchronous and never hold it across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::{Fault, Lifecycle, Operation, Quotas, Settings, SimConfig, sane_scale};
use crate::error::ApiError;
use crate::fleet::{FailbackState, Fleet, FleetInstance, LaunchResult};
use crate::history::{self, ArchivedJob};
use crate::replication::{Readiness, Replication, ReplicationView};

/// One API call as the simulator saw it (admin calls are not recorded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Milliseconds since the simulator started (tokio clock), when the call arrived.
    pub at_ms: u64,
    /// The order calls arrived in (from 0): a call held before it is handled is recorded late,
    /// but keeps its place here.
    pub seq: u64,
    pub operation: Operation,
    /// StartFailbackLaunch's `recoveryInstanceIDs` or DescribeRecoveryInstances'
    /// `filters.recoveryInstanceIDs`, as sent (duplicates kept).
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
    pub status: u16,
    /// The error name (`x-amzn-ErrorType` / `__type`), None on a 200.
    pub error_type: Option<String>,
    /// The job this call created, also when the caller was answered a 500 or left hanging.
    #[serde(rename = "jobID")]
    pub job_id: Option<String>,
    /// PutEvents: entries in the request.
    pub entries: usize,
}

/// An event PutEvents accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveredEvent {
    pub at_ms: u64,
    pub event_id: String,
    pub event_bus_name: String,
    pub source: String,
    pub detail_type: String,
    pub detail: Value,
    pub resources: Vec<String>,
    /// The entry's `Time`, ISO-8601, when it had one.
    pub time: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimParticipant {
    #[serde(rename = "recoveryInstanceID")]
    pub recovery_instance_id: String,
    #[serde(rename = "sourceServerID")]
    pub source_server_id: String,
    /// PENDING, IN_PROGRESS, then LAUNCHED or FAILED.
    pub launch_status: String,
}

/// A job as DescribeJobs would show it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimJob {
    #[serde(rename = "jobID")]
    pub job_id: String,
    pub arn: String,
    /// PENDING, STARTED or COMPLETED.
    pub status: String,
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub created_at_ms: u64,
    pub creation_date_time: String,
    pub end_date_time: Option<String>,
    pub participating_servers: Vec<SimParticipant>,
}

/// A recovery instance as DescribeRecoveryInstances would show it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimInstance {
    #[serde(rename = "recoveryInstanceID")]
    pub recovery_instance_id: String,
    #[serde(rename = "sourceServerID")]
    pub source_server_id: String,
    #[serde(rename = "ec2InstanceID")]
    pub ec2_instance_id: String,
    pub state: FailbackState,
    /// The last failback job (`failback.failbackJobID`).
    #[serde(rename = "failbackJobID")]
    pub failback_job_id: Option<String>,
    /// The PENDING or STARTED job holding the instance, if any.
    #[serde(rename = "activeJobID")]
    pub active_job_id: Option<String>,
    pub launch_result: LaunchResult,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Pending,
    Started,
    Completed,
}

pub(crate) struct Job {
    /// Its place among the jobs created (from 0).
    pub index: usize,
    pub id: String,
    pub arn: String,
    pub created: Instant,
    pub servers: Vec<Server>,
    pub tags: BTreeMap<String, String>,
    /// FAILBACK, START_DRILL for another tool's drill, or TERMINATE_RECOVERY_INSTANCES.
    pub initiated_by: &'static str,
    /// LAUNCH, or TERMINATE.
    pub job_type: &'static str,
}

pub(crate) struct Server {
    /// None for a drill's source server, which has no recovery instance.
    pub recovery_instance_id: Option<String>,
    pub source_server_id: String,
    pub result: LaunchResult,
    /// The job log event a failed launch logs.
    pub failure_event: Option<String>,
}

pub(crate) struct Inst {
    pub spec: FleetInstance,
    /// Set by a launch: the failback state is derived from that job until a test sets a state.
    pub follows_job: bool,
    pub last_job: Option<usize>,
    pub initiated: Option<Instant>,
    /// What Describe calls still show until the latest launch becomes visible.
    pub before_launch: Option<PreLaunchView>,
    /// When the fleet was loaded: the instance's replication is timed from here.
    pub since: Instant,
    /// DisconnectRecoveryInstance was called: replication stopped, the instance stays listed.
    pub disconnected: bool,
    /// The TerminateRecoveryInstances job it is in: once that job completes, DRS no longer has
    /// the instance.
    pub terminate_job: Option<usize>,
}

/// An instance's failback fields as they were before its latest launch, shown by Describe calls
/// until `until` (the simulator's visibility lag).
#[derive(Clone, Debug)]
pub(crate) struct PreLaunchView {
    pub state: FailbackState,
    pub failback_job_id: Option<String>,
    pub initiated: Option<Instant>,
    pub until: Instant,
}

struct ActiveFault {
    fault: Fault,
    used: u32,
    bucket: Option<(f64, Instant)>,
}

impl ActiveFault {
    fn new(fault: Fault) -> Self {
        ActiveFault {
            fault,
            used: 0,
            bucket: None,
        }
    }

    fn exhausted(&self) -> bool {
        match self.fault {
            Fault::Throttle { calls, .. }
            | Fault::InternalErrorBeforeCreate { calls }
            | Fault::InternalErrorAfterCreate { calls }
            | Fault::HangAfterAccept { calls, .. }
            | Fault::Hang { calls, .. }
            | Fault::ConnectionRefused { calls, .. }
            | Fault::AnswerWithoutParticipants { calls }
            | Fault::PutEventsDown { calls } => self.used >= calls,
            Fault::Fail { calls, after, .. } => self.used >= calls.saturating_add(after),
            Fault::FailPutEventsEntries { entries } => self.used >= entries,
            Fault::RateLimit { .. } => false,
        }
    }
}

/// What a StartFailbackLaunch that created a job must still do to its caller.
pub(crate) enum AfterCreate {
    Answer,
    InternalError,
    Hang(Duration),
    AnswerWithoutParticipants,
}

/// The state every connection (and the handle) works on.
pub(crate) struct Shared(Mutex<State>);

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Shared(Mutex::new(state))
    }

    // A panic while the lock was held leaves consistent-enough data for a simulator; keep going.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("drs-sim state")
    }
}

pub(crate) struct State {
    pub clock: Clock,
    pub quotas: Quotas,
    pub lifecycle: Lifecycle,
    pub page_size: usize,
    pub max_page_size: usize,
    pub latency: Option<Duration>,
    pub region: String,
    pub account_id: String,
    pub account_initialized: bool,
    pub error_details: bool,
    pub culprit_in_message_only: bool,
    pub visibility_lag: Duration,
    pub completed_jobs_without_instance_ids: bool,
    pub launch_status_stays_pending: bool,
    pub final_state_lag: Duration,
    /// Jobs run this many times faster (the lifecycle and the final-state lag are divided by it).
    time_scale: f64,
    /// [`SimConfig::started_spread`], scaled.
    started_spread: Duration,
    /// The account's old jobs, oldest first.
    pub history: Vec<ArchivedJob>,
    pub history_by_id: HashMap<String, usize>,
    initial_fleet: Fleet,
    pub instances: Vec<Inst>,
    pub by_id: HashMap<String, usize>,
    pub jobs: Vec<Job>,
    pub job_by_id: HashMap<String, usize>,
    faults: Vec<ActiveFault>,
    pub calls: Vec<CallRecord>,
    /// Calls that have arrived so far (recorded or not yet).
    pub arrivals: u64,
    pub events: Vec<DeliveredEvent>,
}

impl State {
    pub(crate) fn new(config: SimConfig) -> Self {
        let mut state = State {
            clock: Clock::new(),
            quotas: config.quotas,
            lifecycle: config.lifecycle.scaled(config.time_scale),
            started_spread: config
                .started_spread
                .div_f64(crate::config::sane_scale(config.time_scale)),
            page_size: config.page_size,
            max_page_size: config.max_page_size,
            latency: config.latency,
            region: config.region,
            account_id: config.account_id,
            account_initialized: config.account_initialized,
            error_details: config.error_details,
            culprit_in_message_only: config.culprit_in_message_only,
            visibility_lag: config.visibility_lag,
            completed_jobs_without_instance_ids: config.completed_jobs_without_instance_ids,
            launch_status_stays_pending: config.launch_status_stays_pending,
            final_state_lag: config
                .final_state_lag
                .div_f64(sane_scale(config.time_scale)),
            time_scale: sane_scale(config.time_scale),
            history: Vec::new(),
            history_by_id: HashMap::new(),
            initial_fleet: config.fleet,
            instances: Vec::new(),
            by_id: HashMap::new(),
            jobs: Vec::new(),
            job_by_id: HashMap::new(),
            faults: config.faults.into_iter().map(ActiveFault::new).collect(),
            calls: Vec::new(),
            arrivals: 0,
            events: Vec::new(),
        };
        state.load_fleet();
        (state.history, state.history_by_id) =
            history::generate(config.history, state.clock.start_wall());
        state
    }

    fn load_fleet(&mut self) {
        self.instances = self
            .initial_fleet
            .instances()
            .iter()
            .map(|spec| Inst {
                spec: spec.clone(),
                follows_job: false,
                last_job: None,
                initiated: None,
                before_launch: None,
                since: Instant::now(),
                disconnected: false,
                terminate_job: None,
            })
            .collect();
        self.by_id = self
            .instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.spec.recovery_instance_id.clone(), i))
            .collect();
    }

    /// Back to the configured fleet, no jobs, calls, events or faults.
    pub(crate) fn reset(&mut self) {
        self.load_fleet();
        self.jobs.clear();
        self.job_by_id.clear();
        self.faults.clear();
        self.calls.clear();
        self.events.clear();
    }

    // Lifecycle.

    pub(crate) fn phase(&self, job: &Job, now: Instant) -> Phase {
        let elapsed = now.saturating_duration_since(job.created);
        if elapsed < self.lifecycle.pending {
            Phase::Pending
        } else if elapsed < self.lifecycle.pending + self.started_of(job) {
            Phase::Started
        } else {
            Phase::Completed
        }
    }

    pub(crate) fn job_end(&self, job: &Job) -> Instant {
        job.created + self.lifecycle.pending + self.started_of(job)
    }

    /// How long this job stays STARTED: the lifecycle's, plus its share of the spread.
    fn started_of(&self, job: &Job) -> Duration {
        if self.started_spread.is_zero() {
            return self.lifecycle.started;
        }
        // The golden ratio's low-discrepancy sequence: evenly spread, the same every run.
        let share = (job.index as f64 * 0.618_033_988_749_895).fract();
        self.lifecycle.started + self.started_spread.mul_f64(share)
    }

    /// The instance's launch or terminate job, while it runs.
    pub(crate) fn active_job(&self, inst: &Inst, now: Instant) -> Option<&Job> {
        [inst.last_job, inst.terminate_job]
            .into_iter()
            .flatten()
            .map(|j| &self.jobs[j])
            .find(|job| self.phase(job, now) != Phase::Completed)
    }

    /// Terminated: its terminate job has completed, and DRS has deleted it.
    pub(crate) fn gone(&self, inst: &Inst, now: Instant) -> bool {
        inst.terminate_job
            .is_some_and(|j| self.phase(&self.jobs[j], now) == Phase::Completed)
    }

    /// When the instances of a job show their final failback state.
    fn final_at(&self, job: &Job) -> Instant {
        self.job_end(job) + self.final_state_lag
    }

    /// Failback state: the configured one, or while and after a launch, the launch's:
    /// FAILBACK_IN_PROGRESS while the job is PENDING or STARTED (and the final-state lag after),
    /// then FAILBACK_COMPLETED (LAUNCHED) or FAILBACK_ERROR (FAILED, TERMINATED).
    pub(crate) fn effective_state(&self, inst: &Inst, now: Instant) -> FailbackState {
        if let (true, Some(j)) = (inst.follows_job, inst.last_job) {
            let job = &self.jobs[j];
            if now < self.final_at(job) {
                return FailbackState::FailbackInProgress;
            }
            let result = job
                .servers
                .iter()
                .find(|s| s.recovery_instance_id.as_ref() == Some(&inst.spec.recovery_instance_id))
                .map_or(LaunchResult::Launched, |s| s.result);
            return match result {
                LaunchResult::Launched => FailbackState::FailbackCompleted,
                LaunchResult::Failed
                | LaunchResult::Terminated
                | LaunchResult::LaunchedThenFailed => FailbackState::FailbackError,
            };
        }
        match self.replication(inst, now).map(|view| view.failback_state) {
            Some(Readiness::NotStarted) => FailbackState::FailbackNotStarted,
            Some(Readiness::NotReady) => FailbackState::FailbackNotReadyForLaunch,
            Some(Readiness::Ready) => FailbackState::FailbackReadyForLaunch,
            None => inst.spec.state,
        }
    }

    /// The instance's failback replication as it stands now, when it has one: its simulated
    /// seconds run `time_scale` times faster, like the jobs'.
    pub(crate) fn replication(&self, inst: &Inst, now: Instant) -> Option<ReplicationView> {
        let replication = inst.spec.replication.as_ref()?;
        let elapsed = now.saturating_duration_since(inst.since).as_secs_f64() * self.time_scale;
        Some(replication.view(elapsed as u64))
    }

    /// Simulated seconds as the simulator's (faster) clock runs them.
    pub(crate) fn sim_duration(&self, simulated_seconds: u64) -> Duration {
        Duration::from_secs(simulated_seconds).div_f64(self.time_scale)
    }

    /// An instance's failback fields as Describe calls show them now: the latest launch's only
    /// once the visibility lag has passed.
    pub(crate) fn shown(
        &self,
        inst: &Inst,
        now: Instant,
    ) -> (FailbackState, Option<String>, Option<Instant>) {
        match &inst.before_launch {
            Some(view) if now < view.until => {
                (view.state, view.failback_job_id.clone(), view.initiated)
            }
            _ => (
                self.effective_state(inst, now),
                inst.spec.failback_job_id.clone(),
                inst.initiated,
            ),
        }
    }

    pub(crate) fn launch_status(&self, job: &Job, server: &Server, now: Instant) -> &'static str {
        if self.launch_status_stays_pending && now < self.final_at(job) {
            return "PENDING";
        }
        match self.phase(job, now) {
            Phase::Pending => "PENDING",
            Phase::Started => "IN_PROGRESS",
            Phase::Completed => server.result.as_str(),
        }
    }

    pub(crate) fn status_str(phase: Phase) -> &'static str {
        match phase {
            Phase::Pending => "PENDING",
            Phase::Started => "STARTED",
            Phase::Completed => "COMPLETED",
        }
    }

    // Test controls.

    pub(crate) fn set_state(&mut self, id: &str, state: FailbackState) -> bool {
        let Some(&i) = self.by_id.get(id) else {
            return false;
        };
        let inst = &mut self.instances[i];
        inst.spec.state = state;
        inst.spec.replication = None;
        inst.follows_job = false;
        true
    }

    /// `id` replicates back from `now`: its failback state follows the replication again.
    pub(crate) fn set_replication(
        &mut self,
        id: &str,
        replication: Replication,
        now: Instant,
    ) -> bool {
        let Some(&i) = self.by_id.get(id) else {
            return false;
        };
        let inst = &mut self.instances[i];
        inst.spec.replication = Some(replication);
        inst.follows_job = false;
        inst.since = now;
        true
    }

    pub(crate) fn set_tags(&mut self, id: &str, tags: BTreeMap<String, String>) -> bool {
        let Some(&i) = self.by_id.get(id) else {
            return false;
        };
        self.instances[i].spec.tags = tags;
        true
    }

    pub(crate) fn set_launch_result(&mut self, id: &str, result: LaunchResult) -> bool {
        let Some(&i) = self.by_id.get(id) else {
            return false;
        };
        self.instances[i].spec.launch_result = result;
        true
    }

    /// Changes the unkind settings while the simulator runs.
    pub(crate) fn apply(&mut self, settings: Settings) -> Result<(), String> {
        let seconds = |field: &str, value: f64| {
            Duration::try_from_secs_f64(value).map_err(|e| format!("{field} {value}: {e}"))
        };
        if let Some(lag) = settings.visibility_lag_seconds {
            self.visibility_lag = seconds("visibilityLagSeconds", lag)?;
        }
        if let Some(lag) = settings.final_state_lag_seconds {
            self.final_state_lag = seconds("finalStateLagSeconds", lag)?.div_f64(self.time_scale);
        }
        if let Some(details) = settings.error_details {
            self.error_details = details;
        }
        if let Some(only) = settings.culprit_in_message_only {
            self.culprit_in_message_only = only;
        }
        if let Some(without) = settings.completed_jobs_without_instance_ids {
            self.completed_jobs_without_instance_ids = without;
        }
        if let Some(pending) = settings.launch_status_stays_pending {
            self.launch_status_stays_pending = pending;
        }
        if let Some(history) = settings.history {
            (self.history, self.history_by_id) =
                history::generate(history, self.clock.start_wall());
        }
        Ok(())
    }

    /// The next launch of `id` fails with this job log event.
    pub(crate) fn set_failure(&mut self, id: &str, event: &str) -> bool {
        let Some(&i) = self.by_id.get(id) else {
            return false;
        };
        let spec = &mut self.instances[i].spec;
        spec.launch_result = LaunchResult::Failed;
        spec.failure_event = Some(event.to_owned());
        true
    }

    // Faults.

    pub(crate) fn inject(&mut self, fault: Fault) {
        self.faults.push(ActiveFault::new(fault));
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub(crate) fn faults(&self) -> Vec<Fault> {
        self.faults.iter().map(|f| f.fault.clone()).collect()
    }

    /// Whether the next call of `op` cannot connect (a `ConnectionRefused` fault).
    pub(crate) fn refuse_connection(&mut self, op: Operation) -> bool {
        let Some(f) = self.faults.iter_mut().find(|f| {
            matches!(f.fault, Fault::ConnectionRefused { operation, calls } if operation == op && f.used < calls)
        }) else {
            return false;
        };
        f.used += 1;
        self.faults.retain(|f| !f.exhausted());
        true
    }

    /// How long to hold a call of `op` before handling it at all, and whether it is then lost
    /// (a `Hang` fault).
    pub(crate) fn hang_before(&mut self, op: Operation) -> Option<(Duration, bool)> {
        let f = self.faults.iter_mut().find(
            |f| matches!(f.fault, Fault::Hang { operation, calls, .. } if operation == op && f.used < calls),
        )?;
        f.used += 1;
        let Fault::Hang { seconds, lost, .. } = f.fault else {
            return None;
        };
        self.faults.retain(|f| !f.exhausted());
        Some((
            Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO),
            lost,
        ))
    }

    /// A fault that refuses the call before it does anything: throttling, rate limit, a 500
    /// before create, PutEvents down.
    pub(crate) fn fault_before(&mut self, op: Operation, now: Instant) -> Option<ApiError> {
        let mut fired = None;
        for f in &mut self.faults {
            fired = match f.fault {
                Fault::Throttle {
                    operation,
                    calls,
                    retry_after_seconds,
                } if operation == op && f.used < calls => {
                    f.used += 1;
                    Some(throttle(op, retry_after_seconds))
                }
                Fault::RateLimit {
                    operation,
                    per_second,
                    burst,
                } if operation == op => {
                    let (tokens, last) = f.bucket.unwrap_or((f64::from(burst), now));
                    let refilled = (tokens
                        + now.saturating_duration_since(last).as_secs_f64() * per_second)
                        .min(f64::from(burst));
                    if refilled >= 1.0 {
                        f.bucket = Some((refilled - 1.0, now));
                        None
                    } else {
                        f.bucket = Some((refilled, now));
                        let wait = ((1.0 - refilled) / per_second)
                            .ceil()
                            .clamp(1.0, f64::from(u32::MAX));
                        Some(throttle(op, wait as u32))
                    }
                }
                Fault::Fail {
                    operation,
                    calls,
                    after,
                    status,
                    ref error_type,
                    ref message,
                    ref members,
                    ref retry_after,
                } if operation == op && f.used < calls.saturating_add(after) => {
                    f.used += 1;
                    (f.used > after).then(|| {
                        ApiError::custom(
                            op.is_drs(),
                            status,
                            error_type.clone(),
                            message.clone(),
                            members,
                            retry_after.clone(),
                        )
                    })
                }
                Fault::InternalErrorBeforeCreate { calls }
                    if op == Operation::StartFailbackLaunch && f.used < calls =>
                {
                    f.used += 1;
                    Some(ApiError::internal(
                        "Internal server error (simulated, before the job was created)",
                    ))
                }
                Fault::PutEventsDown { calls } if op == Operation::PutEvents && f.used < calls => {
                    f.used += 1;
                    Some(ApiError::events(
                        500,
                        "InternalException",
                        "Internal service error (simulated)",
                    ))
                }
                _ => None,
            };
            if fired.is_some() {
                break;
            }
        }
        self.faults.retain(|f| !f.exhausted());
        fired
    }

    pub(crate) fn fault_after_create(&mut self) -> AfterCreate {
        let mut what = AfterCreate::Answer;
        for f in &mut self.faults {
            match f.fault {
                Fault::InternalErrorAfterCreate { calls } if f.used < calls => {
                    what = AfterCreate::InternalError;
                }
                Fault::AnswerWithoutParticipants { calls } if f.used < calls => {
                    what = AfterCreate::AnswerWithoutParticipants;
                }
                Fault::HangAfterAccept { calls, seconds } if f.used < calls => {
                    what = AfterCreate::Hang(
                        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO),
                    );
                }
                _ => continue,
            }
            f.used += 1;
            break;
        }
        self.faults.retain(|f| !f.exhausted());
        what
    }

    /// Whether the next otherwise-accepted PutEvents entry must fail with InternalFailure.
    pub(crate) fn fail_entry(&mut self) -> bool {
        let hit = self.faults.iter_mut().find(
            |f| matches!(f.fault, Fault::FailPutEventsEntries { entries } if f.used < entries),
        );
        let Some(f) = hit else { return false };
        f.used += 1;
        self.faults.retain(|f| !f.exhausted());
        true
    }

    // Snapshots for the handle and /_sim.

    pub(crate) fn sim_jobs(&self, now: Instant) -> Vec<SimJob> {
        self.jobs
            .iter()
            .map(|job| {
                let phase = self.phase(job, now);
                SimJob {
                    job_id: job.id.clone(),
                    arn: job.arn.clone(),
                    status: State::status_str(phase).to_owned(),
                    recovery_instance_ids: job
                        .servers
                        .iter()
                        .filter_map(|s| s.recovery_instance_id.clone())
                        .collect(),
                    tags: job.tags.clone(),
                    created_at_ms: self.clock.ms(job.created),
                    creation_date_time: self.clock.iso(job.created),
                    end_date_time: (phase == Phase::Completed)
                        .then(|| self.clock.iso(self.job_end(job))),
                    participating_servers: job
                        .servers
                        .iter()
                        .map(|s| SimParticipant {
                            recovery_instance_id: s
                                .recovery_instance_id
                                .clone()
                                .unwrap_or_default(),
                            source_server_id: s.source_server_id.clone(),
                            launch_status: self.launch_status(job, s, now).to_owned(),
                        })
                        .collect(),
                }
            })
            .collect()
    }

    pub(crate) fn sim_instances(&self, now: Instant) -> Vec<SimInstance> {
        self.instances
            .iter()
            .filter(|inst| !self.gone(inst, now))
            .map(|inst| SimInstance {
                recovery_instance_id: inst.spec.recovery_instance_id.clone(),
                source_server_id: inst.spec.source_server_id.clone(),
                ec2_instance_id: inst.spec.ec2_instance_id.clone(),
                state: self.effective_state(inst, now),
                failback_job_id: inst.spec.failback_job_id.clone(),
                active_job_id: self.active_job(inst, now).map(|j| j.id.clone()),
                launch_result: inst.spec.launch_result,
            })
            .collect()
    }
}

fn throttle(op: Operation, retry_after_seconds: u32) -> ApiError {
    if op.is_drs() {
        ApiError::throttling(retry_after_seconds, "Rate exceeded (simulated)")
    } else {
        ApiError::events_throttling(retry_after_seconds)
    }
}
