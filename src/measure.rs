//! What each invocation measures, and its metrics record written: a launch round's instances by
//! outcome, a tracking call's results and the run's (or step's) duration from its first job to
//! its last call, the DRS calls of both, how long the invocation took, and whether the process
//! was cold.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::drs::Drs;
use crate::metrics::{CallStats, MetricSet, Unit, deferred_metric};
use crate::outcome::{Answer, OutcomeKind};
use crate::publish::EventPublisher;
use crate::request::TrackRequest;
use crate::run::Failback;
use crate::track::TrackAnswer;

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    /// A launch round's record.
    pub(crate) fn measure_launch(&self, answer: &Answer, stats: &CallStats, started: Instant) {
        self.emit_metrics(launch_metrics(answer, stats), &answer.run_id, started);
    }

    /// A tracking call's record.
    pub(crate) fn measure_track(
        &self,
        request: &TrackRequest,
        answer: &TrackAnswer,
        stats: &CallStats,
        started: Instant,
        since_first_job: Option<Duration>,
    ) {
        let mut set = track_metrics(request, answer, stats);
        if let (true, Some(took)) = (request.final_call, since_first_job) {
            set.add("RunDuration", Unit::Seconds, took.as_secs_f64());
        }
        self.emit_metrics(set, &request.run_id, started);
    }

    /// Writes the invocation's EMF record.
    fn emit_metrics(&self, mut set: MetricSet, run_id: &str, started: Instant) {
        set.add(
            "InvocationDuration",
            Unit::Seconds,
            started.elapsed().as_secs_f64(),
        );
        set.property("correlation_id", serde_json::json!(run_id));
        if let Some(request_id) = crate::logging::current_request_id() {
            set.property("function_request_id", serde_json::json!(request_id));
        }
        if crate::logging::current_cold_start() {
            set.count("ColdStart", 1);
        }
        (self.emit)(&set.record(&self.metrics, SystemTime::now()).to_string());
    }
}

/// A launch invocation's metrics: its instances by outcome (deferred ones also by reason) and its
/// DRS calls.
fn launch_metrics(answer: &Answer, stats: &CallStats) -> MetricSet {
    let mut set = MetricSet::new(answer.step.clone());
    let counts = answer.counts;
    set.count("InstancesRequested", answer.requested);
    set.count("InstancesLaunched", counts.launched);
    set.count("InstancesSkipped", counts.skipped);
    set.count("InstancesRejected", counts.rejected);
    set.count("InstancesDeferred", counts.deferred);
    for group in &answer.not_launched {
        if group.outcome == OutcomeKind::Deferred
            && let Some(name) = deferred_metric(&group.reason)
        {
            set.count(name, group.recovery_instance_ids.len());
        }
    }
    stats.add_to(&mut set);
    set
}

/// A tracking call's metrics: its DRS calls; on the run's (or step's) last call, the results —
/// counted once, there, so they add up per run — and whether the step halted the plan.
fn track_metrics(request: &TrackRequest, answer: &TrackAnswer, stats: &CallStats) -> MetricSet {
    let mut set = MetricSet::new(request.step.clone());
    if let Some(finished) = answer.finished {
        set.count("InstancesSucceeded", finished.succeeded);
        set.count("InstancesFailed", finished.failed);
        set.count("InstancesStillRunning", finished.running);
    }
    if let Some(verdict) = &answer.verdict {
        set.count("StepsHalted", usize::from(verdict.halt));
    }
    stats.add_to(&mut set);
    set
}
