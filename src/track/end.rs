//! How a step ended, decided on its last call from where its loop stood and what the call read,
//! and answered as `stepEnd`: whether the plan goes on or halts, why, what stopped the step early,
//! and whether it is complete. The state machine and the local runner take it as it is.

use serde::Serialize;

use super::verdict::HaltReason;
use crate::launch::next::time_left;
use crate::request::StepLoop;

/// Tracking calls that may fail in a row before the step sums up (TRACKING_ERROR).
pub const MAX_TRACKING_ERRORS: u32 = 3;

/// Why a step ended before every instance was final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum StoppedBy {
    TimeLimit,
    MaxRounds,
    LaunchError,
    TrackingError,
}

/// How the step ended, on its last call: the plan goes on (`finished`) or halts, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepEnd {
    /// `finished` or `halted`.
    pub status: &'static str,
    /// Why the plan halts: the launch or tracking error that stopped the step, else the verdict's
    /// (none when the plan goes on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub stopped_by: Option<StoppedBy>,
    /// Every instance final, nothing deferred, no error.
    pub complete: bool,
}

/// On the step's last call: what stopped it early, whether it is complete (`all_final`: every
/// launched instance has its result), and whether the plan halts — a launch or tracking error
/// first, else the verdict's reason (`halt`, when the verdict halts).
pub fn step_end(step: &StepLoop, all_final: bool, halt: Option<HaltReason>) -> StepEnd {
    let stopped_by = if step.launch_error {
        Some(StoppedBy::LaunchError)
    } else if step.tracking_errors >= MAX_TRACKING_ERRORS {
        Some(StoppedBy::TrackingError)
    } else if !time_left(step) && (!all_final || step.deferred > 0) {
        // Only a step the limit cut short: one that came to its end in time, whose last call is
        // made later (a redrive hours after it failed), was not stopped by it.
        Some(StoppedBy::TimeLimit)
    } else if step.deferred > 0 && step.rounds >= step.limits.max_rounds {
        Some(StoppedBy::MaxRounds)
    } else {
        None
    };
    let error_stop = stopped_by.is_some_and(StoppedBy::is_error);
    let verdict_reason = halt.map(|reason| reason.name().to_owned());
    let reason = if error_stop {
        stopped_by.map(|s| s.name().to_owned())
    } else {
        verdict_reason
    };
    StepEnd {
        status: end_status(reason.as_deref()),
        reason,
        stopped_by,
        complete: all_final
            && step.deferred == 0
            && !step.launch_error
            && step.tracking_errors < MAX_TRACKING_ERRORS,
    }
}

impl StoppedBy {
    /// The stops that halt the plan with the error that stopped the step, not the verdict's reason.
    pub const ERRORS: [StoppedBy; 2] = [StoppedBy::LaunchError, StoppedBy::TrackingError];

    /// Its name, as answers and events spell it.
    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn is_error(self) -> bool {
        Self::ERRORS.contains(&self)
    }
}

/// A step's status from why it halts: `halted` when there is a reason, else `finished`; one
/// spelling for a single group's end and for a step summed across accounts and regions.
pub fn end_status(halt_reason: Option<&str>) -> &'static str {
    if halt_reason.is_some() {
        "halted"
    } else {
        "finished"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::verdict::HaltReason;
    use serde_json::{Value, json};

    use crate::request::step_loop_for_test as step;

    /// (loop, every launched instance final, verdict) → (status, reason, what stopped it, complete).
    type Ending = (
        Value,
        bool,
        Option<HaltReason>,
        (&'static str, Option<&'static str>, Option<StoppedBy>, bool),
    );

    /// Every way a step ends.
    #[test]
    fn how_a_step_ends() {
        use HaltReason::*;
        let cases: [Ending; 8] = [
            (json!({}), true, None, ("finished", None, None, true)),
            (
                json!({}),
                true,
                Some(CriticalFailed),
                ("halted", Some("CRITICAL_FAILED"), None, true),
            ),
            (
                json!({}),
                false,
                Some(StepIncomplete),
                ("halted", Some("STEP_INCOMPLETE"), None, false),
            ),
            // An error stops the step first; its name is the reason, whatever the verdict.
            (
                json!({"launchError": true}),
                true,
                Some(TooManyFailed),
                (
                    "halted",
                    Some("LAUNCH_ERROR"),
                    Some(StoppedBy::LaunchError),
                    false,
                ),
            ),
            (
                json!({"trackingErrors": 3}),
                false,
                None,
                (
                    "halted",
                    Some("TRACKING_ERROR"),
                    Some(StoppedBy::TrackingError),
                    false,
                ),
            ),
            (
                json!({"trackingErrors": 2}),
                true,
                None,
                ("finished", None, None, true),
            ),
            (
                json!({"elapsedSeconds": 3600}),
                false,
                Some(StepIncomplete),
                (
                    "halted",
                    Some("STEP_INCOMPLETE"),
                    Some(StoppedBy::TimeLimit),
                    false,
                ),
            ),
            (
                json!({"rounds": 10, "deferred": 4}),
                true,
                Some(StepIncomplete),
                (
                    "halted",
                    Some("STEP_INCOMPLETE"),
                    Some(StoppedBy::MaxRounds),
                    false,
                ),
            ),
        ];
        for (given, all_final, reason, (status, why, stopped_by, complete)) in cases {
            let end = step_end(&step(given.clone()), all_final, reason);
            assert_eq!(
                (
                    end.status,
                    end.reason.as_deref(),
                    end.stopped_by,
                    end.complete
                ),
                (status, why, stopped_by, complete),
                "{given} {all_final} {reason:?}"
            );
        }
    }

    #[test]
    fn the_end_is_answered_as_the_state_machine_reads_it() {
        let end = step_end(&step(json!({"elapsedSeconds": 4000})), false, None);
        assert_eq!(
            serde_json::to_value(end).unwrap(),
            json!({"status": "finished", "stoppedBy": "TIME_LIMIT", "complete": false})
        );
        // A step that came to its end in time, summed up later (a redrive hours after its last
        // call failed), was not stopped by the limit.
        let late = step_end(&step(json!({"elapsedSeconds": 40000})), true, None);
        assert_eq!(
            serde_json::to_value(late).unwrap(),
            json!({"status": "finished", "stoppedBy": null, "complete": true})
        );
    }
}
