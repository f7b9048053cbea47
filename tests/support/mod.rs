//! What every test of the function stands on: the real handler with the real AWS SDK clients,
//! talking to `drs-sim` — over loopback HTTP ([`failback`]), or handed straight to the simulator
//! in-process ([`failback_in_process`]) where a test measures waits exactly on the paused clock —
//! and the promise checked from the simulator's own records rather than from what the function
//! says about itself.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use drs_failback::aws::drs::SdkDrs;
use drs_failback::aws::eventbridge::SdkEventBridge;
use drs_failback::config::Config;
use drs_failback::drs::tags::RUN_ID_TAG_KEY;
use drs_failback::events::{DETAIL_TYPE_JOB_STARTED, DETAIL_TYPE_RUN_COMPLETED};
use drs_failback::handler::Failback;
use drs_failback::launch::answer::LaunchAnswer;
use drs_failback::launch::outcome::OutcomeKind;
use drs_failback::track::answer::TrackAnswer;
use drs_sim::{CallRecord, FailbackState, Fleet, Operation, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};
use tokio::time::Instant;

pub type SimFailback = Failback<SdkDrs, SdkEventBridge>;

pub const RUN_ID: &str = "run-1";

pub async fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config).await.expect("simulator starts")
}

pub fn ready(n: usize) -> Fleet {
    Fleet::generated(n, FailbackState::FailbackReadyForLaunch)
}

pub fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_pairs(pairs).expect("test config is valid")
}

/// The handler as `main` wires it, against the simulator over loopback HTTP, with jitter 0 so
/// every wait is exactly the floor the policy allows (Retry-After, or nothing).
pub async fn failback(sim: &SimHandle, pairs: &[(&str, &str)]) -> SimFailback {
    // The simulator's SdkConfig only: static dummy credentials, fixed region, no
    // instance-metadata probing.
    with_jitter(
        drs_failback::aws::failback(config(pairs), &sim.sdk_config().await),
        0.0,
    )
}

/// The same, with the SDK's requests handed to the simulator in-process: no socket, so on the
/// paused clock every wait (Retry-After, backoff with this `jitter`, a hang) is measured exactly.
pub async fn failback_in_process(
    sim: &SimHandle,
    pairs: &[(&str, &str)],
    jitter: f64,
) -> SimFailback {
    with_jitter(
        drs_failback::aws::failback(config(pairs), &sim.in_process_sdk_config().await),
        jitter,
    )
}

fn with_jitter(failback: SimFailback, jitter: f64) -> SimFailback {
    failback
        .with_jitter(move || jitter)
        .with_wall_clock(drs_failback::retry::deadline::following_tokio())
        .with_run_ids(|| "run-generated".to_owned())
        // Metrics records are checked where they are the subject (tests/metrics.rs).
        .with_metrics_output(|_| {})
}

/// A simulator holding `fleet`, otherwise as configured by default.
pub async fn start_with(fleet: Fleet) -> SimHandle {
    start(SimConfig {
        fleet,
        ..SimConfig::default()
    })
    .await
}

/// Launch calls as the simulator recorded them, in arrival order.
pub fn launches(sim: &SimHandle) -> Vec<CallRecord> {
    calls_of(sim, Operation::StartFailbackLaunch)
}

/// Every recovery instance id sent in a StartFailbackLaunch call, repeats included.
pub fn launched_ids(sim: &SimHandle) -> Vec<String> {
    launches(sim)
        .into_iter()
        .flat_map(|c| c.recovery_instance_ids)
        .collect()
}

/// Delivered events of one detail-type, their details.
pub fn delivered_of(sim: &SimHandle, detail_type: &str) -> Vec<Value> {
    sim.delivered_events()
        .into_iter()
        .filter(|e| e.detail_type == detail_type)
        .map(|e| e.detail)
        .collect()
}

/// `(outcome, reason, instances)` of each group of instances not launched, in answer order.
pub fn reasons(answer: &LaunchAnswer) -> Vec<(OutcomeKind, String, usize)> {
    answer
        .not_launched
        .iter()
        .map(|g| (g.outcome, g.reason.clone(), g.recovery_instance_ids.len()))
        .collect()
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
        .expect("the clock is after 1970")
        .as_millis() as u64;
    context.deadline = now + seconds * 1000;
    lambda_runtime::LambdaEvent::new(payload, context)
}

/// A current-thread runtime on paused time, for tests that set up something (a proptest case,
/// a log subscriber) before entering async code.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
}

