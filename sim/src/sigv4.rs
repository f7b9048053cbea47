//! The SigV4 check: only the presence and shape of the `Authorization` header and its credential
//! scope's service, enough to catch an unsigned or wrongly scoped client, not a signature.

use hyper::header::{AUTHORIZATION, HeaderMap};

use crate::config::Operation;
use crate::error::ApiError;

/// Both services answer 403: AccessDeniedException for DRS, MissingAuthenticationTokenException
/// or InvalidSignatureException (in `__type`) for EventBridge.
pub(crate) fn check_signature(op: Operation, headers: &HeaderMap) -> Result<(), ApiError> {
    let service = if op.is_drs() { "drs" } else { "events" };
    let refuse = |missing: bool, message: String| {
        Err(match (op.is_drs(), missing) {
            (true, _) => ApiError::access_denied(message),
            (false, true) => ApiError::events(403, "MissingAuthenticationTokenException", message),
            (false, false) => ApiError::events(403, "InvalidSignatureException", message),
        })
    };
    let Some(auth) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return refuse(true, "Missing Authentication Token".into());
    };
    match signing_service(auth) {
        None => refuse(
            true,
            "Authorization header is not a SigV4 (AWS4-HMAC-SHA256) header".into(),
        ),
        Some(s) if s != service => refuse(
            false,
            format!("Credential should be scoped to correct service: '{service}'."),
        ),
        Some(_) => Ok(()),
    }
}

/// Whether a request is signed for `service` (how an STS call, which names no operation in its
/// path or headers, is told from others).
pub(crate) fn signed_for(headers: &HeaderMap, service: &str) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(signing_service)
        == Some(service)
}

/// The service of `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=..., Signature=...`.
fn signing_service(auth: &str) -> Option<&str> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, false, false);
    for part in rest.split(',').map(str::trim) {
        if let Some(c) = part.strip_prefix("Credential=") {
            credential = Some(c);
        } else if part
            .strip_prefix("SignedHeaders=")
            .is_some_and(|s| !s.is_empty())
        {
            signed = true;
        } else if part
            .strip_prefix("Signature=")
            .is_some_and(|s| !s.is_empty())
        {
            signature = true;
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    match scope.as_slice() {
        [key, date, region, service, "aws4_request"]
            if signed && signature && !key.is_empty() && !date.is_empty() && !region.is_empty() =>
        {
            Some(service)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_service_parses_sigv4_headers() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/drs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(signing_service(h), Some("drs"));
        assert_eq!(signing_service("Bearer x"), None);
        assert_eq!(
            signing_service(
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/drs/aws4_request, Signature=abc"
            ),
            None
        );
        assert_eq!(
            signing_service(
                "AWS4-HMAC-SHA256 Credential=AKID/us-east-1/drs/aws4_request, SignedHeaders=host, Signature=abc"
            ),
            None
        );
    }
}
