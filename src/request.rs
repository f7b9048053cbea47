//! The failback request: both envelopes, validation, de-duplication.
//!
//! Parsing works on `serde_json::Value` by hand (not `#[derive(Deserialize)]` on the request) so
//! every refusal names the field at fault in words a runbook author can act on.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};
use thiserror::Error;

/// Pattern and lengths of `RecoveryInstanceID` in the DRS API model.
pub const INSTANCE_ID_MIN_LEN: usize = 10;
pub const INSTANCE_ID_MAX_LEN: usize = 19;
/// `TagKey` / `TagValue` in the DRS API model.
pub const TAG_MAX_LEN: usize = 256;
/// AWS resources carry at most 50 user tags; one is taken by the run-id tag.
pub const MAX_USER_TAGS: usize = 49;
/// The function tags every job with its run id under this key, so users may not set it.
pub const RUN_ID_TAG_KEY: &str = "drs-failback:run-id";
pub const RESERVED_TAG_PREFIX: &str = "drs-failback:";
pub const RUN_ID_MAX_LEN: usize = 128;
/// A malformed id is echoed back only this far: the answer must stay small whatever was sent.
pub const MALFORMED_ECHO_MAX_BYTES: usize = 32;

const KNOWN_FIELDS: [&str; 5] = [
    "recoveryInstanceIDs",
    "sourceServerIDs",
    "tags",
    "runId",
    "dryRun",
];

