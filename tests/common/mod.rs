//! Test doubles at the core's trait boundary: a scripted DRS and a recording publisher. They stand
//! in for the SDK adapters only; everything from the request to the answer is the real code.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use drs_failback::config::Config;
use drs_failback::drs::{
    DescribeError, Drs, JobRecord, LaunchError, LaunchedJob, RecoveryInstance,
};
use drs_failback::handler::Failback;
use drs_failback::outcome::Answer;
use drs_failback::publish::{EntryStatus, EventEntry, EventPublisher, PublishError};
use drs_failback::request::Tags;
use serde_json::Value;
use tokio::time::{Instant, sleep};

/// What the scripted DRS does on one `StartFailbackLaunch` call.
#[derive(Clone, Debug)]
pub enum Step {
    Launch,
    /// Refuse or fail without creating anything.
    Fail(LaunchError),
    /// Hold the call open this long, then create the job (a slow answer).
    Hang(Duration),
    /// Create the job, then fail: the ambiguous case (a 500 after the job exists).
    CreateThenFail(LaunchError),
    /// Create the job, then hold the answer this long (a hang after accepting).
    CreateThenHang(Duration),
}

#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub ids: Vec<String>,
    pub tags: Vec<(String, String)>,
}

/// DRS as the core sees it, with just enough state for pre-flight and reconciliation: every
/// well-formed id is a ready recovery instance unless marked missing or given another state;
/// launching puts the instances in a job tagged with the run id. Each launch call takes the next
/// scripted step (then `Launch` forever); a chunk holding a "poisoned" id is refused with
/// ConflictException naming it (or, when `poison_silently`, without naming it).
#[derive(Default)]
pub struct FakeDrs {
    script: Mutex<VecDeque<Step>>,
    poisoned: Mutex<HashSet<String>>,
    pub name_culprits: Mutex<bool>,
    missing: Mutex<HashSet<String>>,
    states: Mutex<HashMap<String, String>>,
    instance_job: Mutex<HashMap<String, String>>,
    pub calls: Mutex<Vec<Call>>,
    pub reads: Mutex<Vec<&'static str>>,
    /// The next this-many reads fail (as a 5xx would).
    pub failing_reads: Mutex<u32>,
    /// Every read after the first launch call fails: DRS's state cannot be read back.
    pub reads_fail_after_first_launch: Mutex<bool>,
    pub jobs: Mutex<Vec<JobRecord>>,
    /// source server id → recovery instance id
    sources: Mutex<HashMap<String, String>>,
    /// Jobs report COMPLETED this long after they were created (never, when unset).
    pub job_lifetime: Mutex<Option<Duration>>,
    created_at: Mutex<HashMap<String, Instant>>,
    /// A token bucket on StartFailbackLaunch: (calls per second, burst, tokens, last refill).
    rate_limit: Mutex<Option<(f64, f64, f64, Instant)>>,
    pub throttled_calls: Mutex<usize>,
}

impl FakeDrs {
    pub fn scripted(steps: impl IntoIterator<Item = Step>) -> Self {
        let drs = FakeDrs::default();
        drs.script.lock().unwrap().extend(steps);
        *drs.name_culprits.lock().unwrap() = true;
        drs
    }

    pub fn poison(&self, id: &str) {
        self.poisoned.lock().unwrap().insert(id.to_owned());
    }

    /// Admit `per_second` launches (bursts of `burst`) and throttle the rest with Retry-After 1.
    pub fn rate_limit(&self, per_second: f64, burst: f64) {
        *self.rate_limit.lock().unwrap() = Some((per_second, burst, burst, Instant::now()));
    }

    pub fn link(&self, source_server_id: &str, recovery_instance_id: &str) {
        self.sources
            .lock()
            .unwrap()
            .insert(source_server_id.to_owned(), recovery_instance_id.to_owned());
    }

    pub fn remove(&self, id: &str) {
        self.missing.lock().unwrap().insert(id.to_owned());
    }

