//! The Lambda adapter: the envelope, the deadline, the invocation's log span, and errors as
//! Lambda diagnostics. The run itself is [`crate::run`].

use std::time::{Duration, SystemTime};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, field, info, info_span, warn};

use serde::Serialize;

use crate::drs::Drs;
use crate::error::HandlerError;
use crate::logging::{Invocation, in_invocation};
use crate::measure::Measured;
use crate::metrics::CallStats;
use crate::outcome::Answer;
use crate::publish::EventPublisher;
use crate::request::{Action, RequestError, parse_action};
use crate::run::Failback;
use crate::steps::PlanAnswer;
use crate::track::TrackAnswer;

/// What an invocation answers: a launch's answer or a tracking call's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Launch(Answer),
    Track(TrackAnswer),
    Plan(PlanAnswer),
}

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

    /// One payload, in either envelope and for any action, to its answer before `deadline`; the
    /// invocation's metrics record is written whatever it came to.
    pub async fn dispatch(&self, payload: Value, deadline: Instant) -> Result<Reply, HandlerError> {
        let started = Instant::now();
        let stats = CallStats::default();
        let action = match parse_action(payload, self.config.max_request_instances, self.new_run_id)
        {
            Ok(action) => action,
            Err(error) => {
                tracing::warn!(error = %error, "request refused");
                let error = HandlerError::from(error);
                self.measure(Measured::Failed(error.error_type()), None, &stats, started);
                return Err(error);
            }
        };
        tracing::Span::current().record("correlation_id", action.run_id());
        let run = Some((action.run_id(), action.step()));
        // Boxed: the runs' futures are deep enough to overflow the compiler's type-layout
        // recursion limit in crates that nest them further (the local run, the tests).
        let reply = match &action {
            Action::Launch(request) => {
                info!(
                    instances = request.recovery_instance_ids.len(),
                    source_servers = request.source_server_ids.len(),
                    malformed = request.malformed_ids.len(),
                    duplicates_collapsed = request.duplicates_collapsed,
                    tag_count = request.tags.len(),
                    dry_run = request.dry_run,
                    "request accepted"
                );
                Box::pin(self.run(request, deadline, &stats))
                    .await
                    .map(Reply::Launch)
            }
            Action::Track(request) => {
                info!(
                    jobs = request.job_ids.len(),
                    reported = request.reported_job_ids.len(),
                    final_call = request.final_call,
                    "track request accepted"
                );
                Box::pin(self.track(request, deadline, &stats))
                    .await
                    .map(Reply::Track)
            }
            Action::Plan(request) => {
                info!(
                    steps = request.steps.len(),
                    plain = request.plain,
                    dry_run = request.dry_run,
                    tag_count = request.tags.len(),
                    "plan request accepted"
                );
                Box::pin(self.plan(request, deadline, &stats))
                    .await
                    .map(Reply::Plan)
            }
        };
        let measured = match (&reply, &action) {
            (Ok(Reply::Launch(answer)), _) => Measured::Launch(answer),
            (Ok(Reply::Track(answer)), Action::Track(request)) => Measured::Track(request, answer),
            (Ok(_), _) => Measured::Plan,
            (Err(error), _) => Measured::Failed(error.error_type()),
        };
        self.measure(measured, run, &stats, started);
        reply
    }

    /// A launch request's answer (a track request is refused).
    pub async fn handle(&self, payload: Value, deadline: Instant) -> Result<Answer, HandlerError> {
        match self.dispatch(payload, deadline).await? {
            Reply::Launch(answer) => Ok(answer),
            Reply::Track(_) | Reply::Plan(_) => Err(RequestError::NotALaunch.into()),
        }
    }

    /// A track request's answer (a launch request is refused).
    pub async fn handle_track(
        &self,
        payload: Value,
        deadline: Instant,
    ) -> Result<TrackAnswer, HandlerError> {
        match self.dispatch(payload, deadline).await? {
            Reply::Track(answer) => Ok(answer),
            Reply::Launch(_) | Reply::Plan(_) => Err(RequestError::NotATrack.into()),
        }
    }

    /// A plan request's answer (any other is refused).
    pub async fn handle_plan(
        &self,
        payload: Value,
        deadline: Instant,
    ) -> Result<PlanAnswer, HandlerError> {
        match self.dispatch(payload, deadline).await? {
            Reply::Plan(answer) => Ok(answer),
            Reply::Launch(_) | Reply::Track(_) => Err(RequestError::NotAPlan.into()),
        }
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
