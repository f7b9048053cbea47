//! Structured JSON logs. Every line of an invocation carries the Lambda request id and, once the
//! request is parsed, the run id (fields of the invocation span). Tag values are never logged.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The level from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's advanced logging controls), else
/// `RUST_LOG`, else info.
pub fn filter_from_env() -> EnvFilter {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase()
        .replace("fatal", "error");
    EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// One JSON object per line: event fields at the top level, the invocation span's fields
/// (`requestId`, `runId`) under `span`.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
}

pub fn init() {
    // Fails only if a subscriber is already set, in which case logs already go somewhere.
    let _ = tracing::subscriber::set_global_default(json_subscriber(
        filter_from_env(),
        std::io::stdout,
    ));
}
