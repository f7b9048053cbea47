//! What comes of a step execution that did not answer the plan: the plan runs each step as a
//! child execution and waits for it; when the wait ends without the step's output, the plan reads
//! the child (the newest event of its history) and asks here. A step execution that failed, timed
//! out or was aborted is waited for, about an hour: the operator may redrive it (its own failure
//! is alarmed), it goes on at its failed call, and the plan takes its result. Not redriven by then,
//! it stops the plan's execution at that question (naming it); a redrive of the plan then
//! redrives the step execution, and the plan follows it to its end. One that could not be started is started
//! again a few times on its own (a throttled start, the quota of running executions), then stops
//! the plan the same way.

use serde::Serialize;

use crate::error::{HandlerError, StepStop};
use crate::request::{ExecutionStatus, StepExecutionRequest};

/// The first wait before looking at a running step execution again; each look doubles it, up to
/// [`MAX_WAIT_SECONDS`].
pub const FIRST_WAIT_SECONDS: u64 = 30;
pub const MAX_WAIT_SECONDS: u64 = 900;
/// Looks at step executions that run or wait to be redriven (and starts made again) before the
/// plan stops waiting: with the waits above about 14 hours, past the longest step
/// (TimeLimitSeconds is at most 12 hours). Counted per step execution, and over the plan's
/// execution too (all steps), from 0 again on each redrive: each look is a few events of the
/// plan's history, and this bounds them (tests/history.rs). A redrive of the plan waits again.
pub const MAX_POLLS: u32 = 60;
/// Looks at a failed step execution, waiting for it to be redriven, before the plan stops: 30 s
/// doubling to 900 s, about an hour — time to see its alarm and redrive it, short enough that the
/// run's own end (`Failback Run Finished`, FAILED) is not long in coming when nobody does.
pub const MAX_LOOKS_AT_FAILED: u32 = 8;
/// Starts of a step execution that could not be started, made again before the plan stops.
pub const MAX_STARTS_AGAIN: u32 = 3;

/// The plan's next move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Follow {
    /// The step execution ended well: its output is the step's.
    Adopt,
    /// Redrive it (RedriveExecution): it goes on at its failed call.
    Redrive,
    /// Start it (after this long): it never started.
    #[serde(rename_all = "camelCase")]
    Start { wait_seconds: u64 },
    /// It is running: look again after this long.
    #[serde(rename_all = "camelCase")]
    Wait { wait_seconds: u64 },
    /// What the plan read was read before its execution was last redriven: read it again now,
    /// and ask again.
    Look,
}

/// The answer to a step execution request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowAnswer {
    pub run_id: String,
    pub step: String,
    pub execution: String,
    pub next: Follow,
}

