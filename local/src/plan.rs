//! A failback plan, as the plan execution runs it (`statemachine/failback.asl.json`): the function
//! checks the plan (`"action": "plan"`), then each step in order runs as its step execution
//! (`statemachine/step.asl.json`): one launch-and-track arc ([`run_arc`], handed over to the
//! step's next part past its share of calls) whose last call returns the step's verdict; a halted
//! step stops the plan, later steps are not started; between steps, the wait and the operator's
//! approval. What a step does next and how it ends are the function's answers (`next`,
//! `stepEnd`), followed as the step execution follows them. A step that fails at a call stops the
//! run with that error, as the plan execution fails at its question about that step.

use std::time::Duration;

use drs_failback::drs::Drs;
use drs_failback::error::HandlerError;
use drs_failback::events::EventPublisher;
use drs_failback::finish::answer::{FinishAnswer, FinishNext};
use drs_failback::finish::decide::FinishResult;
use drs_failback::handler::Failback;
use drs_failback::handler::Reply;
use drs_failback::plan::{PlanAnswer, StepPlan};
use drs_failback::request::{Finishing, OtherStep};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::arc::{ArcEnd, ArcSettings, Finished, Progress, StepRules, first_request, run_arc};

/// What the operator answered when asked to approve the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Given,
    /// `send-task-failure`: the error (and cause) the operator gave.
    Refused(String),
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Finished,
    Halted,
    NotStarted,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Finished => "finished",
            StepStatus::Halted => "halted",
            StepStatus::NotStarted => "not started",
        }
    }
}

/// One step, as the plan ended.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub name: String,
    pub status: StepStatus,
    /// Why the step halted the plan (the verdict's reason, LAUNCH_ERROR, TRACKING_ERROR,
    /// APPROVAL_REFUSED, APPROVAL_TIMED_OUT), or PLAN_HALTED for a step not started.
    pub reason: Option<String>,
    /// The refusal or launch error, in the operator's or the function's words.
    pub error: Option<String>,
    /// The step's arc, when it ran.
    pub finished: Option<Box<Finished>>,
    /// The step's finishing, as its summary carries it (`finish`), when it has one.
    pub finish: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct PlanFinished {
    pub run_id: String,
    pub complete: bool,
    /// The step that stopped the plan, and why.
    pub halted: Option<(String, String)>,
    pub steps: Vec<StepReport>,
    /// The plan's finishing, as the run's summary carries it (`finish`), when it has one.
    pub finish: Option<Value>,
}

impl PlanFinished {
    /// The state machine's output for the same plan (its `Failback Run Finished` detail).
    pub fn output(&self) -> Value {
        let mut totals = json!({"succeeded": 0, "failed": 0, "running": 0, "notLaunched": 0,
            "launched": 0, "skipped": 0, "rejected": 0, "deferred": 0});
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|step| {
                let mut out = json!({"name": step.name, "status": step.status.as_str()});
                if let Some(reason) = &step.reason {
                    out["reason"] = json!(reason);
                }
                if let Some(error) = &step.error {
                    out["error"] = json!(error);
                }
                if let Some(finished) = &step.finished {
                    let counts = finished.output()["counts"].clone();
                    for key in [
                        "succeeded",
                        "failed",
                        "running",
                        "launched",
                        "skipped",
                        "rejected",
                        "deferred",
                    ] {
                        totals[key] = json!(
                            totals[key].as_u64().unwrap_or(0) + counts[key].as_u64().unwrap_or(0)
                        );
                    }
                    let not_launched = finished.answer.finished.map_or(0, |f| f.not_launched);
                    totals["notLaunched"] =
                        json!(totals["notLaunched"].as_u64().unwrap_or(0) + not_launched as u64);
                    out["counts"] = counts;
                    out["stoppedBy"] = json!(finished.stopped_by);
                    out["complete"] = json!(finished.complete);
                    out["verdict"] = json!(finished.answer.verdict);
                    out["rounds"] = json!(finished.progress.rounds);
                    out["trackingCalls"] = json!(finished.progress.tracking_calls);
                }
                if let Some(finish) = &step.finish {
                    out["finish"] = finish.clone();
                }
                out
            })
            .collect();
        let mut output = json!({
            "runId": self.run_id,
            "complete": self.complete,
            "halted": self.halted.as_ref().map(|(step, reason)| json!({"step": step, "reason": reason})),
            "counts": totals,
            "steps": steps,
        });
        if let Some(finish) = &self.finish {
            output["finish"] = finish.clone();
        }
        output
    }
}

