//! One outcome per requested instance — launched, skipped, rejected or deferred — with its
//! reason; and how the retry layer's and the reads' give-ups become outcomes.

use serde::Serialize;

use crate::drs::reads::ReadFailure;
use crate::request::truncate_utf8;
use crate::retry::DescribeError;
use crate::retry::launch::{GiveUp, HaltCause, Refusal};

/// DRS messages are echoed at most this long: the answer must stay under 256 KB whatever DRS says.
pub const MESSAGE_MAX_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::EnumIter)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    Launched,
    Skipped,
    Rejected,
    Deferred,
}

/// Why an instance was not attempted or not finished; each is safe to send again as is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::EnumIter, strum::IntoStaticStr,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum DeferReason {
    /// DRS may or may not have created the job (5xx, timeout, connection lost after sending).
    Ambiguous,
    /// A DRS quota (servers per job, servers in active jobs, active jobs) is full.
    Quota,
    /// Not enough time was left before the invocation deadline to start the call or the wait.
    Deadline,
    /// Still throttled after `THROTTLE_MAX_RETRIES` resends.
    Throttled,
    /// The DRS endpoint could not be reached (the request never left).
    Unreachable,
    /// DRS kept failing (5xx) and no job was created, or its state could not be read.
    ServerError,
    /// `dryRun`: planned, not launched.
    DryRun,
    /// The run stopped because DRS cannot be used here (account not initialised, access denied).
    Halted,
    /// On its way to FAILBACK_READY_FOR_LAUNCH (failback replication running, no error) while the
    /// step waits for readiness (`waitForReadySeconds`): the next round reads it again.
    Replicating,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Launched {
        job_id: String,
    },
    /// Not launchable now: `reason` is the failback state, `NOT_FOUND` or `ALREADY_IN_JOB`;
    /// `code` the replication state, when DRS shows one; `message` why it was not waited for.
    Skipped {
        reason: String,
        job_id: Option<String>,
        code: Option<String>,
        message: Option<String>,
    },
    Rejected {
        reason: &'static str,
        code: Option<String>,
        message: String,
    },
    /// `code`: the state a `REPLICATING` instance was found in.
    Deferred {
        reason: DeferReason,
        code: Option<String>,
        error: Option<String>,
    },
}

pub const REJECTED_MALFORMED_ID: &str = "MALFORMED_ID";
pub const SKIPPED_NOT_FOUND: &str = "NOT_FOUND";
pub const SKIPPED_ALREADY_IN_JOB: &str = "ALREADY_IN_JOB";
pub const REJECTED_BY_DRS: &str = "REFUSED_BY_DRS";
pub const REJECTED_REQUEST_REFUSED: &str = "REQUEST_REFUSED";

