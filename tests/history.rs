//! No execution nears Step Functions' cap of 25 000 history events, whatever the plan and the
//! settings: bounded here from the generated definitions themselves, at the largest settings the
//! template allows.
//!
//! A step execution makes at most MAX_CALLS_PER_EXECUTION calls of its loop (each with its
//! waits, Choice states and every retry its Retry allows) before the function says `handover`;
//! the step's place then starts a fresh step execution (the step's next part). A place (a child
//! execution of the plan's Distributed Map, one per account and region of a step) runs as many
//! parts as the longest step needs at the template's extremes, and in one attempt (its start or a
//! redrive) looks at step executions at most MAX_POLLS times; the plan's execution runs at most
//! MAX_PLAN_STEPS steps, each a Map of places and a sum. The bounds allow for REDRIVES redrives.

use std::fs;
use std::path::Path;

use drs_failback::finish::decide::MAX_FINISH_CALLS;
use drs_failback::launch::next::MAX_CALLS_PER_EXECUTION;
use drs_failback::plan::follow::MAX_POLLS;
use drs_failback::request::{MAX_FINISHING_STEPS, MAX_PLAN_STEPS};
use serde_json::Value;

const HISTORY_CAP: u64 = 25_000;
/// The bound must leave this share of the cap free.
const MARGIN: f64 = 0.15;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("readable")
}

fn definition(path: &str) -> Value {
    serde_json::from_str(&read(path)).expect("JSON")
}

/// A bound (`MinValue` or `MaxValue`) of a template parameter.
fn parameter_bound(parameter: &str, bound: &str) -> u64 {
    let template = read("template.yaml");
    let block = template
        .split(&format!("\n  {parameter}:\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("template.yaml has no parameter {parameter}"));
    block
        .lines()
        .take_while(|line| line.starts_with("    ") || line.is_empty())
        .find_map(|line| line.trim().strip_prefix(&format!("{bound}: ")))
        .unwrap_or_else(|| panic!("{parameter} has no {bound}"))
        .parse()
        .expect("a number")
}

/// The most events a state adds each time it runs: entered and exited, and for a task three per
/// attempt (scheduled, started, succeeded or failed; a child execution waited for, one more:
/// submitted) — the first and every retry its Retry allows.
fn cost(states: &Value, name: &str) -> u64 {
    let state = &states[name];
    assert!(state.is_object(), "no state {name}");
    // A Distributed Map: entered and exited, its Map Run started and ended (the children's
    // events are their own executions').
    if state["Type"] == "Map" {
        return 4;
    }
    if state["Type"] != "Task" {
        return 2;
    }
    let retries: u64 = state["Retry"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["MaxAttempts"].as_u64().unwrap_or(3))
                .sum()
        })
        .unwrap_or(0);
    let per_attempt = if state["Resource"]
        .as_str()
        .is_some_and(|r| r.ends_with(".sync:2"))
    {
        4
    } else {
        3
    };
    2 + per_attempt * (1 + retries)
}

fn sum(states: &Value, names: &[&str]) -> u64 {
    names.iter().map(|name| cost(states, name)).sum()
}

/// Every state of a definition is counted in one of the groups at least.
fn check_counted(states: &Value, groups: &[&[&str]]) {
    for name in states.as_object().unwrap().keys() {
        assert!(
            groups.iter().any(|g| g.contains(&name.as_str())),
            "{name} is not counted"
        );
    }
}

fn allowed() -> u64 {
    (HISTORY_CAP as f64 * (1.0 - MARGIN)) as u64
}

#[test]
fn no_step_execution_nears_the_history_cap_whatever_the_settings() {
    let definition = definition("statemachine/step.asl.json");
    let states = &definition["States"];
    let per_call_states = [
        "FollowNext",
        "WaitForNext",
        "NextCall",
        "Relaunch",
        "TrackFailed",
        "WaitToTrack",
    ];
    // Each call is one of these tasks (a launch round or a tracking call, or either sent again).
    let call_tasks = ["Launch", "Track", "LaunchAgain", "TrackAgain"];
    let once = [
        "Begin",
        "Start",
        "ReadHandover",
        "Resume",
        "LaunchFailed",
        "FinalTrack",
        "HandOver",
        "Refused",
        "StepEnded",
    ];
    check_counted(states, &[&per_call_states, &call_tasks, &once]);
    // A call goes through every loop state at most once (the wait, the choices, the next
    // request, the failure path) and through one call task, with every retry it allows.
    let per_call = sum(states, &per_call_states)
        + call_tasks
            .iter()
            .map(|task| cost(states, task))
            .max()
            .unwrap_or(0);
    let bound = u64::from(MAX_CALLS_PER_EXECUTION) * per_call + 2 + sum(states, &once);
    assert!(
        bound <= allowed(),
        "a step execution may write {bound} history events ({MAX_CALLS_PER_EXECUTION} calls × {per_call} + its own states), more than {}",
        allowed()
    );
    // The settings only change how many parts a step takes, not what one writes.
    assert!(per_call < 60, "{per_call} per call");
}

