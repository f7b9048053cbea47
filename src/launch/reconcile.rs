//! Looking for this run's jobs in DRS's state: after an ambiguous failure or a refusal, before any
//! resend, and before an instance DRS refused is rejected. Nothing in the DRS API promises that a
//! job a call created — or the instances' `failbackJobID` — is visible to Describe calls at once,
//! while DRS's own conflict check sees it at once; so a look keeps looking over a settle window
//! for what it cannot yet explain.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use futures_util::future::join;
use tokio::time::{Instant, sleep};

use super::preflight::earlier_attempt;
use crate::drs::reads::{DrsReads, ReadFailure};
use crate::drs::{Drs, FailbackState, JobRecord, RecoveryInstance};

/// How often a look is repeated within the settle window.
const POLL: Duration = Duration::from_secs(2);

/// What DRS's state shows of the instances looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sighting {
    /// Jobs of this run, each with the looked-at instances it holds.
    pub ours: Vec<(JobRecord, Vec<String>)>,
    /// Instances that cannot launch now, each with why: in another run's active job, not ready,
    /// or gone.
    pub unavailable: Vec<(String, String)>,
    /// Ready, and in no job of this run that DRS shows yet.
    pub unexplained: Vec<String>,
}

pub struct Looker<'a, D> {
    pub reads: &'a DrsReads<'a, D>,
    pub run_id: &'a str,
    /// Recovery instance → its source server: a completed job may list only the latter.
    pub sources: &'a HashMap<String, String>,
    /// This run's jobs are looked for among those created since then.
    pub since: SystemTime,
    /// How long DRS may take to show a job a call created.
    pub window: Duration,
}

impl<D: Drs> Looker<'_, D> {
    /// One look: the instances, the jobs created since `since` and the jobs the instances name.
    pub async fn look(&self, ids: &[String]) -> Result<Sighting, ReadFailure> {
        let (instances, recent) =
            join(self.reads.instances(ids), self.reads.jobs_since(self.since)).await;
        let instances: HashMap<String, RecoveryInstance> = instances?
            .into_iter()
            .map(|instance| (instance.recovery_instance_id.clone(), instance))
            .collect();
        let mut jobs: HashMap<String, JobRecord> = recent?
            .into_iter()
            .map(|job| (job.job_id.clone(), job))
            .collect();
        let mut named: Vec<String> = instances
            .values()
            .filter_map(|instance| instance.failback_job_id.clone())
            .filter(|job_id| !jobs.contains_key(job_id))
            .collect();
        named.sort();
        named.dedup();
        for job in self.reads.jobs(&named).await? {
            jobs.insert(job.job_id.clone(), job);
        }

        let mut sighting = Sighting::default();
        let mut ours: Vec<(JobRecord, Vec<String>)> = Vec::new();
        for id in ids {
            let instance = instances.get(id);
            let source = self
                .sources
                .get(id)
                .map(String::as_str)
                .or_else(|| instance.and_then(|i| i.source_server_id.as_deref()));
            // The job the instance names first: it is the instance's latest.
            let named = instance
                .and_then(|i| i.failback_job_id.as_ref())
                .and_then(|job_id| jobs.get(job_id));
            let our_job = named.into_iter().chain(jobs.values()).find(|job| {
                job.run_id.as_deref() == Some(self.run_id)
                    && job.holds(id, source)
                    && !earlier_attempt(job, instance)
            });
            if let Some(job) = our_job {
                match ours.iter_mut().find(|(j, _)| j.job_id == job.job_id) {
                    Some((_, held)) => held.push(id.clone()),
                    None => ours.push((job.clone(), vec![id.clone()])),
                }
                continue;
            }
            let why = match (instance, named) {
                (None, _) => Some("the recovery instance no longer exists".to_owned()),
                (Some(_), Some(job)) if job.is_active() && job.holds(id, source) => {
                    Some(format!("in active job {} of another run", job.job_id))
                }
                (Some(i), _) if i.failback_state != FailbackState::ReadyForLaunch => {
                    Some(format!("failback state {}", i.failback_state))
                }
                _ => None,
            };
            match why {
                Some(why) => sighting.unavailable.push((id.clone(), why)),
                None => sighting.unexplained.push(id.clone()),
            }
        }
        sighting.ours = ours;
        Ok(sighting)
    }

    /// Looks until every instance is found or explained, the settle window has passed, or no
    /// time is left for another look; the last look's sighting.
    pub async fn settle(&self, ids: &[String]) -> Result<Sighting, ReadFailure> {
        let until = Instant::now() + self.window;
        loop {
            let sighting = self.look(ids).await?;
            let wait = POLL.min(until.saturating_duration_since(Instant::now()));
            if sighting.unexplained.is_empty() || wait.is_zero() || !self.reads.budget.fits(wait, 1)
            {
                return Ok(sighting);
            }
            sleep(wait).await;
        }
    }
}
