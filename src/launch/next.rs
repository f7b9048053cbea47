//! What a step does after each launch round or tracking call, decided here and answered as
//! `next`: the state machine's Choice states and the local runner only follow it — track the
//! running jobs after an interval, launch the deferred instances again (now, when capacity may
//! have freed up, or after an interval), or make the step's last call ([`crate::track::end`]
//! says how the step ended).

use serde::Serialize;

use super::outcome::DeferReason;
use crate::error::{ERROR_INVALID_REQUEST, ERROR_TARGET_UNREACHABLE};
use crate::request::StepLoop;

/// The next call of the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Next {
    /// Wait `waitSeconds`, then track the running jobs.
    #[serde(rename_all = "camelCase")]
    Track { wait_seconds: u64 },
    /// Wait `waitSeconds` (0: none), then launch the deferred instances again.
    #[serde(rename_all = "camelCase")]
    Launch { wait_seconds: u64 },
    /// The step's last call: every job read again, the step summed up.
    Finish,
    /// This step execution has made its share of calls: it ends with the step as it stands, and
    /// the plan starts a fresh step execution (the step's next part), which goes on with a
    /// tracking call (its answer says what comes next).
    Handover,
    /// A launch round failed for good and every job of the step is done: that round is sent
    /// once more, and if it fails again the execution fails at that call — a redrive sends it
    /// again once the cause is fixed, and the step goes on.
    RetryLaunch,
}

/// Calls a step execution makes before it hands the step over. Each call (its waits, Choice states
/// and every retry included) adds at most a few dozen events to the execution's history, which
/// Step Functions caps at 25 000; tests/history.rs bounds the worst case from the generated
/// definitions.
pub const MAX_CALLS_PER_EXECUTION: u32 = 350;

/// How old a step execution may grow before it hands the step over: 60 days, well before the 90
/// days of its TimeoutSeconds. A step's TimeLimitSeconds (at most half a day) ends it far sooner;
/// this holds whatever a caller's loop says of its limits.
pub const MAX_EXECUTION_SECONDS: u64 = 60 * 24 * 3600;

/// What a choice is made on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Situation {
    /// The step's jobs not known done.
    pub running_jobs: usize,
    /// Instances waiting for the next launch round.
    pub deferred: usize,
    /// Launch rounds made.
    pub rounds: u32,
    pub max_rounds: u32,
    pub launch_error: bool,
    /// The launch error was the function refusing the request itself: sending it again cannot
    /// help, and a redrive would only repeat it.
    pub launch_refused: bool,
    pub time_left: bool,
    /// The choice follows a tracking call (else a launch round).
    pub after_track: bool,
    /// That tracking call saw a job finish.
    pub freed: bool,
    /// Some instances were deferred for something other than a full quota.
    pub deferred_not_for_quota: bool,
    /// Some wait for readiness (`REPLICATING`): the step reads them again every round while its
    /// wait lasts, however many rounds that takes — MaxRounds bounds the rounds spent on
    /// instances DRS turned away, and the wait bounds these.
    pub waiting: bool,
    /// Calls this execution made, this one included.
    pub calls: u32,
    /// How long this execution has run.
    pub execution_seconds: u64,
    /// Seconds until the first running job is expected to end ([`crate::track::expect`]).
    pub until_expected_end: Option<u64>,
    /// Seconds left of the step's TimeLimitSeconds.
    pub seconds_left: u64,
}

/// After a launch round or a tracking call. A launch round that failed for good is sent again
/// once nothing of the step runs; deferred instances are sent again right after a tracking call
/// that may have freed capacity (a job finished, none is running, or they wait for something
/// other than a full quota — readiness among them: so an instance that turned ready is launched
/// within one interval); jobs are tracked every interval while time is left; deferred
/// instances with no job running wait an interval; otherwise the step sums up.
pub fn next(s: &Situation, interval: u64) -> Next {
    let can_launch =
        s.deferred > 0 && (s.rounds < s.max_rounds || s.waiting) && !s.launch_error && s.time_left;
    // The round that failed is sent again only once its step's jobs are tracked to the end.
    if s.launch_error && s.running_jobs == 0 {
        // A refused request halts the step (its last call says LAUNCH_ERROR) instead.
        return if s.launch_refused {
            Next::Finish
        } else {
            Next::RetryLaunch
        };
    }
    let next = if s.after_track
        && can_launch
        && (s.freed || s.running_jobs == 0 || s.deferred_not_for_quota)
    {
        Next::Launch { wait_seconds: 0 }
    } else if s.running_jobs > 0 && s.time_left {
        Next::Track {
            wait_seconds: track_wait(interval, s),
        }
    } else if can_launch {
        Next::Launch {
            wait_seconds: interval,
        }
    } else {
        Next::Finish
    };
    // The step's last call is made here whatever the count: it is one more.
    let worn = s.calls >= MAX_CALLS_PER_EXECUTION || s.execution_seconds >= MAX_EXECUTION_SECONDS;
    if next != Next::Finish && worn {
        return Next::Handover;
    }
    next
}

