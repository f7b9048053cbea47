//! One step of a failback, as its step execution runs it (`statemachine/step.asl.json`; the plan,
//! `local/src/plan.rs`, runs the steps), for a local run and the benchmark: launch what fits, track the jobs every interval, launch the
//! deferred instances again as jobs finish, and end with a final tracking call that sums the run
//! up. Each answer says what comes next (`next`, decided by the function from the `loop` each call
//! carries) and this only follows it, as the state machine does; the calls go through the
//! function's own dispatch, as Lambda would hand them over.

use std::collections::HashMap;
use std::time::Duration;

use drs_failback::drs::Drs;
use drs_failback::error::{
    ERROR_ACCESS_DENIED, ERROR_ACCOUNT_NOT_INITIALIZED, ERROR_INVALID_REQUEST, ERROR_READ_FAILED,
    ERROR_TARGET_UNREACHABLE, HandlerError,
};
use drs_failback::events::EventPublisher;
use drs_failback::handler::Failback;
use drs_failback::handler::Reply;
use drs_failback::launch::answer::{LaunchAnswer, NotLaunchedGroup};
use drs_failback::launch::outcome::{DeferReason, OutcomeKind};
use drs_failback::launch::readiness::WaitingSummary;
use drs_failback::request::{HeldGroup, Limits, StepLoop};
use drs_failback::track::answer::TrackAnswer;
use drs_failback::track::results::ResultCounts;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

/// The state machine's parameters, and the function's timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArcSettings {
    pub track_interval: Duration,
    pub time_limit: Duration,
    pub max_rounds: usize,
    pub invocation_timeout: Duration,
    /// Launch answers lost as if the function died after DRS took the launch (a fault injected
    /// by `--crash-after-launch`): each is sent again, as the state machine retries a crash.
    pub crashes_after_launch: usize,
}

/// How often the state machine sends a call again after the function crashed.
pub const CRASH_RETRIES: usize = 2;

/// The function's refusals of a run's first launch: they end the run (the state machine's
/// RequestRefused and DrsNotUsable); any other failure is sent once more (LaunchAgain).
const REFUSALS: [&str; 4] = [
    ERROR_INVALID_REQUEST,
    ERROR_ACCOUNT_NOT_INITIALIZED,
    ERROR_ACCESS_DENIED,
    ERROR_TARGET_UNREACHABLE,
];

/// Where the run stands, after each call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub elapsed_seconds: u64,
    pub rounds: usize,
    pub tracking_calls: usize,
    pub launched: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub running: usize,
    /// Deferred, waiting for the next round.
    pub waiting: usize,
    /// Skipped or rejected: never launched.
    pub not_launched: usize,
    /// Launch answers lost to an injected crash, each sent again.
    pub crashes: usize,
    /// The step's parts so far: its step executions, one more each time the function hands the
    /// step over to a fresh one.
    pub parts: usize,
    /// Those of the deferred that wait for readiness, as the last launch round found them.
    pub readiness: Option<WaitingSummary>,
}

pub use drs_failback::launch::next::Next;
pub use drs_failback::track::end::{MAX_TRACKING_ERRORS, StoppedBy};

/// How a run ended.
#[derive(Debug, Clone)]
pub enum ArcEnd {
    DryRun(Box<LaunchAnswer>),
    Finished(Box<Finished>),
}

#[derive(Debug, Clone)]
pub struct Finished {
    /// The final tracking call's answer.
    pub answer: TrackAnswer,
    pub complete: bool,
    pub stopped_by: Option<StoppedBy>,
    pub progress: Progress,
    pub deferred_recovery_instance_ids: Vec<String>,
    pub deferred_source_server_ids: Vec<String>,
    pub launch_error: Option<String>,
    pub tracking_error: Option<String>,
}

