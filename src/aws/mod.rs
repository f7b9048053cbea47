//! The only code that speaks AWS SDK types: adapters from the SDK clients to the core's traits,
//! and the one place the function is wired to them.

pub mod drs;
pub mod errors;
pub mod eventbridge;
pub mod http;
pub mod targets;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;

use crate::config::Config;
use crate::handler::Failback;

/// The function wired to the AWS SDK clients built from `sdk`: how `main`, the local run, the
/// benchmark and the tests all build it, so they run the same thing. An `sdk` without an HTTP
/// client of its own gets the function's ([`http`]), as `main` gives it.
pub fn failback(
    config: Config,
    sdk: &SdkConfig,
) -> Failback<drs::SdkDrs, eventbridge::SdkEventBridge> {
    let shared;
    let sdk = match sdk.http_client() {
        Some(_) => sdk,
        None => match http::client(http::Trust::AwsRoots) {
            Ok(https) => {
                shared = sdk.to_builder().http_client(https).build();
                &shared
            }
            Err(error) => {
                tracing::warn!(error = %error, "the function's HTTPS client could not be built: the SDK's default is used");
                sdk
            }
        },
    };
    let bus = config.event_bus_name.clone();
    let targets = targets::StsTargets::new(sdk, &config);
    Failback::new(
        config,
        drs::SdkDrs::new(sdk),
        eventbridge::SdkEventBridge::new(sdk, bus),
    )
    .with_reach(targets)
}

/// Retries are the core's business (one layer): the SDK's standard mode ignores DRS's
/// `Retry-After` and would resend after a 5xx, which can start a second job.
pub(crate) fn without_sdk_retries(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .retry_config(RetryConfig::disabled())
        .build()
}