/// Redrives of one execution the bounds below allow for, each waiting its full share of looks at
/// a step execution (a redrive adds to the same history).
const REDRIVES: u64 = 2;

/// The calls of the longest step the template allows: a tracking call every TrackIntervalSeconds
/// (its least) for TimeLimitSeconds (its most), each launch round (MaxRounds, its most) and a few
/// more (a failed launch sent again, failed tracking calls tried again, the last call); and the
/// step executions (parts) they take.
fn parts_of_the_longest_step() -> u64 {
    let calls = parameter_bound("TimeLimitSeconds", "MaxValue")
        / parameter_bound("TrackIntervalSeconds", "MinValue")
        + parameter_bound("MaxRounds", "MaxValue")
        + 10;
    calls.div_ceil(u64::from(MAX_CALLS_PER_EXECUTION))
}

/// A step's place (an account and region): a child execution of the plan's Distributed Map, which
/// runs the step there as its step executions, one part after another, looks at one that did not
/// answer, and redrives it when redriven itself.
#[test]
fn no_place_execution_nears_the_history_cap_whatever_the_settings() {
    let plan = definition("statemachine/failback.asl.json");
    let states = &plan["States"]["RunPlaces"]["ItemProcessor"]["States"];
    assert_eq!(
        plan["States"]["RunPlaces"]["ItemProcessor"]["ProcessorConfig"]["Mode"],
        "DISTRIBUTED"
    );
    // Each part: the child run and waited for, the choice after it, the next part.
    let per_part_states = ["RunStep", "StepRan", "NextPart"];
    // A look at a step execution that did not answer (RunStep failed: it failed, or could not
    // be started; or it runs, redriven) and the question after it, then a wait and a look again or a
    // start again, or its output read once it ended well: at most MAX_POLLS in an attempt (each
    // wait counts; an output read ends a wait), and one more that stops the attempt.
    let per_look_states = [
        "CheckStep",
        "StepGate",
        "FollowStep",
        "WaitForStep",
        "WaitToStart",
        "RunStep",
        "ReadStepOutput",
    ];
    // Once per redrive: the question asked again, a fresh look (what was read before the
    // redrive), the step execution redriven and, when it ends well, its output read.
    let per_redrive_states = [
        "StepGate",
        "FollowStep",
        "CheckStep",
        "StepGate",
        "FollowStep",
        "RedriveStep",
        "ReadStepOutput",
    ];
    let once = ["Place", "StepSummed", "PlaceRefused"];
    check_counted(
        states,
        &[
            &per_part_states,
            &per_look_states,
            &per_redrive_states,
            &once,
        ],
    );
    let parts = parts_of_the_longest_step();
    let per_attempt = (u64::from(MAX_POLLS) + 1) * sum(states, &per_look_states);
    let per_redrive = sum(states, &per_redrive_states) + per_attempt;
    let bound = 2
        + sum(states, &once)
        + parts * sum(states, &per_part_states)
        + per_attempt
        + REDRIVES * per_redrive;
    assert!(
        bound <= allowed(),
        "a place execution may write {bound} history events ({parts} parts, {per_attempt} looks, {REDRIVES} redrives × {per_redrive}), more than {}",
        allowed()
    );
}

