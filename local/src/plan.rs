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
use drs_failback::drs::Target;
use drs_failback::error::HandlerError;
use drs_failback::events::EventPublisher;
use drs_failback::finish::answer::{FinishAnswer, FinishNext};
use drs_failback::finish::decide::FinishResult;
use drs_failback::handler::Failback;
use drs_failback::handler::Reply;
use drs_failback::plan::sum::StepSum;
use drs_failback::plan::{GroupPlan, PlanAnswer, StepPlan};
use drs_failback::request::{Finishing, OtherStep};
use drs_failback::track::end::StoppedBy;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::cell::RefCell;
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
    /// The step's arc in each account and region, when it ran.
    pub groups: Vec<GroupReport>,
    /// The step's summary across them, as the function summed it up (`stepSum`).
    pub sum: Option<StepSum>,
    /// The step's finishing, as its summary carries it (`finish`), when it has one.
    pub finish: Option<Value>,
}

/// A step's arc in one account and region.
#[derive(Debug, Clone)]
pub struct GroupReport {
    pub target: Option<Target>,
    pub finished: Box<Finished>,
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
                if let Some(sum) = &step.sum {
                    for (key, value) in &sum.counts {
                        if let Some(total) = totals.get_mut(key) {
                            *total = json!(total.as_u64().unwrap_or(0) + value);
                        }
                    }
                    out["counts"] = json!(sum.counts);
                    out["stoppedBy"] = json!(sum.stopped_by);
                    out["complete"] = json!(sum.complete);
                    out["verdict"] = json!(sum.verdict);
                    out["rounds"] = json!(sum.rounds);
                    out["trackingCalls"] = json!(sum.tracking_calls);
                    if sum.targets.len() > 1 {
                        out["targets"] = json!(sum.targets);
                    }
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
    /// `group` (its account and region `target`) of step `index` moved on.
    fn progress(
        &mut self,
        index: usize,
        group: usize,
        target: Option<&Target>,
        progress: &Progress,
    );
    fn step_ended(&mut self, index: usize, report: &StepReport);
    /// The step `done` is over and `next` would start: may it?
    fn approve(&mut self, done: &StepReport, next: &StepPlan) -> Approval;
    /// The run is over; `listed` says what its finishing would do: may it?
    fn approve_finishing(&mut self, listed: &FinishAnswer) -> Approval;
}

/// A group's summary as its step execution's last call makes it (the state machine's
/// `FinalTrack` output, `stepResult`).
pub fn step_result(name: &str, target: Option<&Target>, finished: &Finished) -> Value {
    let end = finished.answer.step_end.as_ref();
    let mut counts = finished.output()["counts"].clone();
    counts["notLaunched"] = json!(finished.answer.finished.map_or(0, |f| f.not_launched));
    let error = match finished.stopped_by {
        Some(StoppedBy::LaunchError) => json!(finished.launch_error),
        Some(StoppedBy::TrackingError) => json!(finished.tracking_error),
        _ => Value::Null,
    };
    json!({"name": name, "target": target, "status": end.map_or("finished", |e| e.status),
        "reason": end.and_then(|e| e.reason.clone()), "stoppedBy": finished.stopped_by,
        "complete": finished.complete, "counts": counts, "rounds": finished.progress.rounds,
        "trackingCalls": finished.progress.tracking_calls, "verdict": finished.answer.verdict,
        "error": error})
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
        // As the plan execution's fan-out: each account and region of the step in its own step
        // execution, all at once; then the function sums the step up across them.
        let first_of_run = index == 0 && step.groups.len() == 1;
        let shared = RefCell::new(&mut *hooks);
        let runs = step.groups.iter().enumerate().map(|(at, group)| {
            let rules = StepRules {
                name: step.name.clone(),
                critical: serde_json::to_value(&group.critical).unwrap_or(Value::Bool(false)),
                // Across several places maxFailed counts them all: the step's sum applies it.
                max_failed: if step.groups.len() == 1 {
                    json!(step.max_failed)
                } else {
                    Value::Null
                },
            };
            let first = launch_request(&plan, step, group, &request, wait_scale);
            let shared = &shared;
            async move {
                let target = group.target.as_ref();
                let end = run_arc(failback, first, Some(&rules), first_of_run, settings, |p| {
                    shared.borrow_mut().progress(index, at, target, p)
                })
                .await;
                (group.target.clone(), end)
            }
        });
        let ends = join_all(runs).await;
        let mut groups = Vec::with_capacity(ends.len());
        for (target, end) in ends {
            match end {
                Ok(ArcEnd::Finished(finished)) => groups.push(GroupReport { target, finished }),
                Ok(ArcEnd::DryRun(_)) => {
                    return Err(HandlerError::WrongAction { expected: "plan" });
                }
                // The run's first launch refused with no job (the state machine's Fail states),
                // or a step's final call that failed for good: the execution fails at that call.
                Err(error) => return Err(error),
            }
        }
        let sum_request = json!({"action": "stepSum", "runId": plan.run_id, "step": step.name,
            "maxFailed": step.max_failed,
            "groups": groups.iter().map(|g| json!({"stepResult": step_result(&step.name, g.target.as_ref(), &g.finished)})).collect::<Vec<_>>()});
        let deadline = Instant::now() + settings.invocation_timeout;
        let sum = match failback.dispatch(sum_request, deadline).await? {
            Reply::StepSum(sum) => sum,
            _ => {
                return Err(HandlerError::WrongAction {
                    expected: "stepSum",
                });
            }
        };
        let error = groups.iter().find_map(|g| g.finished.launch_error.clone());
        let report = StepReport {
            name: step.name.clone(),
            status: if sum.status == "halted" {
                StepStatus::Halted
            } else {
                StepStatus::Finished
            },
            reason: sum.reason.clone(),
            error,
            groups,
            sum: Some(sum),
            finish: None,
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
            groups: Vec::new(),
            sum: None,
            finish: None,
        });
    }
    let complete = halted.is_none()
        && reports
            .iter()
            .all(|r| r.sum.as_ref().is_some_and(|s| s.complete));
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

