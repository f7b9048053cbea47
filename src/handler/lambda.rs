//! The Lambda entry point: the invocation's context, its deadline on the tokio clock, and the log
//! span every line of the invocation is written in.

use std::time::{Duration, SystemTime};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, field, info_span, warn};

use super::{Failback, Reply};
use crate::drs::Drs;
use crate::error::HandlerError;
use crate::events::EventPublisher;
use crate::telemetry::logging::{Invocation, in_invocation};

/// Lambda's longest timeout: the budget when the runtime hands over no real deadline.
const LAMBDA_MAX_TIMEOUT: Duration = Duration::from_secs(900);
/// A deadline this far in the past is a placeholder, not a deadline: `cargo lambda watch` sends
/// a constant 600000 ms since 1970. Lambda itself never hands over one from the past.
const PLACEHOLDER_DEADLINE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The invocation deadline on the tokio clock (which tests pause and advance).
pub fn deadline_from(lambda_deadline: SystemTime) -> Instant {
    let remaining = match lambda_deadline.duration_since(SystemTime::now()) {
        Ok(remaining) => remaining,
        Err(past) if past.duration() > PLACEHOLDER_DEADLINE_AGE => {
            warn!(
                deadline_ms = lambda_deadline
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                budget_s = LAMBDA_MAX_TIMEOUT.as_secs(),
                "the runtime's deadline is a placeholder from the past; using Lambda's longest timeout"
            );
            LAMBDA_MAX_TIMEOUT
        }
        Err(_) => Duration::ZERO,
    };
    Instant::now() + remaining
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    /// The Lambda entry point: a span with the request id (and, once known, the run id) wraps
    /// every log line of the invocation.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Reply, HandlerError> {
        let (payload, context) = event.into_parts();
        let cold_start = self.cold_start();
        // The Powertools keys every line of the invocation carries (`correlation_id`, the run id,
        // once the request is parsed).
        let span = info_span!(
            "invocation",
            cold_start,
            function_request_id = %context.request_id,
            xray_trace_id = field::Empty,
            correlation_id = field::Empty,
        );
        if let Some(trace) = &context.xray_trace_id {
            span.record("xray_trace_id", trace.as_str());
        }
        let invocation = Invocation {
            request_id: context.request_id.clone(),
            cold_start,
        };
        let work = async move {
            let deadline = deadline_from(context.deadline());
            self.dispatch(payload, deadline).await
        };
        in_invocation(invocation, work.instrument(span)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_placeholder_deadline_gets_lambdas_longest_timeout() {
        let now = Instant::now();
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        let remaining = deadline_from(in_a_minute) - now;
        assert!(remaining <= Duration::from_secs(60) && remaining > Duration::from_secs(59));
        let just_passed = SystemTime::now() - Duration::from_secs(2);
        assert_eq!(
            deadline_from(just_passed),
            now,
            "a deadline just missed leaves no time"
        );
        let cargo_lambda_watch = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(deadline_from(cargo_lambda_watch) - now, LAMBDA_MAX_TIMEOUT);
    }
}
