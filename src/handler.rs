//! One invocation, end to end: request → plan → launch → outcomes → events → answer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::time::{Instant, sleep};
use tracing::{Instrument, field, info, info_span, warn};

use crate::config::Config;
use crate::drs::{Drs, JobRecord};
use crate::error::HandlerError;
use crate::events::run_events;
use crate::launch::{Jitter, LaunchSettings, Launcher};
use crate::outcome::{Answer, DeferReason, EventDelivery, Outcome, RunResult, SKIPPED_NOT_FOUND};
use crate::pacing::Pacer;
use crate::plan::{Chunk, plan_chunks};
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
        async move {
            let deadline = deadline_from(context.deadline());
            self.handle(payload, deadline).await
        }
        .instrument(span)
        .await
    }

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

        let mut result = self.launch(&request, deadline).await?;
        // Outcomes in request order, whatever order the chunks finished in.
        let position: HashMap<&String, usize> = request
            .recovery_instance_ids
            .iter()
            .enumerate()
            .map(|(index, id)| (id, index))
            .collect();
        result
            .outcomes
            .sort_by_key(|(id, _)| position.get(id).copied().unwrap_or(usize::MAX));
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
            skipped = answer.counts.skipped,
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

    fn launch_settings(&self) -> LaunchSettings {
        LaunchSettings {
            max_concurrent: self.config.max_concurrent_launches,
            backoff: self.backoff(),
            throttle_max_retries: self.config.throttle_max_retries,
            call_timeout: self.config.launch_call_timeout,
        }
    }

    async fn launch(
        &self,
        request: &FailbackRequest,
        deadline: Instant,
    ) -> Result<RunResult, HandlerError> {
        let settings = self.launch_settings();
        let launcher = Launcher {
            drs: &self.drs,
            settings: &settings,
            jitter: &*self.jitter,
            stop_at: deadline
                .checked_sub(self.config.deadline_margin)
                .unwrap_or_else(Instant::now),
            run_id: &request.run_id,
            pacer: &Pacer::new(self.config.adaptive_pacing),
        };
        let mut result = RunResult::default();
        let mut ids = request.recovery_instance_ids.clone();
        if !request.source_server_ids.is_empty() {
            match launcher
                .resolve_source_servers(&request.source_server_ids)
                .await
            {
                Ok((resolved, unknown)) => {
                    info!(
                        source_servers = request.source_server_ids.len(),
                        recovery_instances = resolved.len(),
                        unknown = unknown.len(),
                        "source servers resolved"
                    );
                    let mut listed: HashSet<String> = ids.iter().cloned().collect();
                    ids.extend(resolved.into_iter().filter(|id| listed.insert(id.clone())));
                    let not_found = Outcome::Skipped {
                        reason: SKIPPED_NOT_FOUND.into(),
                        job_id: None,
                    };
                    result
                        .outcomes
                        .extend(unknown.into_iter().map(|id| (id, not_found.clone())));
                }
                Err(failure) => {
                    if let Some((kind, message)) = failure.unusable() {
                        return Err(HandlerError::DrsUnusable { kind, message });
                    }
                    warn!(error = %failure, "source servers could not be resolved");
                    let outcome = failure.defer_reason();
                    result.outcomes.extend(
                        request
                            .source_server_ids
                            .iter()
                            .map(|id| (id.clone(), outcome.clone())),
                    );
                }
            }
        }
        let ids = &ids;

        let preflight = launcher.preflight(ids).await.map(|(preflight, active)| {
            let capacity = Capacity::left(&active, &self.config);
            (preflight, capacity)
        });
        let (preflight, mut capacity) = match preflight {
            Ok(found) => found,
            Err(failure) => {
                if let Some((kind, message)) = failure.unusable() {
                    return Err(HandlerError::DrsUnusable { kind, message });
                }
                warn!(error = %failure, "pre-flight read failed: nothing launched");
                let outcome = failure.defer_reason();
                result
                    .outcomes
                    .extend(ids.iter().map(|id| (id.clone(), outcome.clone())));
                return Ok(result);
            }
        };
        info!(
            launchable = preflight.launchable.len(),
            settled = preflight.settled.len(),
            jobs_of_this_run = preflight.existing_jobs.len(),
            servers_in_active_jobs = capacity.servers_in_flight,
            active_jobs = capacity.active_jobs,
            "pre-flight done"
        );
        result.jobs.extend(preflight.existing_jobs);
        result.outcomes.extend(preflight.settled);

        if request.dry_run {
            let chunks = plan_chunks(&preflight.launchable, self.config.max_instances_per_job);
            result.planned_job_sizes = Some(
                chunks
                    .iter()
                    .map(|c| c.recovery_instance_ids.len())
                    .collect(),
            );
            let dry = Outcome::deferred(DeferReason::DryRun, None);
            result
                .outcomes
                .extend(preflight.launchable.into_iter().map(|id| (id, dry.clone())));
            return Ok(result);
        }

        let tags = request.tags.with_run_id(&request.run_id);
        let mut queue: VecDeque<String> = preflight.launchable.into();
        let mut unusable = None;
        let mut next_index = 0;
        loop {
            let chunks = capacity.admit(
                &mut queue,
                self.config.max_instances_per_job,
                &mut next_index,
            );
            if !chunks.is_empty() {
                let report = launcher.launch_all(chunks, &tags).await;
                result.jobs.extend(report.jobs);
                result.outcomes.extend(report.outcomes);
                if report.unusable.is_some() {
                    unusable = report.unusable;
                    break;
                }
                if report.quota_full {
                    capacity.exhaust();
                }
            }
            if queue.is_empty() || !self.config.wait_for_capacity {
                break;
            }
            // Jobs free capacity as they finish; wait for that only while a poll and a launch
            // still fit before the deadline.
            let poll = self.config.capacity_poll_interval;
            if Instant::now() + poll + 2 * settings.call_timeout > launcher.stop_at {
                break;
            }
            info!(
                waiting = queue.len(),
                poll_s = poll.as_secs(),
                "quota full: waiting for jobs to finish"
            );
            sleep(poll).await;
            match launcher.active_jobs().await {
                Ok(active) => capacity = Capacity::left(&active, &self.config),
                Err(failure) => {
                    warn!(error = %failure, "could not read the active jobs; not waiting longer");
                    break;
                }
            }
        }

        let rest = match &unusable {
            Some((_, message)) => Outcome::deferred(DeferReason::Halted, Some(message.clone())),
            None => Outcome::deferred(DeferReason::Quota, Some(capacity.describe(&self.config))),
        };
        if !queue.is_empty() {
            info!(
                instances = queue.len(),
                "deferred: no capacity left in this run"
            );
        }
        result
            .outcomes
            .extend(queue.into_iter().map(|id| (id, rest.clone())));
        if let Some((kind, message)) = unusable
            && result.jobs.is_empty()
        {
            return Err(HandlerError::DrsUnusable { kind, message });
        }
        Ok(result)
    }
}

