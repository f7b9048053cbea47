//! Reading DRS: every read-only call (pre-flight, settling, capacity polls) goes through
//! [`DrsReads`], which retries it as [`decide_read`](crate::retry::read::decide_read) decides, gives
//! each call (each page) a timeout from the time left and never starts a call or a wait that
//! would end after the budget.

use std::future::Future;
use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::time::{sleep, timeout};
use tracing::warn;

use tokio::time::Instant;

use super::stats::CallStats;
use super::{
    DESCRIBE_INSTANCES_MAX_IDS, DESCRIBE_JOBS_MAX_IDS, Drs, InstanceQuery, JobLogItem, JobQuery,
    JobRecord, Page, RecoveryInstance,
};
use crate::config::Config;
use crate::retry::deadline::Budget;
use crate::retry::read::{ReadDecision, decide_read};
use crate::retry::{DescribeError, Jitter, RetryPolicy, Unusable};

/// A run's jobs are looked for among those created since this long before the moment they can
/// first exist (an invocation's start, an execution's): room for the skew between DRS's clock and
/// ours, and for a concurrent delivery of the same request that started a little earlier.
pub const JOBS_LOOKBACK: Duration = Duration::from_secs(15 * 60);
/// Why a read did not give an answer, after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    Drs(DescribeError),
    /// Not enough time was left before the deadline for the read (or the wait before it).
    NoTime,
}

impl ReadFailure {
    pub fn unusable(&self) -> Option<(Unusable, String)> {
        match self {
            ReadFailure::Drs(DescribeError::Unusable { kind, message }) => {
                Some((*kind, message.clone()))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFailure::Drs(error) => error.fmt(f),
            ReadFailure::NoTime => f.write_str("no time left before the deadline"),
        }
    }
}

/// Reads of one invocation.
pub struct DrsReads<'a, D> {
    pub drs: &'a D,
    pub policy: RetryPolicy,
    pub jitter: &'a Jitter,
    pub budget: Budget,
    /// Independent reads (batches of ids) run this many at a time.
    pub max_concurrent: usize,
    /// Jobs created before now minus this window are not read when looking for active jobs: a
    /// failback job never lives that long, and an old account's history is long.
    pub active_job_window: Duration,
    /// The invocation's DRS calls, for its metrics (launches count here too).
    pub stats: &'a CallStats,
}

impl<'a, D: Drs> DrsReads<'a, D> {
    /// The DRS calls of one invocation whose work must end by `deadline`: its budget ends the
    /// configured deadline margin before it.
    pub fn new(
        drs: &'a D,
        config: &Config,
        jitter: &'a Jitter,
        deadline: Instant,
        stats: &'a CallStats,
        wall: std::time::SystemTime,
    ) -> Self {
        DrsReads {
            drs,
            policy: RetryPolicy::from_config(config),
            jitter,
            budget: Budget::new(
                deadline
                    .checked_sub(config.deadline_margin)
                    .unwrap_or_else(Instant::now),
                config.launch_call_timeout,
                wall,
            ),
            max_concurrent: config.max_concurrent_launches,
            active_job_window: config.active_job_window,
            stats,
        }
    }

    /// One read-only call, retried on throttling (after `Retry-After`) and on failures: reads have
    /// no side effects. Its timeout is what is left of the budget (at most the configured one);
    /// never starts a call or a wait that would end after the budget.
    pub async fn read<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, ReadFailure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, DescribeError>>,
    {
        let mut attempt = 0u32;
        loop {
            let Some(call_timeout) = self.budget.timeout_for(Duration::ZERO, 1) else {
                return Err(ReadFailure::NoTime);
            };
            let error = match timeout(call_timeout, call()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => {
                    if matches!(error, DescribeError::Throttled { .. }) {
                        self.stats.read_throttled();
                    }
                    error
                }
                Err(_) => DescribeError::Failed {
                    error: format!("no answer within {} ms", call_timeout.as_millis()),
                },
            };
            let wait = match decide_read(&error, attempt, &self.policy, (self.jitter)()) {
                ReadDecision::Retry(wait) => wait,
                ReadDecision::Stop => {
                    if !matches!(error, DescribeError::Unusable { .. }) {
                        warn!(what, error = %error, attempts = attempt + 1, "read failed");
                    }
                    return Err(ReadFailure::Drs(error));
                }
            };
            if !self.budget.fits(wait, 1) {
                return Err(ReadFailure::NoTime);
            }
            attempt += 1;
            warn!(what, error = %error, wait_ms = wait.as_millis() as u64, attempt, "read failed: retrying");
            sleep(wait).await;
        }
    }