/// A group's first launch request, as the plan execution's fan-out makes it: its instances as
/// the plan gives them, with the run id, the tags, the step's name and the group's account and
/// region (and, for a selector, what the other steps name there); its wait for readiness runs
/// `wait_scale` times faster, like the simulated replication it waits for.
fn launch_request(
    plan: &PlanAnswer,
    step: &StepPlan,
    group: &GroupPlan,
    original: &Value,
    wait_scale: f64,
) -> Value {
    let mut request = json!({"runId": plan.run_id, "step": step.name});
    if let Some(target) = &group.target {
        request["target"] = json!(target);
    }
    if let Some(ids) = &group.recovery_instance_ids {
        request["recoveryInstanceIDs"] = json!(ids);
    }
    if let Some(ids) = &group.source_server_ids {
        request["sourceServerIDs"] = json!(ids);
    }
    if let Some(selector) = &group.selector {
        request["selector"] = serde_json::to_value(selector).unwrap_or(Value::Null);
        // The ids every other step names in the same account and region, left to it.
        let others: Vec<OtherStep> =
            plan.steps
                .iter()
                .filter(|other| other.name != step.name)
                .filter_map(|other| {
                    let there = other.groups.iter().find(|g| g.target == group.target)?;
                    (there.recovery_instance_ids.is_some() || there.source_server_ids.is_some())
                        .then(|| OtherStep {
                            step: other.name.clone(),
                            recovery_instance_ids: there
                                .recovery_instance_ids
                                .clone()
                                .unwrap_or_default(),
                            source_server_ids: there.source_server_ids.clone().unwrap_or_default(),
                        })
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
