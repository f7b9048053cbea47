//! The only code that speaks AWS SDK types: adapters from the SDK clients to the core's traits.

pub mod drs;
pub mod eventbridge;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;

/// Retries are the core's business (one layer): the SDK's standard mode ignores DRS's
/// `Retry-After` and would resend after a 5xx, which can start a second job.
pub(crate) fn without_sdk_retries(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .retry_config(RetryConfig::disabled())
        .build()
}
