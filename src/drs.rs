//! What the core needs from DRS, in the core's own words (no SDK types cross this line).

use std::future::Future;
use std::time::Duration;

use crate::request::Tags;

/// A failback job DRS created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchedJob {
    pub job_id: String,
    pub arn: Option<String>,
    pub status: String,
    /// The instances DRS put in the job (its participating servers); when DRS does not list them,
    /// the instances that were sent.
    pub recovery_instance_ids: Vec<String>,
}

/// Why a `StartFailbackLaunch` call did not create a job, sorted by what is safe to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// 429: nothing was created; the same chunk may be resent after `retry_after`.
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The request never left (connection refused, DNS): nothing was created; safe to resend.
    NotSent { error: String },
    /// 5xx, timeout, connection lost after sending: the job may exist. Never resent blindly.
    Ambiguous { error: String },
    /// 402: a DRS quota is full. Resending now would only be refused again.
    QuotaExceeded {
        message: String,
        quota_code: Option<String>,
    },
    /// DRS refused the chunk (ConflictException, ValidationException, other 4xx): nothing was
    /// created. `resource_id` / `fields` name the culprit when DRS says.
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

pub trait Drs: Send + Sync {
    fn start_failback_launch(
        &self,
        recovery_instance_ids: &[String],
        tags: &Tags,
    ) -> impl Future<Output = Result<LaunchedJob, LaunchError>> + Send;
}