/// The decision, from what the plan read.
pub fn follow(request: &StepExecutionRequest) -> Result<FollowAnswer, HandlerError> {
    let execution = &request.execution;
    // What stops the plan, and what the operator does then.
    let stop_with = |stop: StepStop, what: String, remedy: &str| {
        Err(HandlerError::StepStopped {
            stop,
            message: format!(
                "step '{}' of run {}: step execution {} {what}; {remedy}",
                request.step, request.run_id, execution.name
            ),
        })
    };
    let stop = |stop: StepStop, what: String| {
        let remedy = match stop {
            StepStop::Failed => {
                "mend the cause, then redrive this execution (RedriveExecution): it redrives the step execution where it failed (or starts it), and the run goes on"
            }
            StepStop::StillRunning => {
                "redrive this execution to wait for it again; or stop the step execution (StopExecution) and redrive this execution: it redrives the step execution from where it stopped"
            }
        };
        stop_with(stop, what, remedy)
    };
    let why = || match (&execution.error, &execution.cause) {
        (Some(error), Some(cause)) => format!(" ({error}: {cause})"),
        (Some(error), None) => format!(" ({error})"),
        (None, Some(cause)) => format!(" ({cause})"),
        (None, None) => String::new(),
    };
    // A redrive starts the counts again.
    let (polls, attempt) = if request.redriven {
        (0, 0)
    } else {
        (request.polls, request.attempt_polls)
    };
    let next = match execution.status {
        // Read before the plan was redriven: what it says may be old (a step execution since
        // redriven by hand, or stopped). The redrive is not spent on it.
        _ if request.stale => Follow::Look,
        Some(ExecutionStatus::Succeeded) => Follow::Adopt,
        Some(ExecutionStatus::Running) => {
            if polls.max(attempt) >= MAX_POLLS {
                return stop(
                    StepStop::StillRunning,
                    format!("is still running after {MAX_POLLS} looks"),
                );
            }
            Follow::Wait {
                wait_seconds: wait_seconds(polls),
            }
        }
        Some(
            status @ (ExecutionStatus::Failed
            | ExecutionStatus::TimedOut
            | ExecutionStatus::Aborted),
        ) => {
            if request.redriven {
                Follow::Redrive
            } else if let Some((error, cause)) = &request.redrive_refused {
                // It cannot be redriven (past the 14 days, or its history or redrive limits): a
                // redrive of this execution could only try again.
                return stop_with(
                    StepStop::Failed,
                    format!("could not be redriven ({error}: {cause})"),
                    "start the run again: a new execution of the plan with the same runId (instances this run launched are found in their jobs, not launched again)",
                );
            } else if polls < MAX_LOOKS_AT_FAILED && attempt < MAX_POLLS {
                // Waiting for the operator to redrive it.
                Follow::Wait {
                    wait_seconds: wait_seconds(polls),
                }
            } else {
                let status = serde_json::to_value(status).unwrap_or_default();
                let status = status.as_str().unwrap_or("ended");
                return stop(
                    StepStop::Failed,
                    format!(
                        "ended {status}{} and was not redriven within {MAX_LOOKS_AT_FAILED} looks",
                        why()
                    ),
                );
            }
        }
        // Never started, or not readable: starting it again under its name is safe (a start of a
        // running execution with its name and input is that execution; a closed one's name is
        // refused, and read again).
        None if request.redriven => Follow::Start { wait_seconds: 0 },
        None if polls < MAX_STARTS_AGAIN && attempt < MAX_POLLS => Follow::Start {
            wait_seconds: wait_seconds(polls),
        },
        None => {
            return stop(
                StepStop::Failed,
                format!("could not be started or read{}", why()),
            );
        }
    };
    Ok(FollowAnswer {
        run_id: request.run_id.clone(),
        step: request.step.clone(),
        execution: execution.name.clone(),
        next,
    })
}

