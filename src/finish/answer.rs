//! A finishing call's answer: each instance of the run with its finishing result, grouped by
//! result, reason and job; the terminate jobs; and whether to ask again.

use std::collections::HashMap;

use serde::Serialize;

use super::decide::FinishResult;
use crate::events::{EventDelivery, IdGroup};
use crate::request::Finishing;

/// Instances that share a result, reason and job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishGroup {
    pub result: FinishResult,
    pub reason: String,
    #[serde(rename = "jobID", skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(rename = "recoveryInstanceIDs")]
    pub recovery_instance_ids: Vec<String>,
}

impl IdGroup for FinishGroup {
    fn ids(&self) -> &[String] {
        &self.recovery_instance_ids
    }
    fn ids_mut(&mut self) -> &mut Vec<String> {
        &mut self.recovery_instance_ids
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishCounts {
    pub done: usize,
    pub failed: usize,
    pub running: usize,
    pub not_eligible: usize,
    pub deferred: usize,
    pub planned: usize,
}

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum FinishNext {
    /// Ask again after `waitSeconds`: a terminate job runs, or something was deferred.
    #[serde(rename_all = "camelCase")]
    Finish { wait_seconds: u64 },
    /// Every instance has its final result (or the finishing asked often enough).
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishAnswer {
    pub run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub finishing: Finishing,
    pub dry_run: bool,
    /// Every instance has a final result.
    pub complete: bool,
    pub counts: FinishCounts,
    pub groups: Vec<FinishGroup>,
    /// The terminate jobs the instances are in.
    #[serde(rename = "jobIDs")]
    pub job_ids: Vec<String>,
    pub next: FinishNext,
    pub events: EventDelivery,
}

/// One instance's result.
pub type Finished = (String, FinishResult, String, Option<String>);

/// Groups by result, reason and job, in the order each first appears; counts each result.
pub fn group(results: &[Finished]) -> (Vec<FinishGroup>, FinishCounts) {
    let mut groups: Vec<FinishGroup> = Vec::new();
    let mut index: HashMap<(FinishResult, &str, Option<&str>), usize> = HashMap::new();
    let mut counts = FinishCounts::default();
    for (id, result, reason, job_id) in results {
        *match result {
            FinishResult::Done => &mut counts.done,
            FinishResult::Failed => &mut counts.failed,
            FinishResult::Running => &mut counts.running,
            FinishResult::NotEligible => &mut counts.not_eligible,
            FinishResult::Deferred => &mut counts.deferred,
            FinishResult::Planned => &mut counts.planned,
        } += 1;
        let slot = *index
            .entry((*result, reason.as_str(), job_id.as_deref()))
            .or_insert_with(|| {
                groups.push(FinishGroup {
                    result: *result,
                    reason: reason.clone(),
                    job_id: job_id.clone(),
                    recovery_instance_ids: Vec::new(),
                });
                groups.len() - 1
            });
        groups[slot].recovery_instance_ids.push(id.clone());
    }
    (groups, counts)
}
