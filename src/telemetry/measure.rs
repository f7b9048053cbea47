//! What each invocation measures, and its one metrics record, written whatever the invocation
//! came to: a launch round's instances launched, skipped and rejected (additive over rounds) and
//! those waiting for readiness with the bytes they have left (as read that round); a
//! run's (or step's) last tracking call's whole account — requested, deferred by reason, the
//! results, whether the step halted, how long the run took since its first job; every
//! invocation's DRS calls, duration, error and cold start.

use crate::drs::Target;
use std::time::SystemTime;

use strum::IntoEnumIterator;
use tokio::time::Instant;

use super::logging::{current_cold_start, current_request_id};
use super::metrics::{MetricSet, MetricsTarget, Unit};
use crate::drs::stats::CallStats;
use crate::launch::answer::LaunchAnswer;
use crate::launch::outcome::{DeferReason, OutcomeKind};
use crate::request::{NotLaunchedAs, TrackRequest};
use crate::track::answer::TrackAnswer;
use crate::track::results::ResultKind;

/// Every metric the function writes: what the template's alarms and dashboard may read
/// (`tests/template.rs`). The per-kind names come from the kinds themselves, so a new kind of
/// outcome, result or deferral cannot go without its metric.
pub fn metric_names() -> Vec<&'static str> {
    let mut names = vec!["InstancesRequested"];
    names.extend(OutcomeKind::iter().map(OutcomeKind::metric));
    names.extend(DeferReason::iter().map(DeferReason::metric));
    names.extend(ResultKind::iter().map(ResultKind::metric));
    names.extend([
        "InstancesWaiting",
        "ReplicationBytesLeft",
        "StepsHalted",
        "RunDuration",
        "ThrottledCalls",
        "WastedCalls",
        "EventsNotPublished",
        "LaunchLatency",
        "InvocationDuration",
        "InvocationErrors",
        "ColdStart",
    ]);
    names
}

/// What an invocation came to, for its record.
pub enum Measured<'a> {
    Launch(&'a LaunchAnswer),
    Track(&'a TrackRequest, &'a TrackAnswer),
    /// A plan checked (or dry-run): its DRS calls only.
    Plan,
    /// The invocation ended with this error (`errorType`).
    Failed(&'static str),
}

/// The invocation's EMF record, as the one line to write.
pub fn record(
    target: &MetricsTarget,
    what: Measured<'_>,
    run: Option<(&str, Option<&str>)>,
    place: Option<&Target>,
    stats: &CallStats,
    started: Instant,
) -> String {
    let step = run.and_then(|(_, step)| step.map(str::to_owned));
    let mut set = MetricSet::new(step);
    set.target = place.map(ToString::to_string);
    match what {
        Measured::Launch(answer) => launch_metrics(&mut set, answer),
        Measured::Track(request, answer) => track_metrics(&mut set, request, answer),
        Measured::Plan => {}
        Measured::Failed(error) => {
            set.count("InvocationErrors", 1);
            set.property("error", serde_json::json!(error));
        }
    }
    calls(&mut set, stats);
    set.add(
        "InvocationDuration",
        Unit::Seconds,
        started.elapsed().as_secs_f64(),
    );
    if let Some((run_id, _)) = run {
        set.property("correlation_id", serde_json::json!(run_id));
    }
    if let Some(request_id) = current_request_id() {
        set.property("function_request_id", serde_json::json!(request_id));
    }
    if current_cold_start() {
        set.count("ColdStart", 1);
    }
    set.record(target, SystemTime::now()).to_string()
}

/// The invocation's calls: DRS calls throttled, wasted, how long each launch took; events never
/// published.
fn calls(set: &mut MetricSet, stats: &CallStats) {
    set.count("ThrottledCalls", stats.throttled() as usize);
    set.count("WastedCalls", stats.wasted() as usize);
    set.count("EventsNotPublished", stats.events_undelivered() as usize);
    for latency in stats.launch_latencies_ms() {
        set.add("LaunchLatency", Unit::Milliseconds, latency);
    }
}

/// A launch round: what it settled. Deferred instances are sent again by the next round, so
/// they (and the requested total) are counted once per run, by its last tracking call. A dry run
/// settles nothing.
fn launch_metrics(set: &mut MetricSet, answer: &LaunchAnswer) {
    if answer.dry_run {
        return;
    }
    let counts = &answer.counts;
    set.count(OutcomeKind::Launched.metric(), counts.launched);
    set.count(OutcomeKind::Skipped.metric(), counts.skipped);
    set.count(OutcomeKind::Rejected.metric(), counts.rejected);
    // A gauge, not a tally: each round reads every waiting instance again (its Maximum over a
    // period is how many waited; Minimum of the bytes, how close the last of them is).
    if let Some(waiting) = &answer.waiting {
        set.count("InstancesWaiting", waiting.instances);
        set.add(
            "ReplicationBytesLeft",
            Unit::Bytes,
            waiting.bytes_left as f64,
        );
    }
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
    set.count(ResultKind::Succeeded.metric(), finished.succeeded);
    set.count(ResultKind::Failed.metric(), finished.failed);
    set.count(ResultKind::Running.metric(), finished.running);
    let deferred: Vec<_> = request
        .not_launched
        .groups
        .iter()
        .filter(|g| g.outcome == NotLaunchedAs::Deferred)
        .collect();
    set.count(
        OutcomeKind::Deferred.metric(),
        deferred.iter().map(|g| g.ids.len()).sum(),
    );
    for group in deferred {
        if let Some(reason) = DeferReason::from_name(&group.reason) {
            set.count(reason.metric(), group.ids.len());
        }
    }
    if let Some(verdict) = &answer.verdict {
        set.count("StepsHalted", usize::from(verdict.halt));
    }
    if let Some(took) = answer.since_first_job {
        set.add("RunDuration", Unit::Seconds, took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn values_past_the_emf_limit_are_dropped() {
        let stats = CallStats::default();
        for _ in 0..150 {
            stats.launch(Duration::from_millis(5), false, true);
        }
        let mut set = MetricSet::new(None);
        calls(&mut set, &stats);
        let record = set.record(
            &MetricsTarget::from_lookup(|_| None),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(
            record["LaunchLatency"].as_array().unwrap().len(),
            super::super::metrics::MAX_VALUES
        );
        assert_eq!(record["ThrottledCalls"], 150.0);
        assert_eq!(record["WastedCalls"], 150.0);
    }

    #[test]
    fn every_kind_has_its_own_metric() {
        let names = metric_names();
        let distinct: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names.contains(&"InstancesDeferredDryRun"));
        assert!(names.contains(&"InstancesStillRunning"));
    }
}
