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

    /// The named instances that exist (unknown ids are simply absent), every page read.
    /// At most `DESCRIBE_INSTANCES_MAX_IDS` ids per call.
    fn describe_recovery_instances(
        &self,
        recovery_instance_ids: &[String],
    ) -> impl Future<Output = Result<Vec<RecoveryInstance>, DescribeError>> + Send;

    /// The recovery instances of the named source servers, every page read. At most
    /// `DESCRIBE_INSTANCES_MAX_IDS` ids per call.
    fn describe_recovery_instances_of_source_servers(
        &self,
        source_server_ids: &[String],
    ) -> impl Future<Output = Result<Vec<RecoveryInstance>, DescribeError>> + Send;

    /// The named jobs that exist, every page read. At most `DESCRIBE_JOBS_MAX_IDS` ids per call;
    /// none means every job (as the API's empty filter does).
    fn describe_jobs(
        &self,
        job_ids: &[String],
    ) -> impl Future<Output = Result<Vec<JobRecord>, DescribeError>> + Send;
}

/// What pre-flight and reconciliation need to know about one recovery instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryInstance {
    pub recovery_instance_id: String,
    pub source_server_id: Option<String>,
    /// DRS's `failback.state`, as DRS spells it (an unknown state is kept verbatim).
    pub failback_state: String,
    /// "The Job ID of the last failback" (`failback.failbackJobID`).
    pub failback_job_id: Option<String>,
}

/// What the core needs to know about one DRS job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub job_id: String,
    pub arn: Option<String>,
    /// PENDING, STARTED or COMPLETED.
    pub status: String,
    /// The value of the job's `drs-failback:run-id` tag, when it has one: the job is that run's.
    pub run_id: Option<String>,
    pub recovery_instance_ids: Vec<String>,
}

impl JobRecord {
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "PENDING" | "STARTED")
    }
}

impl From<JobRecord> for LaunchedJob {
    fn from(job: JobRecord) -> Self {
        LaunchedJob {
            job_id: job.job_id,
            arn: job.arn,
            status: job.status,
            recovery_instance_ids: job.recovery_instance_ids,
        }
    }
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

/// `DescribeRecoveryInstances` takes at most 200 ids in its filter.
pub const DESCRIBE_INSTANCES_MAX_IDS: usize = 200;
/// `DescribeJobs` takes at most 1000 job ids in its filter.
pub const DESCRIBE_JOBS_MAX_IDS: usize = 1000;
