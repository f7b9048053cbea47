//! The targets, each met or not with its reason, and the causes of any target missed: the
//! verdicts BENCHMARKS.md reports, decided apart from how they are written.

mod binary;
mod boto3;
mod causes;
mod runs;

use serde::Serialize;

use crate::report::Report;
use crate::workload::{Profile, Run, Variant};

pub(crate) use causes::causes;

const START_UP_TARGET_MS: f64 = 2.0;
const RSS_TARGETS: [(usize, f64); 2] = [(250, 12.0), (5000, 20.0)];
const ARM64_TARGET_MB: f64 = 8.0;
const RATIO_TARGET: f64 = 1.2;
const WASTED_TARGET: f64 = 0.10;
const PIPELINE_TARGET: f64 = 0.99;
/// Tracking calls a minute, on average over the pipeline's run, at most.
const PIPELINE_CALLS_PER_MINUTE: f64 = 1.0;

#[derive(Serialize)]
pub(crate) struct Target {
    pub name: String,
    pub measured: String,
    pub peer: String,
    pub verdict: &'static str,
    pub reason: String,
}

fn verdict(met: bool) -> &'static str {
    if met { "**MET**" } else { "**NOT MET**" }
}

fn runs_of(runs: &[Run], profile: Profile, variant: Variant) -> Vec<&Run> {
    runs.iter()
        .filter(|r| r.profile == profile && r.variant == variant)
        .collect()
}

/// Every target, in the report's order: those of the binary, then those of the workloads (a
/// workload's target only when it ran).
pub(crate) fn targets(report: &Report) -> Vec<Target> {
    let mut targets = vec![binary::startup(report)];
    targets.extend(binary::rss(report));
    targets.push(binary::arm64(report));
    targets.push(boto3::start_to_exit(report));
    targets.extend(runs::wall_time(report));
    targets.extend(runs::no_fault_wall_time(report));
    targets.extend(runs::wasted(report));
    targets.extend(runs::call_counts(report));
    targets.push(runs::pipeline(report));
    targets.push(runs::readiness(report));
    targets.push(runs::across_targets(report));
    targets
}

/// The verdicts on one line each, for the terminal: the tables are in BENCHMARKS.md.
pub fn summary(report: &Report) -> String {
    targets(report)
        .iter()
        .map(|t| {
            format!(
                "{:<12} {}: {}\n",
                t.verdict.trim_matches('*'),
                t.name,
                t.measured
            )
        })
        .collect()
}
