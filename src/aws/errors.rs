//! Sorting the SDK's failures by what is safe to do next: the one place that reads SDK error
//! types, HTTP statuses and connector errors.

use std::error::Error as StdError;

use aws_sdk_drs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_drs::operation::start_failback_launch::StartFailbackLaunchError;
use aws_smithy_runtime_api::client::result::DispatchFailure;

use crate::retry::{DescribeError, LaunchError, Unusable, parse_retry_after};

/// Reads only: everything but "DRS cannot be used here" may be retried.
pub(crate) fn classify_describe_error<E>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> DescribeError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let described = chain(&error);
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().unwrap_or("Unknown");
            let message = context.err().message().unwrap_or_default().to_owned();
            match code {
                "ThrottlingException" => DescribeError::Throttled {
                    retry_after: context
                        .raw()
                        .headers()
                        .get("Retry-After")
                        .and_then(parse_retry_after),
                    message,
                },
                "UninitializedAccountException" => DescribeError::Unusable {
                    kind: Unusable::AccountNotInitialized,
                    message,
                },
                _ if code == "AccessDeniedException" || status == 403 => DescribeError::Unusable {
                    kind: Unusable::AccessDenied,
                    message: format!("{code}: {message}"),
                },
                _ if status == 429 => DescribeError::Throttled {
                    retry_after: context
                        .raw()
                        .headers()
                        .get("Retry-After")
                        .and_then(parse_retry_after),
                    message: format!("{code}: {message}"),
                },
                _ => DescribeError::Failed {
                    error: format!("HTTP {status} {code}: {message}"),
                },
            }
        }
        SdkError::ConstructionFailure(_) => DescribeError::Unusable {
            kind: Unusable::ClientMisconfigured,
            message: format!("the request could not be built: {described}"),
        },
        _ => DescribeError::Failed { error: described },
    }
}

type StartError = SdkError<StartFailbackLaunchError, aws_smithy_runtime_api::http::Response>;

/// A finishing call's failure (DisconnectRecoveryInstance, TerminateRecoveryInstances), read by
/// its error code and HTTP status as [`classify_start_error`] reads a launch's: throttled, a quota,
/// refused (conflict, validation, not found), DRS unusable here, or unknown (5xx, timeout).
pub fn classify_call_error<E>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> LaunchError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match error {
        SdkError::ServiceError(context) => {
            let (status, retry_after) = answered(context.raw());
            let error = context.into_err();
            by_code(
                error.code().unwrap_or("Unknown"),
                error.message().unwrap_or_default(),
                status,
                retry_after,
            )
        }
        other => unanswered(other),
    }
}

/// An answer's HTTP status and `Retry-After`.
fn answered(raw: &aws_smithy_runtime_api::http::Response) -> (u16, Option<std::time::Duration>) {
    let retry_after = raw.headers().get("Retry-After").and_then(parse_retry_after);
    (raw.status().as_u16(), retry_after)
}

/// A DRS error by its code and HTTP status, whatever operation answered it.
fn by_code(
    code: &str,
    message: &str,
    status: u16,
    retry_after: Option<std::time::Duration>,
) -> LaunchError {
    let (code, message) = (code.to_owned(), message.to_owned());
    match (code.as_str(), status) {
        ("ThrottlingException", _) | (_, 429) => LaunchError::Throttled {
            retry_after,
            message: format!("{code}: {message}"),
        },
        ("UninitializedAccountException", _) => LaunchError::Unusable {
            kind: Unusable::AccountNotInitialized,
            message: format!("{code}: {message}"),
        },
        ("AccessDeniedException", _) | (_, 403) => LaunchError::Unusable {
            kind: Unusable::AccessDenied,
            message: format!("{code}: {message}"),
        },
        ("ServiceQuotaExceededException", _) | (_, 402) => LaunchError::QuotaExceeded {
            message,
            quota_code: None,
        },
        // A request timeout or a server error may come after DRS did the work.
        (_, 408 | 500..) => LaunchError::Ambiguous {
            error: format!("HTTP {status} {code}: {message}"),
        },
        _ => LaunchError::Refused {
            code,
            message,
            resource_id: None,
            fields: Vec::new(),
        },
    }
}

/// A call DRS did not answer: the request could not be built, never left, or its fate is unknown.
fn unanswered<E>(error: SdkError<E, aws_smithy_runtime_api::http::Response>) -> LaunchError
where
    E: StdError + Send + Sync + 'static,
{
    let described = chain(&error);
    match error {
        SdkError::ConstructionFailure(_) => LaunchError::Unusable {
            kind: Unusable::ClientMisconfigured,
            message: format!("the request could not be built: {described}"),
        },
        SdkError::DispatchFailure(failure) if never_left(&failure) => LaunchError::NotSent {
            error: format!("could not connect: {described}"),
        },
        _ => LaunchError::Ambiguous { error: described },
    }
}