pub fn events_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
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
pub fn ids_with(answer: &LaunchAnswer, kind: OutcomeKind) -> Vec<String> {
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
pub fn outcome_of(answer: &LaunchAnswer, id: &str) -> Option<(OutcomeKind, String)> {
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
/// - no id is sent to StartFailbackLaunch once a job holds it (at the wire: [`no_id_resent_once_held`]);
/// - no instance is in two simulator jobs;
/// - every job the simulator created for this run (holding a requested id) is in the answer,
///   with the requested instances it holds reported launched in it, and every job in the answer
///   exists there;
/// - every such job is announced by a delivered `Failback Launch Job Started` event (only as
///   many may be missing as the answer admits `events.undelivered`), and so is the run summary;
/// - no malformed id ever reached the wire (StartFailbackLaunch or DescribeRecoveryInstances);
/// - the calls that arrived since `since` ([`SimHandle::next_call`] when this invocation began)
///   launch only requested ids, and never an instance that pre-flight skipped.
pub fn assert_promise(sim: &SimHandle, since: u64, requested: &[String], answer: &LaunchAnswer) {
    no_id_resent_once_held(sim, since, &sim.jobs());
    check_promise(sim, since, requested, answer, true);
}

/// [`assert_promise`] without its wire check, for what no caller can know in time: the calls of
/// several deliveries of one request made at once interleave (the second cannot know of the
/// first's job until DRS refuses it), and DRS may make a job after the caller gave up, or show it
/// only after the settle window — a resend then meets DRS's refusal, and the look after it finds
/// the job. The promise itself (one outcome each, no instance in two jobs, every job reported)
/// still holds.
pub fn assert_promise_without_wire_check(
    sim: &SimHandle,
    since: u64,
    requested: &[String],
    answer: &LaunchAnswer,
) {
    check_promise(sim, since, requested, answer, true);
}

/// Nothing twice, at the wire: every StartFailbackLaunch call since `since`, in arrival order,
/// sends no id that a job made by an earlier call since `since` already held when it arrived (a
/// job made for a caller answered a 500, or left hanging, too). The simulator would refuse such a
/// call (the instance is busy): this checks the function never makes it, independently.
pub fn no_id_resent_once_held(sim: &SimHandle, since: u64, jobs: &[drs_sim::SimJob]) {
    let created: HashMap<&str, u64> = jobs
        .iter()
        .map(|job| (job.job_id.as_str(), job.created_at_ms))
        .collect();
    let launches: Vec<CallRecord> = sim
        .calls_since(since)
        .into_iter()
        .filter(|call| call.operation == Operation::StartFailbackLaunch)
        .collect();
    // Recovery instance → the job holding it: its id, the call that made it, since when.
    let mut held: HashMap<&str, (&str, u64, u64)> = HashMap::new();
    for call in &launches {
        let Some(job_id) = call.job_id.as_deref() else {
            continue;
        };
        let at = created.get(job_id).copied().unwrap_or(call.at_ms);
        for id in &call.recovery_instance_ids {
            held.entry(id.as_str()).or_insert((job_id, call.seq, at));
        }
    }
    for call in &launches {
        for id in &call.recovery_instance_ids {
            // A call that arrived before the one that made the job (if in the same millisecond)
            // could not have known of it.
            if let Some((job_id, made_by, since_ms)) = held.get(id.as_str())
                && call.seq > *made_by
                && call.at_ms >= *since_ms
            {
                panic!(
                    "{id} was sent to StartFailbackLaunch (call {}, at {} ms) while job {job_id} (made by call {made_by}) held it (since {since_ms} ms)",
                    call.seq, call.at_ms
                );
            }
        }
    }
}

/// The promise of an answer given when time (or the retry budget) ran out before DRS showed
/// every job: an instance in a job of this run may be missing from that job in the answer only
/// while it is reported `deferred` (sent again, pre-flight finds the job: see [`assert_promise`]
/// on the next round) — never `rejected` or `skipped`. Everything else holds as in
/// [`assert_promise_without_wire_check`].
pub fn assert_promise_unsettled(
    sim: &SimHandle,
    since: u64,
    requested: &[String],
    answer: &LaunchAnswer,
) {
    check_promise(sim, since, requested, answer, false);
}

fn check_promise(
    sim: &SimHandle,
    since: u64,
    requested: &[String],
    answer: &LaunchAnswer,
    settled: bool,
) {
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
        .chain(&answer.deferred_source_server_ids)
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
    let answer_jobs: HashMap<&str, &drs_failback::launch::answer::JobSummary> =
        answer.jobs.iter().map(|j| (j.job_id.as_str(), j)).collect();
    assert_eq!(
        answer_jobs.len(),
        answer.jobs.len(),
        "a job is listed twice in the answer"
    );
    for job in &ours {
        if !settled {
            let reported: Vec<&String> = answer_jobs
                .get(job.job_id.as_str())
                .map(|j| j.recovery_instance_ids.iter().collect())
                .unwrap_or_default();
            for id in job
                .recovery_instance_ids
                .iter()
                .filter(|id| distinct.contains(*id))
            {
                if !reported.contains(&id) {
                    assert_eq!(
                        outcome.get(id.as_str()),
                        Some(&OutcomeKind::Deferred),
                        "{id} is in job {} of run {run_id}, not reported in it, yet not deferred",
                        job.job_id
                    );
                }
            }
            if reported.is_empty() {
                continue;
            }
        }
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
        if settled {
            assert_eq!(got, expected, "job {} instances", job.job_id);
        } else {
            assert!(got.is_subset(&expected), "job {} instances", job.job_id);
        }
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
    for call in sim.calls_since(since) {
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
pub fn jobs_by_id(answer: &LaunchAnswer) -> Vec<(String, BTreeSet<String>)> {
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

/// Every instance's `(result, reason)` in a tracking answer.
pub fn results(answer: &TrackAnswer) -> BTreeMap<String, (String, Option<String>)> {
    let mut found = BTreeMap::new();
    let mut add =
        |id: &str, result: drs_failback::track::results::ResultKind, reason: &Option<String>| {
            let kind = serde_json::to_value(result).unwrap();
            let previous = found.insert(
                id.to_owned(),
                (kind.as_str().unwrap().to_owned(), reason.clone()),
            );
            assert!(previous.is_none(), "{id} twice");
        };
    let job_groups = answer.jobs.iter().flat_map(|j| j.groups.iter().flatten());
    for group in answer.groups.iter().flatten().chain(job_groups) {
        for id in &group.recovery_instance_ids {
            add(id, group.result, &group.reason);
        }
    }
    for result in answer
        .jobs
        .iter()
        .flat_map(|j| j.instances.iter().flatten())
    {
        add(result.id(), result.result, &result.reason);
    }
    found
}
