//! Structured JSON logs with the keys Powertools for AWS Lambda writes, so operators' tools (Logs
//! Insights queries, dashboards, log shippers) read them as they read any Powertools function:
//! `level`, `message`, `timestamp`, `service`, `function_name`, and — on every line of an
//! invocation — `cold_start`, `function_request_id`, `xray_trace_id` and `correlation_id` (the
//! run id, once the request is parsed). An event's own fields sit beside them. Tag values are
//! never logged.

use std::io::Write;
use std::num::NonZeroU8;
use std::time::SystemTime;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Iso8601;
use time::format_description::well_known::iso8601::{Config, TimePrecision};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The name of the span the handler opens per invocation: its fields are on every line.
pub const INVOCATION_SPAN: &str = "invocation";

/// What an invocation is, for the lines and the metrics written while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    pub request_id: String,
    pub cold_start: bool,
}

tokio::task_local! {
    static INVOCATION: Invocation;
}

/// Runs `work` as `invocation`: [`current_request_id`] and [`current_cold_start`] answer for it.
pub async fn in_invocation<F: std::future::Future>(invocation: Invocation, work: F) -> F::Output {
    INVOCATION.scope(invocation, work).await
}

pub fn current_request_id() -> Option<String> {
    INVOCATION.try_with(|i| i.request_id.clone()).ok()
}

pub fn current_cold_start() -> bool {
    INVOCATION.try_with(|i| i.cold_start).unwrap_or(false)
}

/// The level from `POWERTOOLS_LOG_LEVEL` (the template's LogLevel), else `RUST_LOG`, else
/// `AWS_LAMBDA_LOG_LEVEL`, else info. The template keeps Lambda's own filter at TRACE: Lambda
/// reads a line without a `level` — every metrics record — as INFO, and would drop the records
/// below WARN.
pub fn filter_from_env() -> EnvFilter {
    let level = std::env::var("POWERTOOLS_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase()
        .replace("fatal", "error");
    EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// One JSON object per line, with the Powertools keys; `service` from `POWERTOOLS_SERVICE_NAME`
/// (default `drs-failback`), `function_name` from `AWS_LAMBDA_FUNCTION_NAME` when Lambda sets it.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let service = std::env::var("POWERTOOLS_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "drs-failback".to_owned());
    tracing_subscriber::registry().with(filter).with(JsonLines {
        writer,
        service,
        function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
    })
}

pub fn init() {
    // Fails only if a subscriber is already set, in which case logs already go somewhere.
    let _ = tracing::subscriber::set_global_default(json_subscriber(
        filter_from_env(),
        std::io::stdout,
    ));
}

struct JsonLines<W> {
    writer: W,
    service: String,
    function_name: Option<String>,
}

/// A span's fields, kept with the span.
struct SpanFields(Map<String, Value>);

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Fields(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        line.insert(
            "timestamp".into(),
            Value::from(rfc3339_millis(SystemTime::now())),
        );
        line.insert("service".into(), Value::from(self.service.as_str()));
        if let Some(name) = &self.function_name {
            line.insert("function_name".into(), Value::from(name.as_str()));
        }
        // The invocation's own span only: the Lambda runtime opens one of its own, whose
        // requestId / xrayTraceId would repeat the Powertools keys under other names.
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root().filter(|s| s.name() == INVOCATION_SPAN) {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.0.clone());
                }
            }
        }
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or(Value::from(""));
        line.insert("message".into(), message);
        for (key, value) in fields {
            line.entry(key).or_insert(value);
        }
        if let Ok(mut text) = serde_json::to_string(&line) {
            text.push('\n');
            let _ = self.writer.make_writer().write_all(text.as_bytes());
        }
    }
}

/// `2026-11-30T13:00:00.123Z`, as Powertools writes `timestamp`.
pub fn rfc3339_millis(at: SystemTime) -> String {
    // ISO 8601 with exactly three decimals and `Z` is the RFC 3339 form Powertools writes.
    const MILLIS: u128 = Config::DEFAULT
        .set_time_precision(TimePrecision::Second {
            decimal_digits: NonZeroU8::new(3),
        })
        .encode();
    OffsetDateTime::from(at)
        .format(&Iso8601::<MILLIS>)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = |ms: u64| rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_764_507_600_123), "2025-11-30T13:00:00.123Z");
        assert_eq!(at(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }
}
