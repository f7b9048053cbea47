//! How long a plan may take, at the longest: every step to its TimeLimitSeconds, every wait, every
//! approval to its timeout. The plan's execution runs the whole run and stops at its own
//! TimeoutSeconds: a plan that could outlast it is refused when it is checked, before anything
//! is launched, rather than stopped half done.

use crate::finish::decide::MAX_FINISH_CALLS;
use crate::request::{PlanLimits, PlanRequest, RequestError, invalid, within};

/// What a step may take beyond its TimeLimitSeconds: its last call, with its retries, and the
/// plan's own states around it.
pub const STEP_SLACK_SECONDS: u64 = 3600;
/// What the longest plan must leave of the execution's TimeoutSeconds.
pub const RUN_MARGIN_SECONDS: u64 = 86_400;

/// The longest the plan may take, in seconds, under `limits`. A step's wait and approval come
/// between it and the next step: the last step's are never waited for.
pub fn longest(request: &PlanRequest, limits: &PlanLimits) -> u64 {
    let count = request.steps.len();
    request
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let between = if index + 1 < count {
                step.wait_after_seconds
                    + if step.approval {
                        limits.approval_timeout_seconds
                    } else {
                        0
                    }
            } else {
                0
            };
            limits.time_limit_seconds + STEP_SLACK_SECONDS + between
        })
        .sum::<u64>()
        + finishing(request, limits)
}

/// The run's finishings (after a step that has one, and after the last step): each approval to
/// its timeout, and every finishing call the function may ask for — a run's finishings share
/// MAX_FINISH_CALLS — an interval apart.
fn finishing(request: &PlanRequest, limits: &PlanLimits) -> u64 {
    let finishings = request.steps.iter().filter(|s| s.finish.is_some()).count()
        + usize::from(request.finish.is_some());
    if finishings == 0 {
        return 0;
    }
    finishings as u64 * (limits.approval_timeout_seconds + STEP_SLACK_SECONDS)
        + u64::from(MAX_FINISH_CALLS) * limits.track_interval_seconds
}

