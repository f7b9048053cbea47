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
use crate::drs::{DescribeError, LaunchError, Unusable};
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

/// DRS's per-job quota (servers per job): a smaller chunk meets it.
pub const PER_JOB_QUOTA_CODE: &str = "L-B827C881";
/// DRS's quota of source servers in all active jobs: a smaller piece may still fit the room left.
pub const SERVERS_IN_FLIGHT_QUOTA_CODE: &str = "L-05AFA8C6";

/// The field of StartFailbackLaunch that names instances; a refusal naming any other field is
/// about the request itself.
const INSTANCES_FIELD: &str = "recoveryInstanceIDs";

/// What happened to one launch of a piece of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happened {
    /// The call failed.
    Call(LaunchError),
    /// After the call failed with `cause`, DRS's state was read. The instances found in jobs of
    /// this run are launched and gone from the piece; of those left, `unavailable` cannot launch
    /// now (another run's job, not ready), the rest look ready.
    Looked {
        cause: LaunchError,
        unavailable: Vec<String>,
    },
    /// DRS's state could not be read after `cause`.
    LookFailed { cause: LaunchError, why: String },
}

/// What to do next with the piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send the same instances again after this wait.
    Resend(Duration),
    /// Read DRS's state before anything else: over the settle window when `settle` (the call
    /// may have made a job DRS does not show yet), else once.
    Look { settle: bool },
    /// Every instance of the piece ends with this outcome.
    Settle(Outcome),
    /// These instances leave the piece, each to be sent alone; the rest is sent again now.
    Isolate(Vec<String>),
    /// DRS refused these instances by name, or alone: they leave the piece and are rejected with
    /// `outcome` unless a look a settle window later finds them in a job of this run. The rest is
    /// sent again now.
    Confirm { ids: Vec<String>, outcome: Outcome },
    /// DRS refused the piece without saying which instance: split it to find out.
    Bisect { code: String, message: String },
    /// DRS's per-job quota is smaller than the piece: halve it, and every chunk after it.
    Shrink,
    /// DRS has less room for servers in active jobs than this piece needs (the function's own
    /// count said it fits: its limit is above the account's, or another tool launched): send
    /// this piece in halves, down to one instance, to fill what room there is.
    Halve,
    /// Nothing more may start: this piece and every piece not yet started are deferred with
    /// `reason`. `quota_full` when DRS said a quota is full; `unusable` when DRS cannot be used.
    Halt {
        reason: DeferReason,
        why: String,
        quota_full: bool,
        unusable: Option<Unusable>,
    },
    /// DRS refused a field of the request itself (e.g. a tag): every call would be refused.
    RefuseRequest { field: String, message: String },
}

/// How often each kind of retry was spent on one piece, and whether its chunk has already
/// looked over a whole settle window since a refusal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tries {
    pub throttled: u32,
    pub unsent: u32,
    pub resends: u32,
    pub settled: bool,
}