/// How long before the next tracking call. Every interval, as a rule; once a job's length is
/// known, timed so that a call comes just after the first running job should end: when that end
/// is between one and two intervals off, the one wait stretches to it (the calls before came an
/// interval apart); an end within the interval is met by a shorter wait only while the execution
/// has tracked less than once an interval on average, so polling never exceeds that.
pub fn track_wait(interval: u64, s: &Situation) -> u64 {
    let interval = interval.max(1);
    match s.until_expected_end {
        // Nothing learnt yet, or the job outlives the shortest: every interval.
        None | Some(0) => interval,
        Some(left) if left <= interval => {
            let calls_by_then = u64::from(s.calls) + 1;
            if calls_by_then * interval <= s.execution_seconds + left {
                left
            } else {
                interval
            }
        }
        // Never later past the step's time limit than an interval's call would be.
        Some(left) if left <= 2 * interval && left <= s.seconds_left.max(interval) => left,
        Some(_) => interval,
    }
}

/// After a launch round that answered: `new_jobs` the jobs it reports, `deferred` what it left
/// for the next round.
pub fn after_launch(step: &StepLoop, new_jobs: usize, deferred: usize, reasons: &[&str]) -> Next {
    next(
        &Situation {
            running_jobs: step.running_jobs + new_jobs,
            deferred,
            rounds: step.rounds + 1,
            max_rounds: step.limits.max_rounds,
            launch_error: false,
            launch_refused: false,
            time_left: time_left(step),
            after_track: false,
            freed: false,
            deferred_not_for_quota: reasons.iter().any(|r| !for_quota(r)),
            waiting: reasons.iter().any(|r| waiting(r)),
            calls: step.calls + 1,
            execution_seconds: step.execution_seconds,
            until_expected_end: None,
            seconds_left: seconds_left(step),
        },
        step.limits.track_interval_seconds,
    )
}

/// The launch error says sending it again cannot help: the function refused the request, or its
/// account and region could not be reached (a selector there, whose instances nobody can know).
fn refused(step: &StepLoop) -> bool {
    matches!(
        step.launch_error_name.as_deref(),
        Some(ERROR_INVALID_REQUEST | ERROR_TARGET_UNREACHABLE)
    )
}

/// After a tracking call that answered: `running` the jobs still not done, the first expected to
/// end in `until_expected_end` seconds when a job's length is known.
pub fn after_track(step: &StepLoop, running: usize, until_expected_end: Option<u64>) -> Next {
    next(
        &Situation {
            running_jobs: running,
            deferred: step.deferred,
            rounds: step.rounds,
            max_rounds: step.limits.max_rounds,
            launch_error: step.launch_error,
            launch_refused: refused(step),
            time_left: time_left(step),
            after_track: true,
            freed: running < step.running_jobs,
            deferred_not_for_quota: step.deferred_reasons.iter().any(|r| !for_quota(r)),
            waiting: step.deferred_reasons.iter().any(|r| waiting(r)),
            calls: step.calls + 1,
            execution_seconds: step.execution_seconds,
            until_expected_end,
            seconds_left: seconds_left(step),
        },
        step.limits.track_interval_seconds,
    )
}

/// Deferred for a full quota only: capacity frees up when a job finishes.
fn for_quota(reason: &str) -> bool {
    reason == DeferReason::Quota.name()
}

/// Deferred while the step waits for readiness.
fn waiting(reason: &str) -> bool {
    reason == DeferReason::Replicating.name()
}

/// Seconds left of the step's TimeLimitSeconds.
fn seconds_left(step: &StepLoop) -> u64 {
    step.limits
        .time_limit_seconds
        .saturating_sub(step.elapsed_seconds)
}

