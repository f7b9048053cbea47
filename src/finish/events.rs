//! `Failback Instances Finished`: every instance of the run (or step) with its finishing result,
//! published once, by the call that ends the finishing (split so each part stays under the
//! detail budget). A dry run publishes none: its list is the approval's.

use serde::Serialize;

use super::answer::{FinishAnswer, FinishCounts, FinishGroup};
use crate::events::{
    DETAIL_TARGET_BYTES, DETAIL_TYPE_FINISHED, EventEntry, GROUPS_ENVELOPE_BYTES, entry,
    split_groups, to_json,
};
use crate::request::Finishing;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstancesFinished<'a> {
    run_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<&'a str>,
    finishing: Finishing,
    complete: bool,
    part: usize,
    parts: usize,
    counts: FinishCounts,
    groups: &'a [FinishGroup],
}

/// The events of a finishing call that ends the finishing; none otherwise.
pub fn finished_events(source: &str, answer: &FinishAnswer, last: bool) -> Vec<EventEntry> {
    if answer.dry_run || !last {
        return Vec::new();
    }
    let parts = split_groups(&answer.groups, DETAIL_TARGET_BYTES - GROUPS_ENVELOPE_BYTES);
    let count = parts.len().max(1);
    let empty = [Vec::new()];
    let parts: &[Vec<FinishGroup>] = if parts.is_empty() { &empty } else { &parts };
    parts
        .iter()
        .enumerate()
        .map(|(index, groups)| {
            let detail = InstancesFinished {
                run_id: &answer.run_id,
                step: answer.step.as_deref(),
                finishing: answer.finishing,
                complete: answer.complete,
                part: index + 1,
                parts: count,
                counts: answer.counts,
                groups,
            };
            entry(source, DETAIL_TYPE_FINISHED, to_json(&detail), vec![])
        })
        .collect()
}