impl Finished {
    /// The state machine's output for the same run.
    pub fn output(&self) -> Value {
        let mut output = serde_json::to_value(&self.answer).unwrap_or_else(|_| json!({}));
        let p = &self.progress;
        let extra = json!({
            "complete": self.complete,
            "stoppedBy": self.stopped_by,
            "rounds": p.rounds,
            "trackingCalls": p.tracking_calls,
            "counts": {
                "succeeded": self.answer.counts.succeeded,
                "failed": self.answer.counts.failed,
                "running": self.answer.counts.running,
                "launched": p.launched,
                "skipped": self.answer.not_launched.iter()
                    .filter(|g| g.outcome == OutcomeKind::Skipped)
                    .map(|g| g.recovery_instance_ids.len()).sum::<usize>(),
                "rejected": self.answer.not_launched.iter()
                    .filter(|g| g.outcome == OutcomeKind::Rejected)
                    .map(|g| g.recovery_instance_ids.len()).sum::<usize>(),
                "deferred": p.waiting,
            },
            "deferredRecoveryInstanceIDs": self.deferred_recovery_instance_ids,
            "deferredSourceServerIDs": self.deferred_source_server_ids,
            "launchError": self.launch_error,
            "trackingError": self.tracking_error,
        });
        if let (Value::Object(output), Value::Object(extra)) = (&mut output, extra) {
            output.extend(extra);
        }
        output
    }
}

/// The plan step a run is, as its calls name it.
#[derive(Debug, Clone, Default)]
pub struct StepRules {
    pub name: String,
    /// `critical` and `maxFailed` as the plan answer gives them.
    pub critical: Value,
    pub max_failed: Value,
}

/// The run's state between calls: what the state machine keeps in its variables.
#[derive(Default)]
struct Run {
    run_id: Option<String>,
    tags: Option<Value>,
    /// The account and region every call of the arc acts in, when the first request names one.
    target: Option<Value>,
    step: Option<String>,
    /// The step's `waitForReadySeconds`, sent with every round.
    wait_for_ready: Option<Value>,
    jobs: Vec<String>,
    running: Vec<String>,
    reported: Vec<String>,
    not_launched: Vec<NotLaunchedGroup>,
    deferred_groups: Vec<NotLaunchedGroup>,
    deferred_ids: Vec<String>,
    deferred_sources: Vec<String>,
    /// Instances the step's selector matched that other steps hold.
    held: Vec<HeldGroup>,
    launch_error: Option<String>,
    /// The failed launch's errorType: a refusal is not sent again.
    launch_error_name: Option<String>,
    /// The shortest job of the step so far (the last tracking call's `jobSeconds`), carried as
    /// the state machine carries it.
    job_seconds: Option<u64>,
    /// Tracking calls failed in a row, and the last one's error.
    tracking_errors: u32,
    tracking_error: Option<String>,
    /// Calls made by the current execution, and when it started.
    calls: u32,
    execution_started: Option<Instant>,
    /// Each job's latest counts, for the progress display.
    job_counts: HashMap<String, ResultCounts>,
    progress: Progress,
}

impl Run {
    fn absorb_launch(&mut self, answer: &LaunchAnswer) {
        self.run_id = Some(answer.run_id.clone());
        self.progress.rounds += 1;
        self.progress.launched += answer.counts.launched;
        for job in &answer.jobs {
            if !self.jobs.contains(&job.job_id) {
                self.jobs.push(job.job_id.clone());
                self.running.push(job.job_id.clone());
                self.job_counts.insert(
                    job.job_id.clone(),
                    ResultCounts {
                        running: job.recovery_instance_ids.len(),
                        ..ResultCounts::default()
                    },
                );
            }
        }
        let (deferred, settled): (Vec<_>, Vec<_>) = answer
            .not_launched
            .iter()
            .cloned()
            .partition(|g| g.outcome == OutcomeKind::Deferred);
        self.not_launched.extend(settled);
        self.deferred_groups = deferred;
        self.deferred_ids = answer.deferred_recovery_instance_ids.clone();
        self.deferred_sources = answer.deferred_source_server_ids.clone();
        self.held.extend(answer.held_by_other_steps.iter().cloned());
        self.progress.readiness = answer.waiting.clone();
        self.refresh();
    }

    /// Takes in a tracking answer; true when a job finished.
    fn absorb_track(&mut self, answer: &TrackAnswer) -> bool {
        self.progress.tracking_calls += 1;
        self.job_seconds = answer.job_seconds.or(self.job_seconds);
        for job in &answer.jobs {
            self.job_counts.insert(job.job_id.clone(), job.counts);
        }
        let freed = answer.running_job_ids.len() < self.running.len();
        self.running = answer.running_job_ids.clone();
        self.reported = answer.reported_job_ids.clone();
        self.refresh();
        freed
    }

    fn refresh(&mut self) {
        let p = &mut self.progress;
        (p.succeeded, p.failed, p.running) =
            self.job_counts.values().fold((0, 0, 0), |(s, f, r), c| {
                (s + c.succeeded, f + c.failed, r + c.running)
            });
        p.waiting = self.deferred_ids.len() + self.deferred_sources.len();
        p.not_launched = self
            .not_launched
            .iter()
            .map(|g| g.recovery_instance_ids.len())
            .sum();
    }