impl Tries {
    /// The next step for a piece of `ids` (those still unlaunched) after `happened`, counting
    /// the retry it spends. `jitter` is one draw in `[0, 1]`, used when the step waits.
    pub fn next_step(
        &mut self,
        happened: Happened,
        ids: &[String],
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Step {
        match happened {
            Happened::Call(error) => self.after_call(error, ids, policy, jitter),
            Happened::Looked { cause, unavailable } => {
                self.after_look(cause, unavailable, ids, policy, jitter)
            }
            Happened::LookFailed { cause, why } => Step::Settle(Outcome::deferred(
                DeferReason::Ambiguous,
                Some(format!("{}; state unreadable: {why}", describe(&cause))),
            )),
        }
    }

    fn after_call(
        &mut self,
        error: LaunchError,
        ids: &[String],
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Step {
        match error {
            LaunchError::Throttled {
                retry_after,
                message,
            } => {
                if self.throttled >= policy.throttle_max_retries {
                    return Step::Settle(Outcome::deferred(DeferReason::Throttled, Some(message)));
                }
                let wait = policy
                    .backoff
                    .throttle_delay(self.throttled, retry_after, jitter);
                self.throttled += 1;
                Step::Resend(wait)
            }
            LaunchError::NotSent { error } => {
                if self.unsent >= policy.unsent_max_retries {
                    return Step::Settle(Outcome::deferred(DeferReason::Unreachable, Some(error)));
                }
                let wait = policy.backoff.delay(self.unsent, jitter);
                self.unsent += 1;
                Step::Resend(wait)
            }
            // No idempotency token: a blind resend could start a second job for the same
            // instances. Read what DRS did first, for as long as DRS may take to show it.
            LaunchError::Ambiguous { .. } => Step::Look { settle: true },
            LaunchError::QuotaExceeded {
                quota_code: Some(code),
                ..
            } if code == PER_JOB_QUOTA_CODE && ids.len() > 1 => Step::Shrink,
            // Without a quota code (an error without details) the quota may be this one too.
            LaunchError::QuotaExceeded { quota_code, .. }
                if ids.len() > 1
                    && quota_code
                        .as_deref()
                        .is_none_or(|code| code == SERVERS_IN_FLIGHT_QUOTA_CODE) =>
            {
                Step::Halve
            }
            LaunchError::QuotaExceeded {
                message,
                quota_code,
            } => Step::Halt {
                reason: DeferReason::Quota,
                why: match quota_code {
                    Some(code) => format!("{message} (quota {code})"),
                    None => message,
                },
                quota_full: true,
                unusable: None,
            },
            LaunchError::Refused {
                fields, message, ..
            } if fields.iter().any(|f| !f.starts_with(INSTANCES_FIELD)) => Step::RefuseRequest {
                field: fields
                    .into_iter()
                    .find(|f| !f.starts_with(INSTANCES_FIELD))
                    .unwrap_or_default(),
                message,
            },
            LaunchError::Refused { code, message, .. } if ids.len() == 1 => Step::Confirm {
                ids: ids.to_vec(),
                outcome: Outcome::refused_by_drs(&code, &message),
            },
            // A refusal may be DRS seeing a job of this run it does not show yet (a concurrent
            // delivery of the same request, an earlier call of this one): the first in a chunk
            // looks over the settle window before isolating. After that, a culprit DRS names
            // goes to be confirmed at once; an unnamed one is looked for, once.
            LaunchError::Refused {
                code,
                message,
                resource_id,
                ..
            } => match named_culprit(resource_id, &message, ids) {
                Some(id) if self.settled => Step::Confirm {
                    ids: vec![id],
                    outcome: Outcome::refused_by_drs(&code, &message),
                },
                _ => Step::Look {
                    settle: !self.settled,
                },
            },
            LaunchError::Unusable { kind, message } => Step::Halt {
                reason: DeferReason::Halted,
                why: message,
                quota_full: false,
                unusable: Some(kind),
            },
        }
    }

    fn after_look(
        &mut self,
        cause: LaunchError,
        unavailable: Vec<String>,
        ids: &[String],
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Step {
        if !unavailable.is_empty() {
            // The culprit DRS named, if DRS's state explains it, is confirmed; any other that
            // cannot launch now is sent alone: only DRS refusing it alone makes it a culprit.
            if let LaunchError::Refused {
                code,
                message,
                resource_id,
                ..
            } = &cause
                && let Some(id) = named_culprit(resource_id.clone(), message, &unavailable)
            {
                return Step::Confirm {
                    ids: vec![id],
                    outcome: Outcome::refused_by_drs(code, message),
                };
            }
            return Step::Isolate(unavailable);
        }
        match cause {
            LaunchError::Ambiguous { error } => {
                if self.resends >= policy.reconciled_max_resends {
                    return Step::Settle(Outcome::deferred(DeferReason::ServerError, Some(error)));
                }
                let wait = policy.backoff.delay(self.resends, jitter);
                self.resends += 1;
                Step::Resend(wait)
            }
            // The last one left of a refused piece is sent alone.
            LaunchError::Refused { .. } if ids.len() == 1 => Step::Resend(Duration::ZERO),
            LaunchError::Refused {
                code,
                message,
                resource_id,
                ..
            } => {
                // When DRS names the culprit, only that one leaves the piece; otherwise the piece
                // is split.
                match named_culprit(resource_id, &message, ids) {
                    Some(id) => Step::Confirm {
                        ids: vec![id],
                        outcome: Outcome::refused_by_drs(&code, &message),
                    },
                    None => Step::Bisect { code, message },
                }
            }
            other => Step::Settle(Outcome::deferred(
                DeferReason::Ambiguous,
                Some(describe(&other)),
            )),
        }
    }
}

/// The instance DRS says it refused: its `resourceId`, or an id of the piece in its message.
fn named_culprit(resource_id: Option<String>, message: &str, ids: &[String]) -> Option<String> {
    resource_id
        .filter(|id| ids.contains(id))
        .or_else(|| ids.iter().find(|id| message.contains(id.as_str())).cloned())
}

/// The failure as an answer reports it.
pub fn describe(error: &LaunchError) -> String {
    match error {
        LaunchError::Throttled { message, .. } => message.clone(),
        LaunchError::NotSent { error } | LaunchError::Ambiguous { error } => error.clone(),
        LaunchError::QuotaExceeded { message, .. }
        | LaunchError::Refused { message, .. }
        | LaunchError::Unusable { message, .. } => message.clone(),
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

    fn conflict(resource_id: Option<&str>, message: &str) -> LaunchError {
        LaunchError::Refused {
            code: "ConflictException".into(),
            message: message.into(),
            resource_id: resource_id.map(str::to_owned),
            fields: vec![],
        }
    }

    fn ambiguous() -> LaunchError {
        LaunchError::Ambiguous {
            error: "HTTP 500".into(),
        }
    }

    fn looked(cause: LaunchError, unavailable: &[&str]) -> Happened {
        Happened::Looked {
            cause,
            unavailable: unavailable.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn quota(code: &str) -> Happened {
        Happened::Call(LaunchError::QuotaExceeded {
            message: "full".into(),
            quota_code: Some(code.into()),
        })
    }

    /// Every kind of failure, at the first try, the last allowed retry and past the limit.
    #[test]
    fn every_failure_at_every_attempt_count() {
        let policy = policy();
        let deferred =
            |reason, error: &str| Step::Settle(Outcome::deferred(reason, Some(error.to_owned())));
        let settled = Tries {
            settled: true,
            ..Tries::default()
        };
        let refused = |message: &str| Outcome::refused_by_drs("ConflictException", message);
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
            // ambiguous: always look over the settle window first, whatever was spent
            (
                "ambiguous",
                Happened::Call(ambiguous()),
                Tries {
                    throttled: 8,
                    unsent: 3,
                    resends: 2,
                    settled: true,
                },
                3,
                Step::Look { settle: true },
            ),
            // after the look: nothing found, resend; twice at most
            (
                "no job, first resend",
                looked(ambiguous(), &[]),
                Tries::default(),
                3,
                Step::Resend(secs(1)),
            ),
            (
                "no job, last resend",
                looked(ambiguous(), &[]),
                Tries {
                    resends: 1,
                    ..Tries::default()
                },
                3,
                Step::Resend(secs(2)),
            ),
            (
                "no job, spent",
                looked(ambiguous(), &[]),
                Tries {
                    resends: 2,
                    ..Tries::default()
                },
                3,
                deferred(DeferReason::ServerError, "HTTP 500"),
            ),
            (
                "taken meanwhile",
                looked(ambiguous(), &["i-00000001"]),
                Tries::default(),
                3,
                Step::Isolate(vec!["i-00000001".into()]),
            ),
            (
                "state unreadable",
                Happened::LookFailed {
                    cause: ambiguous(),
                    why: "throttled".into(),
                },
                Tries::default(),
                3,
                deferred(
                    DeferReason::Ambiguous,
                    "HTTP 500; state unreadable: throttled",
                ),
            ),
            // quota: the per-job one shrinks the piece; others halt, saying which quota
            (
                "per-job quota",
                quota(PER_JOB_QUOTA_CODE),
                Tries::default(),
                3,
                Step::Shrink,
            ),
            (
                "per-job quota, one left",
                quota(PER_JOB_QUOTA_CODE),
                Tries::default(),
                1,
                Step::Halt {
                    reason: DeferReason::Quota,
                    why: "full (quota L-B827C881)".into(),
                    quota_full: true,
                    unusable: None,
                },
            ),
            (
                "servers quota",
                quota(SERVERS_IN_FLIGHT_QUOTA_CODE),
                Tries::default(),
                3,
                Step::Halve,
            ),
            (
                "servers quota, one left",
                quota(SERVERS_IN_FLIGHT_QUOTA_CODE),
                Tries::default(),
                1,
                Step::Halt {
                    reason: DeferReason::Quota,
                    why: "full (quota L-05AFA8C6)".into(),
                    quota_full: true,
                    unusable: None,
                },
            ),
            (
                "a quota without its code",
                Happened::Call(LaunchError::QuotaExceeded {
                    message: "full".into(),
                    quota_code: None,
                }),
                Tries::default(),
                3,
                Step::Halve,
            ),
            (
                "active jobs quota: a smaller piece is still a job",
                quota("L-D88FAC3A"),
                Tries::default(),
                3,
                Step::Halt {
                    reason: DeferReason::Quota,
                    why: "full (quota L-D88FAC3A)".into(),
                    quota_full: true,
                    unusable: None,
                },
            ),
            // refusals: look first (over the window once per chunk), alone means confirm
            (
                "refused",
                Happened::Call(conflict(None, "busy")),
                Tries::default(),
                3,
                Step::Look { settle: true },
            ),
            (
                "refused again",
                Happened::Call(conflict(None, "busy")),
                settled,
                3,
                Step::Look { settle: false },
            ),
            (
                "refused again, named",
                Happened::Call(conflict(Some("i-00000001"), "busy")),
                settled,
                3,
                Step::Confirm {
                    ids: vec!["i-00000001".into()],
                    outcome: refused("busy"),
                },
            ),
            (
                "refused first, named",
                Happened::Call(conflict(Some("i-00000001"), "busy")),
                Tries::default(),
                3,
                Step::Look { settle: true },
            ),
            (
                "refused alone",
                Happened::Call(conflict(None, "busy")),
                settled,
                1,
                Step::Confirm {
                    ids: ids(1),
                    outcome: Outcome::refused_by_drs("ConflictException", "busy"),
                },
            ),
            (
                "a tag refused",
                Happened::Call(LaunchError::Refused {
                    code: "ValidationException".into(),
                    message: "bad tag".into(),
                    resource_id: None,
                    fields: vec!["tags".into()],
                }),
                Tries::default(),
                3,
                Step::RefuseRequest {
                    field: "tags".into(),
                    message: "bad tag".into(),
                },
            ),
            (
                "an id refused",
                Happened::Call(LaunchError::Refused {
                    code: "ValidationException".into(),
                    message: "no such".into(),
                    resource_id: None,
                    fields: vec!["recoveryInstanceIDs".into()],
                }),
                Tries::default(),
                3,
                Step::Look { settle: true },
            ),
            // after the look at a refusal
            (
                "explained",
                looked(conflict(None, "busy"), &["i-00000002"]),
                settled,
                3,
                Step::Isolate(vec!["i-00000002".into()]),
            ),
            (
                "named and explained",
                looked(conflict(Some("i-00000002"), "busy"), &["i-00000002"]),
                settled,
                3,
                Step::Confirm {
                    ids: vec!["i-00000002".into()],
                    outcome: refused("busy"),
                },
            ),
            (
                "named",
                looked(conflict(Some("i-00000001"), "busy"), &[]),
                settled,
                3,
                Step::Confirm {
                    ids: vec!["i-00000001".into()],
                    outcome: refused("busy"),
                },
            ),
            (
                "named in message",
                looked(conflict(None, "i-00000002 is busy"), &[]),
                settled,
                3,
                Step::Confirm {
                    ids: vec!["i-00000002".into()],
                    outcome: Outcome::refused_by_drs("ConflictException", "i-00000002 is busy"),
                },
            ),
            (
                "named but not sent",
                looked(conflict(Some("i-99999999"), "busy"), &[]),
                settled,
                3,
                Step::Bisect {
                    code: "ConflictException".into(),
                    message: "busy".into(),
                },
            ),
            (
                "unnamed",
                looked(conflict(None, "busy"), &[]),
                settled,
                3,
                Step::Bisect {
                    code: "ConflictException".into(),
                    message: "busy".into(),
                },
            ),
            (
                "one left",
                looked(conflict(None, "busy"), &[]),
                settled,
                1,
                Step::Resend(Duration::ZERO),
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
                Step::Resend(wait) if !wait.is_zero() => 1,
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
                    2 => looked(ambiguous(), &[]),
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
