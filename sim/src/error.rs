//! Error answers in the two wire protocols.
//!
//! restJson1 (DRS): the status code, the error name in `x-amzn-ErrorType`, and a JSON body with
//! `message` plus the shape's modelled members. The SDK reads the header first and falls back to
//! the body's `code`, so `code` carries the name too. `Retry-After` is an HTTP header member of
//! ThrottlingException (string) and InternalServerException (integer) in the model.
//!
//! awsJson1_1 (EventBridge): the name in the body's `__type` (the SDK reads `code`, then
//! `__type`, and the `x-amzn-ErrorType` header before both).

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::model::Violation;

/// Seconds sent in `Retry-After` on a 500 (the fault shapes carry no value of their own).
pub(crate) const INTERNAL_RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub kind: Cow<'static, str>,
    pub body: Map<String, Value>,
    pub retry_after: Option<String>,
}

impl ApiError {
    fn new(status: u16, kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        let mut body = Map::new();
        body.insert("message".into(), Value::String(message.into()));
        ApiError {
            status,
            kind: kind.into(),
            body,
            retry_after: None,
        }
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.body.insert(key.into(), value.into());
        self
    }

    /// A DRS (restJson1) error: `code` echoes the name for clients that ignore the header.
    fn drs(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(status, kind, message).with("code", kind)
    }

    /// Any error a `fail` fault asks for: the name in the protocol's place, the extra members
    /// as given (e.g. `quotaCode`, `resourceId`, `fieldList`).
    pub(crate) fn custom(
        drs: bool,
        status: u16,
        kind: String,
        message: String,
        members: &Map<String, Value>,
        retry_after: Option<String>,
    ) -> Self {
        let name_key = if drs { "code" } else { "__type" };
        let mut e = ApiError::new(status, kind.clone(), message).with(name_key, kind);
        for (key, value) in members {
            e.body.insert(key.clone(), value.clone());
        }
        e.retry_after = retry_after;
        e
    }

    pub(crate) fn throttling(retry_after_seconds: u32, message: impl Into<String>) -> Self {
        let mut e = ApiError::drs(429, "ThrottlingException", message).with("serviceCode", "drs");
        e.retry_after = Some(retry_after_seconds.to_string());
        e
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        let mut e = ApiError::drs(500, "InternalServerException", message);
        e.retry_after = Some(INTERNAL_RETRY_AFTER_SECONDS.to_string());
        e
    }

    /// A conflict as DRS reports it when it says nothing about the instance at fault.
    pub(crate) fn conflict_without_details(message: impl Into<String>) -> Self {
        ApiError::drs(409, "ConflictException", message)
    }

    pub(crate) fn conflict(message: impl Into<String>, resource_id: &str) -> Self {
        ApiError::drs(409, "ConflictException", message)
            .with("resourceId", resource_id)
            .with("resourceType", "RECOVERY_INSTANCE")
    }

    pub(crate) fn not_found(message: impl Into<String>, resource_id: &str) -> Self {
        ApiError::drs(404, "ResourceNotFoundException", message)
            .with("resourceId", resource_id)
            .with("resourceType", "RECOVERY_INSTANCE")
    }

    pub(crate) fn quota(message: impl Into<String>, quota_code: &str) -> Self {
        ApiError::drs(402, "ServiceQuotaExceededException", message)
            .with("serviceCode", "drs")
            .with("quotaCode", quota_code)
    }

    pub(crate) fn validation(
        reason: &str,
        message: impl Into<String>,
        fields: &[(String, String)],
    ) -> Self {
        let list: Vec<Value> = fields
            .iter()
            .map(|(name, message)| json!({"name": name, "message": message}))
            .collect();
        let mut e = ApiError::drs(400, "ValidationException", message).with("reason", reason);
        if !list.is_empty() {
            e = e.with("fieldList", list);
        }
        e
    }

    pub(crate) fn from_violations(violations: &[Violation]) -> Self {
        let reason = if violations.iter().any(|v| v.unparseable) {
            "cannotParse"
        } else {
            "fieldValidationFailed"
        };
        let n = violations.len();
        let detail: Vec<&str> = violations
            .iter()
            .take(10)
            .map(|v| v.message.as_str())
            .collect();
        let message = format!(
            "{n} validation error{} detected: {}{}",
            if n == 1 { "" } else { "s" },
            detail.join("; "),
            if n > 10 { "; …" } else { "" }
        );
        let fields: Vec<(String, String)> = violations
            .iter()
            .map(|v| (v.field.clone(), v.message.clone()))
            .collect();
        ApiError::validation(reason, message, &fields)
    }

    pub(crate) fn uninitialized() -> Self {
        ApiError::drs(
            400,
            "UninitializedAccountException",
            "Account not initialized for Elastic Disaster Recovery in this region",
        )
    }

    /// Keys STS gave out, used after they expired: both protocols name it so.
    pub(crate) fn expired_token() -> Self {
        let kind = "ExpiredTokenException";
        ApiError::new(
            403,
            kind,
            "The security token included in the request is expired",
        )
        .with("code", kind)
        .with("__type", kind)
    }

    /// Keys of an account the service does not know in that region: an opt-in region not
    /// enabled for it, as AWS answers.
    pub(crate) fn unrecognized_client() -> Self {
        let kind = "UnrecognizedClientException";
        ApiError::new(
            403,
            kind,
            "The security token included in the request is invalid.",
        )
        .with("code", kind)
        .with("__type", kind)
    }

    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        ApiError::drs(403, "AccessDeniedException", message)
    }

    // EventBridge (awsJson1_1) errors.

    pub(crate) fn events(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(status, kind, message).with("__type", kind)
    }

    pub(crate) fn events_throttling(retry_after_seconds: u32) -> Self {
        let mut e = ApiError::events(400, "ThrottlingException", "Rate exceeded");
        e.retry_after = Some(retry_after_seconds.to_string());
        e
    }
}

/// A simulator that cannot be configured as asked: bad config file, fleet or settings.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid fleet: {0}")]
    Fleet(String),
    #[error("invalid config: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let t = ApiError::throttling(3, "slow down");
        assert_eq!(
            (t.status, t.kind.as_ref(), t.retry_after.as_deref()),
            (429, "ThrottlingException", Some("3"))
        );
        let v = ApiError::from_violations(&[Violation {
            field: "maxResults".into(),
            message: "m".into(),
            unparseable: false,
        }]);
        assert_eq!(v.body["reason"], "fieldValidationFailed");
        assert_eq!(v.body["fieldList"][0]["name"], "maxResults");
        let e = ApiError::events(400, "ValidationException", "x");
        assert_eq!(e.body["__type"], "ValidationException");
    }
}
