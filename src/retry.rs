//! The one retry layer, as pure decisions: what to do after each failed call, given what happened
//! and how often, with every retry limit in one [`RetryPolicy`]. The effects (calls, waits, pacing,
//! logs) are carried out by `launch`, `reads` and `publish`; these functions only decide, so tests
//! check every decision and every delay exactly (classification and strategy apart from effects,
//! as smithy-rs splits them).
//!
//! The SDK's own retries are switched off for `StartFailbackLaunch`: its standard mode ignores
//! DRS's `Retry-After` header (it reads only `x-amz-retry-after`) and would resend after a 5xx,
//! which for a call without an idempotency token can start a second job.

use std::time::Duration;

use crate::config::Config;
use crate::drs::{DescribeError, LaunchError, LaunchedJob, Unusable};
use crate::outcome::{DeferReason, Outcome};

/// A source of jitter in `[0, 1]`; random in production, fixed in tests.
pub type Jitter = dyn Fn() -> f64 + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// Exponential backoff with full jitter: `jitter * min(cap, base * 2^attempt)`, with
    /// `attempt` counted from 0 and `jitter` in `[0, 1]` (clamped). Full jitter spreads the
    /// chunks that were throttled together so they do not come back together.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .checked_mul(2u32.saturating_pow(attempt.min(31)))
            .unwrap_or(self.cap)
            .min(self.cap);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The wait before resending a throttled call: never shorter than the service's `Retry-After`,
    /// and never shorter than the jittered backoff either (so a `Retry-After: 0` does not turn
    /// into a tight loop).
    pub fn throttle_delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Duration {
        self.delay(attempt, jitter)
            .max(retry_after.unwrap_or_default())
    }
}

/// Reads DRS's `Retry-After` header value: whole seconds, sent as a string.
pub fn parse_retry_after(raw: &str) -> Option<Duration> {
    let seconds: u64 = raw.trim().parse().ok()?;
    // A bogus huge value must not overflow; the deadline check bounds the real wait anyway.
    Some(Duration::from_secs(seconds.min(3_600)))
}

/// Every retry limit of the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub backoff: Backoff,
    /// Resends of a throttled call (and retries of a throttled read).
    pub throttle_max_retries: u32,
    /// A connection that cannot be opened rarely opens a second later; a few tries are enough.
    pub unsent_max_retries: u32,
    /// After reconciliation proved a failed call created no job, it may be resent this often.
    pub reconciled_max_resends: u32,
    /// Failed reads (5xx, timeouts) are retried this often; reads have no side effects.
    pub read_max_retries: u32,
    /// PutEvents rounds for failed entries.
    pub publish_max_attempts: u32,
}

impl RetryPolicy {
    pub fn from_config(config: &Config) -> Self {
        RetryPolicy {
            backoff: Backoff {
                base: config.retry_base_delay,
                cap: config.retry_max_delay,
            },
            throttle_max_retries: config.throttle_max_retries,
            unsent_max_retries: 3,
            reconciled_max_resends: 2,
            read_max_retries: 3,
            publish_max_attempts: config.publish_max_attempts,
        }
    }
}

/// What DRS's state says about a launch whose answer was lost (see `reconcile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The failed call did create the job: the instances are launched in it.
    Created(LaunchedJob),
    /// None of the instances is in a job of this run: the call created nothing.
    NotCreated,
    /// The state could not be read: still ambiguous.
    Unknown(String),
}

/// What happened to one launch of a piece of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// The call failed.
    Call(LaunchError),
    /// An ambiguous failure (`error`) was reconciled against DRS's state.
    Reconciled { found: Reconciled, error: String },
}