    pub fn set_state(&self, id: &str, state: &str) {
        self.states
            .lock()
            .unwrap()
            .insert(id.to_owned(), state.to_owned());
    }

    /// A job of another run (or none) already holds these instances.
    pub fn add_job(&self, run_id: Option<&str>, status: &str, ids: &[String]) -> String {
        let mut jobs = self.jobs.lock().unwrap();
        let job_id = format!("drsjob-{:017}", jobs.len() + 1);
        self.created_at
            .lock()
            .unwrap()
            .insert(job_id.clone(), Instant::now());
        for id in ids {
            self.instance_job
                .lock()
                .unwrap()
                .insert(id.clone(), job_id.clone());
        }
        jobs.push(JobRecord {
            arn: Some(format!("arn:aws:drs:us-east-1:111122223333:job/{job_id}")),
            job_id: job_id.clone(),
            status: status.into(),
            run_id: run_id.map(str::to_owned),
            recovery_instance_ids: ids.to_vec(),
        });
        job_id
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn reads_of(&self, what: &str) -> usize {
        self.reads
            .lock()
            .unwrap()
            .iter()
            .filter(|r| **r == what)
            .count()
    }

    pub fn created_jobs(&self) -> Vec<JobRecord> {
        self.jobs.lock().unwrap().clone()
    }

    fn create_job(&self, ids: &[String], tags: &Tags) -> LaunchedJob {
        let job_id = self.add_job(tags.get("drs-failback:run-id"), "PENDING", ids);
        for id in ids {
            self.set_state(id, "FAILBACK_IN_PROGRESS");
        }
        let job = self.jobs.lock().unwrap().last().cloned().unwrap();
        assert_eq!(job.job_id, job_id);
        job.into()
    }

    fn read(&self, what: &'static str) -> Result<(), DescribeError> {
        self.reads.lock().unwrap().push(what);
        let after_launch = *self.reads_fail_after_first_launch.lock().unwrap()
            && !self.calls.lock().unwrap().is_empty();
        let mut failing = self.failing_reads.lock().unwrap();
        if after_launch || *failing > 0 {
            *failing = failing.saturating_sub(1);
            return Err(DescribeError::Failed {
                error: "HTTP 500 InternalServerException: read failed".into(),
            });
        }
        Ok(())
    }
}

impl Drs for FakeDrs {
    async fn start_failback_launch(
        &self,
        ids: &[String],
        tags: &Tags,
    ) -> Result<LaunchedJob, LaunchError> {
        self.calls.lock().unwrap().push(Call {
            at: Instant::now(),
            ids: ids.to_vec(),
            tags: tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        });
        let culprit = {
            let poisoned = self.poisoned.lock().unwrap();
            ids.iter().find(|id| poisoned.contains(*id)).cloned()
        };
        if let Some(culprit) = culprit {
            let named = *self.name_culprits.lock().unwrap();
            return Err(LaunchError::Refused {
                code: "ConflictException".into(),
                message: if named {
                    format!("{culprit} is not ready for failback")
                } else {
                    "a recovery instance is not ready for failback".into()
                },
                resource_id: named.then_some(culprit),
                fields: vec![],
            });
        }
        if let Some((rate, burst, tokens, last)) = self.rate_limit.lock().unwrap().as_mut() {
            let now = Instant::now();
            *tokens = (*tokens + (now - *last).as_secs_f64() * *rate).min(*burst);
            *last = now;
            if *tokens < 1.0 {
                *self.throttled_calls.lock().unwrap() += 1;
                return Err(LaunchError::Throttled {
                    retry_after: Some(Duration::from_secs(1)),
                    message: "Rate exceeded".into(),
                });
            }
            *tokens -= 1.0;
        }
        let step = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Step::Launch);
        match step {
            Step::Launch => Ok(self.create_job(ids, tags)),
            Step::Fail(error) => Err(error),
            Step::Hang(duration) => {
                sleep(duration).await;
                Ok(self.create_job(ids, tags))
            }
            Step::CreateThenFail(error) => {
                self.create_job(ids, tags);
                Err(error)
            }
            Step::CreateThenHang(duration) => {
                let job = self.create_job(ids, tags);
                sleep(duration).await;
                Ok(job)
            }
        }
    }