/// The wait before the look after `polls` looks: doubling from the first, capped.
fn wait_seconds(polls: u32) -> u64 {
    FIRST_WAIT_SECONDS
        .saturating_mul(1u64 << polls.min(16))
        .min(MAX_WAIT_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::StepExecution;

    fn ask(status: Option<ExecutionStatus>, redriven: bool, polls: u32) -> StepExecutionRequest {
        StepExecutionRequest {
            run_id: "wave-1".into(),
            step: "db".into(),
            execution: StepExecution {
                name: "drs-abc-s0-p1".into(),
                status,
                error: Some("DrsReadFailed".into()),
                cause: Some("DRS unreadable".into()),
            },
            redriven,
            stale: false,
            polls,
            attempt_polls: polls,
            redrive_refused: None,
        }
    }

    /// Every status, redriven or not, at the first look and past the last; read before a redrive.
    #[test]
    fn every_decision() {
        use ExecutionStatus::*;
        let wait = |s| Ok(Follow::Wait { wait_seconds: s });
        let start = |s| Ok(Follow::Start { wait_seconds: s });
        let failed = Err(StepStop::Failed);
        let running_long = Err(StepStop::StillRunning);
        type Row = (Option<ExecutionStatus>, bool, u32, Result<Follow, StepStop>);
        let table: [Row; 21] = [
            (Some(Succeeded), false, 0, Ok(Follow::Adopt)),
            (Some(Succeeded), true, MAX_POLLS, Ok(Follow::Adopt)),
            (Some(Running), false, 0, wait(30)),
            (Some(Running), false, 3, wait(240)),
            (Some(Running), false, 5, wait(MAX_WAIT_SECONDS)),
            (Some(Running), false, MAX_POLLS - 1, wait(MAX_WAIT_SECONDS)),
            (Some(Running), false, MAX_POLLS, running_long),
            (Some(Running), true, MAX_POLLS, wait(30)),
            (Some(Failed), false, 0, wait(30)),
            (Some(TimedOut), false, 4, wait(480)),
            (
                Some(Aborted),
                false,
                MAX_LOOKS_AT_FAILED - 1,
                wait(MAX_WAIT_SECONDS),
            ),
            (Some(Failed), false, MAX_LOOKS_AT_FAILED, failed),
            (Some(TimedOut), false, MAX_LOOKS_AT_FAILED, failed),
            (Some(Aborted), false, MAX_POLLS, failed),
            (Some(Failed), true, 0, Ok(Follow::Redrive)),
            (Some(Aborted), true, 7, Ok(Follow::Redrive)),
            (None, false, 0, start(30)),
            (None, false, MAX_STARTS_AGAIN - 1, start(120)),
            (None, false, MAX_STARTS_AGAIN, failed),
            (None, true, 0, start(0)),
            (None, true, MAX_POLLS, start(0)),
        ];
        for (status, redriven, polls, expected) in table {
            let got = follow(&ask(status, redriven, polls))
                .map(|a| a.next)
                .map_err(|e| match e {
                    HandlerError::StepStopped { stop, .. } => stop,
                    other => panic!("{other}"),
                });
            assert_eq!(
                got, expected,
                "{status:?} redriven {redriven} polls {polls}"
            );
            // Read before the plan's execution was redriven: read again, whatever it said.
            let stale = StepExecutionRequest {
                stale: true,
                ..ask(status, redriven, polls)
            };
            assert_eq!(follow(&stale).unwrap().next, Follow::Look);
        }
    }

    /// A step execution's own looks set its waits; the attempt's looks over all steps stop the
    /// plan whatever the step's own count (they bound the plan's history).
    #[test]
    fn the_attempts_looks_bound_every_step() {
        let at = |status, polls, attempt_polls| {
            let request = StepExecutionRequest {
                attempt_polls,
                ..ask(status, false, polls)
            };
            follow(&request).map(|a| a.next).map_err(|e| e.error_type())
        };
        use ExecutionStatus::*;
        assert_eq!(
            at(Some(Failed), 0, 30),
            Ok(Follow::Wait { wait_seconds: 30 })
        );
        assert_eq!(at(None, 0, 30), Ok(Follow::Start { wait_seconds: 30 }));
        assert_eq!(at(Some(Running), 2, MAX_POLLS), Err("StepStillRunning"));
        assert_eq!(at(Some(Failed), 0, MAX_POLLS), Err("StepExecutionFailed"));
        assert_eq!(at(None, 0, MAX_POLLS), Err("StepExecutionFailed"));
        assert_eq!(at(Some(Succeeded), 0, MAX_POLLS), Ok(Follow::Adopt));
    }

    /// A step execution the plan could not redrive (past the 14 days) stops the plan, saying to
    /// start the run again; one redriven by hand meanwhile is followed as any.
    #[test]
    fn a_step_execution_that_cannot_be_redriven_stops_the_plan_at_once() {
        let refused = |status| StepExecutionRequest {
            redrive_refused: Some((
                "Sfn.ExecutionNotRedrivableException".into(),
                "Execution redrivable period exceeded".into(),
            )),
            ..ask(status, false, 1)
        };
        let error = follow(&refused(Some(ExecutionStatus::Failed))).unwrap_err();
        assert_eq!(error.error_type(), "StepExecutionFailed");
        let message = error.to_string();
        for part in [
            "could not be redriven",
            "redrivable period exceeded",
            "same runId",
        ] {
            assert!(message.contains(part), "{message}");
        }
        assert_eq!(
            follow(&refused(Some(ExecutionStatus::Running)))
                .unwrap()
                .next,
            Follow::Wait { wait_seconds: 60 }
        );
        assert_eq!(
            follow(&refused(Some(ExecutionStatus::Succeeded)))
                .unwrap()
                .next,
            Follow::Adopt
        );
    }

    #[test]
    fn a_stop_names_the_step_execution_its_error_and_the_remedy() {
        let error = follow(&ask(
            Some(ExecutionStatus::Failed),
            false,
            MAX_LOOKS_AT_FAILED,
        ))
        .unwrap_err();
        assert_eq!(error.error_type(), "StepExecutionFailed");
        let message = error.to_string();
        for part in [
            "step 'db'",
            "wave-1",
            "drs-abc-s0-p1",
            "ended FAILED",
            "not redriven within 8 looks",
            "DrsReadFailed: DRS unreadable",
            "redrive this execution",
        ] {
            assert!(message.contains(part), "{message}");
        }
        let error = follow(&ask(Some(ExecutionStatus::Running), false, MAX_POLLS)).unwrap_err();
        assert_eq!(error.error_type(), "StepStillRunning");
    }

    #[test]
    fn the_answer_is_what_the_state_machine_follows() {
        let answer = follow(&ask(Some(ExecutionStatus::Running), false, 1)).unwrap();
        assert_eq!(
            serde_json::to_value(answer).unwrap(),
            serde_json::json!({"runId": "wave-1", "step": "db", "execution": "drs-abc-s0-p1",
                "next": {"action": "wait", "waitSeconds": 60}})
        );
    }
}