/// What to do next with the piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send the same instances again after this wait.
    Resend(Duration),
    /// The call may have created a job: read DRS's state before anything else.
    Reconcile,
    /// The call did create this job: the instances are launched in it.
    Launched(LaunchedJob),
    /// Every instance of the piece ends with this outcome.
    Settle(Outcome),
    /// DRS named the one instance it refused: it ends with `outcome`, the rest is sent again.
    DropCulprit { id: String, outcome: Outcome },
    /// DRS refused the piece without saying which instance: split it to find out.
    Bisect { code: String, message: String },
    /// Nothing more may start: this piece and every piece not yet started are deferred with
    /// `reason`. `quota_full` when DRS said a quota is full; `unusable` when DRS cannot be used.
    Halt {
        reason: DeferReason,
        why: String,
        quota_full: bool,
        unusable: Option<Unusable>,
    },
}

/// How often each kind of retry was spent on one piece.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tries {
    pub throttled: u32,
    pub unsent: u32,
    pub resends: u32,
}

impl Tries {
    /// The next step for a piece of `ids` after `happened`, counting the retry it spends.
    /// `jitter` is one draw in `[0, 1]`, used when the step waits.
    pub fn next_step(
        &mut self,
        happened: Happened,
        ids: &[String],
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Step {
        match happened {
            Happened::Call(LaunchError::Throttled {
                retry_after,
                message,
            }) => {
                if self.throttled >= policy.throttle_max_retries {
                    return Step::Settle(Outcome::deferred(DeferReason::Throttled, Some(message)));
                }
                let wait = policy
                    .backoff
                    .throttle_delay(self.throttled, retry_after, jitter);
                self.throttled += 1;
                Step::Resend(wait)
            }
            Happened::Call(LaunchError::NotSent { error }) => {
                if self.unsent >= policy.unsent_max_retries {
                    return Step::Settle(Outcome::deferred(DeferReason::Unreachable, Some(error)));
                }
                let wait = policy.backoff.delay(self.unsent, jitter);
                self.unsent += 1;
                Step::Resend(wait)
            }
            // No idempotency token: a blind resend could start a second job for the same
            // instances. Read what DRS did first.
            Happened::Call(LaunchError::Ambiguous { .. }) => Step::Reconcile,
            Happened::Call(LaunchError::QuotaExceeded {
                message,
                quota_code,
            }) => Step::Halt {
                reason: DeferReason::Quota,
                why: match quota_code {
                    Some(code) => format!("{message} (quota {code})"),
                    None => message,
                },
                quota_full: true,
                unusable: None,
            },
            Happened::Call(LaunchError::Refused {
                code,
                message,
                resource_id,
                ..
            }) => {
                if ids.len() == 1 {
                    return Step::Settle(Outcome::refused_by_drs(&code, &message));
                }
                // DRS refuses the whole call for one bad instance. When it names the culprit
                // (resourceId, or the id in its message), drop just that one and go on.
                let named = resource_id
                    .filter(|id| ids.contains(id))
                    .or_else(|| ids.iter().find(|id| message.contains(id.as_str())).cloned());
                match named {
                    Some(id) => Step::DropCulprit {
                        id,
                        outcome: Outcome::refused_by_drs(&code, &message),
                    },
                    None => Step::Bisect { code, message },
                }
            }
            Happened::Call(LaunchError::Unusable { kind, message }) => Step::Halt {
                reason: DeferReason::Halted,
                why: message,
                quota_full: false,
                unusable: Some(kind),
            },
            Happened::Reconciled {
                found: Reconciled::Created(job),
                ..
            } => Step::Launched(job),
            Happened::Reconciled {
                found: Reconciled::NotCreated,
                error,
            } => {
                if self.resends >= policy.reconciled_max_resends {
                    return Step::Settle(Outcome::deferred(DeferReason::ServerError, Some(error)));
                }
                let wait = policy.backoff.delay(self.resends, jitter);
                self.resends += 1;
                Step::Resend(wait)
            }
            Happened::Reconciled {
                found: Reconciled::Unknown(why),
                error,
            } => Step::Settle(Outcome::deferred(
                DeferReason::Ambiguous,
                Some(format!("{error}; state unreadable: {why}")),
            )),
        }
    }
}

/// What to do after a failed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStep {
    Retry(Duration),
    GiveUp,
}

