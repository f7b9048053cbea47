//! The workloads' targets: wall time under throttling, wasted calls, exact call counts, and the
//! quota-bound whole failback.

use std::time::Duration;

use drs_sim::Operation;

use super::{
    PIPELINE_CALLS_PER_MINUTE, PIPELINE_TARGET, RATIO_TARGET, Target, WASTED_TARGET, runs_of,
    verdict,
};
use crate::pipeline;
use crate::readiness;
use crate::report::*;
use crate::targets;
use crate::workload::{
    BURST, CONCURRENCY, LATENCY, OPERATIONS, Profile, RATE_PER_SECOND, Run, Variant,
};

/// Wall time under throttling against the ideal, for every N.
/// The no-fault runs against their ideal: every call at the fewest round trips the concurrency
/// bound allows.
pub(super) fn no_fault_wall_time(report: &Report) -> Option<Target> {
    let runs = runs_of(&report.runs, Profile::NoFaults, Variant::Project);
    let baseline = runs_of(&report.runs, Profile::NoFaults, Variant::Baseline);
    if runs.is_empty() {
        return None;
    }
    let within = |r: &&Run| r.complete() && r.ratio() <= RATIO_TARGET;
    let met = runs.iter().all(within);
    let figures = |runs: &[&Run]| -> String {
        runs.iter()
            .map(|r| format!("N = {}: {:.2}×", r.n, r.ratio()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let misses: Vec<String> = runs
        .iter()
        .filter(|r| !within(r))
        .map(|r| {
            format!(
                "N = {}: {:.2}× ({} ms against {} ms ideal{})",
                r.n,
                r.ratio(),
                r.wall.as_millis(),
                r.ideal.as_millis(),
                if r.complete() { "" } else { ", incomplete" }
            )
        })
        .collect();
    Some(Target {
        name: format!("wall time ≤ {RATIO_TARGET}× ideal with no faults"),
        measured: figures(&runs),
        peer: format!("SDK standard retry: {}", figures(&baseline)),
        verdict: verdict(met),
        reason: if met {
            "the reads, the launches and the events each take the fewest round trips four calls in flight allow: \
             slow start begins with three launches (the four from the second round trip), and the run's PutEvents \
             calls go side by side; what is left is the calls' own work on 2 shared cores"
                .into()
        } else {
            misses.join("; ")
        },
    })
}

pub(super) fn wall_time(report: &Report) -> Option<Target> {
    let throttled = runs_of(&report.runs, Profile::Throttling, Variant::Project);
    let baseline = runs_of(&report.runs, Profile::Throttling, Variant::Baseline);
    if throttled.is_empty() {
        return None;
    }
    let met = throttled
        .iter()
        .all(|r| r.complete() && r.ratio() <= RATIO_TARGET);
    let measured: Vec<String> = throttled
        .iter()
        .map(|r| {
            let ratios: Vec<f64> = r
                .repeats
                .iter()
                .map(|x| x.wall.as_secs_f64() / r.ideal.as_secs_f64())
                .collect();
            let range = if ratios.len() > 1 {
                format!(
                    " ({:.2}–{:.2}× over {} runs)",
                    ratios.iter().copied().fold(f64::INFINITY, f64::min),
                    ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    ratios.len()
                )
            } else {
                String::new()
            };
            format!("N = {}: {:.2}×{range}", r.n, r.ratio())
        })
        .collect();
    let peer: Vec<String> = baseline
        .iter()
        .map(|r| {
            format!(
                "N = {}: {:.2}×{}",
                r.n,
                r.ratio(),
                if r.complete() {
                    String::new()
                } else {
                    format!(" with {} of {} launched", r.launched, r.n)
                }
            )
        })
        .collect();
    let misses: Vec<String> = throttled
        .iter()
        .filter(|r| !(r.complete() && r.ratio() <= RATIO_TARGET))
        .map(|r| {
            let t = &r.timeline;
            let ideal_reads = LATENCY * ((1 + r.minimum.describe_instances).div_ceil(CONCURRENCY) as u32);
            let ideal_window = Duration::from_secs_f64(r.minimum.launches.saturating_sub(BURST as usize) as f64 / RATE_PER_SECOND);
            let tail = r.wall.saturating_sub(Duration::from_millis(t.to_last_launch_ms));
            let reads = 1 + r.minimum.describe_instances;
            let sequential = LATENCY * reads as u32;
            let before = Duration::from_millis(t.before_first_launch_ms);
            let reads_note = if before.as_secs_f64() >= 0.9 * sequential.as_secs_f64() {
                format!(": the {reads} reads ran one after another ({reads} × {} ms)", LATENCY.as_millis())
            } else {
                String::new()
            };
            let rate_note = match t.admitted_rate {
                Some(rate) => format!(", an admitted rate of {rate:.2}/s against the {RATE_PER_SECOND}/s the service allows"),
                None => String::new(),
            };
            format!(
                "N = {}: {} s against {} s ideal — reads before the first launch {} s (ideal {} s{reads_note}); launch window {} s (ideal {} s{rate_note}); after the last launch {} s{}",
                r.n,
                secs(r.wall),
                secs(r.ideal),
                secs(before),
                secs(ideal_reads),
                secs(Duration::from_millis(t.launch_window_ms)),
                secs(ideal_window),
                secs(tail),
                if r.complete() { String::new() } else { format!("; only {} of {} launched", r.launched, r.n) }
            )
        })
        .collect();
    Some(Target {
        name: format!("wall time ≤ {RATIO_TARGET}× ideal under throttling"),
        measured: measured.join("; "),
        peer: peer.join("; "),
        verdict: verdict(met),
        reason: if met {
            "every N within the target, every instance launched".into()
        } else {
            misses.join(". ")
        },
    })
}

/// Throttled and refused calls over all calls, every project run.
pub(super) fn wasted(report: &Report) -> Option<Target> {
    let throttled = runs_of(&report.runs, Profile::Throttling, Variant::Project);
    let baseline = runs_of(&report.runs, Profile::Throttling, Variant::Baseline);
    let project: Vec<&Run> = report
        .runs
        .iter()
        .filter(|r| r.variant == Variant::Project)
        .collect();
    if project.is_empty() {
        return None;
    }
    let worst = project
        .iter()
        .max_by(|a, b| a.wasted_share().total_cmp(&b.wasted_share()))
        .copied();
    let met = project.iter().all(|r| r.wasted_share() < WASTED_TARGET);
    let throttling: Vec<String> = throttled
        .iter()
        .map(|r| {
            let wasted: Vec<f64> = r.repeats.iter().map(|x| x.wasted).collect();
            let range = if wasted.len() > 1 {
                format!(
                    " ({}–{})",
                    pct(wasted.iter().copied().fold(f64::INFINITY, f64::min)),
                    pct(wasted.iter().copied().fold(f64::NEG_INFINITY, f64::max))
                )
            } else {
                String::new()
            };
            format!("N = {}: {}{range}", r.n, pct(r.wasted_share()))
        })
        .collect();
    let peer: Vec<String> = baseline
        .iter()
        .map(|r| format!("N = {}: {}", r.n, pct(r.wasted_share())))
        .collect();
    let unpaced: Vec<String> = runs_of(&report.runs, Profile::Throttling, Variant::Unpaced)
        .iter()
        .map(|r| format!("N = {}: {}", r.n, pct(r.wasted_share())))
        .collect();
    Some(Target {
        name: format!("wasted calls < {:.0}%", WASTED_TARGET * 100.0),
        measured: format!(
            "throttling {}; worst of all project runs {}",
            throttling.join(", "),
            worst
                .map(|w| format!(
                    "{} ({}, N = {})",
                    pct(w.wasted_share()),
                    w.profile.name(),
                    w.n
                ))
                .unwrap_or_default()
        ),
        peer: format!(
            "SDK standard retry under throttling: {}; project with pacing off: {}",
            peer.join(", "),
            unpaced.join(", ")
        ),
        verdict: verdict(met),
        reason: if met {
            "throttled + refused calls over all calls, every profile and N".into()
        } else {
            let over: Vec<String> = project
                .iter()
                .filter(|r| r.wasted_share() >= WASTED_TARGET)
                .map(|r| {
                    format!(
                        "{} N = {}: {} of {} calls wasted ({} of {} launches throttled, {} of them within the first second of launching — the first {} launches went out within 100 ms, against a burst of {BURST} — and {}/{} in the first/second half of the launch window; see the causes below)",
                        r.profile.name(),
                        r.n,
                        r.wasted_calls(),
                        r.total_calls(),
                        r.op(Operation::StartFailbackLaunch).throttled,
                        r.op(Operation::StartFailbackLaunch).total,
                        r.timeline.throttled_first_second,
                        r.timeline.first_round,
                        r.timeline.throttled_first_half,
                        r.timeline.throttled_second_half
                    )
                })
                .collect();
            over.join(". ")
        },
    })
}

/// Every call counted against its minimum, with no faults.
pub(super) fn call_counts(report: &Report) -> Option<Target> {
    let clean = runs_of(&report.runs, Profile::NoFaults, Variant::Project);
    if clean.is_empty() {
        return None;
    }
    let met = clean
        .iter()
        .all(|r| r.calls_exactly_minimum() && r.complete());
    let off: Vec<String> = clean
        .iter()
        .filter(|r| !r.calls_exactly_minimum())
        .flat_map(|r| {
            OPERATIONS.iter().filter_map(move |op| {
                let got = r.op(*op).total;
                let min = r.minimum.get(*op);
                (got != min).then(|| format!("N = {}: {op} {got} instead of {min}", r.n))
            })
        })
        .collect();
    Some(Target {
        name: "call counts exactly the minimum with no faults".into(),
        measured: clean
            .iter()
            .map(|r| {
                format!(
                    "N = {}: {}",
                    r.n,
                    OPERATIONS
                        .iter()
                        .map(|op| r.op(*op).total.to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        peer: String::new(),
        verdict: verdict(met),
        reason: if met {
            "StartFailbackLaunch ⌈N/100⌉, DescribeRecoveryInstances ⌈N/200⌉, DescribeJobs 1, PutEvents ⌈(jobs+1)/10⌉, every N (figures in that order)".into()
        } else {
            off.join("; ")
        },
    })
}

/// The quota-bound whole failback against the ideal pipeline.
pub(super) fn readiness(report: &Report) -> Target {
    let interval = pipeline::TRACK_INTERVAL.as_secs();
    let name = format!(
        "each instance launched within one tracking interval ({interval} s) of DRS showing it ready, quota permitting (N = {}, readiness over {:.0} h)",
        readiness::N,
        readiness::SPREAD.as_secs_f64() / 3600.0
    );
    match &report.readiness {
        Ok(r) => {
            // The launch call itself comes a few DRS calls after the round starts.
            let slack = 5;
            let met =
                r.complete && r.launched == readiness::N && r.permitted_max() <= interval + slack;
            Target {
                name,
                measured: format!(
                    "{} of {} launched; after the quotas allowed it median {} s, max {} s ({} held by the 20-job quota: after readiness median {} s, p95 {} s, max {} s)",
                    r.launched,
                    readiness::N,
                    r.permitted_quantile(0.5),
                    r.permitted_max(),
                    r.held_by_quota,
                    r.quantile(0.5),
                    r.quantile(0.95),
                    r.max()
                ),
                peer: "none: no other tool waits for failback readiness".into(),
                verdict: verdict(met),
                reason: format!(
                    "every tracking call is followed at once by a round that reads the waiting instances again and launches \
                     the ready ones: an instance waits at most one interval ({interval} s), plus the round's reads before \
                     its launch call ({slack} s allowed). Launching each as it turns ready takes a job slot per round: \
                     with 20-minute jobs DRS's 20 concurrent jobs fill up, and an instance that turns ready then waits \
                     for the first job to finish — counted from then"
                ),
            }
        }
        Err(e) => Target {
            name,
            measured: format!("not measured: {e}"),
            peer: String::new(),
            verdict: verdict(false),
            reason: String::new(),
        },
    }
}

pub(super) fn pipeline(report: &Report) -> Target {
    match &report.pipeline {
        Ok(p) => {
            let per_minute = p.per_minute(p.tracking_calls);
            let met = p.complete
                && p.throughput() >= PIPELINE_TARGET
                && per_minute <= PIPELINE_CALLS_PER_MINUTE;
            let varying = match &report.pipeline_varying {
                Some(Ok(v)) => format!(
                    "; jobs of {:.0}–{:.0} minutes: {} of their ideal ({:.0} min against {:.0} min), {} tracking calls ({:.2}/min){}",
                    pipeline::varying_range().0.as_secs_f64() / 60.0,
                    pipeline::varying_range().1.as_secs_f64() / 60.0,
                    pct(v.throughput()),
                    v.wall.as_secs_f64() / 60.0,
                    v.ideal.as_secs_f64() / 60.0,
                    v.tracking_calls,
                    v.per_minute(v.tracking_calls),
                    if v.complete { "" } else { ", INCOMPLETE" }
                ),
                Some(Err(e)) => format!("; jobs of varying length: not measured: {e}"),
                None => String::new(),
            };
            let job = pipeline::JOB.pending + pipeline::JOB.started;
            let interval = pipeline::TRACK_INTERVAL.as_secs();
            Target {
                name: format!(
                    "quota-bound failback ≥ {:.0}% of the ideal pipeline's throughput with ≤ {PIPELINE_CALLS_PER_MINUTE} tracking call a minute on average (N = {}, {} servers in flight, {:.1}-minute jobs, interval {interval} s)",
                    PIPELINE_TARGET * 100.0,
                    pipeline::N,
                    pipeline::SERVERS_IN_FLIGHT,
                    job.as_secs_f64() / 60.0
                ),
                measured: format!(
                    "{} ({:.1} min against {:.1} min), {} rounds, {} tracking calls ({:.2}/min), {} succeeded, {} failed{}{varying}",
                    pct(p.throughput()),
                    p.wall.as_secs_f64() / 60.0,
                    p.ideal.as_secs_f64() / 60.0,
                    p.rounds,
                    p.tracking_calls,
                    per_minute,
                    p.succeeded,
                    p.failed,
                    if p.complete { "" } else { ", INCOMPLETE" }
                ),
                peer: "none: no other tool tracks failback jobs".into(),
                verdict: verdict(met),
                reason: format!(
                    "each tracking call learns the step's shortest job so far from DRS's dates and asks for the next \
                     call just after the first running job should end ({} s margin): a wave starts seconds after the one \
                     before ends, not up to an interval later (only the first wave, whose length nobody knows yet, is \
                     tracked every {interval} s); the one wait that meets the end stretches to it, and a shorter one is \
                     allowed only while the execution has tracked less than once an interval on average",
                    drs_failback::track::expect::EXPECTED_END_MARGIN.as_secs(),
                ),
            }
        }
        Err(e) => Target {
            name: "quota-bound failback, tracked to the end".into(),
            measured: format!("not measured: {e}"),
            peer: String::new(),
            verdict: verdict(false),
            reason: String::new(),
        },
    }
}

/// Across accounts and regions: the places run side by side, each at its minimum of calls.
pub(super) fn across_targets(report: &Report) -> Target {
    let name = format!(
        "{} targets × {} instances at DRS's default quotas: wall time within 1.2× one target alone, launch calls per target at the minimum",
        targets::TARGETS,
        targets::PER_TARGET
    );
    match &report.targets {
        Ok(t) => {
            let minimum = targets::Targets::minimum_launches();
            let met =
                t.complete && t.ratio() <= 1.2 && t.calls.iter().all(|c| c.launches == minimum);
            Target {
                name,
                measured: format!(
                    "{:.2}× ({:.1} min against {:.1} min alone); launches per target {:?} (minimum {minimum}); {} succeeded; peak RSS of the whole in-process run {:.1} MB",
                    t.ratio(),
                    t.all.as_secs_f64() / 60.0,
                    t.alone.as_secs_f64() / 60.0,
                    t.calls.iter().map(|c| c.launches).collect::<Vec<_>>(),
                    t.succeeded,
                    t.peak_rss_mb
                ),
                peer: "none: no open-source tool fails back across accounts in one plan".into(),
                verdict: verdict(met),
                reason: "each account and region is a place of its own (a Distributed Map child), with its own quotas: \
                         they launch and track side by side, so the run takes as long as its slowest place; the hub \
                         function handles one place per invocation, so its memory is one place's (the start-up and \
                         RSS figures above), the peak here adds the simulator of every target"
                    .into(),
            }
        }
        Err(e) => Target {
            name,
            measured: format!("not measured: {e}"),
            peer: String::new(),
            verdict: verdict(false),
            reason: String::new(),
        },
    }
}