/// What the DRS quotas leave for this run: servers in active jobs and active jobs.
struct Capacity {
    servers_in_flight: usize,
    active_jobs: usize,
    servers_free: usize,
    jobs_free: usize,
}

impl Capacity {
    fn left(active: &[JobRecord], config: &Config) -> Self {
        let servers_in_flight: usize = active
            .iter()
            .map(|job| job.recovery_instance_ids.len())
            .sum();
        Capacity {
            servers_in_flight,
            active_jobs: active.len(),
            servers_free: config
                .max_servers_in_flight
                .saturating_sub(servers_in_flight),
            jobs_free: config.max_active_jobs.saturating_sub(active.len()),
        }
    }

    /// Takes chunks off the queue while the quotas allow; the last one may be smaller to fit.
    fn admit(
        &mut self,
        queue: &mut VecDeque<String>,
        per_job: usize,
        next_index: &mut usize,
    ) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        while self.jobs_free > 0 && self.servers_free > 0 && !queue.is_empty() {
            let size = per_job.min(self.servers_free).min(queue.len());
            chunks.push(Chunk {
                index: *next_index,
                recovery_instance_ids: queue.drain(..size).collect(),
            });
            *next_index += 1;
            self.jobs_free -= 1;
            self.servers_free -= size;
        }
        chunks
    }

    /// DRS said a quota is full: believe it over our count until the active jobs are read again.
    fn exhaust(&mut self) {
        self.servers_free = 0;
        self.jobs_free = 0;
    }

    fn describe(&self, config: &Config) -> String {
        format!(
            "DRS capacity in use: {} servers in active jobs (MAX_SERVERS_IN_FLIGHT={}), {} active jobs (MAX_ACTIVE_JOBS={})",
            self.servers_in_flight,
            config.max_servers_in_flight,
            self.active_jobs,
            config.max_active_jobs
        )
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
