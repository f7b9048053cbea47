//! What launching came to: per chunk while it runs, for all chunks when they are done.

use std::sync::Mutex;

use tokio::time::Instant;

use super::outcome::Outcome;
use super::reconcile::Sighting;
use crate::drs::{JobRecord, LaunchedJob};
use crate::retry::Unusable;

#[derive(Debug, Default)]
pub(super) struct LaunchReport {
    pub jobs: Vec<LaunchedJob>,
    pub outcomes: Vec<(String, Outcome)>,
    /// Set when DRS said it cannot be used at all; the run is then refused if no job was created.
    pub unusable: Option<(Unusable, String)>,
    /// DRS answered ServiceQuotaExceeded: nothing more fits until jobs finish.
    pub quota_full: bool,
    /// DRS refused a field of the request itself: `(field, message)`.
    pub refused_request: Option<(String, String)>,
    /// Why the launches stopped, when they did: the outcome of what was not started.
    pub halted: Option<Outcome>,
}

/// The outcome of everything not yet started once the run must stop: set by the first chunk
/// that learns it.
#[derive(Default)]
pub(super) struct Halt(Mutex<Option<Outcome>>);

impl Halt {
    pub(super) fn get(&self) -> Option<Outcome> {
        self.0.lock().map(|guard| guard.clone()).unwrap_or(None)
    }
    pub(super) fn set(&self, outcome: Outcome) {
        if let Ok(mut guard) = self.0.lock() {
            guard.get_or_insert(outcome);
        }
    }
}

/// What one chunk came to so far.
#[derive(Default)]
pub(super) struct ChunkResult {
    pub(super) report: LaunchReport,
    /// Instances of the chunk launched so far.
    pub(super) launched: usize,
    /// The chunk has looked over a whole settle window since a refusal.
    pub(super) settled: bool,
    /// Refused by DRS by name or alone; rejected only if a look a window later finds them in
    /// no job of this run.
    pub(super) to_confirm: Vec<(String, Outcome)>,
    pub(super) last_refusal: Option<Instant>,
}

impl ChunkResult {
    pub(super) fn settle(&mut self, ids: &[String], outcome: Outcome) {
        let outcomes = ids.iter().map(|id| (id.clone(), outcome.clone()));
        self.report.outcomes.extend(outcomes);
    }

    pub(super) fn launched(&mut self, job: &JobRecord, ids: Vec<String>) {
        let outcome = Outcome::Launched {
            job_id: job.job_id.clone(),
        };
        self.settle(&ids, outcome);
        self.launched += ids.len();
        self.report.jobs.push(job.launched(ids));
    }

    pub(super) fn take_sighting(&mut self, ids: &mut Vec<String>, sighting: &Sighting) {
        for (job, held) in &sighting.ours {
            ids.retain(|id| !held.contains(id));
            self.launched(job, held.clone());
        }
    }
}
