//! EventBridge PutEvents (awsJson1_1, `X-Amz-Target: AWSEvents.PutEvents`).
//!
//! Whole-call limits answer 400 ValidationException: 1–10 entries, 256 KB per request counted
//! as EventBridge documents it (Source, DetailType, Detail and each Resources entry in UTF-8
//! bytes, plus 14 when Time is set). Everything else is per entry, in order: a missing Source,
//! DetailType or Detail is InvalidArgument, a Source starting `aws.` is
//! NotAuthorizedForSourceException, a Detail that is not a JSON object is MalformedDetail, and
//! an injected entry failure is InternalFailure. Failed entries are not delivered.

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::clock::iso8601_from_epoch;
use crate::error::ApiError;
use crate::state::{DeliveredEvent, State};

pub(crate) const MAX_ENTRIES: usize = 10;
pub(crate) const MAX_REQUEST_BYTES: usize = 256 * 1024;

pub(crate) fn entry_size(entry: &Value) -> usize {
    let text = |k: &str| entry[k].as_str().map_or(0, str::len);
    let time = if entry.get("Time").is_some_and(|t| !t.is_null()) {
        14
    } else {
        0
    };
    let resources: usize = entry["Resources"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).map(str::len).sum())
        .unwrap_or(0);
    time + text("Source") + text("DetailType") + text("Detail") + resources
}

impl State {
    pub(crate) fn put_events(&mut self, input: &Value, now: Instant) -> Result<Value, ApiError> {
        let invalid = |m: String| ApiError::events(400, "ValidationException", m);
        let Some(entries) = input.get("Entries").and_then(Value::as_array) else {
            return Err(invalid(
                "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null".into(),
            ));
        };
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            let bound = if entries.is_empty() {
                "greater than or equal to 1"
            } else {
                "less than or equal to 10"
            };
            return Err(invalid(format!(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length {bound}"
            )));
        }
        let size: usize = entries.iter().map(entry_size).sum();
        if size > MAX_REQUEST_BYTES {
            return Err(invalid(format!(
                "Total size of the entries in the request is over the limit ({size} bytes > {MAX_REQUEST_BYTES})"
            )));
        }

        let mut results = Vec::with_capacity(entries.len());
        let mut failed = 0;
        for entry in entries {
            let error =
                |code: &str, message: &str| json!({ "ErrorCode": code, "ErrorMessage": message });
            let field = |k: &str| entry[k].as_str().filter(|s| !s.is_empty());
            let result = match (field("Source"), field("DetailType"), field("Detail")) {
                (Some(source), Some(detail_type), Some(detail)) => {
                    let parsed = serde_json::from_str::<Value>(detail)
                        .ok()
                        .filter(Value::is_object);
                    if source.starts_with("aws.") {
                        error(
                            "NotAuthorizedForSourceException",
                            "Not authorized for the source.",
                        )
                    } else if parsed.is_none() {
                        error("MalformedDetail", "Detail is malformed.")
                    } else if self.fail_entry() {
                        error("InternalFailure", "Internal failure (simulated).")
                    } else {
                        let event_id = uuid::Uuid::new_v4().to_string();
                        self.events.push(DeliveredEvent {
                            at_ms: self.clock.ms(now),
                            event_id: event_id.clone(),
                            event_bus_name: field("EventBusName").unwrap_or("default").to_owned(),
                            source: source.to_owned(),
                            detail_type: detail_type.to_owned(),
                            detail: parsed.unwrap_or_default(),
                            resources: entry["Resources"]
                                .as_array()
                                .map(|r| {
                                    r.iter()
                                        .filter_map(|s| s.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default(),
                            time: entry["Time"].as_f64().and_then(iso8601_from_epoch),
                        });
                        json!({ "EventId": event_id })
                    }
                }
                (source, detail_type, detail) => {
                    let missing: Vec<&str> = [
                        ("Source", source),
                        ("DetailType", detail_type),
                        ("Detail", detail),
                    ]
                    .into_iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| k)
                    .collect();
                    error(
                        "InvalidArgument",
                        &format!("Parameter(s) {} must be specified.", missing.join(", ")),
                    )
                }
            };
            if result.get("ErrorCode").is_some() {
                failed += 1;
            }
            results.push(result);
        }
        Ok(json!({ "FailedEntryCount": failed, "Entries": results }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_counts_documented_fields() {
        let e = json!({"Source": "abc", "DetailType": "de", "Detail": "{}", "Resources": ["r1", "r22"], "Time": 1.0, "EventBusName": "ignored"});
        assert_eq!(entry_size(&e), 14 + 3 + 2 + 2 + 2 + 3);
        assert_eq!(entry_size(&json!({"Source": "é"})), 2);
    }
}