/// Sorts an SDK failure by what is safe to do next. Anything that may have reached DRS and that
/// DRS did not clearly refuse is ambiguous: the job may exist.
pub fn classify_start_error(error: StartError) -> LaunchError {
    match error {
        SdkError::ServiceError(context) => {
            let (status, retry_after) = answered(context.raw());
            match context.into_err() {
                StartFailbackLaunchError::ThrottlingException(e) => LaunchError::Throttled {
                    retry_after: e.retry_after_seconds().and_then(parse_retry_after),
                    message: e.message,
                },
                StartFailbackLaunchError::InternalServerException(e) => LaunchError::Ambiguous {
                    error: format!("InternalServerException: {}", e.message),
                },
                StartFailbackLaunchError::ConflictException(e) => LaunchError::Refused {
                    code: "ConflictException".into(),
                    message: e.message.unwrap_or_default(),
                    resource_id: e.resource_id,
                    fields: Vec::new(),
                },
                StartFailbackLaunchError::ValidationException(e) => LaunchError::Refused {
                    code: "ValidationException".into(),
                    fields: e
                        .field_list()
                        .iter()
                        .filter_map(|field| field.name().map(str::to_owned))
                        .collect(),
                    message: e.message.unwrap_or_default(),
                    resource_id: None,
                },
                StartFailbackLaunchError::ServiceQuotaExceededException(e) => {
                    LaunchError::QuotaExceeded {
                        message: e.message.unwrap_or_default(),
                        quota_code: e.quota_code,
                    }
                }
                StartFailbackLaunchError::UninitializedAccountException(e) => {
                    LaunchError::Unusable {
                        kind: Unusable::AccountNotInitialized,
                        message: e
                            .message
                            .unwrap_or_else(|| "the account is not initialised for DRS".into()),
                    }
                }
                // Whatever DRS calls it: a 429 asks for the same call later, a request timeout or a
                // server error may come after the job was made.
                other => by_code(
                    other.code().unwrap_or("Unknown"),
                    other.message().unwrap_or_default(),
                    status,
                    retry_after,
                ),
            }
        }
        other => unanswered(other),
    }
}

/// True when the connection could not be opened: the request never reached DRS (hyper's connect
/// error, or a refused connection, which can only happen before anything is sent). A connection
/// lost later (reset, closed mid-answer) is not this: the request may have been processed.
fn never_left(failure: &DispatchFailure) -> bool {
    let Some(connector_error) = failure.as_connector_error() else {
        return false;
    };
    let mut source: Option<&(dyn StdError + 'static)> = Some(connector_error);
    while let Some(error) = source {
        if let Some(client_error) = error.downcast_ref::<hyper_util::client::legacy::Error>() {
            return client_error.is_connect();
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = error.source();
    }
    false
}

/// The error and its sources on one line: SDK errors print only their top level otherwise.
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_drs::types::ValidationExceptionField;
    use aws_sdk_drs::types::error::{
        ConflictException, InternalServerException, ServiceQuotaExceededException,
        ThrottlingException, UninitializedAccountException, ValidationException,
    };
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use std::time::Duration;

    fn service_error(status: u16, error: StartFailbackLaunchError) -> StartError {
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(error, raw)
    }

    #[test]
    fn throttling_keeps_retry_after() {
        let error = ThrottlingException::builder()
            .message("slow down")
            .retry_after_seconds("7")
            .build()
            .unwrap();
        let classified = classify_start_error(service_error(
            429,
            StartFailbackLaunchError::ThrottlingException(error),
        ));
        assert_eq!(
            classified,
            LaunchError::Throttled {
                retry_after: Some(Duration::from_secs(7)),
                message: "slow down".into()
            }
        );
    }

    #[test]
    fn a_500_is_ambiguous() {
        let error = InternalServerException::builder()
            .message("oops")
            .retry_after_seconds(3)
            .build()
            .unwrap();
        let classified = classify_start_error(service_error(
            500,
            StartFailbackLaunchError::InternalServerException(error),
        ));
        assert!(matches!(classified, LaunchError::Ambiguous { error } if error.contains("oops")));
    }

    #[test]
    fn refusals_keep_drs_code_message_and_culprit() {
        let conflict = ConflictException::builder()
            .message("i-11111111 is not ready")
            .resource_id("i-11111111")
            .build();
        assert_eq!(
            classify_start_error(service_error(
                409,
                StartFailbackLaunchError::ConflictException(conflict)
            )),
            LaunchError::Refused {
                code: "ConflictException".into(),
                message: "i-11111111 is not ready".into(),
                resource_id: Some("i-11111111".into()),
                fields: vec![],
            }
        );
        let field = ValidationExceptionField::builder()
            .name("recoveryInstanceIDs")
            .message("unknown")
            .build();
        let validation = ValidationException::builder()
            .message("bad id")
            .field_list(field)
            .build();
        assert!(matches!(
            classify_start_error(service_error(400, StartFailbackLaunchError::ValidationException(validation))),
            LaunchError::Refused { code, fields, .. } if code == "ValidationException" && fields == ["recoveryInstanceIDs"]
        ));
    }

    #[test]
    fn quota_and_account_errors() {
        let quota = ServiceQuotaExceededException::builder()
            .message("too many jobs")
            .quota_code("L-D88FAC3A")
            .build();
        assert_eq!(
            classify_start_error(service_error(
                402,
                StartFailbackLaunchError::ServiceQuotaExceededException(quota)
            )),
            LaunchError::QuotaExceeded {
                message: "too many jobs".into(),
                quota_code: Some("L-D88FAC3A".into())
            }
        );
        let uninitialized = UninitializedAccountException::builder()
            .message("init first")
            .build();
        assert!(matches!(
            classify_start_error(service_error(
                400,
                StartFailbackLaunchError::UninitializedAccountException(uninitialized)
            )),
            LaunchError::Unusable {
                kind: Unusable::AccountNotInitialized,
                ..
            }
        ));
    }

    #[test]
    fn timeouts_are_ambiguous() {
        let timeout: StartError = SdkError::timeout_error("operation timed out");
        assert!(matches!(
            classify_start_error(timeout),
            LaunchError::Ambiguous { .. }
        ));
    }
}