/// The next step after a read failed for the `attempt`-th time (from 0): throttled reads wait
/// for `Retry-After` as launches do; other failures back off; "DRS cannot be used" is final.
pub fn read_step(
    error: &DescribeError,
    attempt: u32,
    policy: &RetryPolicy,
    jitter: f64,
) -> ReadStep {
    let (limit, wait) = match error {
        DescribeError::Unusable { .. } => return ReadStep::GiveUp,
        DescribeError::Throttled { retry_after, .. } => (
            policy.throttle_max_retries,
            policy.backoff.throttle_delay(attempt, *retry_after, jitter),
        ),
        DescribeError::Failed { .. } => (
            policy.read_max_retries,
            policy.backoff.delay(attempt, jitter),
        ),
    };
    if attempt >= limit {
        ReadStep::GiveUp
    } else {
        ReadStep::Retry(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: Backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(20),
    };

    fn policy() -> RetryPolicy {
        RetryPolicy {
            backoff: POLICY,
            throttle_max_retries: 8,
            unsent_max_retries: 3,
            reconciled_max_resends: 2,
            read_max_retries: 3,
            publish_max_attempts: 3,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let full: Vec<u64> = (0..7)
            .map(|a| POLICY.delay(a, 1.0).as_millis() as u64)
            .collect();
        assert_eq!(full, [1_000, 2_000, 4_000, 8_000, 16_000, 20_000, 20_000]);
        assert_eq!(POLICY.delay(2, 0.5), Duration::from_secs(2));
        assert_eq!(POLICY.delay(3, 0.0), Duration::ZERO);
        assert_eq!(POLICY.delay(u32::MAX, 1.0), Duration::from_secs(20));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let five = Some(Duration::from_secs(5));
        assert_eq!(POLICY.throttle_delay(0, five, 1.0), Duration::from_secs(5));
        assert_eq!(POLICY.throttle_delay(4, five, 1.0), Duration::from_secs(16));
        assert_eq!(POLICY.throttle_delay(4, five, 0.25), Duration::from_secs(5));
        assert_eq!(POLICY.throttle_delay(1, None, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_header_parses_whole_seconds() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(
            parse_retry_after("99999999999"),
            Some(Duration::from_secs(3_600))
        );
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|k| format!("i-{k:08x}")).collect()
    }

    fn throttled(retry_after: Option<u64>) -> Happened {
        Happened::Call(LaunchError::Throttled {
            retry_after: retry_after.map(secs),
            message: "Rate exceeded".into(),
        })
    }

    fn refused(resource_id: Option<&str>, message: &str) -> Happened {
        Happened::Call(LaunchError::Refused {
            code: "ConflictException".into(),
            message: message.into(),
            resource_id: resource_id.map(str::to_owned),
            fields: vec![],
        })
    }

    fn reconciled(found: Reconciled) -> Happened {
        Happened::Reconciled {
            found,
            error: "HTTP 500".into(),
        }
    }

    fn job() -> LaunchedJob {
        LaunchedJob {
            job_id: "drsjob-1".into(),
            arn: None,
            status: "PENDING".into(),
            recovery_instance_ids: ids(3),
        }
    }

    /// Every kind of failure, at the first try, the last allowed retry and past the limit.
    #[test]
    fn every_failure_at_every_attempt_count() {
        let policy = policy();
        let deferred =
            |reason, error: &str| Step::Settle(Outcome::deferred(reason, Some(error.to_owned())));
        let table: Vec<(&str, Happened, Tries, usize, Step)> = vec![
            // throttled: max(Retry-After, backoff), 8 resends, then deferred
            (
                "throttled, first",
                throttled(Some(7)),
                Tries::default(),
                3,
                Step::Resend(secs(7)),
            ),
            (
                "throttled, no header",
                throttled(None),
                Tries::default(),
                3,
                Step::Resend(secs(1)),
            ),
            (
                "throttled, backoff above header",
                throttled(Some(2)),
                Tries {
                    throttled: 4,
                    ..Tries::default()
                },
                3,
                Step::Resend(secs(16)),
            ),
            (
                "throttled, last retry",
                throttled(None),
                Tries {
                    throttled: 7,
                    ..Tries::default()
                },
                3,
                Step::Resend(secs(20)),
            ),
            (
                "throttled, spent",
                throttled(Some(1)),
                Tries {
                    throttled: 8,
                    ..Tries::default()
                },
                3,
                deferred(DeferReason::Throttled, "Rate exceeded"),
            ),
            // never sent: back off, 3 resends, then unreachable
            (
                "unsent, first",
                Happened::Call(LaunchError::NotSent {
                    error: "refused".into(),
                }),
                Tries::default(),
                3,
                Step::Resend(secs(1)),
            ),
            (
                "unsent, last retry",
                Happened::Call(LaunchError::NotSent {
                    error: "refused".into(),
                }),
                Tries {
                    unsent: 2,
                    ..Tries::default()
                },
                3,
                Step::Resend(secs(4)),
            ),
            (
                "unsent, spent",
                Happened::Call(LaunchError::NotSent {
                    error: "refused".into(),
                }),
                Tries {
                    unsent: 3,
                    ..Tries::default()
                },
                3,
                deferred(DeferReason::Unreachable, "refused"),
            ),
            // ambiguous: always read first, whatever was spent
            (
                "ambiguous",
                Happened::Call(LaunchError::Ambiguous {
                    error: "500".into(),
                }),
                Tries {
                    throttled: 8,
                    unsent: 3,
                    resends: 2,
                },
                3,
                Step::Reconcile,
            ),
            // reconciled
            (
                "job found",
                reconciled(Reconciled::Created(job())),
                Tries::default(),
                3,
                Step::Launched(job()),
            ),
            (
                "no job, first resend",
                reconciled(Reconciled::NotCreated),
                Tries::default(),
                3,
                Step::Resend(secs(1)),
            ),
            (
                "no job, last resend",
                reconciled(Reconciled::NotCreated),
                Tries {
                    resends: 1,
                    ..Tries::default()
                },
                3,
                Step::Resend(secs(2)),
            ),
            (
                "no job, spent",
                reconciled(Reconciled::NotCreated),
                Tries {
                    resends: 2,
                    ..Tries::default()
                },
                3,
                deferred(DeferReason::ServerError, "HTTP 500"),
            ),
            (
                "state unreadable",
                reconciled(Reconciled::Unknown("throttled".into())),
                Tries::default(),
                3,
                deferred(
                    DeferReason::Ambiguous,
                    "HTTP 500; state unreadable: throttled",
                ),
            ),
            // quota: halt, and say which quota
            (
                "quota",
                Happened::Call(LaunchError::QuotaExceeded {
                    message: "full".into(),
                    quota_code: Some("L-05AFA8C6".into()),
                }),
                Tries::default(),
                3,
                Step::Halt {
                    reason: DeferReason::Quota,
                    why: "full (quota L-05AFA8C6)".into(),
                    quota_full: true,
                    unusable: None,
                },
            ),
            // refusals: one left is rejected; a named culprit dropped; else bisect
            (
                "refused, alone",
                refused(None, "busy"),
                Tries::default(),
                1,
                Step::Settle(Outcome::refused_by_drs("ConflictException", "busy")),
            ),
            (
                "refused, named",
                refused(Some("i-00000001"), "busy"),
                Tries::default(),
                3,
                Step::DropCulprit {
                    id: "i-00000001".into(),
                    outcome: Outcome::refused_by_drs("ConflictException", "busy"),
                },
            ),
            (
                "refused, named in message",
                refused(None, "i-00000002 is busy"),
                Tries::default(),
                3,
                Step::DropCulprit {
                    id: "i-00000002".into(),
                    outcome: Outcome::refused_by_drs("ConflictException", "i-00000002 is busy"),
                },
            ),
            (
                "refused, named but not sent",
                refused(Some("i-99999999"), "busy"),
                Tries::default(),
                3,
                Step::Bisect {
                    code: "ConflictException".into(),
                    message: "busy".into(),
                },
            ),
            (
                "refused, unnamed",
                refused(None, "busy"),
                Tries::default(),
                3,
                Step::Bisect {
                    code: "ConflictException".into(),
                    message: "busy".into(),
                },
            ),
            // unusable: halt
            (
                "unusable",
                Happened::Call(LaunchError::Unusable {
                    kind: Unusable::AccessDenied,
                    message: "denied".into(),
                }),
                Tries::default(),
                3,
                Step::Halt {
                    reason: DeferReason::Halted,
                    why: "denied".into(),
                    quota_full: false,
                    unusable: Some(Unusable::AccessDenied),
                },
            ),
        ];
        for (name, happened, before, n, expected) in table {
            let mut tries = before;
            let step = tries.next_step(happened, &ids(n), &policy, 1.0);
            assert_eq!(step, expected, "{name}");
            let spent = match step {
                Step::Resend(_) => 1,
                _ => 0,
            };
            let total = |t: Tries| t.throttled + t.unsent + t.resends;
            assert_eq!(
                total(tries),
                total(before) + spent,
                "{name}: one retry spent per resend"
            );
        }
    }

    #[test]
    fn reads_retry_failures_and_throttles_within_their_limits() {
        let policy = policy();
        let failed = DescribeError::Failed {
            error: "500".into(),
        };
        let throttled = DescribeError::Throttled {
            retry_after: Some(secs(5)),
            message: "slow".into(),
        };
        let unusable = DescribeError::Unusable {
            kind: Unusable::AccessDenied,
            message: "denied".into(),
        };
        assert_eq!(
            read_step(&failed, 0, &policy, 1.0),
            ReadStep::Retry(secs(1))
        );
        assert_eq!(
            read_step(&failed, 2, &policy, 1.0),
            ReadStep::Retry(secs(4))
        );
        assert_eq!(read_step(&failed, 3, &policy, 1.0), ReadStep::GiveUp);
        assert_eq!(
            read_step(&throttled, 0, &policy, 0.0),
            ReadStep::Retry(secs(5))
        );
        assert_eq!(
            read_step(&throttled, 7, &policy, 1.0),
            ReadStep::Retry(secs(20))
        );
        assert_eq!(read_step(&throttled, 8, &policy, 1.0), ReadStep::GiveUp);
        assert_eq!(read_step(&unusable, 0, &policy, 1.0), ReadStep::GiveUp);
    }

    proptest! {
        #[test]
        fn delay_stays_within_bounds(attempt in 0u32..100, jitter in 0.0f64..=1.0, after in 0u64..100) {
            let delay = POLICY.delay(attempt, jitter);
            prop_assert!(delay <= POLICY.cap);
            let throttled = POLICY.throttle_delay(attempt, Some(Duration::from_secs(after)), jitter);
            prop_assert!(throttled >= Duration::from_secs(after));
            prop_assert!(throttled >= delay);
        }

        /// Whatever keeps failing, a piece is settled after a bounded number of resends.
        #[test]
        fn retries_always_end(kinds in proptest::collection::vec(0u8..4, 1..200)) {
            let policy = policy();
            let mut tries = Tries::default();
            let mut resends = 0;
            for kind in kinds {
                let happened = match kind {
                    0 => throttled(Some(1)),
                    1 => Happened::Call(LaunchError::NotSent { error: "x".into() }),
                    2 => reconciled(Reconciled::NotCreated),
                    _ => throttled(None),
                };
                match tries.next_step(happened, &ids(2), &policy, 0.5) {
                    Step::Resend(_) => resends += 1,
                    _ => break,
                }
            }
            prop_assert!(resends <= policy.throttle_max_retries + policy.unsent_max_retries + policy.reconciled_max_resends);
        }
    }
}