    /// The next round's request: the deferred ones, each as they came, same run id and tags.
    fn relaunch_request(&self) -> Value {
        let mut request = json!({ "runId": self.run_id });
        if !self.deferred_ids.is_empty() {
            request["recoveryInstanceIDs"] = json!(self.deferred_ids);
        }
        if !self.deferred_sources.is_empty() {
            request["sourceServerIDs"] = json!(self.deferred_sources);
        }
        if let Some(tags) = &self.tags {
            request["tags"] = tags.clone();
        }
        if let Some(target) = &self.target {
            request["target"] = target.clone();
        }
        if let Some(step) = &self.step {
            request["step"] = json!(step);
        }
        if let Some(wait) = &self.wait_for_ready {
            request["waitForReadySeconds"] = wait.clone();
        }
        // As the state machine's Relaunch: the instances the last round announced waiting, by the
        // state it announced them in (the function announces only what changed).
        let replicating = DeferReason::Replicating.name();
        let waiting: Vec<Value> = self
            .deferred_groups
            .iter()
            .filter(|g| g.reason == replicating)
            .map(|g| json!({"state": g.code, "recoveryInstanceIDs": g.recovery_instance_ids}))
            .collect();
        if !waiting.is_empty() {
            request["waiting"] = json!(waiting);
        }
        request
    }

    /// Where the step's loop stands before a call (`loop`): the function answers what comes
    /// next from it.
    fn step_loop(&self, settings: &ArcSettings, start: Instant) -> StepLoop {
        let mut deferred_reasons: Vec<String> = self
            .deferred_groups
            .iter()
            .map(|g| g.reason.clone())
            .collect();
        deferred_reasons.dedup();
        StepLoop {
            limits: Limits {
                max_rounds: u32::try_from(settings.max_rounds).unwrap_or(u32::MAX),
                time_limit_seconds: settings.time_limit.as_secs(),
                track_interval_seconds: settings.track_interval.as_secs(),
            },
            elapsed_seconds: start.elapsed().as_secs(),
            rounds: u32::try_from(self.progress.rounds).unwrap_or(u32::MAX),
            running_jobs: self.running.len(),
            deferred: self.deferred_ids.len() + self.deferred_sources.len(),
            deferred_reasons,
            launch_error: self.launch_error.is_some(),
            launch_error_name: self.launch_error_name.clone(),
            tracking_errors: self.tracking_errors,
            calls: self.calls,
            waiting: self.progress.readiness.clone(),
            job_seconds: self.job_seconds,
            execution_seconds: self
                .execution_started
                .map_or(0, |at| at.elapsed().as_secs()),
        }
    }
}

/// The request as the state machine's first round sends it: unwrapped from an EventBridge
/// envelope, with the run id fixed (the request's, else the event id).
pub fn first_request(payload: Value) -> (Value, Option<Value>) {
    let is_event = payload.get("detail-type").is_some() && payload.get("detail").is_some();
    let event_id = payload.get("id").cloned();
    let mut request = if is_event {
        payload["detail"].clone()
    } else {
        payload
    };
    if request.get("runId").is_none()
        && is_event
        && let (Some(id), Value::Object(map)) = (event_id, &mut request)
    {
        map.insert("runId".into(), id);
    }
    let tags = request.get("tags").cloned();
    (request, tags)
}

/// Runs a whole failback from one request (either envelope). `observe` sees the progress after
/// every call. A refused first request is an error; later errors end the run as the state
/// machine ends it.
pub async fn run_whole<D: Drs, P: EventPublisher>(
    failback: &Failback<D, P>,
    payload: Value,
    settings: &ArcSettings,
    observe: impl FnMut(&Progress),
) -> Result<ArcEnd, HandlerError> {
    let (request, _) = first_request(payload);
    run_arc(failback, request, None, true, settings, observe).await
}

