//! Settling an ambiguous launch: after a 5xx, a timeout or a connection lost after sending, DRS
//! may or may not have created the job. Its state is read back before anything is resent.

use std::collections::BTreeSet;

use crate::drs::Drs;
use crate::reads::DrsReads;
use crate::retry::Reconciled;

/// Reads the instances' `failbackJobID` and those jobs. A job of this run (its run-id tag)
/// holding all the instances means the call did create it.
pub async fn reconcile<D: Drs>(
    reads: &DrsReads<'_, D>,
    ids: &[String],
    run_id: &str,
) -> Reconciled {
    let instances = match reads
        .read("recovery instances", || {
            reads.drs.describe_recovery_instances(ids)
        })
        .await
    {
        Ok(instances) => instances,
        Err(failure) => return Reconciled::Unknown(failure.to_string()),
    };
    let job_ids: Vec<String> = instances
        .iter()
        .filter(|instance| ids.contains(&instance.recovery_instance_id))
        .filter_map(|instance| instance.failback_job_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if job_ids.is_empty() {
        return Reconciled::NotCreated;
    }
    let jobs = match reads
        .read("jobs", || reads.drs.describe_jobs(&job_ids))
        .await
    {
        Ok(jobs) => jobs,
        Err(failure) => return Reconciled::Unknown(failure.to_string()),
    };
    jobs.into_iter()
        .find(|job| {
            job.run_id.as_deref() == Some(run_id)
                && ids.iter().all(|id| job.recovery_instance_ids.contains(id))
        })
        .map(|job| Reconciled::Created(job.into()))
        .unwrap_or(Reconciled::NotCreated)
}
