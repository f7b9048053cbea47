//! Pre-flight: read every requested instance (and the jobs they are in) before launching, so only
//! launchable instances are sent, and a redelivered request finds the jobs its first delivery made.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use futures_util::future::join;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::drs::{
    DESCRIBE_INSTANCES_MAX_IDS, DESCRIBE_JOBS_MAX_IDS, DescribeError, Drs, JobRecord, LaunchedJob,
};
use crate::launch::{Launcher, ReadFailure};
use crate::outcome::{Outcome, SKIPPED_ALREADY_IN_JOB, SKIPPED_NOT_FOUND};

/// The only failback state from which DRS launches.
pub const READY_FOR_LAUNCH: &str = "FAILBACK_READY_FOR_LAUNCH";

#[derive(Debug, Default)]
pub struct Preflight {
    /// Ready instances, in request order.
    pub launchable: Vec<String>,
    /// Instances whose outcome pre-flight already knows: skipped, or launched by this run before.
    pub settled: Vec<(String, Outcome)>,
    /// This run's jobs found (a redelivered request): reported again, not launched again.
    pub existing_jobs: Vec<LaunchedJob>,
}

impl<D: Drs> Launcher<'_, D> {
    /// One read per batch of `batch_size` ids, `max_concurrent` at a time (reads are independent:
    /// 5000 instances are 25 reads, which one after another would cost 25 round trips).
    async fn read_batches<'i, T, F, Fut>(
        &self,
        what: &'static str,
        ids: &'i [String],
        batch_size: usize,
        call: F,
    ) -> Result<Vec<T>, ReadFailure>
    where
        F: Fn(&'i [String]) -> Fut + Copy,
        Fut: Future<Output = Result<Vec<T>, DescribeError>>,
    {
        let pages: Vec<Vec<T>> = stream::iter(ids.chunks(batch_size))
            .map(|batch| self.read(what, move || call(batch)))
            .buffer_unordered(self.settings.max_concurrent.max(1))
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// Jobs that are PENDING or STARTED: what counts against the DRS quotas now.
    pub async fn active_jobs(&self) -> Result<Vec<JobRecord>, ReadFailure> {
        let jobs = self
            .read("active jobs", || self.drs.describe_jobs(&[]))
            .await?;
        Ok(jobs.into_iter().filter(JobRecord::is_active).collect())
    }

    /// The recovery instances of the named source servers, in the order the source servers were
    /// named, and the source servers that have none.
    pub async fn resolve_source_servers(
        &self,
        source_server_ids: &[String],
    ) -> Result<(Vec<String>, Vec<String>), ReadFailure> {
        let mut by_source: HashMap<String, Vec<String>> = HashMap::new();
        let found = self
            .read_batches(
                "recovery instances of source servers",
                source_server_ids,
                DESCRIBE_INSTANCES_MAX_IDS,
                |batch| {
                    self.drs
                        .describe_recovery_instances_of_source_servers(batch)
                },
            )
            .await?;
        for instance in found {
            if let Some(source) = instance.source_server_id {
                by_source
                    .entry(source)
                    .or_default()
                    .push(instance.recovery_instance_id);
            }
        }
        let mut resolved = Vec::new();
        let mut unknown = Vec::new();
        for source in source_server_ids {
            match by_source.remove(source) {
                Some(instances) => resolved.extend(instances),
                None => unknown.push(source.clone()),
            }
        }
        Ok((resolved, unknown))
    }

    /// Reads the active jobs (what counts against the quotas, returned as well) and every
    /// instance, then classifies every id: ready → launchable; unknown → `NOT_FOUND`; in an
    /// active job of another run → `ALREADY_IN_JOB`; in a job of this run → launched there; any
    /// other state → skipped with that state.
    pub async fn preflight(
        &self,
        ids: &[String],
    ) -> Result<(Preflight, Vec<JobRecord>), ReadFailure> {
        let (active, found) = join(
            self.active_jobs(),
            self.read_batches(
                "recovery instances",
                ids,
                DESCRIBE_INSTANCES_MAX_IDS,
                |batch| self.drs.describe_recovery_instances(batch),
            ),
        )
        .await;
        let (known_jobs, found) = (active?, found?);
        let instances: HashMap<String, _> = found
            .into_iter()
            .map(|instance| (instance.recovery_instance_id.clone(), instance))
            .collect();

        let mut jobs: HashMap<String, JobRecord> = known_jobs
            .iter()
            .map(|job| (job.job_id.clone(), job.clone()))
            .collect();
        let unknown_job_ids: Vec<String> = instances
            .values()
            .filter_map(|instance| instance.failback_job_id.clone())
            .filter(|job_id| !jobs.contains_key(job_id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found_jobs = self
            .read_batches("jobs", &unknown_job_ids, DESCRIBE_JOBS_MAX_IDS, |batch| {
                self.drs.describe_jobs(batch)
            })
            .await?;
        for job in found_jobs {
            jobs.insert(job.job_id.clone(), job);
        }

        let requested: BTreeSet<&String> = ids.iter().collect();
        let mut preflight = Preflight::default();
        let mut reported_jobs = BTreeSet::new();
        for id in ids {
            let Some(instance) = instances.get(id) else {
                preflight.settled.push((
                    id.clone(),
                    Outcome::Skipped {
                        reason: SKIPPED_NOT_FOUND.into(),
                        job_id: None,
                    },
                ));
                continue;
            };
            let job = instance
                .failback_job_id
                .as_ref()
                .and_then(|job_id| jobs.get(job_id))
                .filter(|job| job.recovery_instance_ids.contains(id));
            if let Some(job) = job {
                if job.run_id.as_deref() == Some(self.run_id) {
                    if reported_jobs.insert(job.job_id.clone()) {
                        // Only this request's instances: a job of an earlier round of the same
                        // run may hold others, which have their outcome in that round's answer.
                        let mut job: LaunchedJob = job.clone().into();
                        job.recovery_instance_ids
                            .retain(|id| requested.contains(id));
                        preflight.existing_jobs.push(job);
                    }
                    preflight.settled.push((
                        id.clone(),
                        Outcome::Launched {
                            job_id: job.job_id.clone(),
                        },
                    ));
                    continue;
                }
                if job.is_active() {
                    preflight.settled.push((
                        id.clone(),
                        Outcome::Skipped {
                            reason: SKIPPED_ALREADY_IN_JOB.into(),
                            job_id: Some(job.job_id.clone()),
                        },
                    ));
                    continue;
                }
            }
            if instance.failback_state == READY_FOR_LAUNCH {
                preflight.launchable.push(id.clone());
            } else {
                preflight.settled.push((
                    id.clone(),
                    Outcome::Skipped {
                        reason: instance.failback_state.clone(),
                        job_id: None,
                    },
                ));
            }
        }
        Ok((preflight, known_jobs))
    }
}