/// One launch-and-track arc from its first launch request (unwrapped, run id set): a whole plain
/// failback, or one plan step (`step`), whose calls then name the step and whose final call
/// asks for its verdict. `fail_fast`: a first launch that fails ends the run with its error (the
/// run's first step); else the step sums up and its launch error stops the plan. An error
/// returned otherwise is the final call's (the execution fails at FinalTrack).
pub async fn run_arc<D: Drs, P: EventPublisher>(
    failback: &Failback<D, P>,
    mut request: Value,
    step: Option<&StepRules>,
    fail_fast: bool,
    settings: &ArcSettings,
    mut observe: impl FnMut(&Progress),
) -> Result<ArcEnd, HandlerError> {
    let start = Instant::now();
    let mut run = Run {
        // The run id is known before any answer: a first launch that fails must still be tracked
        // and summed up under it.
        run_id: request
            .get("runId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        tags: request.get("tags").cloned(),
        target: request.get("target").cloned(),
        step: step.map(|s| s.name.clone()),
        wait_for_ready: request.get("waitForReadySeconds").cloned(),
        ..Run::default()
    };
    run.progress.parts = 1;
    run.execution_started = Some(start);
    let mut next = Next::Launch { wait_seconds: 0 };
    let mut crashes_left = settings.crashes_after_launch;
    let mut sent_again = false;
    let mut retrying = false;
    loop {
        run.progress.elapsed_seconds = start.elapsed().as_secs();
        match next {
            Next::Launch { wait_seconds } => {
                sleep(Duration::from_secs(wait_seconds)).await;
                request["loop"] = json!(run.step_loop(settings, start));
                run.calls += 1;
                // As the state machine's Launch state: DrsReadFailed (a selector DRS could not list)
                // is tried again, three times, 30 s apart and doubling.
                // A crash (whatever Lambda names it) is sent again with the same run id, twice.
                let mut wait = Duration::from_secs(30);
                let (mut reads_failed, mut crashes) = (0, 0);
                let launched = loop {
                    let deadline = Instant::now() + settings.invocation_timeout;
                    match failback.dispatch(request.clone(), deadline).await {
                        Err(error)
                            if error.error_type() == ERROR_READ_FAILED && reads_failed < 3 =>
                        {
                            reads_failed += 1;
                            sleep(wait).await;
                            wait *= 2;
                        }
                        Ok(Reply::Launch(answer))
                            if crashes_left > 0 && crashes < CRASH_RETRIES && !answer.dry_run =>
                        {
                            crashes_left -= 1;
                            crashes += 1;
                            run.progress.crashes += 1;
                            observe(&run.progress);
                        }
                        answer => break answer,
                    }
                };
                next = match launched {
                    Ok(Reply::Launch(answer)) if answer.dry_run => {
                        return Ok(ArcEnd::DryRun(Box::new(answer)));
                    }
                    Ok(Reply::Launch(answer)) => {
                        retrying = false;
                        run.launch_error = None;
                        run.launch_error_name = None;
                        run.absorb_launch(&answer);
                        answer.next.unwrap_or(Next::Finish)
                    }
                    Err(error) if retrying => return Err(error),
                    Ok(_) => return Err(unreachable_track()),
                    // The run's first launch with no job anywhere: a refusal ends the run with the
                    // error (RequestRefused, DrsNotUsable); any other failure is sent once more
                    // (LaunchAgain), and if that fails too the run stops at that call, as the
                    // execution fails there (a redrive would send it again). Otherwise the step
                    // launches no more: a tracking call at once says what comes next (the step
                    // then halts the plan, LAUNCH_ERROR).
                    Err(error) if run.jobs.is_empty() && fail_fast => {
                        if REFUSALS.contains(&error.error_type()) || sent_again {
                            return Err(error);
                        }
                        sent_again = true;
                        continue;
                    }
                    Err(error) => {
                        run.launch_error = Some(error.to_string());
                        run.launch_error_name = Some(error.error_type().to_owned());
                        Next::Track { wait_seconds: 0 }
                    }
                };
                observe(&run.progress);
            }
            Next::Track { wait_seconds } => {
                sleep(Duration::from_secs(wait_seconds)).await;
                let mut payload = json!({"action": "track", "runId": run.run_id,
                    "jobIDs": run.running, "reportedJobIDs": run.reported,
                    "loop": json!(run.step_loop(settings, start))});
                run.calls += 1;
                if let Some(step) = step {
                    payload["step"] = json!(step.name);
                }
                if let Some(target) = &run.target {
                    payload["target"] = target.clone();
                }
                let deadline = Instant::now() + settings.invocation_timeout;
                next = match failback.handle_track(payload, deadline).await {
                    Ok(answer) => {
                        run.tracking_errors = 0;
                        run.absorb_track(&answer);
                        answer.next.unwrap_or(Next::Finish)
                    }
                    // No answer to follow (the state machine's TrackFailed): tried again at the
                    // next interval, a few times in a row, then once more at once (TrackAgain);
                    // if that fails too the run stops at that call.
                    Err(error) => {
                        run.tracking_errors += 1;
                        run.tracking_error = Some(error.to_string());
                        if run.tracking_errors > MAX_TRACKING_ERRORS {
                            // TrackAgain failed too: the execution fails at that call.
                            return Err(error);
                        }
                        Next::Track {
                            wait_seconds: if run.tracking_errors < MAX_TRACKING_ERRORS {
                                settings.track_interval.as_secs()
                            } else {
                                0
                            },
                        }
                    }
                };
                run.progress.elapsed_seconds = start.elapsed().as_secs();
                observe(&run.progress);
            }
            Next::Finish => return finish(failback, run, step, settings, start, observe).await,
            // As the state machine's LaunchAgain: the round that failed is sent once more, and
            // if it fails again the run stops at that call (the execution fails there).
            Next::RetryLaunch => {
                retrying = true;
                next = Next::Launch { wait_seconds: 0 };
                continue;
            }
            // As the plan: the step's next part, a fresh step execution, takes the step over as
            // it stands, and goes on with a tracking call, whose answer says what comes next.
            Next::Handover => {
                run.calls = 0;
                run.execution_started = Some(Instant::now());
                run.progress.parts += 1;
                next = Next::Track { wait_seconds: 0 };
                observe(&run.progress);
                continue;
            }
        }
        if matches!(next, Next::Launch { .. }) {
            request = run.relaunch_request();
        }
    }
}

fn unreachable_track() -> HandlerError {
    HandlerError::WrongAction { expected: "launch" }
}

async fn finish<D: Drs, P: EventPublisher>(
    failback: &Failback<D, P>,
    mut run: Run,
    step: Option<&StepRules>,
    settings: &ArcSettings,
    start: Instant,
    mut observe: impl FnMut(&Progress),
) -> Result<ArcEnd, HandlerError> {
    let mut not_launched = run.not_launched.clone();
    not_launched.extend(run.deferred_groups.iter().cloned());
    let mut payload = json!({"action": "track", "runId": run.run_id, "jobIDs": run.jobs,
        "reportedJobIDs": run.reported, "final": true, "notLaunched": not_launched,
        "heldByOtherSteps": run.held, "loop": json!(run.step_loop(settings, start))});
    if let Some(step) = step {
        payload["step"] = json!(step.name);
        payload["critical"] = step.critical.clone();
        payload["maxFailed"] = step.max_failed.clone();
    }
    if let Some(target) = &run.target {
        payload["target"] = target.clone();
    }
    // As the state machine: a last call that could not read DRS is tried again, a few times.
    let mut wait = settings.track_interval;
    let mut attempts = 0;
    let answer = loop {
        let deadline = Instant::now() + settings.invocation_timeout;
        match failback.handle_track(payload.clone(), deadline).await {
            Err(error) if error.error_type() == ERROR_READ_FAILED && attempts < 5 => {
                attempts += 1;
                sleep(wait).await;
                wait *= 2;
            }
            answer => break answer?,
        }
    };
    run.absorb_track(&answer);
    run.progress.elapsed_seconds = start.elapsed().as_secs();
    observe(&run.progress);
    // How the step ended is the function's word, as the state machine takes it.
    let end = answer.step_end.clone();
    Ok(ArcEnd::Finished(Box::new(Finished {
        complete: end.as_ref().is_some_and(|e| e.complete),
        stopped_by: end.as_ref().and_then(|e| e.stopped_by),
        answer,
        progress: run.progress,
        deferred_recovery_instance_ids: run.deferred_ids,
        deferred_source_server_ids: run.deferred_sources,
        launch_error: run.launch_error,
        tracking_error: run.tracking_error,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_is_unwrapped_with_the_event_id_as_run_id() {
        let event = json!({"detail-type": "Failback Launch Requested", "id": "ev-1", "source": "x",
            "detail": {"recoveryInstanceIDs": ["i-11111111"], "tags": {"Wave": "1"}}});
        let (request, tags) = first_request(event);
        assert_eq!(request["runId"], "ev-1");
        assert_eq!(tags, Some(json!({"Wave": "1"})));
        let (direct, _) = first_request(json!({"runId": "r", "recoveryInstanceIDs": []}));
        assert_eq!(direct["runId"], "r");
    }
}