#[derive(Debug, Clone)]
pub enum PlanEnd {
    DryRun(Box<PlanAnswer>),
    Finished(Box<PlanFinished>),
}

/// What a person sees and decides while a plan runs.
pub trait PlanHooks {
    fn step_started(&mut self, index: usize, step: &StepPlan, steps: usize);
    fn progress(&mut self, index: usize, progress: &Progress);
    fn step_ended(&mut self, index: usize, report: &StepReport);
    /// The step `done` is over and `next` would start: may it?
    fn approve(&mut self, done: &StepReport, next: &StepPlan) -> Approval;
    /// The run is over; `listed` says what its finishing would do: may it?
    fn approve_finishing(&mut self, listed: &FinishAnswer) -> Approval;
}

/// The reason a finished step halts the plan, if it does: the function's word on its last call
/// (the state machine's `FinalTrack` takes it the same way).
pub fn halt_reason(finished: &Finished) -> Option<String> {
    finished.answer.step_end.as_ref()?.reason.clone()
}

/// Runs a plan (or a plain launch request, a plan of one step) from its request, in either
/// envelope. `wait_scale` divides the steps' waits (the local run's simulated time runs faster).
pub async fn run_plan<D: Drs, P: EventPublisher>(
    failback: &Failback<D, P>,
    payload: Value,
    settings: &ArcSettings,
    wait_scale: f64,
    hooks: &mut impl PlanHooks,
) -> Result<PlanEnd, HandlerError> {
    let (mut request, _) = first_request(payload);
    if let Value::Object(map) = &mut request {
        map.insert("action".into(), json!("plan"));
    }
    // The run's start, as the plan execution's: its jobs are all created after it.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // A run's finishings share their calls, as the plan execution's do.
    let mut finish_calls = 0;
    let deadline = Instant::now() + settings.invocation_timeout;
    let plan = match failback.dispatch(request.clone(), deadline).await? {
        Reply::Plan(plan) => plan,
        _ => return Err(HandlerError::WrongAction { expected: "plan" }),
    };
    if plan.dry_run {
        return Ok(PlanEnd::DryRun(Box::new(plan)));
    }
    let count = plan.steps.len();
    let mut reports: Vec<StepReport> = Vec::with_capacity(count);
    let mut halted: Option<(String, String)> = None;
    for (index, step) in plan.steps.iter().enumerate() {
        if let Some(done) = reports.last() {
            let before = &plan.steps[index - 1];
            if before.wait_after_seconds > 0 {
                sleep(Duration::from_secs_f64(
                    before.wait_after_seconds as f64 / wait_scale.max(1.0),
                ))
                .await;
            }
            if before.approval {
                let refusal = match hooks.approve(done, step) {
                    Approval::Given => None,
                    Approval::Refused(error) => Some(("APPROVAL_REFUSED", Some(error))),
                    Approval::TimedOut => Some(("APPROVAL_TIMED_OUT", None)),
                };
                if let (Some((reason, error)), Some(last)) = (refusal, reports.last_mut()) {
                    last.status = StepStatus::Halted;
                    last.reason = Some(reason.into());
                    last.error = error;
                    halted = Some((last.name.clone(), reason.into()));
                    break;
                }
            }
        }
        hooks.step_started(index, step, count);
        let rules = StepRules {
            name: step.name.clone(),
            critical: serde_json::to_value(&step.critical).unwrap_or(Value::Bool(false)),
            max_failed: json!(step.max_failed),
        };
        let first = launch_request(&plan, step, &request, wait_scale);
        let end = run_arc(failback, first, Some(&rules), index == 0, settings, |p| {
            hooks.progress(index, p)
        })
        .await;
        let report = match end {
            Ok(ArcEnd::Finished(finished)) => {
                let reason = halt_reason(&finished);
                StepReport {
                    name: step.name.clone(),
                    status: if reason.is_some() {
                        StepStatus::Halted
                    } else {
                        StepStatus::Finished
                    },
                    reason,
                    error: finished.launch_error.clone(),
                    finished: Some(finished),
                    finish: None,
                }
            }
            Ok(ArcEnd::DryRun(_)) => return Err(HandlerError::WrongAction { expected: "plan" }),
            // The run's first launch refused with no job (the state machine's Fail states), or a
            // step's final call that failed for good: the execution fails at that call (FinalTrack).
            Err(error) => return Err(error),
        };
        let mut report = report;
        // As the plan execution's StepDone: a step that does not halt the plan and has a finish
        // is finished (listed, approved) before the plan goes on.
        if let (StepStatus::Finished, Some(finishing)) = (report.status, step.finish) {
            let scope = Scope {
                run_id: &plan.run_id,
                step: Some(&step.name),
                since,
            };
            let done = finish_run(
                failback,
                &scope,
                finishing,
                &mut finish_calls,
                settings,
                hooks,
            );
            report.finish = Some(done.await);
        }
        hooks.step_ended(index, &report);
        let stop = report.status == StepStatus::Halted;
        if stop {
            halted = Some((
                report.name.clone(),
                report.reason.clone().unwrap_or_default(),
            ));
        }
        reports.push(report);
        if stop {
            break;
        }
    }
    for step in &plan.steps[reports.len()..] {
        reports.push(StepReport {
            name: step.name.clone(),
            status: StepStatus::NotStarted,
            reason: Some("PLAN_HALTED".into()),
            error: None,
            finished: None,
            finish: None,
        });
    }
    let complete = halted.is_none()
        && reports
            .iter()
            .all(|r| r.finished.as_ref().is_some_and(|f| f.complete));
    let finish = match plan.finish {
        Some(finishing) => {
            let scope = Scope {
                run_id: &plan.run_id,
                step: None,
                since,
            };
            let done = finish_run(
                failback,
                &scope,
                finishing,
                &mut finish_calls,
                settings,
                hooks,
            );
            Some(done.await)
        }
        None => None,
    };
    Ok(PlanEnd::Finished(Box::new(PlanFinished {
        run_id: plan.run_id.clone(),
        complete,
        halted,
        steps: reports,
        finish,
    })))
}

