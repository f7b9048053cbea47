//! The Lambda binary: wiring only. Configuration is read and clients are built once per cold
//! start and shared by every invocation.

// The invocation future nests the launch, read and retry futures deeply enough to pass the default.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_config::BehaviorVersion;
use drs_failback::config::Config;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    drs_failback::telemetry::logging::init();
    let config = Config::from_env().inspect_err(|error| {
        tracing::error!(error = %error, "invalid configuration");
    })?;
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let failback = Arc::new(drs_failback::aws::failback(config, &sdk));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let failback = Arc::clone(&failback);
        async move { failback.invoke(event).await }
    }))
    .await
}
