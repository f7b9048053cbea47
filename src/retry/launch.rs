//! What to do after a `StartFailbackLaunch` call failed: resend, look at DRS's state first,
//! isolate, bisect, shrink, settle or halt — decided from what happened to the piece and the
//! retries it has spent. Nothing here calls DRS or waits: the launch stage carries the decisions out.

use std::time::Duration;

use super::failure::{LaunchError, Unusable, describe};
use super::{PER_JOB_QUOTA_CODE, RetryPolicy, SERVERS_IN_FLIGHT_QUOTA_CODE};

/// Why the retry layer gave up on a piece without a job, in its own words: the launch stage
/// defers the piece's instances for it (each kind is safe to send again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Still throttled after every resend the policy allows.
    Throttled,
    /// The endpoint could not be reached (the request never left).
    Unreachable,
    /// DRS kept failing, and its state shows no job was made.
    ServerError,
    /// Whether DRS made a job is not known.
    Ambiguous,
}

/// Why nothing more may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltCause {
    /// DRS said a quota is full: nothing fits until jobs finish.
    QuotaFull,
    /// DRS cannot be used here.
    Unusable(Unusable),
}

/// DRS refused an instance: its error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl Refusal {
    fn new(code: &str, message: &str) -> Self {
        Refusal {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

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
pub enum Decision {
    /// Send the same instances again after this wait.
    Resend(Duration),
    /// Read DRS's state before anything else: over the settle window when `settle` (the call
    /// may have made a job DRS does not show yet), else once.
    Look { settle: bool },
    /// Every instance of the piece is given up on, for `why`: it is deferred, safe to send again.
    Settle { why: GiveUp, error: String },
    /// These instances leave the piece, each to be sent alone; the rest is sent again now.
    Isolate(Vec<String>),
    /// DRS refused these instances by name, or alone: they leave the piece and are rejected for
    /// `refusal` unless a look a settle window later finds them in a job of this run. The rest is
    /// sent again now.
    Confirm { ids: Vec<String>, refusal: Refusal },
    /// DRS refused the piece without saying which instance: split it to find out.
    Bisect { code: String, message: String },
    /// DRS's per-job quota is smaller than the piece: halve it, and every chunk after it.
    Shrink,
    /// DRS has less room for servers in active jobs than this piece needs (the function's own
    /// count said it fits: its limit is above the account's, or another tool launched): send
    /// this piece in halves, down to one instance, to fill what room there is.
    Halve,
    /// Nothing more may start: this piece and every piece not yet started are deferred, for
    /// `cause`.
    Halt { cause: HaltCause, why: String },
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
    /// The decision for a piece of `ids` (those still unlaunched) after `happened`, counting
    /// the retry it spends. `jitter` is one draw in `[0, 1]`, used when the decision waits.
    pub fn decide(
        &mut self,
        happened: Happened,
        ids: &[String],
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Decision {
        match happened {
            Happened::Call(error) => self.after_call(error, ids, policy, jitter),
            Happened::Looked { cause, unavailable } => {
                self.after_look(cause, unavailable, ids, policy, jitter)
            }
            Happened::LookFailed { cause, why } => Decision::Settle {
                why: GiveUp::Ambiguous,
                error: format!("{}; state unreadable: {why}", describe(&cause)),
            },
        }
    }

    fn after_call(
        &mut self,
        error: LaunchError,
        ids: &[String],
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Decision {
        match error {
            LaunchError::Throttled {
                retry_after,
                message,
            } => {
                if self.throttled >= policy.throttle_max_retries {
                    return Decision::Settle {
                        why: GiveUp::Throttled,
                        error: message,
                    };
                }
                let wait = policy
                    .backoff
                    .throttle_delay(self.throttled, retry_after, jitter);
                self.throttled += 1;
                Decision::Resend(wait)
            }
            LaunchError::NotSent { error } => {
                if self.unsent >= policy.unsent_max_retries {
                    return Decision::Settle {
                        why: GiveUp::Unreachable,
                        error,
                    };
                }
                let wait = policy.backoff.delay(self.unsent, jitter);
                self.unsent += 1;
                Decision::Resend(wait)
            }
            // No idempotency token: a blind resend could start a second job for the same
            // instances. Read what DRS did first, for as long as DRS may take to show it.
            LaunchError::Ambiguous { .. } => Decision::Look { settle: true },
            LaunchError::QuotaExceeded {
                quota_code: Some(code),
                ..
            } if code == PER_JOB_QUOTA_CODE && ids.len() > 1 => Decision::Shrink,
            // Without a quota code (an error without details) the quota may be this one too.
            LaunchError::QuotaExceeded { quota_code, .. }
                if ids.len() > 1
                    && quota_code
                        .as_deref()
                        .is_none_or(|code| code == SERVERS_IN_FLIGHT_QUOTA_CODE) =>
            {
                Decision::Halve
            }
            LaunchError::QuotaExceeded {
                message,
                quota_code,
            } => Decision::Halt {
                cause: HaltCause::QuotaFull,
                why: match quota_code {
                    Some(code) => format!("{message} (quota {code})"),
                    None => message,
                },
            },
            LaunchError::Refused {
                fields, message, ..
            } if fields.iter().any(|f| !f.starts_with(INSTANCES_FIELD)) => {
                Decision::RefuseRequest {
                    field: fields
                        .into_iter()
                        .find(|f| !f.starts_with(INSTANCES_FIELD))
                        .unwrap_or_default(),
                    message,
                }
            }
            LaunchError::Refused { code, message, .. } if ids.len() == 1 => Decision::Confirm {
                ids: ids.to_vec(),
                refusal: Refusal::new(&code, &message),
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
                Some(id) if self.settled => Decision::Confirm {
                    ids: vec![id],
                    refusal: Refusal::new(&code, &message),
                },
                _ => Decision::Look {
                    settle: !self.settled,
                },
            },
            LaunchError::Unusable { kind, message } => Decision::Halt {
                cause: HaltCause::Unusable(kind),
                why: message,
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
    ) -> Decision {
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
                return Decision::Confirm {
                    ids: vec![id],
                    refusal: Refusal::new(code, message),
                };
            }
            return Decision::Isolate(unavailable);
        }
        match cause {
            LaunchError::Ambiguous { error } => {
                if self.resends >= policy.reconciled_max_resends {
                    return Decision::Settle {
                        why: GiveUp::ServerError,
                        error,
                    };
                }
                let wait = policy.backoff.delay(self.resends, jitter);
                self.resends += 1;
                Decision::Resend(wait)
            }
            // The last one left of a refused piece is sent alone.
            LaunchError::Refused { .. } if ids.len() == 1 => Decision::Resend(Duration::ZERO),
            LaunchError::Refused {
                code,
                message,
                resource_id,
                ..
            } => {
                // When DRS names the culprit, only that one leaves the piece; otherwise the piece
                // is split.
                match named_culprit(resource_id, &message, ids) {
                    Some(id) => Decision::Confirm {
                        ids: vec![id],
                        refusal: Refusal::new(&code, &message),
                    },
                    None => Decision::Bisect { code, message },
                }
            }
            other => Decision::Settle {
                why: GiveUp::Ambiguous,
                error: describe(&other),
            },
        }
    }
}

/// The instance DRS says it refused: its `resourceId`, or an id of the piece its message names.
fn named_culprit(resource_id: Option<String>, message: &str, ids: &[String]) -> Option<String> {
    resource_id
        .filter(|id| ids.contains(id))
        .or_else(|| ids.iter().find(|id| names(message, id)).cloned())
}

/// Whether `message` names `id` as a whole id: ids run from 10 to 19 characters, so a shorter one
/// may begin a longer one the message names.
fn names(message: &str, id: &str) -> bool {
    let id_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    message.match_indices(id).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + id.len()..].chars().next();
        !before.is_some_and(id_char) && !after.is_some_and(id_char)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::TEST_POLICY;
    use proptest::prelude::*;

    fn policy() -> RetryPolicy {
        TEST_POLICY
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
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
        let deferred = |why, error: &str| Decision::Settle {
            why,
            error: error.to_owned(),
        };
        let settled = Tries {
            settled: true,
            ..Tries::default()
        };
        let refused = |message: &str| Refusal::new("ConflictException", message);
        let table: Vec<(&str, Happened, Tries, usize, Decision)> = vec![
            // throttled: max(Retry-After, backoff), 8 resends, then deferred
            (
                "throttled, first",
                throttled(Some(7)),
                Tries::default(),
                3,
                Decision::Resend(secs(7)),
            ),
            (
                "throttled, no header",
                throttled(None),
                Tries::default(),
                3,
                Decision::Resend(secs(1)),
            ),
            (
                "throttled, backoff above header",
                throttled(Some(2)),
                Tries {
                    throttled: 4,
                    ..Tries::default()
                },
                3,
                Decision::Resend(secs(16)),
            ),
            (
                "throttled, last retry",
                throttled(None),
                Tries {
                    throttled: 7,
                    ..Tries::default()
                },
                3,
                Decision::Resend(secs(20)),
            ),
            (
                "throttled, spent",
                throttled(Some(1)),
                Tries {
                    throttled: 8,
                    ..Tries::default()
                },
                3,
                deferred(GiveUp::Throttled, "Rate exceeded"),
            ),
            // never sent: back off, 3 resends, then unreachable
            (
                "unsent, first",
                Happened::Call(LaunchError::NotSent {
                    error: "refused".into(),
                }),
                Tries::default(),
                3,
                Decision::Resend(secs(1)),
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
                Decision::Resend(secs(4)),
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
                deferred(GiveUp::Unreachable, "refused"),
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
                Decision::Look { settle: true },
            ),
            // after the look: nothing found, resend; twice at most
            (
                "no job, first resend",
                looked(ambiguous(), &[]),
                Tries::default(),
                3,
                Decision::Resend(secs(1)),
            ),
            (
                "no job, last resend",
                looked(ambiguous(), &[]),
                Tries {
                    resends: 1,
                    ..Tries::default()
                },
                3,
                Decision::Resend(secs(2)),
            ),
            (
                "no job, spent",
                looked(ambiguous(), &[]),
                Tries {
                    resends: 2,
                    ..Tries::default()
                },
                3,
                deferred(GiveUp::ServerError, "HTTP 500"),
            ),
            (
                "taken meanwhile",
                looked(ambiguous(), &["i-00000001"]),
                Tries::default(),
                3,
                Decision::Isolate(vec!["i-00000001".into()]),
            ),
            (
                "state unreadable",
                Happened::LookFailed {
                    cause: ambiguous(),
                    why: "throttled".into(),
                },
                Tries::default(),
                3,
                deferred(GiveUp::Ambiguous, "HTTP 500; state unreadable: throttled"),
            ),
            // quota: the per-job one shrinks the piece; others halt, saying which quota
            (
                "per-job quota",
                quota(PER_JOB_QUOTA_CODE),
                Tries::default(),
                3,
                Decision::Shrink,
            ),
            (
                "per-job quota, one left",
                quota(PER_JOB_QUOTA_CODE),
                Tries::default(),
                1,
                Decision::Halt {
                    cause: HaltCause::QuotaFull,
                    why: "full (quota L-B827C881)".into(),
                },
            ),
            (
                "servers quota",
                quota(SERVERS_IN_FLIGHT_QUOTA_CODE),
                Tries::default(),
                3,
                Decision::Halve,
            ),
            (
                "servers quota, one left",
                quota(SERVERS_IN_FLIGHT_QUOTA_CODE),
                Tries::default(),
                1,
                Decision::Halt {
                    cause: HaltCause::QuotaFull,
                    why: "full (quota L-05AFA8C6)".into(),
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
                Decision::Halve,
            ),
            (
                "active jobs quota: a smaller piece is still a job",
                quota("L-D88FAC3A"),
                Tries::default(),
                3,
                Decision::Halt {
                    cause: HaltCause::QuotaFull,
                    why: "full (quota L-D88FAC3A)".into(),
                },
            ),
            // refusals: look first (over the window once per chunk), alone means confirm
            (
                "refused",
                Happened::Call(conflict(None, "busy")),
                Tries::default(),
                3,
                Decision::Look { settle: true },
            ),
            (
                "refused again",
                Happened::Call(conflict(None, "busy")),
                settled,
                3,
                Decision::Look { settle: false },
            ),
            (
                "refused again, named",
                Happened::Call(conflict(Some("i-00000001"), "busy")),
                settled,
                3,
                Decision::Confirm {
                    ids: vec!["i-00000001".into()],
                    refusal: refused("busy"),
                },
            ),
            (
                "refused first, named",
                Happened::Call(conflict(Some("i-00000001"), "busy")),
                Tries::default(),
                3,
                Decision::Look { settle: true },
            ),
            (
                "refused alone",
                Happened::Call(conflict(None, "busy")),
                settled,
                1,
                Decision::Confirm {
                    ids: ids(1),
                    refusal: Refusal::new("ConflictException", "busy"),
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
                Decision::RefuseRequest {
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
                Decision::Look { settle: true },
            ),
            // after the look at a refusal
            (
                "explained",
                looked(conflict(None, "busy"), &["i-00000002"]),
                settled,
                3,
                Decision::Isolate(vec!["i-00000002".into()]),
            ),
            (
                "named and explained",
                looked(conflict(Some("i-00000002"), "busy"), &["i-00000002"]),
                settled,
                3,
                Decision::Confirm {
                    ids: vec!["i-00000002".into()],
                    refusal: refused("busy"),
                },
            ),
            (
                "named",
                looked(conflict(Some("i-00000001"), "busy"), &[]),
                settled,
                3,
                Decision::Confirm {
                    ids: vec!["i-00000001".into()],
                    refusal: refused("busy"),
                },
            ),
            (
                "named in message",
                looked(conflict(None, "i-00000002 is busy"), &[]),
                settled,
                3,
                Decision::Confirm {
                    ids: vec!["i-00000002".into()],
                    refusal: Refusal::new("ConflictException", "i-00000002 is busy"),
                },
            ),
            (
                "named but not sent",
                looked(conflict(Some("i-99999999"), "busy"), &[]),
                settled,
                3,
                Decision::Bisect {
                    code: "ConflictException".into(),
                    message: "busy".into(),
                },
            ),
            (
                "unnamed",
                looked(conflict(None, "busy"), &[]),
                settled,
                3,
                Decision::Bisect {
                    code: "ConflictException".into(),
                    message: "busy".into(),
                },
            ),
            (
                "one left",
                looked(conflict(None, "busy"), &[]),
                settled,
                1,
                Decision::Resend(Duration::ZERO),
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
                Decision::Halt {
                    cause: HaltCause::Unusable(Unusable::AccessDenied),
                    why: "denied".into(),
                },
            ),
        ];
        for (name, happened, before, n, expected) in table {
            let mut tries = before;
            let decision = tries.decide(happened, &ids(n), &policy, 1.0);
            assert_eq!(decision, expected, "{name}");
            let spent = match decision {
                Decision::Resend(wait) if !wait.is_zero() => 1,
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
    fn a_culprit_in_the_message_is_a_whole_id() {
        let ids: Vec<String> = vec!["i-12345678".into(), "i-123456789".into()];
        let message = "Recovery instance i-123456789 cannot be launched";
        assert_eq!(named_culprit(None, message, &ids), Some(ids[1].clone()));
        assert_eq!(
            named_culprit(None, "i-12345678: busy", &ids),
            Some(ids[0].clone())
        );
        assert_eq!(named_culprit(None, "(i-123456789)", &ids[..1]), None);
        assert_eq!(named_culprit(None, "no id here", &ids), None);
    }

    proptest! {
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
                match tries.decide(happened, &ids(2), &policy, 0.5) {
                    Decision::Resend(_) => resends += 1,
                    _ => break,
                }
            }
            prop_assert!(resends <= policy.throttle_max_retries + policy.unsent_max_retries + policy.reconciled_max_resends);
        }
    }
}
