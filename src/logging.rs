//! Structured JSON logs. Every line carries the Lambda request id and the run id (fields of the
//! invocation span); tag values are never logged.

use tracing_subscriber::EnvFilter;

/// `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced logging controls) wins over `RUST_LOG`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase()
        .replace("fatal", "error");
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .init();
}
