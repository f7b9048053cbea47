//! The errors a caller sees, mapped once to Lambda diagnostics with stable `errorType` names that
//! a state machine's `Retry` / `Catch` can match.

use lambda_runtime::Diagnostic;
use thiserror::Error;

use crate::drs::reads::ReadFailure;
use crate::request::RequestError;
use crate::retry::Unusable;

/// `errorType` names. Part of the contract: renaming one breaks callers' `Catch` clauses.
pub const ERROR_INVALID_REQUEST: &str = "InvalidFailbackRequest";
pub const ERROR_ACCOUNT_NOT_INITIALIZED: &str = "DrsAccountNotInitialized";
pub const ERROR_ACCESS_DENIED: &str = "DrsAccessDenied";
pub const ERROR_CLIENT_MISCONFIGURED: &str = "DrsClientMisconfigured";
pub const ERROR_READ_FAILED: &str = "DrsReadFailed";
/// A tracking or finishing call's account and region could not be reached.
pub const ERROR_TARGET_UNREACHABLE: &str = "TargetUnreachable";
/// A step execution failed, timed out, was aborted or never started: the plan stops there until
/// it is redriven.
pub const ERROR_STEP_EXECUTION_FAILED: &str = "StepExecutionFailed";
/// A step execution has run longer than the plan waits for it.
pub const ERROR_STEP_STILL_RUNNING: &str = "StepStillRunning";

/// Why the plan's execution stops at a step execution ([`crate::plan::follow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStop {
    /// It failed, timed out, was aborted, or never started.
    Failed,
    /// It has been running longer than the plan waits.
    StillRunning,
}

#[derive(Debug, Error)]
pub enum HandlerError {
    #[error("invalid failback request: {0}")]
    InvalidRequest(#[from] RequestError),
    /// An entry point for one action (a launch, a tracking call, a plan check) was sent another.
    #[error("invalid failback request: this is not a {expected} request")]
    WrongAction { expected: &'static str },
    #[error("DRS cannot be used, nothing was launched: {message}")]
    DrsUnusable { kind: Unusable, message: String },
    #[error("invalid failback request: DRS refused its {field}, nothing was launched: {message}")]
    RefusedByDrs { field: String, message: String },
    /// The run's last tracking call could not read DRS: its summary would count what it did not
    /// see. Safe to send again.
    #[error(
        "DRS {what} could not be read for the run's summary; send the final call again: {message}"
    )]
    ReadFailed { what: String, message: String },
    /// The plan stops at a step execution that did not answer it ([`crate::plan::follow`]).
    #[error("{message}")]
    StepStopped { stop: StepStop, message: String },
    /// The call's account and region could not be reached (its jobs cannot be read there).
    /// Safe to send again once the role or the region is fixed.
    #[error("{target} could not be reached: {code}: {message}")]
    TargetUnreachable {
        target: String,
        code: String,
        message: String,
    },
}

impl HandlerError {
    /// The error a call ends with when a read it needed failed: DRS unusable, or `DrsReadFailed`
    /// (nothing was done; safe to send again). `what` names what could not be read.
    pub fn read_failed(failure: &ReadFailure, what: &str) -> Self {
        match failure.unusable() {
            Some((kind, message)) => HandlerError::DrsUnusable { kind, message },
            None => HandlerError::ReadFailed {
                what: what.to_owned(),
                message: failure.to_string(),
            },
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidRequest(_)
            | HandlerError::WrongAction { .. }
            | HandlerError::RefusedByDrs { .. } => ERROR_INVALID_REQUEST,
            HandlerError::DrsUnusable { kind, .. } => match kind {
                Unusable::AccountNotInitialized => ERROR_ACCOUNT_NOT_INITIALIZED,
                Unusable::AccessDenied => ERROR_ACCESS_DENIED,
                Unusable::ClientMisconfigured => ERROR_CLIENT_MISCONFIGURED,
            },
            HandlerError::ReadFailed { .. } => ERROR_READ_FAILED,
            HandlerError::TargetUnreachable { .. } => ERROR_TARGET_UNREACHABLE,
            HandlerError::StepStopped { stop, .. } => match stop {
                StepStop::Failed => ERROR_STEP_EXECUTION_FAILED,
                StepStop::StillRunning => ERROR_STEP_STILL_RUNNING,
            },
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}