    /// Every page of a listing, each page a read of its own (its own timeout and retries), so a
    /// long listing is bounded by the budget, not by one call's timeout.
    async fn pages<T, F, Fut>(&self, what: &'static str, call: F) -> Result<Vec<T>, ReadFailure>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = Result<Page<T>, DescribeError>>,
    {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.read(what, || call(token.clone())).await?;
            items.extend(page.items);
            match page.next_token {
                Some(next) => token = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// One listing per batch of `batch_size` ids, `max_concurrent` at a time (reads are
    /// independent: 5000 instances are 25 reads, which one after another would cost 25 round
    /// trips).
    async fn batches<'i, T, F, Fut>(
        &self,
        what: &'static str,
        ids: &'i [String],
        batch_size: usize,
        call: F,
    ) -> Result<Vec<T>, ReadFailure>
    where
        F: Fn(&'i [String], Option<String>) -> Fut + Copy,
        Fut: Future<Output = Result<Page<T>, DescribeError>>,
    {
        let lists: Vec<Vec<T>> = stream::iter(ids.chunks(batch_size))
            .map(|batch| self.pages(what, move |token| call(batch, token)))
            .buffer_unordered(self.max_concurrent.max(1))
            .try_collect()
            .await?;
        Ok(lists.into_iter().flatten().collect())
    }

    /// The named recovery instances that exist.
    pub async fn instances(&self, ids: &[String]) -> Result<Vec<RecoveryInstance>, ReadFailure> {
        self.instances_by("recovery instances", ids, |ids| {
            InstanceQuery::RecoveryInstances(ids)
        })
        .await
    }

    /// Every recovery instance of the account and Region.
    pub async fn all_instances(&self) -> Result<Vec<RecoveryInstance>, ReadFailure> {
        self.pages("every recovery instance", |token| async move {
            self.drs
                .describe_recovery_instances(InstanceQuery::All, token.as_deref())
                .await
        })
        .await
    }

    /// The recovery instances of the named source servers.
    pub async fn instances_of_source_servers(
        &self,
        source_server_ids: &[String],
    ) -> Result<Vec<RecoveryInstance>, ReadFailure> {
        self.instances_by(
            "recovery instances of source servers",
            source_server_ids,
            |ids| InstanceQuery::SourceServers(ids),
        )
        .await
    }

    async fn instances_by(
        &self,
        what: &'static str,
        ids: &[String],
        query: for<'b> fn(&'b [String]) -> InstanceQuery<'b>,
    ) -> Result<Vec<RecoveryInstance>, ReadFailure> {
        self.batches(
            what,
            ids,
            DESCRIBE_INSTANCES_MAX_IDS,
            |batch, token| async move {
                self.drs
                    .describe_recovery_instances(query(batch), token.as_deref())
                    .await
            },
        )
        .await
    }

    /// The named jobs that exist.
    pub async fn jobs(&self, job_ids: &[String]) -> Result<Vec<JobRecord>, ReadFailure> {
        self.batches(
            "jobs",
            job_ids,
            DESCRIBE_JOBS_MAX_IDS,
            |batch, token| async move {
                let query = JobQuery {
                    job_ids: batch,
                    created_since: None,
                };
                self.drs.describe_jobs(query, token.as_deref()).await
            },
        )
        .await
    }

    /// Every job created at or after `since`, whoever made it.
    pub async fn jobs_since(&self, since: SystemTime) -> Result<Vec<JobRecord>, ReadFailure> {
        self.pages("jobs since", |token| async move {
            let query = JobQuery {
                job_ids: &[],
                created_since: Some(since),
            };
            self.drs.describe_jobs(query, token.as_deref()).await
        })
        .await
    }

    /// A job's whole log.
    pub async fn job_log(&self, job_id: &str) -> Result<Vec<JobLogItem>, ReadFailure> {
        self.pages("job log", |token| async move {
            self.drs
                .describe_job_log_items(job_id, token.as_deref())
                .await
        })
        .await
    }

    /// Jobs that are PENDING or STARTED: what counts against the DRS quotas now. DescribeJobs has
    /// no status filter, so it reads the jobs of the active-job window only, not the account's
    /// whole history.
    pub async fn active_jobs(&self) -> Result<Vec<JobRecord>, ReadFailure> {
        let since = self.budget.wall_now() - self.active_job_window;
        let jobs = self.jobs_since(since).await?;
        Ok(jobs.into_iter().filter(JobRecord::is_active).collect())
    }
}