/// Whether the step is within its TimeLimitSeconds.
pub(crate) fn time_left(step: &StepLoop) -> bool {
    step.elapsed_seconds < step.limits.time_limit_seconds
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::request::step_loop_for_test as step;

    const TRACK: Next = Next::Track { wait_seconds: 60 };
    const LAUNCH_NOW: Next = Next::Launch { wait_seconds: 0 };
    const LAUNCH_LATER: Next = Next::Launch { wait_seconds: 60 };

    /// Every decision after a launch round: (loop before the call, jobs the answer reports,
    /// instances it deferred and why) → next.
    #[test]
    fn after_a_launch_round() {
        let cases: [(Value, usize, usize, &[&str], Next); 12] = [
            (json!({}), 1, 0, &[], TRACK),
            (json!({"runningJobs": 2}), 0, 0, &[], TRACK),
            (json!({}), 0, 0, &[], Next::Finish),
            (json!({}), 0, 3, &["QUOTA"], LAUNCH_LATER),
            (json!({}), 0, 3, &["THROTTLED"], LAUNCH_LATER),
            (json!({}), 2, 3, &["QUOTA"], TRACK),
            // This round was the last allowed: the deferred wait for nothing.
            (json!({"rounds": 9}), 0, 3, &["QUOTA"], Next::Finish),
            (json!({"rounds": 9}), 1, 3, &["QUOTA"], TRACK),
            (
                json!({"elapsedSeconds": 3600}),
                1,
                3,
                &["QUOTA"],
                Next::Finish,
            ),
            // Instances on their way are read again every interval, past MaxRounds too.
            (json!({}), 0, 3, &["REPLICATING"], LAUNCH_LATER),
            (
                json!({"rounds": 30}),
                0,
                3,
                &["REPLICATING", "QUOTA"],
                LAUNCH_LATER,
            ),
            (
                json!({"rounds": 30, "elapsedSeconds": 3600}),
                0,
                3,
                &["REPLICATING"],
                Next::Finish,
            ),
        ];
        for (given, jobs, deferred, reasons, want) in cases {
            let got = after_launch(&step(given.clone()), jobs, deferred, reasons);
            assert_eq!(
                got, want,
                "{given} jobs {jobs} deferred {deferred} {reasons:?}"
            );
        }
    }

    /// Every decision after a tracking call: (loop before the call, jobs still running) → next.
    #[test]
    fn after_a_tracking_call() {
        let cases: [(Value, usize, Next); 16] = [
            (json!({"runningJobs": 2}), 2, TRACK),
            (json!({"runningJobs": 2}), 0, Next::Finish),
            // Capacity may have freed up: launch the deferred now.
            (
                json!({"runningJobs": 2, "deferred": 3, "deferredReasons": ["QUOTA"]}),
                1,
                LAUNCH_NOW,
            ),
            (
                json!({"runningJobs": 2, "deferred": 3, "deferredReasons": ["QUOTA"]}),
                0,
                LAUNCH_NOW,
            ),
            (
                json!({"runningJobs": 2, "deferred": 3, "deferredReasons": ["QUOTA"]}),
                2,
                TRACK,
            ),
            (
                json!({"runningJobs": 2, "deferred": 3, "deferredReasons": ["QUOTA", "THROTTLED"]}),
                2,
                LAUNCH_NOW,
            ),
            // Instances on their way are read again after every tracking call, past MaxRounds.
            (
                json!({"runningJobs": 2, "deferred": 3, "deferredReasons": ["REPLICATING"], "rounds": 40}),
                2,
                LAUNCH_NOW,
            ),
            (
                json!({"runningJobs": 0, "deferred": 3, "deferredReasons": ["REPLICATING"], "rounds": 40}),
                0,
                LAUNCH_NOW,
            ),
            // No round left, or a launch error: track what runs, then sum up.
            (
                json!({"runningJobs": 2, "deferred": 3, "deferredReasons": ["QUOTA"], "rounds": 10}),
                1,
                TRACK,
            ),
            (
                json!({"runningJobs": 0, "deferred": 3, "deferredReasons": ["QUOTA"], "launchError": true}),
                0,
                Next::RetryLaunch,
            ),
            (json!({"runningJobs": 2, "launchError": true}), 2, TRACK),
            // A request the function refused is not sent again: the step sums up and halts.
            (
                json!({"runningJobs": 1, "launchError": true, "launchErrorName": "InvalidFailbackRequest"}),
                0,
                Next::Finish,
            ),
            // Nor a selector in an account and region that cannot be reached.
            (
                json!({"runningJobs": 0, "launchError": true, "launchErrorName": "TargetUnreachable"}),
                0,
                Next::Finish,
            ),
            (
                json!({"runningJobs": 1, "launchError": true, "launchErrorName": "DrsAccessDenied"}),
                0,
                Next::RetryLaunch,
            ),
            // Out of time: sum up whatever runs.
            (
                json!({"runningJobs": 2, "elapsedSeconds": 3600}),
                2,
                Next::Finish,
            ),
            (
                json!({"runningJobs": 0, "deferred": 3, "deferredReasons": ["QUOTA"], "elapsedSeconds": 3600}),
                0,
                Next::Finish,
            ),
        ];
        for (given, running, want) in cases {
            assert_eq!(
                after_track(&step(given.clone()), running, None),
                want,
                "{given} {running}"
            );
        }
    }

    #[test]
    fn next_is_answered_as_the_state_machine_reads_it() {
        assert_eq!(
            serde_json::to_value(TRACK).unwrap(),
            json!({"action": "track", "waitSeconds": 60})
        );
        assert_eq!(
            serde_json::to_value(LAUNCH_NOW).unwrap(),
            json!({"action": "launch", "waitSeconds": 0})
        );
        assert_eq!(
            serde_json::to_value(Next::Finish).unwrap(),
            json!({"action": "finish"})
        );
        assert_eq!(
            serde_json::to_value(Next::Handover).unwrap(),
            json!({"action": "handover"})
        );
        assert_eq!(
            serde_json::to_value(Next::RetryLaunch).unwrap(),
            json!({"action": "retryLaunch"})
        );
    }

    /// Past its share of calls a step execution hands the step over instead of waiting for the
    /// next call; the last call of a step is still made.
    #[test]
    fn an_execution_hands_over_after_its_share_of_calls() {
        let at = MAX_CALLS_PER_EXECUTION - 1;
        let busy = step(json!({"runningJobs": 2, "calls": at}));
        assert_eq!(after_track(&busy, 2, None), Next::Handover);
        assert_eq!(
            after_track(&step(json!({"runningJobs": 2, "calls": at - 1})), 2, None),
            TRACK
        );
        assert_eq!(
            after_track(&busy, 0, None),
            Next::Finish,
            "the step's end comes first"
        );
        let deferred = step(json!({"calls": at}));
        assert_eq!(after_launch(&deferred, 0, 3, &["QUOTA"]), Next::Handover);
        assert_eq!(after_launch(&deferred, 0, 0, &[]), Next::Finish);
        let old = step(json!({"runningJobs": 2, "executionSeconds": MAX_EXECUTION_SECONDS}));
        assert_eq!(
            after_track(&old, 2, None),
            Next::Handover,
            "an old execution hands over too"
        );
        let young = step(json!({"runningJobs": 2, "executionSeconds": MAX_EXECUTION_SECONDS - 1}));
        assert_eq!(after_track(&young, 2, None), TRACK);
    }

    fn waiting_for(until_end: Option<u64>, calls: u32, execution_seconds: u64) -> u64 {
        track_wait(
            60,
            &Situation {
                until_expected_end: until_end,
                calls,
                execution_seconds,
                seconds_left: 3600,
                ..Situation::default()
            },
        )
    }

    #[test]
    fn a_tracking_call_is_timed_to_the_expected_end_without_polling_more() {
        // Nothing learnt, or past the expected end: every interval.
        assert_eq!(waiting_for(None, 5, 300), 60);
        assert_eq!(waiting_for(Some(0), 5, 300), 60);
        // Far off: every interval, until the end is less than two away; that wait meets it.
        assert_eq!(waiting_for(Some(1175), 2, 70), 60);
        assert_eq!(waiting_for(Some(120), 2, 70), 120);
        assert_eq!(waiting_for(Some(95), 2, 70), 95);
        assert_eq!(waiting_for(Some(61), 2, 70), 61);
        // Not past the step's time limit by more than an interval's call would be.
        let near_the_limit = Situation {
            until_expected_end: Some(95),
            seconds_left: 30,
            ..Situation::default()
        };
        assert_eq!(track_wait(60, &near_the_limit), 60);
        // Within the interval: shorter only while the execution has tracked less than once an
        // interval on average (the next call its 6th, after 330 s: 360 <= 330 + 30).
        assert_eq!(waiting_for(Some(30), 5, 330), 30);
        assert_eq!(waiting_for(Some(30), 5, 320), 60);
        for left in 1..=300 {
            for calls in 1..20 {
                let seconds = u64::from(calls) * 60;
                let wait = waiting_for(Some(left), calls, seconds);
                assert!(wait >= 60 || (u64::from(calls) + 1) * 60 <= seconds + wait);
                assert!(wait <= 120, "stretched to two intervals at most");
            }
        }
    }

    #[test]
    fn a_tracking_call_carries_the_expectation_into_its_next() {
        let running = step(json!({"runningJobs": 2, "calls": 3, "executionSeconds": 200}));
        assert_eq!(
            after_track(&running, 2, Some(95)),
            Next::Track { wait_seconds: 95 }
        );
        assert_eq!(after_track(&running, 2, None), TRACK);
    }
}
