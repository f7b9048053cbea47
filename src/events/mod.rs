//! The function's events: the catalogue of their detail-types (the state machine publishes the
//! plan's own with the same names), the bounds every detail keeps, and publishing them within
//! PutEvents' limits ([`publish`]). Each stage builds its own events' details (`launch::events`,
//! `track::events`) from what it decided.

use serde::Serialize;
use serde_json::json;

pub mod publish;

pub use publish::{EventDelivery, EventEntry, EventPublisher};

/// The detail-type the function's EventBridge rule listens for.
pub const DETAIL_TYPE_REQUESTED: &str = "Failback Launch Requested";
pub const DETAIL_TYPE_JOB_STARTED: &str = "Failback Launch Job Started";
pub const DETAIL_TYPE_NOT_LAUNCHED: &str = "Failback Launch Instances Not Launched";
pub const DETAIL_TYPE_RUN_COMPLETED: &str = "Failback Launch Run Completed";
pub const DETAIL_TYPE_JOB_COMPLETED: &str = "Failback Launch Job Completed";
pub const DETAIL_TYPE_RUN_FINISHED: &str = "Failback Run Finished";
pub const DETAIL_TYPE_STEP_FINISHED: &str = "Failback Step Finished";
pub const DETAIL_TYPE_WAITING: &str = "Failback Instances Waiting";
pub const DETAIL_TYPE_FINISHED: &str = "Failback Instances Finished";

/// Every event detail is kept under this, so ten events fit one 256 KB PutEvents call.
pub const DETAIL_TARGET_BYTES: usize = 24 * 1024;
/// Room for the fields around the instance groups of an event that lists them.
pub const GROUPS_ENVELOPE_BYTES: usize = 256;

/// A detail as JSON text.
pub fn to_json(value: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail; an empty object keeps the event valid if it did.
    serde_json::to_string(value).unwrap_or_else(|_| json!({}).to_string())
}

/// An entry of the function's own `source`.
pub fn entry(
    source: &str,
    detail_type: &str,
    detail: String,
    resources: Vec<String>,
) -> EventEntry {
    EventEntry {
        source: source.to_owned(),
        detail_type: detail_type.to_owned(),
        detail,
        resources,
    }
}

/// A group of instances listed by id: what an event may split across parts.
pub trait IdGroup: Clone + Serialize {
    fn ids(&self) -> &[String];
    fn ids_mut(&mut self) -> &mut Vec<String>;
}

/// Splits the groups into parts whose serialised size stays under `budget`, keeping the order of
/// groups and of ids within them; a group may be cut across parts.
pub fn split_groups<G: IdGroup>(groups: &[G], budget: usize) -> Vec<Vec<G>> {
    let mut parts: Vec<Vec<G>> = Vec::new();
    let mut current: Vec<G> = Vec::new();
    let mut current_bytes = 2; // the enclosing [ ]
    for group in groups {
        let mut empty = group.clone();
        empty.ids_mut().clear();
        let header_bytes = to_json(&empty).len() + 1;
        let mut piece = empty.clone();
        for id in group.ids() {
            let id_bytes = id.len() + 3; // quotes and comma; ids are plain ASCII or cut short
            let extra = if piece.ids().is_empty() {
                header_bytes + id_bytes
            } else {
                id_bytes
            };
            let part_has_content = !current.is_empty() || !piece.ids().is_empty();
            if part_has_content && current_bytes + extra > budget {
                if !piece.ids().is_empty() {
                    current.push(std::mem::replace(&mut piece, empty.clone()));
                }
                parts.push(std::mem::take(&mut current));
                current_bytes = 2;
            }
            if piece.ids().is_empty() {
                current_bytes += header_bytes;
            }
            current_bytes += id_bytes;
            piece.ids_mut().push(id.clone());
        }
        if !piece.ids().is_empty() {
            current.push(piece);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}
