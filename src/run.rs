//! One run, apart from Lambda: source servers resolved → pre-flight → plan → launch (waiting for
//! capacity when asked) → one outcome per instance → events → the answer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep};
use tracing::{info, warn};

use crate::config::Config;
use crate::deadline::{AnswerTimes, Budget};
use crate::drs::Drs;
use crate::error::HandlerError;
use crate::events::run_events;
use crate::launch::Launcher;
use crate::metrics::{CallStats, MetricsTarget};
use crate::outcome::{Answer, DeferReason, EventDelivery, Outcome, RunResult};
use crate::pacing::Pacer;
use crate::plan::Capacity;
use crate::preflight::{RunScope, preflight, resolve_ids};
use crate::publish::{EventEntry, EventPublisher, PublishReport, PublishSettings, publish_all};
use crate::reads::DrsReads;
use crate::reconcile::Looker;
use crate::request::FailbackRequest;
use crate::retry::{Jitter, RetryPolicy};

/// Kept free at the very end for serialising and returning the answer.
const ANSWER_GUARD: Duration = Duration::from_millis(250);
/// PutEvents normally answers in tens of milliseconds.
const PUBLISH_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// This run's jobs are looked for among those created since this long before the invocation
/// started: room for clock skew, and for a concurrent delivery of the same request that started
/// a little earlier.
const LOOKBACK: Duration = Duration::from_secs(15 * 60);

/// The function: its settings and the two things it talks to.
pub struct Failback<D, P> {
    pub config: Config,
    pub drs: D,
    pub publisher: P,
    pub jitter: Box<Jitter>,
    pub new_run_id: fn() -> String,
    /// Where the metrics go (EMF) and what writes each record's line: stdout, the log stream.
    pub metrics: MetricsTarget,
    pub emit: Box<dyn Fn(&str) + Send + Sync>,
    /// No invocation has run in this process yet: the next one is a cold start.
    pub cold: AtomicBool,
}

