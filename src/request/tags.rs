//! The `tags` a request puts on every job it creates: checked here, never shown (values are
//! sensitive).

use std::collections::BTreeMap;

use super::{RequestError, truncate_utf8};
use crate::drs::tags::{MAX_USER_TAGS, RESERVED_TAG_PREFIX, TAG_MAX_LEN, Tags};

/// The tags as serde read them (every value a string); absent is none.
pub(crate) fn parse_tags(given: Option<BTreeMap<String, String>>) -> Result<Tags, RequestError> {
    let tags = given.unwrap_or_default();
    if tags.len() > MAX_USER_TAGS {
        return Err(RequestError::TooManyTags(tags.len()));
    }
    for (key, value) in &tags {
        let problem = if key.is_empty() {
            "a tag key must not be empty"
        } else if key.chars().count() > TAG_MAX_LEN {
            "the key is longer than 256 characters"
        } else if key.to_ascii_lowercase().starts_with("aws:") {
            "keys starting with \"aws:\" are reserved by AWS"
        } else if key.starts_with(RESERVED_TAG_PREFIX) {
            "keys starting with \"drs-failback:\" are set by this function"
        } else if value.chars().count() > TAG_MAX_LEN {
            "the value is longer than 256 characters"
        } else {
            continue;
        };
        return Err(RequestError::Tag {
            key: truncate_utf8(key, 64),
            problem,
        });
    }
    Ok(Tags::from_map(tags))
}