/// What a finishing is over: the run, or one step of it, whose jobs are among those made since.
struct Scope<'a> {
    run_id: &'a str,
    step: Option<&'a str>,
    since: u64,
}

/// A finishing (after a step that has one, or after the last step), as the plan execution does
/// it: listed (a dry run), approved, then asked for until the function says it is done; its
/// result as the step's or the run's summary carries it. The run's finishings share their calls
/// (`calls`), as the plan's do. A call that fails stops the finishing there (status failed), where
/// the plan execution would fail for a redrive.
async fn finish_run<D: Drs, P: EventPublisher>(
    failback: &Failback<D, P>,
    scope: &Scope<'_>,
    finishing: Finishing,
    calls: &mut u32,
    settings: &ArcSettings,
    hooks: &mut impl PlanHooks,
) -> Value {
    let not_done = |status: &str, error: Option<String>| json!({"finishing": finishing, "status": status, "error": error});
    let call = |dry_run: bool, calls: u32, approved: &[String]| {
        let mut payload = json!({"action": "finish", "runId": scope.run_id,
            "finishing": finishing, "dryRun": dry_run, "sinceMillis": scope.since,
            "calls": calls, "intervalSeconds": settings.track_interval.as_secs().max(1)});
        if let Some(step) = scope.step {
            payload["step"] = json!(step);
        }
        if !dry_run {
            payload["recoveryInstanceIDs"] = json!(approved);
        }
        payload
    };
    let ask = |payload: Value| async move {
        let deadline = Instant::now() + settings.invocation_timeout;
        match failback.dispatch(payload, deadline).await {
            Ok(Reply::Finish(answer)) => Ok(answer),
            Ok(_) => Err("not a finish answer".to_owned()),
            Err(error) => Err(error.to_string()),
        }
    };
    let listed = match ask(call(true, *calls, &[])).await {
        Ok(listed) => listed,
        Err(error) => return not_done("failed", Some(error)),
    };
    if listed.counts.planned == 0 {
        return json!({"finishing": finishing, "status": "nothing to finish",
            "counts": listed.counts, "groups": listed.groups});
    }
    match hooks.approve_finishing(&listed) {
        Approval::Given => {}
        Approval::Refused(error) => return not_done("refused", Some(error)),
        Approval::TimedOut => return not_done("timed out", None),
    }
    // What the operator approved: the list's planned instances, and only those.
    let approved: Vec<String> = listed
        .groups
        .iter()
        .filter(|g| g.result == FinishResult::Planned)
        .flat_map(|g| g.recovery_instance_ids.iter().cloned())
        .collect();
    loop {
        let answer = match ask(call(false, *calls, &approved)).await {
            Ok(answer) => answer,
            Err(error) => return not_done("failed", Some(error)),
        };
        *calls += 1;
        match answer.next {
            FinishNext::Finish { wait_seconds } => {
                sleep(Duration::from_secs(wait_seconds)).await;
            }
            FinishNext::Done => {
                return json!({"finishing": finishing, "status": "finished",
                    "complete": answer.complete, "counts": answer.counts,
                    "groups": answer.groups, "jobIDs": answer.job_ids});
            }
        }
    }
}