/// Refuses a plan that could outlast its execution (when the execution said how long it may run).
pub fn check(request: &PlanRequest) -> Result<(), RequestError> {
    let Some(limits) = &request.limits else {
        return Ok(());
    };
    // A wait the step's time limit cuts short would end the step with its instances still
    // waiting: deferred, never given the skipped outcome the wait promises. The step must outlast
    // it by two intervals: the round that finds the wait over comes within one, and it needs
    // time left to be made.
    let outlast = 2 * limits.track_interval_seconds;
    if let Some((index, step)) = request.steps.iter().enumerate().find(|(_, step)| {
        step.wait_for_ready_seconds > 0
            && step.wait_for_ready_seconds + outlast >= limits.time_limit_seconds
    }) {
        return Err(within(
            &format!("steps[{index}] ({})", step.name),
            invalid(
                "waitForReadySeconds",
                &format!(
                    "({}) must end two TrackIntervalSeconds ({} s) before the step's \
                     TimeLimitSeconds ({}): the step must outlast its wait to launch or skip every \
                     instance still waiting",
                    step.wait_for_ready_seconds,
                    limits.track_interval_seconds,
                    limits.time_limit_seconds
                ),
            ),
        ));
    }
    let longest = longest(request, limits);
    let allowed = limits
        .run_timeout_seconds
        .saturating_sub(RUN_MARGIN_SECONDS);
    if longest <= allowed {
        return Ok(());
    }
    let between = &request.steps[..request.steps.len().saturating_sub(1)];
    let approvals = between.iter().filter(|s| s.approval).count();
    Err(invalid(
        "steps",
        &format!(
            "could take up to {:.1} days (each of {} steps up to TimeLimitSeconds {} s and {} s more, \
             the waits, {approvals} approval(s) up to ApprovalTimeoutSeconds {} s each), longer than \
             the {:.1} days the run's execution may last less a day: split the plan in two runs, or \
             shorten its waits or the approval timeout",
            longest as f64 / 86_400.0,
            request.steps.len(),
            limits.time_limit_seconds,
            STEP_SLACK_SECONDS,
            limits.approval_timeout_seconds,
            limits.run_timeout_seconds as f64 / 86_400.0,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::PlanStep;

    fn plan(steps: &[(u64, bool)], limits: Option<PlanLimits>) -> PlanRequest {
        PlanRequest {
            run_id: "r".into(),
            tags: Default::default(),
            dry_run: false,
            steps: steps
                .iter()
                .enumerate()
                .map(|(i, &(wait, approval))| PlanStep {
                    name: format!("s{i}"),
                    wait_after_seconds: wait,
                    approval,
                    ..PlanStep::default()
                })
                .collect(),
            plain: false,
            limits,
            finish: None,
        }
    }

    const DAY: u64 = 86_400;
    const LIMITS: PlanLimits = PlanLimits {
        time_limit_seconds: 43_200,
        approval_timeout_seconds: 7 * DAY,
        run_timeout_seconds: 90 * DAY,
        track_interval_seconds: 30,
    };

    #[test]
    fn the_longest_plan_counts_every_step_wait_and_approval_but_the_last_steps() {
        let p = plan(&[(DAY, true), (600, false), (DAY, true)], Some(LIMITS));
        let step = LIMITS.time_limit_seconds + STEP_SLACK_SECONDS;
        assert_eq!(longest(&p, &LIMITS), 3 * step + DAY + 7 * DAY + 600);
        // A finish after the last step: its approval, then its calls an interval apart.
        let finishing = PlanRequest {
            finish: Some(crate::request::Finishing::Terminate),
            ..p
        };
        assert_eq!(
            longest(&finishing, &LIMITS),
            3 * step + DAY + 7 * DAY + 600 + 7 * DAY + 60 * 30 + STEP_SLACK_SECONDS
        );
    }

    /// A step must outlast its wait for readiness by two tracking intervals.
    #[test]
    fn a_wait_the_time_limit_would_cut_short_is_refused() {
        let with_wait = |wait: u64| {
            let mut p = plan(&[(0, false)], Some(LIMITS));
            p.steps[0].wait_for_ready_seconds = wait;
            check(&p)
        };
        assert!(with_wait(43_200 - 61).is_ok());
        let error = with_wait(43_200 - 60).unwrap_err().to_string();
        assert!(
            error.contains("waitForReadySeconds (43140) must end two TrackIntervalSeconds (30 s) before the step's TimeLimitSeconds (43200)"),
            "{error}"
        );
    }

    /// The plan's execution adds `limits` to a plan and to a plain request alike.
    #[test]
    fn limits_are_read_from_either_kind_of_plan() {
        use crate::request::{Action, parse_action};
        use serde_json::json;
        let limits = json!({"timeLimitSeconds": 43200, "approvalTimeoutSeconds": 86400, "runTimeoutSeconds": 7776000});
        let read = |body: serde_json::Value| match parse_action(body, 100, || "new".into()) {
            Ok(Action::Plan(plan)) => Ok(plan.limits),
            Ok(_) => panic!("not a plan"),
            Err(error) => Err(error.to_string()),
        };
        let expected = Some(PlanLimits {
            time_limit_seconds: 43_200,
            approval_timeout_seconds: DAY,
            run_timeout_seconds: 90 * DAY,
            track_interval_seconds: 60,
        });
        let plain = json!({"action": "plan", "runId": "r", "recoveryInstanceIDs": ["i-0123456789abcdef0"], "limits": limits});
        assert_eq!(read(plain), Ok(expected));
        let steps = json!({"action": "plan", "runId": "r", "limits": limits,
            "steps": [{"name": "a", "recoveryInstanceIDs": ["i-0123456789abcdef0"]}]});
        assert_eq!(read(steps), Ok(expected));
        let broken = json!({"action": "plan", "runId": "r", "recoveryInstanceIDs": ["i-0123456789abcdef0"],
            "limits": {"timeLimitSeconds": "long"}});
        let error = read(broken).unwrap_err();
        assert!(error.contains("limits"), "{error}");
    }

    #[test]
    fn a_plan_that_could_outlast_its_execution_is_refused_naming_why() {
        // 11 approvals of a week: 77 days of approvals, plus the steps: past 89 days.
        let long = plan(&[(0, true); 13], Some(LIMITS));
        let error = check(&long).unwrap_err().to_string();
        for part in [
            "steps",
            "could take up to",
            "13 steps",
            "12 approval(s)",
            "90.0 days",
            "split the plan",
        ] {
            assert!(error.contains(part), "{error}");
        }
        // Eleven of them fit (77 days and 11 × 13 hours).
        assert!(check(&plan(&[(0, true); 12], Some(LIMITS))).is_ok());
        // The largest plan without approvals fits: 50 steps of 13 hours and a day's wait each.
        assert!(check(&plan(&[(DAY, false); 50], Some(LIMITS))).is_ok());
        // Without limits (a direct invocation) nothing is known to check against.
        assert!(check(&plan(&[(0, true); 50], None)).is_ok());
    }
}