impl Outcome {
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Launched { .. } => OutcomeKind::Launched,
            Outcome::Skipped { .. } => OutcomeKind::Skipped,
            Outcome::Rejected { .. } => OutcomeKind::Rejected,
            Outcome::Deferred { .. } => OutcomeKind::Deferred,
        }
    }

    pub fn deferred(reason: DeferReason, error: Option<String>) -> Self {
        Outcome::Deferred {
            reason,
            code: None,
            error: error.map(|e| truncate_utf8(&e, MESSAGE_MAX_BYTES)),
        }
    }

    /// Skipped for `reason` alone.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Outcome::Skipped {
            reason: reason.into(),
            job_id: None,
            code: None,
            message: None,
        }
    }

    /// The instances of a piece the retry layer gave up on without a job.
    pub fn given_up(why: GiveUp, error: String) -> Self {
        let reason = match why {
            GiveUp::Throttled => DeferReason::Throttled,
            GiveUp::Unreachable => DeferReason::Unreachable,
            GiveUp::ServerError => DeferReason::ServerError,
            GiveUp::Ambiguous => DeferReason::Ambiguous,
        };
        Outcome::deferred(reason, Some(error))
    }

    /// What was not started once the run halted.
    pub fn halted(cause: HaltCause, why: String) -> Self {
        let reason = match cause {
            HaltCause::QuotaFull => DeferReason::Quota,
            HaltCause::Unusable(_) => DeferReason::Halted,
        };
        Outcome::deferred(reason, Some(why))
    }

    /// Instances whose state could not be read: deferred, safe to send again.
    pub fn unread(failure: &ReadFailure) -> Self {
        match failure {
            ReadFailure::NoTime => Outcome::deferred(DeferReason::Deadline, None),
            ReadFailure::Drs(DescribeError::Throttled { message, .. }) => {
                Outcome::deferred(DeferReason::Throttled, Some(message.clone()))
            }
            ReadFailure::Drs(error) => {
                Outcome::deferred(DeferReason::ServerError, Some(error.to_string()))
            }
        }
    }

    pub fn refused(refusal: &Refusal) -> Self {
        Outcome::refused_by_drs(&refusal.code, &refusal.message)
    }

    pub fn refused_by_drs(code: &str, message: &str) -> Self {
        Outcome::Rejected {
            reason: REJECTED_BY_DRS,
            code: Some(code.to_owned()),
            message: truncate_utf8(message, MESSAGE_MAX_BYTES),
        }
    }

    /// DRS refused a field of the request itself: no call with it can launch anything.
    pub fn request_refused(field: &str, message: &str) -> Self {
        Outcome::Rejected {
            reason: REJECTED_REQUEST_REFUSED,
            code: Some("ValidationException".into()),
            message: truncate_utf8(
                &format!("DRS refused the request's {field}: {message}"),
                MESSAGE_MAX_BYTES,
            ),
        }
    }

    pub fn malformed_id() -> Self {
        Outcome::Rejected {
            reason: REJECTED_MALFORMED_ID,
            code: None,
            message: format!(
                "not a recovery instance id (i-[0-9a-fA-F]{{8,}}, {}-{} characters) nor a source server id (s-[0-9a-zA-Z]{{17}})",
                crate::drs::ids::INSTANCE_ID_MIN_LEN,
                crate::drs::ids::INSTANCE_ID_MAX_LEN
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub launched: usize,
    pub skipped: usize,
    pub rejected: usize,
    pub deferred: usize,
}

impl Counts {
    pub fn add(&mut self, kind: OutcomeKind) {
        match kind {
            OutcomeKind::Launched => self.launched += 1,
            OutcomeKind::Skipped => self.skipped += 1,
            OutcomeKind::Rejected => self.rejected += 1,
            OutcomeKind::Deferred => self.deferred += 1,
        }
    }

    /// Another's counts added to these (a step's groups added up).
    pub fn add_all(&mut self, other: Counts) {
        self.launched += other.launched;
        self.skipped += other.skipped;
        self.rejected += other.rejected;
        self.deferred += other.deferred;
    }

    pub fn total(&self) -> usize {
        self.launched + self.skipped + self.rejected + self.deferred
    }
}

impl OutcomeKind {
    /// The metric counting the instances of this kind.
    pub fn metric(self) -> &'static str {
        match self {
            OutcomeKind::Launched => "InstancesLaunched",
            OutcomeKind::Skipped => "InstancesSkipped",
            OutcomeKind::Rejected => "InstancesRejected",
            OutcomeKind::Deferred => "InstancesDeferred",
        }
    }
}

impl DeferReason {
    /// The metric counting the instances deferred for this reason.
    pub fn metric(self) -> &'static str {
        match self {
            DeferReason::Ambiguous => "InstancesDeferredAmbiguous",
            DeferReason::Quota => "InstancesDeferredQuota",
            DeferReason::Deadline => "InstancesDeferredDeadline",
            DeferReason::Throttled => "InstancesDeferredThrottled",
            DeferReason::Unreachable => "InstancesDeferredUnreachable",
            DeferReason::ServerError => "InstancesDeferredServerError",
            DeferReason::DryRun => "InstancesDeferredDryRun",
            DeferReason::Halted => "InstancesDeferredHalted",
            DeferReason::Replicating => "InstancesDeferredReplicating",
        }
    }

    /// Its name, as answers, events and the track request's `notLaunched` groups spell it.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The reason a `notLaunched` group names, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        use strum::IntoEnumIterator;
        DeferReason::iter().find(|reason| reason.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    /// Answers name a reason by `name`, events and answers' groups by serde: the same words.
    #[test]
    fn a_reason_has_one_name() {
        for reason in DeferReason::iter() {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.name());
            assert_eq!(DeferReason::from_name(reason.name()), Some(reason));
        }
        assert_eq!(DeferReason::DryRun.name(), "DRY_RUN");
        assert_eq!(DeferReason::from_name("SOMETHING_ELSE"), None);
    }
}