/// A step's first launch request, as the state machine's StartStep makes it: its instances as the
/// plan gives them, with the run id, the tags and the step's name (and, for a selector, what the
/// other steps name); its wait for readiness runs `wait_scale` times faster, like the simulated
/// replication it waits for.
fn launch_request(plan: &PlanAnswer, step: &StepPlan, original: &Value, wait_scale: f64) -> Value {
    let mut request = json!({"runId": plan.run_id, "step": step.name});
    if let Some(ids) = &step.recovery_instance_ids {
        request["recoveryInstanceIDs"] = json!(ids);
    }
    if let Some(ids) = &step.source_server_ids {
        request["sourceServerIDs"] = json!(ids);
    }
    if let Some(selector) = &step.selector {
        request["selector"] = serde_json::to_value(selector).unwrap_or(Value::Null);
        // As the state machine's StartStep: the ids every other step names, left to it.
        let others: Vec<OtherStep> = plan
            .steps
            .iter()
            .filter(|other| other.name != step.name)
            .filter(|other| {
                other.recovery_instance_ids.is_some() || other.source_server_ids.is_some()
            })
            .map(|other| OtherStep {
                step: other.name.clone(),
                recovery_instance_ids: other.recovery_instance_ids.clone().unwrap_or_default(),
                source_server_ids: other.source_server_ids.clone().unwrap_or_default(),
            })
            .collect();
        request["otherSteps"] = json!(others);
    }
    if let Some(tags) = original.get("tags").filter(|t| t.is_object()) {
        request["tags"] = tags.clone();
    }
    if step.wait_for_ready_seconds > 0 {
        let scaled = (step.wait_for_ready_seconds as f64 / wait_scale.max(1.0)).ceil();
        request["waitForReadySeconds"] = json!(scaled as u64);
    }
    request
}
