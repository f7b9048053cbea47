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
    // One HTTPS client for every SDK client, trusting the AWS roots compiled in (or the
    // operator's SSL_CERT_FILE / SSL_CERT_DIR): no system root store read at start-up.
    let trust = drs_failback::aws::http::Trust::from_lookup(|name| std::env::var(name).ok());
    let https = drs_failback::aws::http::client(trust).inspect_err(|error| {
        tracing::error!(error = %error, "the HTTPS client could not be built");
    })?;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await;
    let failback = Arc::new(drs_failback::aws::failback(config, &sdk));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let failback = Arc::clone(&failback);
        async move { failback.invoke(event).await }
    }))
    .await
}
