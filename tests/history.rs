//! No execution nears Step Functions' cap of 25 000 history events, whatever the plan and the
//! settings: bounded here from the generated definition itself. A call of a step's loop (with its
//! waits, Choice states and every retry its Retry allows) costs at most so many events; an
//! execution makes at most MAX_CALLS_PER_EXECUTION of them before the function says `handover`
//! and a fresh execution takes the run over; a plan has at most MAX_PLAN_STEPS steps, each with
//! its own states around the loop; the run's own states come once.

use std::fs;
use std::path::Path;

use drs_failback::launch::next::MAX_CALLS_PER_EXECUTION;
use drs_failback::request::MAX_PLAN_STEPS;
use serde_json::Value;

const HISTORY_CAP: u64 = 25_000;
/// The bound must leave this share of the cap free.
const MARGIN: f64 = 0.15;

fn definition() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("statemachine/failback.asl.json");
    serde_json::from_str(&fs::read_to_string(path).expect("readable")).expect("JSON")
}

/// The most events a state adds each time it runs: entered and exited, and for a task three per
/// attempt (scheduled, started, succeeded or failed) — the first and every retry its Retry allows.
fn cost(states: &Value, name: &str) -> u64 {
    let state = &states[name];
    assert!(state.is_object(), "no state {name}");
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
    2 + 3 * (1 + retries)
}

fn sum(states: &Value, names: &[&str]) -> u64 {
    names.iter().map(|name| cost(states, name)).sum()
}

#[test]
fn no_execution_nears_the_history_cap_whatever_the_plan() {
    let definition = definition();
    let states = &definition["States"];
    // Every state of the definition is counted in one of the three parts below.
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
    let per_step_states = [
        "StartStep",
        "PublishStepStarted",
        "LaunchFailed",
        "FinalTrack",
        "StepDone",
        "WaitAfterStep",
        "AfterWait",
        "RequestApproval",
    ];
    let once: Vec<&str> = states
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|name| {
            !per_call_states.contains(name)
                && !per_step_states.contains(name)
                && !call_tasks.contains(name)
        })
        .collect();
    // A call goes through every loop state at most once (the wait, the choices, the next
    // request, the failure path) and through one call task, with every retry it allows.
    let per_call = sum(states, &per_call_states)
        + call_tasks
            .iter()
            .map(|task| cost(states, task))
            .max()
            .unwrap_or(0);
    let per_step = sum(states, &per_step_states);
    let fixed = 2 + sum(states, &once);
    let bound =
        u64::from(MAX_CALLS_PER_EXECUTION) * per_call + MAX_PLAN_STEPS as u64 * per_step + fixed;
    let allowed = (HISTORY_CAP as f64 * (1.0 - MARGIN)) as u64;
    assert!(
        bound <= allowed,
        "an execution may write {bound} history events ({MAX_CALLS_PER_EXECUTION} calls × {per_call} + {MAX_PLAN_STEPS} steps × {per_step} + {fixed}), more than {allowed}"
    );
    // The bound holds whatever the settings: time limits, intervals and rounds only change how
    // many executions a run takes, not what one execution writes.
    assert!(
        per_call < 60 && per_step < 150,
        "{per_call} per call, {per_step} per step"
    );
}

/// The loop hands the run over only through HandOver, which starts a fresh execution of this state
/// machine with the run as it stands and ends this one; Begin takes such a run over.
#[test]
fn a_handover_starts_the_same_state_machine_and_is_taken_over() {
    let definition = definition();
    let states = &definition["States"];
    assert_eq!(definition["StartAt"], "Begin");
    assert_eq!(
        states["HandOver"]["Resource"],
        "arn:aws:states:::states:startExecution"
    );
    assert_eq!(
        states["HandOver"]["Arguments"]["StateMachineArn"],
        "{% $states.context.StateMachine.Id %}"
    );
    assert_eq!(states["HandOver"]["Next"], "HandedOver");
    assert_eq!(states["Resume"]["Next"], "Track");
    let carried: Vec<&String> = states["HandOver"]["Arguments"]["Input"]["handover"]
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
    // Every variable the definition reads is handed over, or set afresh by Resume before it is
    // read (this execution's calls, the settings; `next` comes with the first answer).
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
    let text = definition.to_string();
    let fresh = [
        "calls",
        "next",
        "maxRounds",
        "trackIntervalSeconds",
        "timeLimitSeconds",
        "approvalTimeoutSeconds",
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