/// Tag values are marked sensitive in the DRS API model: `Debug` shows keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    /// The tags a job is created with: the user's plus the run id.
    pub fn with_run_id(&self, run_id: &str) -> Tags {
        let mut tags = self.0.clone();
        tags.insert(RUN_ID_TAG_KEY.to_owned(), run_id.to_owned());
        Tags(tags)
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailbackRequest {
    pub run_id: String,
    pub dry_run: bool,
    pub tags: Tags,
    /// Well-formed ids, duplicates removed, in the order first given.
    pub recovery_instance_ids: Vec<String>,
    /// Well-formed source server ids, duplicates removed: resolved to their recovery instances.
    pub source_server_ids: Vec<String>,
    /// Ids that can never be valid (in either list); they are reported `rejected` and never
    /// sent to DRS. Echoed at most `MALFORMED_ECHO_MAX_BYTES` long.
    pub malformed_ids: Vec<String>,
    pub duplicates_collapsed: usize,
}

impl FailbackRequest {
    /// Distinct ids named by the request, well-formed or not: each gets exactly one outcome.
    pub fn distinct_ids(&self) -> usize {
        self.recovery_instance_ids.len() + self.source_server_ids.len() + self.malformed_ids.len()
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum RequestError {
    #[error("the request must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("the EventBridge envelope is malformed: {0}")]
    Envelope(String),
    #[error("detail must be a JSON object holding the failback request, got {0}")]
    DetailNotAnObject(&'static str),
    #[error(
        "recoveryInstanceIDs is missing: list the recovery instances to fail back (or their sourceServerIDs)"
    )]
    MissingInstances,
    #[error("recoveryInstanceIDs is empty: list at least one recovery instance")]
    NoInstances,
    #[error(
        "recoveryInstanceIDs and sourceServerIDs have {count} entries, more than MAX_REQUEST_INSTANCES ({max}); split the request"
    )]
    TooManyInstances { count: usize, max: usize },
    #[error("{field} must be {expected}, got {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("unknown field {field:?}{hint}")]
    UnknownField { field: String, hint: String },
    #[error("tags key {key:?}: {problem}")]
    Tag { key: String, problem: &'static str },
    #[error("tags has {0} entries; at most {MAX_USER_TAGS} are allowed (one more is the run id)")]
    TooManyTags(usize),
    #[error("runId must be 1-{RUN_ID_MAX_LEN} characters of letters, digits and . _ - : / = + @")]
    BadRunId,
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `s-[0-9a-zA-Z]{17}`, as the DRS API model states.
pub fn is_valid_source_server_id(id: &str) -> bool {
    id.len() == 19 && id.starts_with("s-") && id[2..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `i-[0-9a-fA-F]{8,}` with 10–19 characters, as the DRS API model states.
pub fn is_valid_instance_id(id: &str) -> bool {
    (INSTANCE_ID_MIN_LEN..=INSTANCE_ID_MAX_LEN).contains(&id.len())
        && id.starts_with("i-")
        && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_valid_run_id(run_id: &str) -> bool {
    (1..=RUN_ID_MAX_LEN).contains(&run_id.len())
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/=+@".contains(c))
}

/// Cuts `text` to at most `max` bytes on a character boundary: whatever an outside party sent
/// (ids, DRS messages) is echoed only this far, so answers and events keep a size bound.
pub fn truncate_utf8(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Parses either envelope: a direct payload (Step Functions, console, `cargo lambda invoke`) or an
/// EventBridge event whose `detail` is that payload. `new_run_id` is called only when neither the
/// request nor the envelope supplies one.
pub fn parse_request(
    payload: Value,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<FailbackRequest, RequestError> {
    let top = match payload {
        Value::Object(top) => top,
        other => return Err(RequestError::NotAnObject(json_kind(&other))),
    };
    let is_eventbridge = top.contains_key("detail-type") && top.contains_key("detail");
    let (body, envelope_id) = if is_eventbridge {
        let event: EventBridgeEvent<Value> = serde_json::from_value(Value::Object(top))
            .map_err(|e| RequestError::Envelope(e.to_string()))?;
        let Value::Object(detail) = event.detail else {
            return Err(RequestError::DetailNotAnObject(json_kind(&event.detail)));
        };
        (detail, event.id)
    } else {
        (top, None)
    };
    parse_body(body, envelope_id, max_instances, new_run_id)
}

fn parse_body(
    body: Map<String, Value>,
    envelope_id: Option<String>,
    max_instances: usize,
    new_run_id: impl FnOnce() -> String,
) -> Result<FailbackRequest, RequestError> {
    for field in body.keys() {
        if !KNOWN_FIELDS.contains(&field.as_str()) {
            let hint = KNOWN_FIELDS
                .iter()
                .find(|known| known.eq_ignore_ascii_case(field))
                .map(|known| format!(" (did you mean {known}?)"))
                .unwrap_or_default();
            return Err(RequestError::UnknownField {
                field: truncate_utf8(field, 64),
                hint,
            });
        }
    }
    let raw_instances = id_list(&body, "recoveryInstanceIDs")?;
    let raw_sources = id_list(&body, "sourceServerIDs")?;
    let count = raw_instances.map_or(0, Vec::len) + raw_sources.map_or(0, Vec::len);
    match (raw_instances, raw_sources) {
        (None, None) => return Err(RequestError::MissingInstances),
        _ if count == 0 => return Err(RequestError::NoInstances),
        _ if count > max_instances => {
            return Err(RequestError::TooManyInstances {
                count,
                max: max_instances,
            });
        }
        _ => {}
    }

    let mut seen = HashSet::with_capacity(count);
    let mut recovery_instance_ids = Vec::new();
    let mut source_server_ids = Vec::new();
    let mut malformed_ids = Vec::new();
    let mut duplicates_collapsed = 0;
    let lists = [
        (
            "recoveryInstanceIDs",
            raw_instances,
            is_valid_instance_id as fn(&str) -> bool,
            &mut recovery_instance_ids,
        ),
        (
            "sourceServerIDs",
            raw_sources,
            is_valid_source_server_id,
            &mut source_server_ids,
        ),
    ];
    for (field, raw, is_valid, valid) in lists {
        for (index, entry) in raw.into_iter().flatten().enumerate() {
            let Value::String(id) = entry else {
                return Err(RequestError::WrongType {
                    field: format!("{field}[{index}]"),
                    expected: "a string",
                    found: json_kind(entry),
                });
            };
            if !seen.insert(id.as_str()) {
                duplicates_collapsed += 1;
            } else if is_valid(id) {
                valid.push(id.clone());
            } else {
                malformed_ids.push(truncate_utf8(id, MALFORMED_ECHO_MAX_BYTES));
            }
        }
    }

    let tags = parse_tags(body.get("tags"))?;

    let dry_run = match body.get("dryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => {
            return Err(RequestError::WrongType {
                field: "dryRun".into(),
                expected: "true or false",
                found: json_kind(other),
            });
        }
    };

    let run_id = match body.get("runId") {
        None | Some(Value::Null) => envelope_id
            .filter(|id| is_valid_run_id(id))
            .unwrap_or_else(new_run_id),
        Some(Value::String(run_id)) if is_valid_run_id(run_id) => run_id.clone(),
        Some(Value::String(_)) => return Err(RequestError::BadRunId),
        Some(other) => {
            return Err(RequestError::WrongType {
                field: "runId".into(),
                expected: "a string",
                found: json_kind(other),
            });
        }
    };

    Ok(FailbackRequest {
        run_id,
        dry_run,
        tags,
        recovery_instance_ids,
        source_server_ids,
        malformed_ids,
        duplicates_collapsed,
    })
}

/// A list field: absent or null is `None`; anything but an array is refused.
fn id_list<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a Vec<Value>>, RequestError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(ids)) => Ok(Some(ids)),
        Some(other) => Err(RequestError::WrongType {
            field: field.into(),
            expected: "an array of strings",
            found: json_kind(other),
        }),
    }
}

fn parse_tags(raw: Option<&Value>) -> Result<Tags, RequestError> {
    let map = match raw {
        None | Some(Value::Null) => return Ok(Tags::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(RequestError::WrongType {
                field: "tags".into(),
                expected: "an object of string values",
                found: json_kind(other),
            });
        }
    };
    if map.len() > MAX_USER_TAGS {
        return Err(RequestError::TooManyTags(map.len()));
    }
    let mut tags = BTreeMap::new();
    for (key, value) in map {
        let shown_key = truncate_utf8(key, 64);
        let problem = if key.is_empty() {
            Some("a tag key must not be empty")
        } else if key.chars().count() > TAG_MAX_LEN {
            Some("the key is longer than 256 characters")
        } else if key.to_ascii_lowercase().starts_with("aws:") {
            Some("keys starting with \"aws:\" are reserved by AWS")
        } else if key.starts_with(RESERVED_TAG_PREFIX) {
            Some("keys starting with \"drs-failback:\" are set by this function")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(RequestError::Tag {
                key: shown_key,
                problem,
            });
        }
        let Value::String(value) = value else {
            return Err(RequestError::WrongType {
                field: format!("tags.{shown_key}"),
                expected: "a string",
                found: json_kind(value),
            });
        };
        if value.chars().count() > TAG_MAX_LEN {
            return Err(RequestError::Tag {
                key: shown_key,
                problem: "the value is longer than 256 characters",
            });
        }
        tags.insert(key.clone(), value.clone());
    }
    Ok(Tags(tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(payload: Value) -> Result<FailbackRequest, RequestError> {
        parse_request(payload, 5000, || "generated".into())
    }

    #[test]
    fn instance_id_rules_follow_the_api_model() {
        assert!(is_valid_instance_id("i-12345678"));
        assert!(is_valid_instance_id("i-0123456789abcdef0"));
        assert!(is_valid_instance_id("i-ABCDEF0123"));
        assert!(!is_valid_instance_id("i-1234567"), "too short");
        assert!(
            !is_valid_instance_id("i-0123456789abcdef01"),
            "20 characters"
        );
        assert!(!is_valid_instance_id("i-0123456z"), "not hex");
        assert!(!is_valid_instance_id("x-01234567"));
        assert!(
            !is_valid_instance_id("i-０１２３４５６７"),
            "non-ASCII digits"
        );
    }

    #[test]
    fn duplicates_collapse_keeping_first_order() {
        let req = parse(json!({"recoveryInstanceIDs": [
            "i-22222222", "i-11111111", "i-22222222", "bad", "bad", "i-11111111"
        ]}))
        .unwrap();
        assert_eq!(req.recovery_instance_ids, ["i-22222222", "i-11111111"]);
        assert_eq!(req.malformed_ids, ["bad"]);
        assert_eq!(req.duplicates_collapsed, 3);
        assert_eq!(req.distinct_ids(), 3);
    }

    #[test]
    fn source_servers_may_be_named_instead_or_as_well() {
        let req = parse(json!({
            "sourceServerIDs": ["s-0123456789abcdefA", "s-short", "s-0123456789abcdefA"],
            "recoveryInstanceIDs": ["i-11111111"]
        }))
        .unwrap();
        assert_eq!(req.source_server_ids, ["s-0123456789abcdefA"]);
        assert_eq!(req.recovery_instance_ids, ["i-11111111"]);
        assert_eq!(req.malformed_ids, ["s-short"]);
        assert_eq!(req.duplicates_collapsed, 1);
        let only_sources = parse(json!({"sourceServerIDs": ["s-0123456789abcdefA"]})).unwrap();
        assert!(only_sources.recovery_instance_ids.is_empty());
    }

    #[test]
    fn run_id_comes_from_request_then_envelope_then_generator() {
        let direct = parse(json!({"recoveryInstanceIDs": ["i-11111111"]})).unwrap();
        assert_eq!(direct.run_id, "generated");
        let given =
            parse(json!({"recoveryInstanceIDs": ["i-11111111"], "runId": "wave-1"})).unwrap();
        assert_eq!(given.run_id, "wave-1");
        let event = parse(json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "Failback Launch Requested", "source": "runbook",
            "account": "111122223333", "time": "2026-11-27T10:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {"recoveryInstanceIDs": ["i-11111111"]}
        }))
        .unwrap();
        assert_eq!(event.run_id, "6a7e8feb-b491-4cf7-a9f1-bf3703467718");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({}), "recoveryInstanceIDs is missing"),
            (
                json!({"recoveryInstanceIDs": []}),
                "recoveryInstanceIDs is empty",
            ),
            (
                json!({"recoveryInstanceIDs": "i-11111111"}),
                "recoveryInstanceIDs must be",
            ),
            (
                json!({"recoveryInstanceIDs": [42]}),
                "recoveryInstanceIDs[0]",
            ),
            (
                json!({"recoveryInstanceIds": ["i-11111111"]}),
                "did you mean recoveryInstanceIDs",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "tags": []}),
                "tags must be",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"aws:x": "1"}}),
                "aws:",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"Wave": 1}}),
                "tags.Wave",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "dryRun": "yes"}),
                "dryRun",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "runId": ""}),
                "runId",
            ),
            (
                json!({"recoveryInstanceIDs": ["i-11111111"], "runId": 7}),
                "runId",
            ),
            (
                json!({"detail-type": "x", "source": "y", "detail": []}),
                "detail must be",
            ),
        ];
        for (payload, expected) in cases {
            let err = parse(payload.clone()).expect_err(&payload.to_string());
            assert!(err.to_string().contains(expected), "{payload} -> {err}");
        }
    }

    #[test]
    fn tag_values_are_checked_but_never_shown() {
        let long = "v".repeat(257);
        let err = parse(json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"Wave": long}}))
            .unwrap_err();
        assert!(!err.to_string().contains("vvvv"), "{err}");
        let req =
            parse(json!({"recoveryInstanceIDs": ["i-11111111"], "tags": {"Secret": "hunter2"}}))
                .unwrap();
        assert!(!format!("{req:?}").contains("hunter2"));
    }

    #[test]
    fn too_many_ids_are_refused_before_any_work() {
        let ids: Vec<String> = (0..11).map(|n| format!("i-{n:08x}")).collect();
        let err =
            parse_request(json!({"recoveryInstanceIDs": ids}), 10, || "r".into()).unwrap_err();
        assert_eq!(err, RequestError::TooManyInstances { count: 11, max: 10 });
    }

    proptest! {
        #[test]
        fn every_distinct_id_is_kept_once(ids in proptest::collection::vec(
            prop_oneof!["i-[0-9a-f]{8,17}", "i-[0-9a-f]{1,7}", "[a-z0-9-]{0,25}"], 1..60)) {
            let req = parse(json!({"recoveryInstanceIDs": ids.clone()})).unwrap();
            let distinct: HashSet<&String> = ids.iter().collect();
            prop_assert_eq!(req.distinct_ids(), distinct.len());
            prop_assert_eq!(req.duplicates_collapsed, ids.len() - distinct.len());
            for id in &req.recovery_instance_ids {
                prop_assert!(is_valid_instance_id(id));
            }
            for id in &req.malformed_ids {
                prop_assert!(!is_valid_instance_id(id));
            }
        }

        #[test]
        fn arbitrary_json_never_panics(text in "\\PC{0,200}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = parse(value);
            }
        }
    }
}
