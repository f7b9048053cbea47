//! Wire-level test support: the real handler, the real AWS SDK clients over HTTP, the in-process
//! simulator behind them, and the promise checked from the simulator's own records rather than
//! from what the function says about itself.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use drs_failback::aws::drs::SdkDrs;
use drs_failback::aws::eventbridge::SdkEventBridge;
use drs_failback::config::Config;
use drs_failback::events::{DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_RUN_COMPLETED};
use drs_failback::handler::Failback;
use drs_failback::outcome::{Answer, OutcomeKind};
use drs_failback::request::RUN_ID_TAG_KEY;
use drs_sim::{CallRecord, FailbackState, Fleet, Operation, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};
use tokio::time::Instant;

pub type WireFailback = Failback<SdkDrs, SdkEventBridge>;

pub const RUN_ID: &str = "run-wire";

pub async fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config).await.expect("simulator starts")
}

pub fn ready(n: usize) -> Fleet {
    Fleet::generated(n, FailbackState::FailbackReadyForLaunch)
}

pub fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_pairs(pairs).expect("test config is valid")
}

/// The handler as `main` wires it, but against the simulator and with jitter 0, so every wait is
/// exactly the floor the policy allows (Retry-After, or nothing).
pub async fn failback(sim: &SimHandle, pairs: &[(&str, &str)]) -> WireFailback {
    let config = config(pairs);
    // `sdk_config` only: static dummy credentials, fixed region, no instance-metadata probing.
    let sdk = drs_sim::sdk_config(&sim.endpoint()).await;
    let bus = config.event_bus_name.clone();
    let mut failback = Failback::new(config, SdkDrs::new(&sdk), SdkEventBridge::new(&sdk, bus));
    failback.jitter = Box::new(|| 0.0);
    failback.new_run_id = || "run-generated".to_owned();
    failback
}

pub fn request(ids: &[String]) -> Value {
    json!({ "runId": RUN_ID, "recoveryInstanceIDs": ids, "tags": {"Wave": "1"} })
}

pub fn in_minutes(minutes: u64) -> Instant {
    Instant::now() + Duration::from_secs(minutes * 60)
}

pub fn calls_of(sim: &SimHandle, operation: Operation) -> Vec<CallRecord> {
    sim.calls()
        .into_iter()
        .filter(|c| c.operation == operation)
        .collect()
}

/// Ids of the instances reported in one outcome kind.
pub fn ids_with(answer: &Answer, kind: OutcomeKind) -> Vec<String> {
    if kind == OutcomeKind::Launched {
        return answer
            .jobs
            .iter()
            .flat_map(|j| j.recovery_instance_ids.clone())
            .collect();
    }
    answer
        .not_launched
        .iter()
        .filter(|g| g.outcome == kind)
        .flat_map(|g| g.recovery_instance_ids.clone())
        .collect()
}

/// `(outcome, reason)` of one instance in the answer.
pub fn outcome_of(answer: &Answer, id: &str) -> Option<(OutcomeKind, String)> {
    if answer
        .jobs
        .iter()
        .any(|j| j.recovery_instance_ids.iter().any(|i| i == id))
    {
        return Some((OutcomeKind::Launched, String::new()));
    }
    answer
        .not_launched
        .iter()
        .find(|g| g.recovery_instance_ids.iter().any(|i| i == id))
        .map(|g| (g.outcome, g.reason.clone()))
}

