//! The function's own decisions of what a step does next (`drs_failback::launch::next`, `drs_failback::track::end`), one per
//! line of JSON on standard input, answered one per line on standard output. For the state
//! machine tests' fake function (statemachine/test), which answers like the function without
//! being it: its `next` and `stepEnd` come from here, so the decision exists once, in Rust.
//!
//!   {"after": "launch", "loop": {...}, "jobs": 1, "deferred": 3, "deferredReasons": ["QUOTA"]}
//!   {"after": "track", "loop": {...}, "running": 2}
//!   {"after": "final", "loop": {...}, "allFinal": true, "halt": "CRITICAL_FAILED"}
//!   {"after": "stepExecution", "request": {"action": "stepExecution", ...}}
//!   {"after": "waits", "seconds": 3600, "elapsed": 1200}   (does the step still wait for readiness)
//!   {"after": "stepSum", "request": {"action": "stepSum", ...}}   (a step summed up across its places)
//!   {"after": "rehearsal", "runId": "...", "steps": [...]}   (a rehearsal's dry run judged: its steps)
//!
//! The last, the plan's question about a step execution that did not answer it
//! (`drs_failback::plan::follow`), is answered as the function answers it: the answer, or
//! `{"errorType", "errorMessage"}` when the plan stops there.

use std::io::{self, BufRead, Write};

use drs_failback::error::HandlerError;
use drs_failback::launch::next::{after_launch, after_track};
use drs_failback::launch::readiness::Wait;
use drs_failback::plan::follow::follow;
use drs_failback::plan::rehearsal::judge;
use drs_failback::plan::sum::sum;
use drs_failback::request::StepLoop;
use drs_failback::request::{Action, dry_run_steps, parse_action};
use drs_failback::track::end::step_end;
use drs_failback::track::verdict::HaltReason;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(tag = "after", rename_all = "camelCase", deny_unknown_fields)]
enum Ask {
    #[serde(rename_all = "camelCase")]
    Launch {
        #[serde(rename = "loop")]
        step_loop: StepLoop,
        jobs: usize,
        deferred: usize,
        #[serde(default)]
        deferred_reasons: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    Track {
        #[serde(rename = "loop")]
        step_loop: StepLoop,
        running: usize,
        #[serde(default)]
        until_expected_end: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    Final {
        #[serde(rename = "loop")]
        step_loop: StepLoop,
        all_final: bool,
        halt: Option<HaltReason>,
    },
    StepExecution {
        request: Value,
    },
    Waits {
        seconds: u64,
        elapsed: Option<u64>,
    },
    StepSum {
        request: Value,
    },
    #[serde(rename_all = "camelCase")]
    Rehearsal {
        run_id: String,
        steps: Value,
    },
}

fn decide(line: &str) -> Result<Value, String> {
    let ask: Ask = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let answer = match ask {
        Ask::Launch {
            step_loop,
            jobs,
            deferred,
            deferred_reasons,
        } => {
            let reasons: Vec<&str> = deferred_reasons.iter().map(String::as_str).collect();
            serde_json::to_value(after_launch(&step_loop, jobs, deferred, &reasons))
        }
        Ask::Track {
            step_loop,
            running,
            until_expected_end,
        } => serde_json::to_value(after_track(&step_loop, running, until_expected_end)),
        Ask::Final {
            step_loop,
            all_final,
            halt,
        } => serde_json::to_value(step_end(&step_loop, all_final, halt)),
        Ask::Waits { seconds, elapsed } => serde_json::to_value(Wait { seconds, elapsed }.waits()),
        Ask::StepSum { request } => match parse_action(request, 1, String::new) {
            Ok(Action::StepSum(request)) => serde_json::to_value(sum(&request)),
            Ok(_) => return Err("not a stepSum request".into()),
            Err(error) => return Err(error.to_string()),
        },
        Ask::Rehearsal { run_id, steps } => match dry_run_steps(&run_id, &steps) {
            Ok(request) => serde_json::to_value(judge(&request)),
            Err(error) => return Err(error.to_string()),
        },
        Ask::StepExecution { request } => {
            let answer = match parse_action(request, 1, String::new) {
                Ok(Action::StepExecution(request)) => follow(&request),
                Ok(_) => return Err("not a stepExecution request".into()),
                Err(error) => Err(HandlerError::from(error)),
            };
            match answer {
                Ok(answer) => serde_json::to_value(answer),
                Err(error) => Ok(serde_json::json!({
                    "errorType": error.error_type(), "errorMessage": error.to_string()})),
            }
        }
    };
    answer.map_err(|e| e.to_string())
}

fn main() {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for line in io::stdin().lock().lines() {
        let line = line.expect("standard input is readable");
        if line.trim().is_empty() {
            continue;
        }
        match decide(&line) {
            Ok(answer) => writeln!(out, "{answer}").expect("standard output is writable"),
            Err(error) => {
                eprintln!("drs-failback-decide: {error}");
                std::process::exit(2);
            }
        }
    }
}