    async fn describe_recovery_instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<RecoveryInstance>, DescribeError> {
        assert!(
            ids.len() <= 200,
            "DescribeRecoveryInstances takes at most 200 ids"
        );
        self.read("DescribeRecoveryInstances")?;
        Ok(self.instances(ids))
    }

    async fn describe_recovery_instances_of_source_servers(
        &self,
        source_server_ids: &[String],
    ) -> Result<Vec<RecoveryInstance>, DescribeError> {
        assert!(
            source_server_ids.len() <= 200,
            "DescribeRecoveryInstances takes at most 200 ids"
        );
        self.read("DescribeRecoveryInstances")?;
        let ids: Vec<String> = {
            let sources = self.sources.lock().unwrap();
            source_server_ids
                .iter()
                .filter_map(|s| sources.get(s).cloned())
                .collect()
        };
        Ok(self.instances(&ids))
    }

    async fn describe_jobs(&self, job_ids: &[String]) -> Result<Vec<JobRecord>, DescribeError> {
        self.read("DescribeJobs")?;
        let lifetime = *self.job_lifetime.lock().unwrap();
        let created_at = self.created_at.lock().unwrap();
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|job| job_ids.is_empty() || job_ids.contains(&job.job_id))
            .cloned()
            .map(|mut job| {
                let done = match (lifetime, created_at.get(&job.job_id)) {
                    (Some(lifetime), Some(at)) => Instant::now() - *at >= lifetime,
                    _ => false,
                };
                if done {
                    job.status = "COMPLETED".into();
                }
                job
            })
            .collect())
    }
}

impl FakeDrs {
    fn instances(&self, ids: &[String]) -> Vec<RecoveryInstance> {
        let missing = self.missing.lock().unwrap();
        let states = self.states.lock().unwrap();
        let jobs = self.instance_job.lock().unwrap();
        let sources = self.sources.lock().unwrap();
        ids.iter()
            .filter(|id| !missing.contains(*id))
            .map(|id| RecoveryInstance {
                recovery_instance_id: id.clone(),
                source_server_id: sources
                    .iter()
                    .find(|(_, r)| *r == id)
                    .map(|(s, _)| s.clone()),
                failback_state: states
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| "FAILBACK_READY_FOR_LAUNCH".into()),
                failback_job_id: jobs.get(id).cloned(),
            })
            .collect()
    }
}

/// A publisher that keeps what it was given; `fail_calls` whole calls fail first, then the
/// first `fail_entries` entries of the next call fail one by one.
#[derive(Default)]
pub struct RecordingPublisher {
    pub fail_calls: Mutex<usize>,
    pub fail_entries: Mutex<usize>,
    pub calls: Mutex<Vec<usize>>,
    pub delivered: Mutex<Vec<EventEntry>>,
}

impl RecordingPublisher {
    pub fn delivered(&self) -> Vec<EventEntry> {
        self.delivered.lock().unwrap().clone()
    }

    pub fn delivered_of(&self, detail_type: &str) -> Vec<Value> {
        self.delivered()
            .into_iter()
            .filter(|entry| entry.detail_type == detail_type)
            .map(|entry| serde_json::from_str(&entry.detail).unwrap())
            .collect()
    }
}

impl EventPublisher for RecordingPublisher {
    fn bus_name(&self) -> &str {
        "drs-failback-results"
    }