/// The DRS API model's `RecoveryInstanceID`: `i-[0-9a-fA-F]{8,}`, 10–19 characters. Spelled out
/// here rather than borrowed from the function, so the check does not share its bugs.
pub fn well_formed(id: &str) -> bool {
    (10..=19).contains(&id.len())
        && id.starts_with("i-")
        && id[2..].len() >= 8
        && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Jobs the simulator holds that carry `run_id`'s tag: the jobs this run (or an earlier
/// delivery of it) created.
pub fn sim_jobs_of(sim: &SimHandle, run_id: &str) -> Vec<drs_sim::SimJob> {
    sim.jobs()
        .into_iter()
        .filter(|j| j.tags.get(RUN_ID_TAG_KEY).map(String::as_str) == Some(run_id))
        .collect()
}

/// Nothing lost, nothing twice, checked against what the simulator recorded:
/// - every distinct requested id has exactly one outcome in the answer, and no other id has one;
/// - the counts, `deferredRecoveryInstanceIDs` and `complete` agree with the outcomes;
/// - no instance is in two simulator jobs;
/// - every job the simulator created for this run (holding a requested id) is in the answer,
///   with the requested instances it holds reported launched in it, and every job in the answer
///   exists there;
/// - every such job is announced by a delivered `Failback Launch Job Started` event (only as
///   many may be missing as the answer admits `events.undelivered`), and so is the run summary;
/// - no malformed id ever reached the wire (StartFailbackLaunch or DescribeRecoveryInstances);
/// - the calls made since `since` (this invocation's) launch only requested ids, and never an
///   instance that pre-flight skipped.
pub fn assert_promise(sim: &SimHandle, since: usize, requested: &[String], answer: &Answer) {
    let run_id = answer.run_id.as_str();

    // One outcome per distinct requested id.
    let mut outcome: HashMap<&str, OutcomeKind> = HashMap::new();
    let launched = answer
        .jobs
        .iter()
        .flat_map(|j| &j.recovery_instance_ids)
        .map(|id| (id, OutcomeKind::Launched));
    let others = answer.not_launched.iter().flat_map(|g| {
        g.recovery_instance_ids
            .iter()
            .map(move |id| (id, g.outcome))
    });
    for (id, kind) in launched.chain(others) {
        assert!(
            outcome.insert(id.as_str(), kind).is_none(),
            "{id} has two outcomes in the answer"
        );
    }
    // Malformed ids are echoed at most 32 bytes long; compare on that form.
    let distinct: BTreeSet<String> = requested
        .iter()
        .map(|id| drs_failback::request::truncate_utf8(id, 32))
        .collect();
    let answered: BTreeSet<String> = outcome.keys().map(|id| id.to_string()).collect();
    assert_eq!(
        answered, distinct,
        "the answer's ids are exactly the distinct requested ids"
    );
    assert_eq!(answer.requested, distinct.len());
    assert_eq!(answer.counts.total(), distinct.len(), "the counts add up");
    let count = |kind| outcome.values().filter(|k| **k == kind).count();
    assert_eq!(answer.counts.launched, count(OutcomeKind::Launched));
    assert_eq!(answer.counts.skipped, count(OutcomeKind::Skipped));
    assert_eq!(answer.counts.rejected, count(OutcomeKind::Rejected));
    assert_eq!(answer.counts.deferred, count(OutcomeKind::Deferred));
    let deferred: BTreeSet<String> = ids_with(answer, OutcomeKind::Deferred)
        .into_iter()
        .collect();
    let deferred_list: BTreeSet<String> = answer
        .deferred_recovery_instance_ids
        .iter()
        .cloned()
        .collect();
    assert_eq!(deferred_list, deferred);
    assert_eq!(answer.complete, deferred.is_empty());

    // No instance in two jobs, whoever created them.
    let jobs = sim.jobs();
    let mut job_of: HashMap<&str, &str> = HashMap::new();
    for job in &jobs {
        for id in &job.recovery_instance_ids {
            if let Some(other) = job_of.insert(id, &job.job_id) {
                panic!("{id} is in two jobs: {other} and {}", job.job_id);
            }
        }
    }

    // This run's jobs and the answer's jobs are the same, instance for instance. A job of an
    // earlier round of the same run that holds none of these ids belongs to that round's answer.
    let ours: Vec<drs_sim::SimJob> = sim_jobs_of(sim, run_id)
        .into_iter()
        .filter(|job| {
            job.recovery_instance_ids
                .iter()
                .any(|id| distinct.contains(id))
        })
        .collect();
    let answer_jobs: HashMap<&str, &drs_failback::outcome::JobSummary> =
        answer.jobs.iter().map(|j| (j.job_id.as_str(), j)).collect();
    assert_eq!(
        answer_jobs.len(),
        answer.jobs.len(),
        "a job is listed twice in the answer"
    );
    for job in &ours {
        let reported = answer_jobs.get(job.job_id.as_str()).unwrap_or_else(|| {
            panic!(
                "job {} holding {} instances (first {:?}) was created for run {run_id} but is not in the answer, which reports them as {:?}",
                job.job_id,
                job.recovery_instance_ids.len(),
                job.recovery_instance_ids.first(),
                job.recovery_instance_ids
                    .first()
                    .and_then(|id| outcome_of(answer, id))
            )
        });
        let expected: BTreeSet<&String> = job
            .recovery_instance_ids
            .iter()
            .filter(|id| distinct.contains(*id))
            .collect();
        let got: BTreeSet<&String> = reported.recovery_instance_ids.iter().collect();
        assert_eq!(got, expected, "job {} instances", job.job_id);
        assert_eq!(reported.arn.as_deref(), Some(job.arn.as_str()));
    }
    for job in &answer.jobs {
        assert!(
            ours.iter().any(|j| j.job_id == job.job_id),
            "the answer reports job {} that the simulator did not create for {run_id}",
            job.job_id
        );
    }

    // Each job announced; the run summary too.
    let delivered = sim.delivered_events();
    let of_run = |detail_type: &str| -> Vec<Value> {
        delivered
            .iter()
            .filter(|e| e.detail_type == detail_type && e.detail["runId"] == run_id)
            .map(|e| e.detail.clone())
            .collect()
    };
    let started = of_run(DETAIL_TYPE_JOB_STARTED);
    let unannounced: Vec<&str> = answer
        .jobs
        .iter()
        .filter(|job| !started.iter().any(|d| d["jobID"] == job.job_id.as_str()))
        .map(|job| job.job_id.as_str())
        .collect();
    assert!(
        unannounced.len() <= answer.events.undelivered,
        "jobs {unannounced:?} have no delivered Job Started event, and only {} events are admitted undelivered",
        answer.events.undelivered
    );
    if answer.events.undelivered == 0 {
        assert!(
            !of_run(DETAIL_TYPE_RUN_COMPLETED).is_empty(),
            "the run summary was delivered"
        );
    }
    for detail in &started {
        let ids: BTreeSet<&str> = detail["recoveryInstanceIDs"]
            .as_array()
            .expect("Job Started lists its instances")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let job = jobs
            .iter()
            .find(|j| detail["jobID"] == j.job_id.as_str())
            .unwrap_or_else(|| panic!("event for a job the simulator never created: {detail}"));
        assert!(
            ids.iter()
                .all(|id| job.recovery_instance_ids.iter().any(|i| i == id))
        );
    }

    // The wire.
    let calls = sim.calls();
    for call in &calls {
        if matches!(
            call.operation,
            Operation::StartFailbackLaunch | Operation::DescribeRecoveryInstances
        ) {
            for id in &call.recovery_instance_ids {
                assert!(
                    well_formed(id),
                    "malformed id {id:?} sent in {}",
                    call.operation
                );
            }
        }
    }
    let skipped: HashSet<String> = ids_with(answer, OutcomeKind::Skipped).into_iter().collect();
    for call in &calls[since.min(calls.len())..] {
        if call.operation != Operation::StartFailbackLaunch {
            continue;
        }
        for id in &call.recovery_instance_ids {
            assert!(distinct.contains(id), "{id} was launched but not requested");
            assert!(
                !skipped.contains(id),
                "{id} was skipped by pre-flight, yet sent"
            );
        }
    }
}

/// The answer as the ids each job holds, for comparing two answers.
pub fn jobs_by_id(answer: &Answer) -> Vec<(String, BTreeSet<String>)> {
    let mut jobs: Vec<(String, BTreeSet<String>)> = answer
        .jobs
        .iter()
        .map(|j| {
            (
                j.job_id.clone(),
                j.recovery_instance_ids.iter().cloned().collect(),
            )
        })
        .collect();
    jobs.sort();
    jobs
}
