//! What each invocation measures, and its one metrics record, written whatever the invocation
//! came to: a launch round's instances launched, skipped and rejected (additive over rounds); a
//! run's (or step's) last tracking call's whole account — requested, deferred by reason, the
//! results, whether the step halted, how long the run took since its first job; every
//! invocation's DRS calls, duration, error and cold start.

use std::time::SystemTime;

use tokio::time::Instant;

use crate::drs::Drs;
use crate::metrics::{CallStats, MetricSet, Unit, deferred_metric};
use crate::outcome::Answer;
use crate::publish::EventPublisher;
use crate::request::TrackRequest;
use crate::run::Failback;
use crate::track::TrackAnswer;

/// What an invocation came to, for its record.
pub(crate) enum Measured<'a> {
    Launch(&'a Answer),
    Track(&'a TrackRequest, &'a TrackAnswer),
    /// A plan checked (or dry-run): its DRS calls only.
    Plan,
    /// The invocation ended with this error (`errorType`).
    Failed(&'static str),
}

impl<D: Drs, P: EventPublisher> Failback<D, P> {
    /// Writes the invocation's EMF record.
    pub(crate) fn measure(
        &self,
        what: Measured<'_>,
        run: Option<(&str, Option<&str>)>,
        stats: &CallStats,
        started: Instant,
    ) {
        let step = run.and_then(|(_, step)| step.map(str::to_owned));
        let mut set = MetricSet::new(step);
        match what {
            Measured::Launch(answer) => launch_metrics(&mut set, answer),
            Measured::Track(request, answer) => track_metrics(&mut set, request, answer),
            Measured::Plan => {}
            Measured::Failed(error) => {
                set.count("InvocationErrors", 1);
                set.property("error", serde_json::json!(error));
            }
        }
        stats.add_to(&mut set);
        set.add(
            "InvocationDuration",
            Unit::Seconds,
            started.elapsed().as_secs_f64(),
        );
        if let Some((run_id, _)) = run {
            set.property("correlation_id", serde_json::json!(run_id));
        }
        if let Some(request_id) = crate::logging::current_request_id() {
            set.property("function_request_id", serde_json::json!(request_id));
        }
        if crate::logging::current_cold_start() {
            set.count("ColdStart", 1);
        }
        (self.emit)(&set.record(&self.metrics, SystemTime::now()).to_string());
    }
}

/// A launch round: what it settled. Deferred instances are sent again by the next round, so
/// they (and the requested total) are counted once per run, by its last tracking call. A dry run
/// settles nothing.
fn launch_metrics(set: &mut MetricSet, answer: &Answer) {
    if answer.dry_run {
        return;
    }
    set.count("InstancesLaunched", answer.counts.launched);
    set.count("InstancesSkipped", answer.counts.skipped);
    set.count("InstancesRejected", answer.counts.rejected);
}

/// A run's (or step's) last tracking call: every instance of it once — its result, or why it
/// was never launched — and whether the step halted the plan. Other tracking calls count only
/// their DRS calls.
fn track_metrics(set: &mut MetricSet, request: &TrackRequest, answer: &TrackAnswer) {
    let Some(finished) = answer.finished else {
        return;
    };
    let tracked = finished.succeeded + finished.failed + finished.running;
    set.count("InstancesRequested", tracked + finished.not_launched);
    set.count("InstancesSucceeded", finished.succeeded);
    set.count("InstancesFailed", finished.failed);
    set.count("InstancesStillRunning", finished.running);
    let deferred: Vec<_> = request
        .not_launched
        .groups
        .iter()
        .filter(|g| g.outcome == "deferred")
        .collect();
    set.count(
        "InstancesDeferred",
        deferred.iter().map(|g| g.ids.len()).sum(),
    );
    for group in deferred {
        if let Some(name) = deferred_metric(&group.reason) {
            set.count(name, group.ids.len());
        }
    }
    if let Some(verdict) = &answer.verdict {
        set.count("StepsHalted", usize::from(verdict.halt));
    }
    if let Some(took) = answer.since_first_job {
        set.add("RunDuration", Unit::Seconds, took.as_secs_f64());
    }
}