#[test]
fn no_plan_execution_nears_the_history_cap_whatever_the_plan() {
    let definition = definition("statemachine/failback.asl.json");
    let states = &definition["States"];
    // A finishing (after a step that has one, and once more after the last step): listed,
    // approved, summed up — its calls counted apart (a run's finishings share them).
    let per_finishing_states = [
        "FinishPlanned",
        "AnythingToFinish",
        "NothingToFinish",
        "AskFinishApproval",
        "RequestFinishApproval",
        "FinishApprovalTimedOut",
        "FinishApprovalNotPublished",
        "FinishDone",
        "FinishSummed",
        "StepFinishSummed",
        "RunFinishSummed",
        "StartStepFinish",
        "StartRunFinish",
    ];
    // Each step: its places run as the Map's children (their history is their own), then
    // summed up.
    let per_step_states = [
        "StartStep",
        "PublishStepStarted",
        "RunPlaces",
        "PlacesRan",
        "SumStep",
        "StepDone",
        "AfterStep",
        "WaitAfterStep",
        "AfterWait",
        "AskApproval",
        "RequestApproval",
        "StepStartedNotPublished",
    ];
    // An approval unanswered past ApprovalPendingAlarmSeconds is asked again: at most
    // MAX_APPROVAL_REMINDERS times in a run, whichever approvals they remind (a step's or a
    // finishing's: the costlier counted).
    let per_reminder = sum(
        states,
        &["ApprovalWaited", "ApprovalOverdue", "RequestApproval"],
    )
    .max(sum(
        states,
        &[
            "FinishApprovalWaited",
            "FinishApprovalOverdue",
            "RequestFinishApproval",
        ],
    ));
    let reminders = max_approval_reminders(states);
    // Once: the request, the plan, the end; a refusal.
    let once = [
        "ReadRequest",
        "Plan",
        "Planned",
        "StepRefused",
        "Refusal",
        "HaltPlan",
        "PlanHaltedNotPublished",
        "ApprovalTimedOut",
        "ApprovalNotPublished",
        "CountRunFinishedNotPublished",
        "SumUp",
        "PublishRunFinished",
        "RunFinishedNotPublished",
        "Finished",
        "FailbackComplete",
        "FailbackIncomplete",
        "FailbackIncompleteUnannounced",
        "DryRunPlanned",
        "RequestRefused",
        "DrsNotUsable",
        "FinishOrPublish",
    ];
    // The run's finishing calls, all its finishings together: at most MAX_FINISH_CALLS, each with
    // its wait and choice.
    let per_finish_call_states = ["Finish", "FinishNext", "WaitToFinish"];
    check_counted(
        states,
        &[
            &per_step_states,
            &once,
            &per_finish_call_states,
            &per_finishing_states,
            &[
                "ApprovalWaited",
                "ApprovalOverdue",
                "FinishApprovalWaited",
                "FinishApprovalOverdue",
            ],
        ],
    );
    let per_step = sum(states, &per_step_states);
    // A redrive enters the failed step's Map again (its Map Run redriven).
    let per_redrive = cost(states, "RunPlaces");
    // At most MAX_FINISHING_STEPS steps finish, and the plan once more after its last step.
    let fixed = 2
        + sum(states, &once)
        + (MAX_FINISHING_STEPS as u64 + 1) * sum(states, &per_finishing_states)
        + u64::from(MAX_FINISH_CALLS) * sum(states, &per_finish_call_states)
        + reminders * per_reminder;
    let bound = MAX_PLAN_STEPS as u64 * per_step + REDRIVES * per_redrive + fixed;
    assert!(
        bound <= allowed(),
        "a plan execution may write {bound} history events ({MAX_PLAN_STEPS} steps × {per_step} + {REDRIVES} redrives × {per_redrive} + {fixed}), more than {}",
        allowed()
    );
}

/// The most reminders a run makes, as the definition bounds them: the number its reminder choice
/// compares `$approvalReminders` with (statemachine/gen.py, MAX_APPROVAL_REMINDERS).
fn max_approval_reminders(states: &Value) -> u64 {
    let wait = states["RequestApproval"]["TimeoutSeconds"]
        .as_str()
        .expect("the approval's wait is an expression");
    let bound = wait
        .split("$approvalReminders < ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("the approval's wait bounds the reminders: $approvalReminders < N");
    assert_eq!(
        states["RequestFinishApproval"]["TimeoutSeconds"],
        states["RequestApproval"]["TimeoutSeconds"],
        "both approvals share the bound"
    );
    bound
}

/// A step execution hands the step over only through HandOver, whose output carries the step's
/// loop as it stands; the plan starts the next part naming it, which reads it (ReadHandover), and
/// Resume takes it over.
#[test]
fn a_handover_carries_every_variable_the_step_reads() {
    let step = definition("statemachine/step.asl.json");
    let states = &step["States"];
    assert_eq!(step["StartAt"], "Begin");
    assert_eq!(states["HandOver"]["Type"], "Succeed");
    assert_eq!(states["Resume"]["Next"], "Track");
    let plan = definition("statemachine/failback.asl.json");
    let run_step =
        plan["States"]["RunPlaces"]["ItemProcessor"]["States"]["RunStep"]["Arguments"]["Input"]
            .as_str()
            .unwrap_or_default();
    assert!(
        run_step.contains("{\"continueFrom\": "),
        "the next part names the part before, whose output it reads: {run_step}"
    );
    assert_eq!(states["ReadHandover"]["Next"], "Resume");
    let carried: Vec<&String> = states["HandOver"]["Output"]["handover"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let restored = states["Resume"]["Assign"].as_object().unwrap();
    for name in &carried {
        assert!(
            restored.contains_key(*name),
            "{name} is handed over but not taken over"
        );
    }
    // Every variable the step reads is handed over, or set afresh by Resume before it is read
    // (this execution's calls, the settings; `next` comes with the first answer).
    let mut variables = std::collections::BTreeSet::new();
    for state in states.as_object().unwrap().values() {
        let catches = state["Catch"].as_array().cloned().unwrap_or_default();
        for assign in std::iter::once(&state["Assign"]).chain(catches.iter().map(|c| &c["Assign"]))
        {
            if let Some(assign) = assign.as_object() {
                variables.extend(assign.keys().cloned());
            }
        }
    }
    let text = step.to_string();
    let fresh = [
        "calls",
        "next",
        "maxRounds",
        "trackIntervalSeconds",
        "timeLimitSeconds",
    ];
    for name in &variables {
        let read = text.match_indices(&format!("${name}")).any(|(at, found)| {
            !text[at + found.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        });
        if read && !fresh.contains(&name.as_str()) {
            assert!(
                carried.contains(&name),
                "${name} is read, but a handover does not carry it"
            );
        }
    }
}
