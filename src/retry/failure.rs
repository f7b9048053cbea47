//! What a failed DRS call means, sorted by what is safe to do next: the retry layer's input,
//! which the SDK adapter (`aws::errors`) makes of each SDK failure and the strategies decide on.

use std::time::Duration;

/// Why a `StartFailbackLaunch` call did not create a job, sorted by what is safe to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// Any 429: nothing was created; the same chunk may be resent after `retry_after`.
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The request never left (connection refused, DNS): nothing was created; safe to resend.
    NotSent { error: String },
    /// 5xx, 408, timeout, connection lost after sending: the job may exist. Never resent blindly.
    Ambiguous { error: String },
    /// 402: a DRS quota is full. Resending now would only be refused again — unless it is the
    /// per-job quota, which a smaller chunk meets.
    QuotaExceeded {
        message: String,
        quota_code: Option<String>,
    },
    /// DRS refused the chunk (ConflictException, ValidationException, other 4xx): nothing was
    /// created. `resource_id` / `fields` name the culprit (or the request field) when DRS says.
    Refused {
        code: String,
        message: String,
        resource_id: Option<String>,
        fields: Vec<String>,
    },
    /// DRS cannot be used at all here: stop the run.
    Unusable { kind: Unusable, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// UninitializedAccountException: DRS is not set up in this account and Region.
    AccountNotInitialized,
    /// AccessDeniedException: the function's role lacks a permission.
    AccessDenied,
    /// The request could not even be built (no credentials, no Region): fix the deployment.
    ClientMisconfigured,
}

/// Why a read-only Describe call failed. Reads have no side effects, so every kind but
/// `Unusable` may simply be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribeError {
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    Failed {
        error: String,
    },
    Unusable {
        kind: Unusable,
        message: String,
    },
}

impl std::fmt::Display for DescribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DescribeError::Throttled { message, .. } => write!(f, "throttled: {message}"),
            DescribeError::Failed { error } => f.write_str(error),
            DescribeError::Unusable { message, .. } => f.write_str(message),
        }
    }
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
