//! One invocation, end to end: request → plan → launch → outcomes → events → answer.

use std::time::{Duration, SystemTime};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, field, info, info_span};

use crate::config::Config;
use crate::drs::Drs;
use crate::error::HandlerError;
use crate::events::run_events;
use crate::launch::{Jitter, LaunchSettings, Launcher};
use crate::outcome::{Answer, DeferReason, EventDelivery, Outcome, RunResult};
use crate::plan::plan_chunks;
use crate::publish::{EventPublisher, PublishSettings, publish_all};
use crate::request::{FailbackRequest, parse_request};
use crate::retry::Backoff;

/// Kept free at the very end for serialising and returning the answer.
const ANSWER_GUARD: Duration = Duration::from_millis(250);
/// PutEvents normally answers in tens of milliseconds.
const PUBLISH_CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Failback<D, P> {
    pub config: Config,
    pub drs: D,
    pub publisher: P,
    pub jitter: Box<Jitter>,
    pub new_run_id: fn() -> String,
}

pub fn random_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The invocation deadline on the tokio clock (which tests pause and advance).
pub fn deadline_from(lambda_deadline: SystemTime) -> Instant {
    let remaining = lambda_deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + remaining
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    pub fn new(config: Config, drs: D, publisher: P) -> Self {
        Failback {
            config,
            drs,
            publisher,
            jitter: Box::new(fastrand::f64),
            new_run_id: random_run_id,
        }
    }

    /// The Lambda entry point: a span with the request id (and, once known, the run id) wraps
    /// every log line of the invocation.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<Answer, HandlerError> {
        let (payload, context) = event.into_parts();
        let span = info_span!("invocation", requestId = %context.request_id, runId = field::Empty);
        self.handle(payload, deadline_from(context.deadline()))
            .instrument(span)
            .await
    }

    pub async fn handle(&self, payload: Value, deadline: Instant) -> Result<Answer, HandlerError> {
        let request = parse_request(payload, self.config.max_request_instances, self.new_run_id)
            .inspect_err(|error| tracing::warn!(error = %error, "request refused"))?;
        tracing::Span::current().record("runId", request.run_id.as_str());
        info!(
            instances = request.recovery_instance_ids.len(),
            malformed = request.malformed_ids.len(),
            duplicates_collapsed = request.duplicates_collapsed,
            tag_count = request.tags.len(),
            dry_run = request.dry_run,
            "request accepted"
        );

        let mut result = self.launch(&request, deadline).await?;
        result.outcomes.extend(
            request
                .malformed_ids
                .iter()
                .map(|id| (id.clone(), Outcome::malformed_id())),
        );

        let mut answer = result.answer(&request, EventDelivery::default());
        let entries = run_events(&self.config.event_source, &answer);
        let publish_settings = PublishSettings {
            max_attempts: self.config.publish_max_attempts,
            backoff: self.backoff(),
            call_timeout: PUBLISH_CALL_TIMEOUT
                .min(self.config.deadline_margin.saturating_sub(ANSWER_GUARD)),
        };
        let stop_publishing_at = deadline.checked_sub(ANSWER_GUARD).unwrap_or(deadline);
        let report = publish_all(
            &self.publisher,
            entries,
            &publish_settings,
            &*self.jitter,
            stop_publishing_at,
        )
        .await;
        answer.events = EventDelivery {
            published: report.published,
            undelivered: report.undelivered,
        };
        info!(
            launched = answer.counts.launched,
            rejected = answer.counts.rejected,
            deferred = answer.counts.deferred,
            jobs = answer.jobs.len(),
            events_published = report.published,
            events_undelivered = report.undelivered,
            complete = answer.complete,
            "run finished"
        );
        Ok(answer)
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            base: self.config.retry_base_delay,
            cap: self.config.retry_max_delay,
        }
    }

    async fn launch(
        &self,
        request: &FailbackRequest,
        deadline: Instant,
    ) -> Result<RunResult, HandlerError> {
        let chunks = plan_chunks(
            &request.recovery_instance_ids,
            self.config.max_instances_per_job,
        );
        if request.dry_run {
            let sizes = chunks
                .iter()
                .map(|c| c.recovery_instance_ids.len())
                .collect();
            return Ok(RunResult {
                jobs: Vec::new(),
                outcomes: request
                    .recovery_instance_ids
                    .iter()
                    .map(|id| (id.clone(), Outcome::deferred(DeferReason::DryRun, None)))
                    .collect(),
                planned_job_sizes: Some(sizes),
            });
        }
        let settings = LaunchSettings {
            max_concurrent: self.config.max_concurrent_launches,
            backoff: self.backoff(),
            throttle_max_retries: self.config.throttle_max_retries,
            call_timeout: self.config.launch_call_timeout,
        };
        let launcher = Launcher {
            drs: &self.drs,
            settings: &settings,
            jitter: &*self.jitter,
            stop_at: deadline
                .checked_sub(self.config.deadline_margin)
                .unwrap_or_else(Instant::now),
        };
        let report = launcher
            .launch_all(chunks, &request.tags.with_run_id(&request.run_id))
            .await;
        if let Some((kind, message)) = report.unusable
            && report.jobs.is_empty()
        {
            return Err(HandlerError::DrsUnusable { kind, message });
        }
        Ok(RunResult {
            jobs: report.jobs,
            outcomes: report.outcomes,
            planned_job_sizes: None,
        })
    }
}