    async fn put_events(&self, entries: &[EventEntry]) -> Result<Vec<EntryStatus>, PublishError> {
        self.calls.lock().unwrap().push(entries.len());
        {
            let mut fail_calls = self.fail_calls.lock().unwrap();
            if *fail_calls > 0 {
                *fail_calls -= 1;
                return Err(PublishError("ServiceUnavailable".into()));
            }
        }
        let mut statuses = Vec::new();
        for entry in entries {
            let mut fail_entries = self.fail_entries.lock().unwrap();
            if *fail_entries > 0 {
                *fail_entries -= 1;
                statuses.push(EntryStatus::Failed {
                    code: "InternalFailure".into(),
                    message: "try again".into(),
                });
            } else {
                self.delivered.lock().unwrap().push(entry.clone());
                statuses.push(EntryStatus::Delivered);
            }
        }
        Ok(statuses)
    }
}

pub fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_pairs(pairs).expect("test config is valid")
}

/// The real handler over the doubles, with a fixed jitter so retry waits are exact.
pub fn failback(
    config: Config,
    drs: FakeDrs,
    jitter: f64,
) -> Failback<FakeDrs, RecordingPublisher> {
    let mut failback = Failback::new(config, drs, RecordingPublisher::default());
    failback.jitter = Box::new(move || jitter);
    failback.new_run_id = || "run-generated".to_owned();
    failback
}

pub fn ids(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("i-{n:017x}")).collect()
}

pub fn request(ids: &[String]) -> Value {
    serde_json::json!({ "runId": "run-1", "recoveryInstanceIDs": ids, "tags": {"Wave": "1"} })
}

pub fn in_minutes(minutes: u64) -> Instant {
    Instant::now() + Duration::from_secs(minutes * 60)
}

/// An invocation as the Lambda runtime hands it over: request id, and a deadline `seconds` away.
pub fn lambda_event(
    payload: Value,
    request_id: &str,
    seconds: u64,
) -> lambda_runtime::LambdaEvent<Value> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    context.deadline = now + seconds * 1000;
    lambda_runtime::LambdaEvent::new(payload, context)
}

/// A current-thread runtime on paused time, for tests that set up something (a proptest case,
/// a log subscriber) before entering async code.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The promise, checked on every answer: each distinct requested id has exactly one outcome,
/// no id is in two jobs, every job DRS created is in the answer, and the counts add up.
pub fn assert_promise(requested: &[String], answer: &Answer, drs: &FakeDrs) {
    let mut outcome_of: HashMap<&str, &str> = HashMap::new();
    let launched = answer
        .jobs
        .iter()
        .flat_map(|job| &job.recovery_instance_ids)
        .map(|id| (id, "launched"));
    let others = answer
        .not_launched
        .iter()
        .flat_map(|g| &g.recovery_instance_ids)
        .map(|id| (id, "not launched"));
    for (id, outcome) in launched.chain(others) {
        assert!(
            outcome_of.insert(id, outcome).is_none(),
            "{id} has two outcomes"
        );
    }
    let distinct: HashSet<&String> = requested.iter().collect();
    assert_eq!(
        outcome_of.len(),
        distinct.len(),
        "every requested id has an outcome"
    );
    assert_eq!(
        answer.counts.launched
            + answer.counts.rejected
            + answer.counts.deferred
            + answer.counts.skipped,
        distinct.len()
    );
    let created: HashSet<String> = drs
        .created_jobs()
        .into_iter()
        .filter(|j| j.run_id.as_deref() == Some(answer.run_id.as_str()))
        .map(|j| j.job_id)
        .collect();
    let answered: HashSet<String> = answer.jobs.iter().map(|j| j.job_id.clone()).collect();
    assert_eq!(
        created, answered,
        "every job DRS created for this run is in the answer"
    );
    let mut launched_once = HashSet::new();
    for job in drs.created_jobs() {
        for id in job.recovery_instance_ids {
            assert!(launched_once.insert(id.clone()), "{id} is in two jobs");
        }
    }
    let deferred: Vec<&String> = answer
        .not_launched
        .iter()
        .filter(|g| g.outcome == drs_failback::outcome::OutcomeKind::Deferred)
        .flat_map(|g| &g.recovery_instance_ids)
        .collect();
    assert_eq!(deferred.len(), answer.deferred_recovery_instance_ids.len());
    assert_eq!(answer.complete, deferred.is_empty());
}
