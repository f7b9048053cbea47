//! What the figures show about why a target is missed, stated only when the figures show it.

use std::fmt::Write;
use std::time::Duration;

use super::{RATIO_TARGET, WASTED_TARGET, runs_of};
use crate::report::*;
use crate::workload::{
    BURST, CONCURRENCY, LATENCY, OPERATIONS, Profile, RATE_PER_SECOND, Run, Variant,
};

pub(crate) fn causes(report: &Report) -> Vec<String> {
    let paced = runs_of(&report.runs, Profile::Throttling, Variant::Project);
    [
        reads_one_at_a_time(&paced),
        pacing_below_rate(report, &paced),
        first_round(&paced),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Reads sent one after another before the first launch, where the ideal overlaps them.
fn reads_one_at_a_time(paced: &[&Run]) -> Option<String> {
    let ratio_missed = paced.iter().any(|r| r.ratio() > RATIO_TARGET);
    let sequential_reads: Vec<&&Run> = paced
        .iter()
        .filter(|r| {
            let reads = (1 + r.minimum.describe_instances) as u32;
            Duration::from_millis(r.timeline.before_first_launch_ms).as_secs_f64()
                >= 0.9 * (LATENCY * reads).as_secs_f64()
                && reads > 1
        })
        .collect();
    if !ratio_missed || sequential_reads.is_empty() {
        return None;
    }
    let examples: Vec<String> = sequential_reads
        .iter()
        .map(|r| {
            format!(
                "N = {}: {} s before the first launch, {} reads × {} ms",
                r.n,
                secs(Duration::from_millis(r.timeline.before_first_launch_ms)),
                1 + r.minimum.describe_instances,
                LATENCY.as_millis()
            )
        })
        .collect();
    Some(format!(
        "**Reads one at a time.** Before launching, the function reads the active jobs (DescribeJobs) and \
         then every DescribeRecoveryInstances page of 200 ids, each after the previous one answered ({}); the ideal \
         sends these independent reads {CONCURRENCY} at a time. At N = 100 this is the whole miss: two round trips \
         where one would do. PutEvents calls are sequential too (⌈events/10⌉ × {} ms after the last launch). \
         Reading concurrently (DescribeJobs beside the instance pages, pages {CONCURRENCY} at a time) would remove it.",
        examples.join("; "),
        LATENCY.as_millis()
    ))
}

/// A launch window more than 10% over the ideal one, in runs that missed: what the pacer does.
fn pacing_below_rate(report: &Report, paced: &[&Run]) -> Option<String> {
    let slow: Vec<&&Run> = paced
        .iter()
        .filter(|r| {
            let ideal_window =
                r.minimum.launches.saturating_sub(BURST as usize) as f64 / RATE_PER_SECOND;
            r.ratio() > RATIO_TARGET
                && ideal_window > 0.0
                && r.timeline.launch_window_ms as f64 / 1e3 > 1.1 * ideal_window
        })
        .collect();
    if slow.is_empty() {
        return None;
    }
    let examples: Vec<String> = slow
        .iter()
        .map(|r| {
            let unpaced = report.runs.iter().find(|u| {
                u.profile == Profile::Throttling && u.variant == Variant::Unpaced && u.n == r.n
            });
            format!(
                "N = {}: admitted {:.2}/s, {} of throttles (largest {} calls arriving within 250 ms of each other){}",
                r.n,
                r.timeline.admitted_rate.unwrap_or_default(),
                plural(r.timeline.throttle_bursts, "burst"),
                r.timeline.largest_throttle_burst,
                unpaced
                    .and_then(|u| u.timeline.admitted_rate)
                    .map(|rate| format!("; with pacing off {rate:.2}/s"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let probe = &report.pacer;
    let rate = |r: Option<f64>| r.map_or("none".to_owned(), |r| format!("{r:.2}/s"));
    let mut pacer = format!(
        "Driven directly by the bench (`drs_failback::launch::pacing::Pacer`, synthetic clock), the pacer's rate after the \
         first round ({BURST} admitted, {} throttled together) is {}",
        CONCURRENCY.saturating_sub(BURST as usize),
        rate(probe.after_first_round)
    );
    match (probe.climb_calls, probe.climb_seconds) {
        (Some(calls), Some(seconds)) => {
            let _ = write!(
                pacer,
                ", and it takes {calls} admitted launches ({seconds:.1} s at its own pace) to climb back to \
                 the service's {RATE_PER_SECOND}/s"
            );
        }
        _ => {
            let _ = write!(pacer, ", and it does not climb back to {RATE_PER_SECOND}/s");
        }
    }
    if probe.burst.len() > 1 {
        let steps: Vec<String> = probe.burst.iter().map(|r| rate(*r)).collect();
        let _ = write!(
            pacer,
            "; {} throttles arriving together once it paces at that rate take it {}",
            probe.burst.len() - 1,
            steps.join(" → ")
        );
    }
    let short: Vec<String> = match probe.climb_calls {
        Some(calls) => slow
            .iter()
            .filter(|r| r.minimum.launches < calls)
            .map(|r| format!("N = {} ({} launches)", r.n, r.minimum.launches))
            .collect(),
        None => Vec::new(),
    };
    let short = if short.is_empty() {
        String::new()
    } else {
        format!(
            " A batch with fewer launches than the climb never reaches the service's rate: {}.",
            short.join(", ")
        )
    };
    Some(format!(
        "**Pacing runs below the service's rate.** The service admits {RATE_PER_SECOND}/s; the launch window was \
         longer than the ideal one ({}). {pacer}. Every throttle also holds every sender for the `Retry-After` \
         (whole seconds, at least 1 s here).{short}",
        examples.join("; ")
    ))
}

/// Throttles of the first round, sent before the service's rate is known.
fn first_round(paced: &[&Run]) -> Option<String> {
    let wasteful: Vec<&&Run> = paced
        .iter()
        .filter(|r| r.wasted_share() >= WASTED_TARGET)
        .collect();
    if wasteful.is_empty() {
        return None;
    }
    let examples: Vec<String> = wasteful
        .iter()
        .map(|r| {
            format!(
                "N = {}: {} throttled of {} calls; the first {} launches went out within 100 ms, and {} \
                 calls were throttled in the first second of launching",
                r.n,
                r.wasted_calls(),
                r.total_calls(),
                r.timeline.first_round,
                r.timeline.throttled_first_second
            )
        })
        .collect();
    let allowed: Vec<String> = wasteful
        .iter()
        .map(|r| {
            let minimum = OPERATIONS
                .iter()
                .map(|op| r.minimum.get(*op))
                .sum::<usize>();
            // t / (minimum + t) < 10%  ⇔  t < minimum / 9
            let most = (minimum.saturating_sub(1)) / 9;
            format!(
                "N = {}: at most {} against {minimum} necessary calls",
                r.n,
                plural(most, "throttled call")
            )
        })
        .collect();
    Some(format!(
        "**The first round is sent before the rate is known.** Launches go out `MAX_CONCURRENT_LAUNCHES` = \
         {CONCURRENCY} at a time from the start, and the service's burst is {BURST}: what exceeds the burst is \
         throttled before any pacing can act ({}). With few launches these throttles are a large share; under \
         10% allows {}. Starting with fewer launches in flight and widening on success (slow start) would cut \
         this discovery cost.",
        examples.join("; "),
        allowed.join("; ")
    ))
}
