//! What the core needs from DRS, in the core's own words (no SDK types cross this line): the
//! port ([`Drs`]) and the records it answers with, DRS's states as types ([`state`]), tags
//! ([`tags`]), every read with its retries and time limits ([`reads`]), and the count of the
//! calls an invocation made ([`stats`]).

use std::future::Future;
use std::time::SystemTime;

pub mod ids;
pub mod reach;
pub mod reads;
pub mod replication;
pub mod state;
pub mod stats;
pub mod tags;
pub mod target;

pub use replication::Replication;
pub use state::{FailbackState, JobLogEvent, JobStatus, JobType, LaunchStatus, ReplicationState};
pub use tags::Tags;
pub use target::Target;

use crate::retry::{DescribeError, LaunchError};

/// A job of this run as the answer reports it: the requested instances it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchedJob {
    pub job_id: String,
    pub arn: Option<String>,
    pub status: JobStatus,
    pub recovery_instance_ids: Vec<String>,
}

/// One server taking part in a job. DRS may leave out `recoveryInstanceID` (drills have none,
/// and users report completed failback jobs without it), so the source server id matters too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    pub recovery_instance_id: Option<String>,
    pub source_server_id: Option<String>,
    pub launch_status: Option<LaunchStatus>,
}

/// What the core needs to know about one DRS job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub job_id: String,
    pub arn: Option<String>,
    pub status: JobStatus,
    /// LAUNCH (a failback's) or TERMINATE (a finishing's: such a job carries no tags).
    pub kind: JobType,
    /// The value of the job's `drs-failback:run-id` tag, when it has one: the job is that run's.
    pub run_id: Option<String>,
    /// The value of its `drs-failback:step` tag: the plan step that launched it.
    pub step: Option<String>,
    /// When DRS created it (`creationDateTime`), when DRS says.
    pub created: Option<SystemTime>,
    /// When it ended (`endDateTime`), once DRS says.
    pub ended: Option<SystemTime>,
    pub participants: Vec<Participant>,
}

impl JobRecord {
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }

    /// Whether the job holds this recovery instance, known by its id or its source server's.
    pub fn holds(&self, recovery_instance_id: &str, source_server_id: Option<&str>) -> bool {
        self.participants.iter().any(|p| {
            p.recovery_instance_id.as_deref() == Some(recovery_instance_id)
                || (source_server_id.is_some() && p.source_server_id.as_deref() == source_server_id)
        })
    }

    /// The job as the answer reports it, holding `ids`.
    pub fn launched(&self, ids: Vec<String>) -> LaunchedJob {
        LaunchedJob {
            job_id: self.job_id.clone(),
            arn: self.arn.clone(),
            status: self.status.clone(),
            recovery_instance_ids: ids,
        }
    }
}

/// Which recovery instances a `DescribeRecoveryInstances` call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceQuery<'a> {
    /// At most `DESCRIBE_INSTANCES_MAX_IDS`.
    RecoveryInstances(&'a [String]),
    /// The recovery instances of these source servers, at most `DESCRIBE_INSTANCES_MAX_IDS`.
    SourceServers(&'a [String]),
    /// Every recovery instance of the account and Region, page by page: only to resolve a plan's
    /// tag selectors (DRS has no tag filter).
    All,
}

/// Which jobs a `DescribeJobs` call asks for: these ids (at most `DESCRIBE_JOBS_MAX_IDS`; none
/// means any), created at or after `created_since` when given. Without either, DRS lists every
/// job the account ever ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobQuery<'a> {
    pub job_ids: &'a [String],
    pub created_since: Option<SystemTime>,
}

/// One page of a listing; the listing ends when `next_token` is absent (a page may be short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

pub trait Drs: Send + Sync {
    fn start_failback_launch(
        &self,
        recovery_instance_ids: &[String],
        tags: &Tags,
    ) -> impl Future<Output = Result<JobRecord, LaunchError>> + Send;

    /// One page of the recovery instances asked for (unknown ids are simply absent).
    fn describe_recovery_instances(
        &self,
        query: InstanceQuery<'_>,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<Page<RecoveryInstance>, DescribeError>> + Send;

    /// One page of the jobs asked for, newest first.
    fn describe_jobs(
        &self,
        query: JobQuery<'_>,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<Page<JobRecord>, DescribeError>> + Send;

    /// Disconnects one recovery instance from DRS (replication stops; irreversible).
    fn disconnect_recovery_instance(
        &self,
        recovery_instance_id: &str,
    ) -> impl Future<Output = Result<(), LaunchError>> + Send;

    /// Starts a job terminating up to 200 recovery instances (irreversible).
    fn terminate_recovery_instances(
        &self,
        recovery_instance_ids: &[String],
    ) -> impl Future<Output = Result<JobRecord, LaunchError>> + Send;

    /// One page of a job's log.
    fn describe_job_log_items(
        &self,
        job_id: &str,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<Page<JobLogItem>, DescribeError>> + Send;
}

/// One entry of a job's log: what happened (`JOB_START`, `CONVERSION_FAIL`, `LAUNCH_FAILED`, ...)
/// and to which source server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLogItem {
    pub event: JobLogEvent,
    pub source_server_id: Option<String>,
    pub raw_error: Option<String>,
}

/// What pre-flight and reconciliation need to know about one recovery instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryInstance {
    pub recovery_instance_id: String,
    pub source_server_id: Option<String>,
    /// DRS's `failback.state` (an unknown state is kept verbatim).
    pub failback_state: FailbackState,
    /// "The Job ID of the last failback" (`failback.failbackJobID`).
    pub failback_job_id: Option<String>,
    /// The instance's own tags: what a plan step's selector matches (values never logged).
    pub tags: Tags,
    /// Its failback replication, once the Failback Client has connected.
    pub replication: Option<Replication>,
}

/// `DescribeRecoveryInstances` takes at most 200 ids in its filter.
pub const DESCRIBE_INSTANCES_MAX_IDS: usize = 200;
/// `DescribeJobs` takes at most 1000 job ids in its filter.
pub const DESCRIBE_JOBS_MAX_IDS: usize = 1000;