pub fn random_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    pub fn new(config: Config, drs: D, publisher: P) -> Self {
        Failback {
            config,
            drs,
            publisher,
            jitter: Box::new(fastrand::f64),
            new_run_id: random_run_id,
            metrics: MetricsTarget::from_lookup(|name| std::env::var(name).ok()),
            emit: Box::new(|line| println!("{line}")),
            cold: AtomicBool::new(true),
        }
    }

    /// The DRS reads of one invocation: its budget ends the deadline margin before `deadline`.
    pub(crate) fn reads<'a>(
        &'a self,
        policy: &'a RetryPolicy,
        deadline: Instant,
        stats: &'a CallStats,
    ) -> DrsReads<'a, D> {
        DrsReads {
            drs: &self.drs,
            policy,
            jitter: &*self.jitter,
            budget: Budget::new(
                deadline
                    .checked_sub(self.config.deadline_margin)
                    .unwrap_or_else(Instant::now),
                self.config.launch_call_timeout,
            ),
            max_concurrent: self.config.max_concurrent_launches,
            active_job_window: self.config.active_job_window,
            stats,
        }
    }

    /// Whether this invocation is the process's first (read once per invocation).
    pub fn cold_start(&self) -> bool {
        self.cold.swap(false, Ordering::Relaxed)
    }

    /// Runs a parsed request to its answer, publishing the events on the way out.
    pub async fn run(
        &self,
        request: &FailbackRequest,
        deadline: Instant,
        stats: &CallStats,
    ) -> Result<Answer, HandlerError> {
        let mut answer = self.launch_answer(request, deadline, stats).await?;
        let entries = run_events(&self.config.event_source, &answer);
        let report = self.publish(entries, deadline).await;
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

    /// The answer to a request, before any event is published (a plan's dry run publishes none).
    pub(crate) async fn launch_answer(
        &self,
        request: &FailbackRequest,
        deadline: Instant,
        stats: &CallStats,
    ) -> Result<Answer, HandlerError> {
        let mut result = self.launch_stage(request, deadline, stats).await?;
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

        Ok(result.answer(request, EventDelivery::default()))
    }

    /// Every requested instance to an outcome, and the jobs made.
    async fn launch_stage(
        &self,
        request: &FailbackRequest,
        deadline: Instant,
        stats: &CallStats,
    ) -> Result<RunResult, HandlerError> {
        let policy = RetryPolicy::from_config(&self.config);
        let reads = self.reads(&policy, deadline, stats);
        let budget = reads.budget;
        let mut result = RunResult::default();
        let (ids, selected) = resolve_ids(
            &reads,
            request,
            &mut result,
            self.config.max_request_instances,
        )
        .await?;
        let scope = RunScope {
            run_id: &request.run_id,
            step: request.step.as_deref(),
            selected: &selected,
        };
        let (preflight, active) = match preflight(&reads, &ids, &scope).await {
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
        let mut capacity = Capacity::left(&active, &self.config);
        info!(
            launchable = preflight.launchable.len(),
            settled = preflight.settled.len(),
            jobs_of_this_run = preflight.existing_jobs.len(),
            of_other_steps = preflight.other_steps,
            servers_in_active_jobs = capacity.servers_in_flight,
            active_jobs = capacity.active_jobs,
            "pre-flight done"
        );
        for job in preflight.existing_jobs {
            result.add_job(job);
        }
        result.outcomes.extend(preflight.settled);
        let mut queue: VecDeque<String> = preflight.launchable.into();
        let per_job = AtomicUsize::new(self.config.max_instances_per_job);

        if request.dry_run {
            // The same planner as a real run: what would start now, within the quotas.
            let size = per_job.load(Ordering::Relaxed);
            let planned = capacity.admit(&mut queue.clone(), size, &mut 0);
            result.planned_job_sizes = Some(
                planned
                    .iter()
                    .map(|c| c.recovery_instance_ids.len())
                    .collect(),
            );
            let dry = Outcome::deferred(DeferReason::DryRun, None);
            result
                .outcomes
                .extend(queue.into_iter().map(|id| (id, dry.clone())));
            return Ok(result);
        }

        let looker = Looker {
            reads: &reads,
            run_id: &request.run_id,
            sources: &preflight.sources,
            since: budget.wall_now() - LOOKBACK,
            window: self.config.settle_window,
        };
        let launcher = Launcher {
            drs: &self.drs,
            looker: &looker,
            policy: &policy,
            jitter: &*self.jitter,
            pacer: &Pacer::new(self.config.adaptive_pacing),
            answers: &AnswerTimes::default(),
            max_concurrent: self.config.max_concurrent_launches,
            per_job: &per_job,
        };
        let tags = request
            .tags
            .with_run_id(&request.run_id)
            .with_step(request.step.as_deref());
        let mut halted: Option<Outcome> = None;
        let mut unusable = None;
        let mut refused_request = None;
        let mut next_index = 0;
        loop {
            let size = per_job.load(Ordering::Relaxed);
            let chunks = capacity.admit(&mut queue, size, &mut next_index);
            if !chunks.is_empty() {
                let report = launcher.launch_all(chunks, &tags).await;
                for job in report.jobs {
                    result.add_job(job);
                }
                result.outcomes.extend(report.outcomes);
                if report.unusable.is_some() || report.refused_request.is_some() {
                    halted = report.halted;
                    unusable = report.unusable;
                    refused_request = report.refused_request;
                    break;
                }
                if report.quota_full {
                    capacity.exhaust();
                }
            }
            if queue.is_empty() || !self.config.wait_for_capacity {
                break;
            }
            match self.wait_for_capacity(&reads, queue.len()).await {
                Some(left) => capacity = left,
                None => break,
            }
        }

        let rest = halted.unwrap_or_else(|| {
            Outcome::deferred(DeferReason::Quota, Some(capacity.describe(&self.config)))
        });
        if !queue.is_empty() {
            info!(
                instances = queue.len(),
                "deferred: no capacity left in this run"
            );
        }
        result
            .outcomes
            .extend(queue.into_iter().map(|id| (id, rest.clone())));
        if result.jobs.is_empty() {
            if let Some((kind, message)) = unusable {
                return Err(HandlerError::DrsUnusable { kind, message });
            }
            if let Some((field, message)) = refused_request {
                return Err(HandlerError::RefusedByDrs { field, message });
            }
        }
        Ok(result)
    }

    /// Jobs free capacity as they finish: wait one poll and read the active jobs again, only
    /// while a poll and a launch still fit before the deadline. `None` when not waiting longer.
    async fn wait_for_capacity(&self, reads: &DrsReads<'_, D>, waiting: usize) -> Option<Capacity> {
        let poll = self.config.capacity_poll_interval;
        if !reads.budget.fits(poll, 2) {
            return None;
        }
        info!(
            waiting,
            poll_s = poll.as_secs(),
            "quota full: waiting for jobs to finish"
        );
        sleep(poll).await;
        match reads.active_jobs().await {
            Ok(active) => Some(Capacity::left(&active, &self.config)),
            Err(failure) => {
                warn!(error = %failure, "could not read the active jobs; not waiting longer");
                None
            }
        }
    }
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    /// Publishes `entries` with the configured resends, leaving the answer its guard before
    /// `deadline`.
    pub(crate) async fn publish(
        &self,
        entries: Vec<EventEntry>,
        deadline: Instant,
    ) -> PublishReport {
        let policy = RetryPolicy::from_config(&self.config);
        let settings = PublishSettings {
            max_attempts: policy.publish_max_attempts,
            backoff: policy.backoff,
            call_timeout: PUBLISH_CALL_TIMEOUT
                .min(self.config.deadline_margin.saturating_sub(ANSWER_GUARD)),
        };
        let stop_at = deadline.checked_sub(ANSWER_GUARD).unwrap_or(deadline);
        publish_all(&self.publisher, entries, &settings, &*self.jitter, stop_at).await
    }
}
