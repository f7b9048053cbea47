//! The Lambda adapter: the envelope, the deadline, the invocation's log span, and errors as
//! Lambda diagnostics. The run itself is [`crate::run`].

use std::time::{Duration, SystemTime};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, field, info, info_span, warn};

use crate::drs::Drs;
use crate::error::HandlerError;
use crate::outcome::Answer;
use crate::publish::EventPublisher;
use crate::request::parse_request;
use crate::run::Failback;

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
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Answer, HandlerError> {
        let (payload, context) = event.into_parts();
        let span = info_span!("invocation", requestId = %context.request_id, runId = field::Empty);
        async move {
            let deadline = deadline_from(context.deadline());
            self.handle(payload, deadline).await
        }
        .instrument(span)
        .await
    }

    /// One payload, in either envelope, to its answer before `deadline`.
    pub async fn handle(&self, payload: Value, deadline: Instant) -> Result<Answer, HandlerError> {
        let request = parse_request(payload, self.config.max_request_instances, self.new_run_id)
            .inspect_err(|error| tracing::warn!(error = %error, "request refused"))?;
        tracing::Span::current().record("runId", request.run_id.as_str());
        info!(
            instances = request.recovery_instance_ids.len(),
            source_servers = request.source_server_ids.len(),
            malformed = request.malformed_ids.len(),
            duplicates_collapsed = request.duplicates_collapsed,
            tag_count = request.tags.len(),
            dry_run = request.dry_run,
            "request accepted"
        );
        self.run(&request, deadline).await
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
