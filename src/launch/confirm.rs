//! What a launch that succeeded, or an instance DRS refused, is only reported once DRS's state
//! confirms: instances the job DRS returned does not list, and culprits before they are rejected.

use tokio::time::{Instant, sleep};
use tracing::{info, warn};

use super::outcome::{DeferReason, Outcome};
use super::reconcile::Sighting;
use super::report::ChunkResult;
use super::send::Launcher;
use crate::drs::{Drs, JobRecord};

impl<D: Drs> Launcher<'_, D> {
    /// A job was created: the instances it lists are launched in it. One it does not list is
    /// looked for (a job may list servers by source server only, or not at all) rather than
    /// reported launched on trust.
    pub(super) async fn launched(
        &self,
        chunk_index: usize,
        mut ids: Vec<String>,
        job: JobRecord,
        result: &mut ChunkResult,
    ) {
        let sources = self.looker.sources;
        let (listed, unlisted): (Vec<String>, Vec<String>) = ids
            .drain(..)
            .partition(|id| job.holds(id, sources.get(id).map(String::as_str)));
        info!(chunk_index, instances = listed.len(), job_id = %job.job_id, "launched");
        result.launched(&job, listed);
        if unlisted.is_empty() {
            return;
        }
        warn!(chunk_index, instances = unlisted.len(), job_id = %job.job_id,
            "not listed in the job DRS returned: looking for them");
        let mut unlisted = unlisted;
        let found = self.look(&unlisted, true).await;
        if let Ok(sighting) = &found {
            result.take_sighting(&mut unlisted, sighting);
        }
        let why = match found {
            Ok(_) => format!(
                "not listed in job {}, nor found in a job of this run",
                job.job_id
            ),
            Err(why) => format!("not listed in job {}; state unreadable: {why}", job.job_id),
        };
        result.settle(
            &unlisted,
            Outcome::deferred(DeferReason::Ambiguous, Some(why)),
        );
    }

    /// Looks at DRS's state (over the settle window when `settle`).
    pub(super) async fn look(&self, ids: &[String], settle: bool) -> Result<Sighting, String> {
        let sighting = if settle {
            self.looker.settle(ids).await
        } else {
            self.looker.look(ids).await
        };
        sighting.map_err(|failure| failure.to_string())
    }

    /// Rejects the instances DRS refused, unless a look a settle window after the last refusal
    /// finds them in a job of this run (which DRS's conflict check saw before its Describe calls
    /// showed it).
    pub(super) async fn confirm(&self, chunk_index: usize, result: &mut ChunkResult) {
        let candidates = std::mem::take(&mut result.to_confirm);
        if candidates.is_empty() {
            return;
        }
        let ids: Vec<String> = candidates.iter().map(|(id, _)| id.clone()).collect();
        let visible_at = result.last_refusal.unwrap_or_else(Instant::now) + self.looker.window;
        let wait = visible_at.saturating_duration_since(Instant::now());
        if !self.looker.reads.budget.fits(wait, 1) {
            warn!(
                chunk_index,
                instances = ids.len(),
                "refused by DRS; no time left to confirm it"
            );
            let why = "refused by DRS; no time was left to confirm it is in no job of this run";
            return result.settle(
                &ids,
                Outcome::deferred(DeferReason::Ambiguous, Some(why.into())),
            );
        }
        sleep(wait).await;
        match self.looker.look(&ids).await {
            Ok(sighting) => {
                let mut left = ids;
                result.take_sighting(&mut left, &sighting);
                for (id, outcome) in candidates.into_iter().filter(|(id, _)| left.contains(id)) {
                    warn!(chunk_index, culprit = %id, "rejected by DRS");
                    result.settle(&[id], outcome);
                }
            }
            Err(failure) => {
                let why = format!("refused by DRS; state unreadable: {failure}");
                result.settle(&ids, Outcome::deferred(DeferReason::Ambiguous, Some(why)));
            }
        }
    }
}
