//! BENCHMARKS.md: every figure, how it was measured, and the targets met or not, with the reason.

use std::fmt::Write;
use std::time::Duration;

use drs_sim::Operation;

use crate::binary::{Arm64, Rss, Size, Startup};
use crate::workload::{
    self, BURST, CONCURRENCY, DEADLINE, IDS_PER_READ, JOB_PENDING, JOB_STARTED, LATENCY,
    OPERATIONS, PER_JOB, POLL_SECONDS, Profile, QUOTA_JOBS, QUOTA_SERVERS, RAISED_QUOTAS,
    RATE_PER_SECOND, Run, Variant,
};

pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub commit: String,
    pub date: String,
    /// /proc/loadavg when the run started and when it ended: the machine is shared.
    pub load_before: String,
    pub load_after: String,
}

pub struct BinaryFigures {
    pub path: String,
    pub size: Size,
    pub startup: Result<Startup, String>,
    /// The same with the TLS trust store pointed at nothing.
    pub startup_without_certificates: Result<Startup, String>,
    pub rss: Vec<Result<Rss, String>>,
    pub arm64: Arm64,
}

pub struct Report<'a> {
    pub quick: bool,
    pub command: &'a str,
    pub machine: &'a Machine,
    pub ns: &'a [usize],
    pub runs: &'a [Run],
    pub failures: &'a [String],
    pub binary: Result<&'a BinaryFigures, String>,
    pub profile_release: &'a str,
    pub svg_path: &'a str,
    pub timeline_path: &'a str,
    pub pacer: &'a crate::probe::PacerProbe,
    pub bench_time: Duration,
    /// The measurements alone, without the builds.
    pub measure_time: Duration,
}

const START_UP_TARGET_MS: f64 = 10.0;
const RSS_TARGETS: [(usize, f64); 2] = [(250, 12.0), (5000, 20.0)];
const ARM64_TARGET_MB: f64 = 8.0;
const RATIO_TARGET: f64 = 1.2;
const WASTED_TARGET: f64 = 0.10;

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.1}")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Decimal megabytes (10^6 bytes): the stricter reading of "MB".
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn mb_text(bytes: u64) -> String {
    format!(
        "{:.2} MB ({:.2} MiB)",
        mb(bytes),
        bytes as f64 / 1024.0 / 1024.0
    )
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn outcome(run: &Run) -> String {
    if let Some(error) = &run.error {
        return format!("error: {error}");
    }
    let mut text = format!("{} launched", run.launched);
    if run.deferred > 0 {
        let reasons: Vec<String> = run
            .deferred_reasons
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        let _ = write!(text, ", {} deferred ({})", run.deferred, reasons.join(", "));
    }
    if run.rejected > 0 {
        let _ = write!(text, ", {} rejected", run.rejected);
    }
    if run.skipped > 0 {
        let _ = write!(text, ", {} skipped", run.skipped);
    }
    if run.in_two_jobs > 0 {
        let _ = write!(text, ", **{} instances in two jobs**", run.in_two_jobs);
    }
    text
}

/// The spread over the repetitions, when there were several.
fn spread(run: &Run) -> String {
    if run.repeats.len() < 2 {
        return "1 run".into();
    }
    let walls: Vec<f64> = run.repeats.iter().map(|r| r.wall.as_secs_f64()).collect();
    let wasted: Vec<f64> = run.repeats.iter().map(|r| r.wasted).collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let launched: Vec<String> = run.repeats.iter().map(|r| r.launched.to_string()).collect();
    format!(
        "{} runs (median shown): wall {:.2}–{:.2} s, wasted {:.1}–{:.1}%, launched {}",
        run.repeats.len(),
        min(&walls),
        max(&walls),
        min(&wasted) * 100.0,
        max(&wasted) * 100.0,
        launched.join("/")
    )
}

fn calls_cell(run: &Run, operation: Operation) -> String {
    let calls = run.op(operation);
    let minimum = run.minimum.get(operation);
    let mut text = format!("{} / {}", calls.total, minimum);
    let mut extra = Vec::new();
    if calls.throttled > 0 {
        extra.push(format!("{} throttled", calls.throttled));
    }
    if calls.refused > 0 {
        extra.push(format!("{} refused", calls.refused));
    }
    if calls.failed > 0 {
        extra.push(format!("{} failed", calls.failed));
    }
    if !extra.is_empty() {
        let _ = write!(text, " ({})", extra.join(", "));
    }
    text
}

struct Target {
    name: String,
    measured: String,
    peer: String,
    verdict: &'static str,
    reason: String,
}

fn verdict(met: bool) -> &'static str {
    if met { "**MET**" } else { "**NOT MET**" }
}

fn runs_of(runs: &[Run], profile: Profile, variant: Variant) -> Vec<&Run> {
    runs.iter()
        .filter(|r| r.profile == profile && r.variant == variant)
        .collect()
}

fn targets(report: &Report) -> Vec<Target> {
    let mut targets = Vec::new();
    let binary = report.binary.as_ref().ok();

    // Start-up.
    let startup = binary.and_then(|b| b.startup.as_ref().ok());
    targets.push(match startup {
        Some(startup) if !startup.times.is_empty() => {
            let mut sorted = startup.times.clone();
            sorted.sort();
            let median = percentile(&sorted, 50.0).unwrap_or_default();
            let p90 = percentile(&sorted, 90.0).unwrap_or_default();
            let met = median.as_secs_f64() * 1e3 <= START_UP_TARGET_MS;
            Target {
                name: format!(
                    "start-up ≤ {START_UP_TARGET_MS} ms (median of cold starts, x86-64 release)"
                ),
                measured: format!(
                    "median {} ms, p90 {} ms ({} starts)",
                    ms(median),
                    ms(p90),
                    sorted.len()
                ),
                peer: "boto3 Python Lambda: about 600 ms (issue's figure, not measured here)"
                    .into(),
                verdict: verdict(met),
                reason: if met {
                    format!(
                        "{:.1}× under the target",
                        START_UP_TARGET_MS / (median.as_secs_f64() * 1e3)
                    )
                } else {
                    format!(
                        "{:.1} ms over the target",
                        median.as_secs_f64() * 1e3 - START_UP_TARGET_MS
                    )
                },
            }
        }
        _ => Target {
            name: format!("start-up ≤ {START_UP_TARGET_MS} ms"),
            measured: "—".into(),
            peer: String::new(),
            verdict: "**NOT MEASURED**",
            reason: match (&report.binary, binary.map(|b| &b.startup)) {
                (Err(e), _) => e.clone(),
                (_, Some(Err(e))) => e.clone(),
                _ => "no start completed".into(),
            },
        },
    });

    // Peak RSS.
    for (n, limit) in RSS_TARGETS {
        let rss = binary.and_then(|b| {
            b.rss
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .find(|r| r.n == n)
        });
        targets.push(match rss {
            Some(rss) => {
                let bytes = rss.peak_kb * 1024;
                let met = mb(bytes) <= limit && rss.launched == n;
                Target {
                    name: format!("peak RSS ≤ {limit} MB at N = {n}"),
                    measured: mb_text(bytes),
                    peer: "boto3 Python Lambda: about 50 MB (issue's figure, not measured here)".into(),
                    verdict: verdict(met),
                    reason: if rss.launched != n {
                        format!("the invocation launched {} of {n}", rss.launched)
                    } else if met {
                        format!("{:.0}% of the limit; one cold process serving one invocation of {n} instances, VmHWM after it answered", 100.0 * mb(bytes) / limit)
                    } else {
                        format!("{:.2} MB over", mb(bytes) - limit)
                    },
                }
            }
            None => Target {
                name: format!("peak RSS ≤ {limit} MB at N = {n}"),
                measured: "—".into(),
                peer: String::new(),
                verdict: "**NOT MEASURED**",
                reason: binary
                    .and_then(|b| b.rss.iter().filter_map(|r| r.as_ref().err()).next().cloned())
                    .or_else(|| report.binary.as_ref().err().cloned())
                    .unwrap_or_else(|| "not run".into()),
            },
        });
    }

    // arm64 size.
    targets.push(match binary.map(|b| &b.arm64) {
        Some(Arm64::Measured { bytes }) => Target {
            name: format!("stripped arm64 `bootstrap` ≤ {ARM64_TARGET_MB} MB"),
            measured: mb_text(*bytes),
            peer: String::new(),
            verdict: verdict(mb(*bytes) <= ARM64_TARGET_MB),
            reason: "`cargo lambda build --release --arm64`".into(),
        },
        Some(Arm64::NotMeasured { cause }) => {
            let size = binary.map(|b| &b.size);
            let nearest = match size {
                Some(Size { stripped: Some(stripped), bytes }) => format!(
                    "nearest figure: the x86-64 release binary is {} as built and {} stripped ({} the 8 MB limit)",
                    mb_text(*bytes),
                    mb_text(*stripped),
                    if mb(*stripped) <= ARM64_TARGET_MB { "within" } else { "over" }
                ),
                Some(size) => format!("nearest figure: the x86-64 release binary is {}", mb_text(size.bytes)),
                None => String::new(),
            };
            Target {
                name: format!("stripped arm64 `bootstrap` ≤ {ARM64_TARGET_MB} MB"),
                measured: "—".into(),
                peer: String::new(),
                verdict: "**NOT MEASURED**",
                reason: format!("{cause}. {nearest}"),
            }
        }
        None => Target {
            name: format!("stripped arm64 `bootstrap` ≤ {ARM64_TARGET_MB} MB"),
            measured: "—".into(),
            peer: String::new(),
            verdict: "**NOT MEASURED**",
            reason: report.binary.as_ref().err().cloned().unwrap_or_default(),
        },
    });

    // Wall time under throttling.
    let throttled = runs_of(report.runs, Profile::Throttling, Variant::Project);
    let baseline = runs_of(report.runs, Profile::Throttling, Variant::Baseline);
    if !throttled.is_empty() {
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
        targets.push(Target {
            name: format!("wall time ≤ {RATIO_TARGET}× ideal under throttling"),
            measured: measured.join("; "),
            peer: peer.join("; "),
            verdict: verdict(met),
            reason: if met {
                "every N within the target, every instance launched".into()
            } else {
                misses.join(". ")
            },
        });
    }

    // Wasted calls.
    let project: Vec<&Run> = report
        .runs
        .iter()
        .filter(|r| r.variant == Variant::Project)
        .collect();
    if !project.is_empty() {
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
        let unpaced: Vec<String> = runs_of(report.runs, Profile::Throttling, Variant::Unpaced)
            .iter()
            .map(|r| format!("N = {}: {}", r.n, pct(r.wasted_share())))
            .collect();
        targets.push(Target {
            name: format!("wasted calls < {:.0}%", WASTED_TARGET * 100.0),
            measured: format!(
                "throttling {}; worst of all project runs {}",
                throttling.join(", "),
                worst.map(|w| format!("{} ({}, N = {})", pct(w.wasted_share()), w.profile.name(), w.n)).unwrap_or_default()
            ),
            peer: format!("SDK standard retry under throttling: {}; project with pacing off: {}", peer.join(", "), unpaced.join(", ")),
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
        });
    }

    // Exact call counts with no faults.
    let clean = runs_of(report.runs, Profile::NoFaults, Variant::Project);
    if !clean.is_empty() {
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
        targets.push(Target {
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
        });
    }
    targets
}

/// What the figures show about why a target is missed, stated only when the figures show it.
fn causes(report: &Report) -> Vec<String> {
    let mut causes = Vec::new();
    let paced = runs_of(report.runs, Profile::Throttling, Variant::Project);
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
    if ratio_missed && !sequential_reads.is_empty() {
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
        causes.push(format!(
            "**Reads one at a time.** Before launching, the function reads the active jobs (DescribeJobs) and \
             then every DescribeRecoveryInstances page of 200 ids, each after the previous one answered ({}); the ideal \
             sends these independent reads {CONCURRENCY} at a time. At N = 100 this is the whole miss: two round trips \
             where one would do. PutEvents calls are sequential too (⌈events/10⌉ × {} ms after the last launch). \
             Reading concurrently (DescribeJobs beside the instance pages, pages {CONCURRENCY} at a time) would remove it.",
            examples.join("; "),
            LATENCY.as_millis()
        ));
    }
    // Runs that missed with a launch window more than 10% over the ideal one.
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
    if ratio_missed && !slow.is_empty() {
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
        let probe = report.pacer;
        let rate = |r: Option<f64>| r.map_or("none".to_owned(), |r| format!("{r:.2}/s"));
        let mut pacer = format!(
            "Driven directly by the bench (`drs_failback::pacing::Pacer`, synthetic clock), the pacer's rate after the \
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
        causes.push(format!(
            "**Pacing runs below the service's rate.** The service admits {RATE_PER_SECOND}/s; the launch window was \
             longer than the ideal one ({}). {pacer}. Every throttle also holds every sender for the `Retry-After` \
             (whole seconds, at least 1 s here).{short}",
            examples.join("; ")
        ));
    }
    let wasteful: Vec<&&Run> = paced
        .iter()
        .filter(|r| r.wasted_share() >= WASTED_TARGET)
        .collect();
    if !wasteful.is_empty() {
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
        causes.push(format!(
            "**The first round is sent before the rate is known.** Launches go out `MAX_CONCURRENT_LAUNCHES` = \
             {CONCURRENCY} at a time from the start, and the service's burst is {BURST}: what exceeds the burst is \
             throttled before any pacing can act ({}). With few launches these throttles are a large share; under \
             10% allows {}. Starting with fewer launches in flight and widening on success (slow start) would cut \
             this discovery cost.",
            examples.join("; "),
            allowed.join("; ")
        ));
    }
    causes
}

pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let m = report.machine;
    let _ = writeln!(md, "# Benchmarks\n");
    if report.quick {
        let _ = writeln!(
            md,
            "> Quick run (`--quick`: N = {:?}, fewer cold starts). The full figures come from the command below.\n",
            report.ns
        );
    }
    let _ = writeln!(
        md,
        "Every figure below comes from one command, run at the repository root:\n\n```sh\n{}\n```\n\n\
         It builds the Lambda's release binary (`cargo build --release -p drs-failback --bin drs-failback`), runs every \
         workload, rewrites this file and the plot [`{}`]({}), and prints the tables. It needs no AWS account or network: \
         everything talks to `127.0.0.1` only, and it stops every simulator, stand-in and process it started. \
         This run took {:.0} s, of which {:.0} s measuring and the rest building (the builds are cached after the first run). \
         `-- --quick` runs N = 100 and 1 000 only and writes to `target/bench-quick/` instead.\n",
        report.command,
        report.svg_path,
        report.svg_path,
        report.bench_time.as_secs_f64(),
        report.measure_time.as_secs_f64()
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(md, "| date (UTC) | {} |", m.date);
    let _ = writeln!(
        md,
        "| machine | {} cores ({}), {}, {} |",
        m.cores, m.cpu, m.memory, m.kernel
    );
    let _ = writeln!(
        md,
        "| load average (1, 5, 15 min) | {} at the start, {} at the end (2 cores, shared with other work: start-up times move with it) |",
        m.load_before, m.load_after
    );
    let _ = writeln!(md, "| toolchain | {} |", m.rustc);
    let _ = writeln!(md, "| commit | {} |", m.commit);
    let _ = writeln!(
        md,
        "| release profile | {} |\n",
        if report.profile_release.is_empty() {
            "Cargo's defaults (no `[profile.release]` in Cargo.toml)".to_owned()
        } else {
            format!("`{}`", report.profile_release.replace('\n', " "))
        }
    );
    if !report.failures.is_empty() {
        let _ = writeln!(md, "**Runs that failed:**\n");
        for failure in report.failures {
            let _ = writeln!(md, "- {failure}");
        }
        let _ = writeln!(md);
    }

    // Targets.
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "| target | measured | peer / baseline | verdict | reason |\n| --- | --- | --- | --- | --- |"
    );
    for t in targets(report) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            t.name, t.measured, t.peer, t.verdict, t.reason
        );
    }
    let _ = writeln!(md);

    let causes = causes(report);
    if !causes.is_empty() {
        let _ = writeln!(md, "### Causes of the misses\n");
        for cause in causes {
            let _ = writeln!(md, "- {cause}");
        }
        let _ = writeln!(md);
    }

    // Method.
    let _ = writeln!(md, "## How it is measured\n");
    let _ = writeln!(
        md,
        "**The handler, for real.** Each run starts a fresh `drs-sim` simulator (DRS + EventBridge over real HTTP on \
         loopback) and calls `Failback::handle` of the real function with the real AWS SDK clients (`SdkDrs`, \
         `SdkEventBridge`) built from `drs_sim::sdk_config` (dummy credentials, the simulator's endpoint), with a \
         Lambda-like deadline of {} s. The handler runs on a current-thread tokio runtime, as in the Lambda binary; the \
         simulator runs on its own one-thread runtime in the same process. Every count comes from the simulator's own \
         call records, not from what the function says.\n",
        DEADLINE.as_secs()
    );
    let _ = writeln!(
        md,
        "**Real time, not a paused clock.** Wall time is measured on the real clock: latency, `Retry-After` waits, \
         pacing and job lifecycles all take real seconds. A paused tokio clock would run the 5 000-instance throttled \
         case in about a second, but then the \"wall time\" would be model time and CPU contention would not show; \
         in real time the whole benchmark still fits in a few minutes on 2 cores, because the waits (not the CPU) \
         dominate. CPU time per run is reported beside it (the handler's thread, and the whole process including \
         the simulator).\n"
    );
    let _ = writeln!(
        md,
        "**Profiles** (simulator latency {} ms on every API call in all of them):\n",
        LATENCY.as_millis()
    );
    let _ = writeln!(
        md,
        "| profile | simulator | function settings (the rest default) |\n| --- | --- | --- |"
    );
    for profile in Profile::ALL {
        let sim = match profile {
            Profile::NoFaults => format!(
                "no faults; quotas raised ({} servers in active jobs, {} active jobs) so all N launch at once",
                RAISED_QUOTAS.servers_in_active_jobs, RAISED_QUOTAS.active_jobs
            ),
            Profile::Throttling => format!(
                "as no faults, plus a token bucket on StartFailbackLaunch: {RATE_PER_SECOND} per second, burst {BURST}; the excess gets 429 ThrottlingException with `Retry-After` = seconds to the next token, rounded up, at least 1"
            ),
            Profile::QuotaPressure => format!(
                "DRS default quotas: {QUOTA_SERVERS} servers in active jobs, {QUOTA_JOBS} active jobs; each job PENDING {} s then STARTED {} s, then COMPLETED (frees its servers)",
                JOB_PENDING.as_secs(),
                JOB_STARTED.as_secs()
            ),
        };
        let settings: Vec<String> = workload::settings(profile, Variant::Project)
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {sim} | {} |",
            profile.name(),
            settings.join(" ")
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "**Variants.** *project*: the function as shipped (its own retry policy: `Retry-After`-honouring backoff, \
         `THROTTLE_MAX_RETRIES=8`; adaptive pacing on; the SDK's retries off). *project, pacing off*: the same with \
         `ADAPTIVE_PACING=false` (throttling profile only: pacing does nothing until DRS throttles). \
         *baseline: SDK standard retry*: the peer — the same handler and profile, but the DRS client is \
         `SdkDrs::with_sdk_retries` on an `SdkConfig` with `RetryConfig::standard()` (3 attempts, exponential backoff \
         with jitter, the SDK's retry quota), and the function's own retrying is off (`THROTTLE_MAX_RETRIES=0`, \
         `ADAPTIVE_PACING=false`). The function's planning (pre-flight, quota-aware chunks, waiting for capacity) is \
         the same in every variant: only the retrying differs.\n"
    );
    let _ = writeln!(
        md,
        "**Minimum calls** (every instance launched): StartFailbackLaunch ⌈N/{PER_JOB}⌉; DescribeRecoveryInstances \
         ⌈N/{IDS_PER_READ}⌉; DescribeJobs 1 (the active jobs, for the quotas), and under quota pressure one more per \
         later wave (⌈N/{QUOTA_SERVERS}⌉ in all); PutEvents ⌈events/10⌉ with events = jobs + 1 (one per job and the \
         run summary). **Wasted calls**: throttled (429) or refused (402, 409, 400) calls over all calls of the run.\n"
    );
    let _ = writeln!(
        md,
        "**Ideal wall time** — the fewest calls, at most {CONCURRENCY} in flight (the function's \
         `MAX_CONCURRENT_LAUNCHES`), each taking the latency L = {} ms, in three dependent phases:\n\n\
         - reads: DescribeJobs and the ⌈N/200⌉ DescribeRecoveryInstances are independent: ⌈(1 + ⌈N/200⌉)/{CONCURRENCY}⌉ × L;\n\
         - launches — no faults: ⌈J/{CONCURRENCY}⌉ × L with J = ⌈N/100⌉; throttling: the burst of {BURST} at once, then one \
         call per token: (J − {BURST})/{RATE_PER_SECOND} s + L (⌈J/{CONCURRENCY}⌉ × L when J ≤ {BURST}); quota pressure: \
         W = ⌈N/{QUOTA_SERVERS}⌉ waves, each ⌈J_w/{CONCURRENCY}⌉ × L, and between waves the {} s a job holds its servers: \
         Σ⌈J_w/{CONCURRENCY}⌉ × L + (W − 1) × {} s (a lower bound: it knows when jobs finish without polling);\n\
         - PutEvents: ⌈P/{CONCURRENCY}⌉ × L.\n",
        LATENCY.as_millis(),
        (JOB_PENDING + JOB_STARTED).as_secs(),
        (JOB_PENDING + JOB_STARTED).as_secs()
    );
    let _ = writeln!(
        md,
        "**Start-up**: the release binary started {} times as Lambda starts it (a fresh process, only the Lambda \
         environment: `AWS_LAMBDA_RUNTIME_API` pointing at a minimal Runtime API stand-in in the bench, function name, \
         memory, version, log names, dummy credentials, `AWS_REGION`, `AWS_EC2_METADATA_DISABLED=true`, \
         `AWS_ENDPOINT_URL_DRS`/`_EVENTBRIDGE` at a simulator); start-up = from just before `spawn` to the arrival of \
         its first `GET /2018-06-01/runtime/invocation/next` at the stand-in, which then holds the poll while the bench \
         reads `VmRSS` and kills the process. **Peak RSS**: a fresh process serving one real invocation handed out by \
         the stand-in (headers `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`) of N ready \
         instances with quotas raised so all launch, against a simulator with {} ms latency; after its `POST \
         .../response` the bench reads `VmHWM` from `/proc/<pid>/status`. **arm64 size**: the stripped `bootstrap` \
         that `cargo lambda build --release --arm64` makes (it needs `rustup target add aarch64-unknown-linux-gnu` and \
         `pip install cargo-lambda`, which brings Zig; without them the figure is reported NOT MEASURED with the \
         cause). MB = 10^6 bytes.\n",
        report
            .binary
            .as_ref()
            .ok()
            .and_then(|b| b.startup.as_ref().ok())
            .map_or(0, |s| s.times.len() + s.failures),
        LATENCY.as_millis()
    );

    // Wall time.
    let _ = writeln!(md, "## Wall time\n");
    let _ = writeln!(
        md,
        "![wall time against N per profile, project vs baseline]({})\n",
        report.svg_path
    );
    let _ = writeln!(
        md,
        "| profile | N | variant | wall (s) | ideal (s) | ratio | outcome | CPU handler thread (s) | CPU process (s) | repetitions |\n\
         | --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |"
    );
    for run in report.runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
            run.profile.name(),
            run.n,
            run.variant.name(),
            secs(run.wall),
            secs(run.ideal),
            run.ratio(),
            outcome(run),
            secs(run.handler_cpu),
            secs(run.process_cpu),
            spread(run)
        );
    }
    let _ = writeln!(md);

    // Calls.
    let _ = writeln!(md, "## Calls\n");
    let _ = writeln!(
        md,
        "Each cell: calls made / minimum (and how many were throttled or refused).\n\n\
         | profile | N | variant | StartFailbackLaunch | DescribeRecoveryInstances | DescribeJobs | PutEvents | all calls | wasted |\n\
         | --- | ---: | --- | --- | --- | --- | --- | ---: | ---: |"
    );
    for run in report.runs {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.profile.name(),
            run.n,
            run.variant.name(),
            calls_cell(run, Operation::StartFailbackLaunch),
            calls_cell(run, Operation::DescribeRecoveryInstances),
            calls_cell(run, Operation::DescribeJobs),
            calls_cell(run, Operation::PutEvents),
            run.total_calls(),
            pct(run.wasted_share())
        );
    }
    let _ = writeln!(md);

    // Pacing.
    let _ = writeln!(md, "## Adaptive pacing under throttling\n");
    let largest = report.ns.iter().copied().max().unwrap_or(0);
    let _ = writeln!(
        md,
        "![StartFailbackLaunch over time under throttling at N = {largest}]({})\n",
        report.timeline_path
    );
    let _ = writeln!(
        md,
        "The service admits {RATE_PER_SECOND} StartFailbackLaunch per second (burst {BURST}). Admitted rate: admitted \
         launches per second from the first admitted call to the last. A rate that converges shows as few throttles in \
         the second half of the launch window.\n\n\
         | N | variant | launch calls | throttled | throttled in the 1st second | admitted rate (/s) | throttled 1st half / 2nd half (calls in 2nd half) | before first launch (s) | launch window (s) | wall (s) | outcome |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"
    );
    for run in report
        .runs
        .iter()
        .filter(|r| r.profile == Profile::Throttling)
    {
        let launches = run.op(Operation::StartFailbackLaunch);
        let t = &run.timeline;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} / {} ({}) | {} | {} | {} | {} |",
            run.n,
            run.variant.name(),
            launches.total,
            launches.throttled,
            t.throttled_first_second,
            t.admitted_rate.map_or("—".into(), |r| format!("{r:.2}")),
            t.throttled_first_half,
            t.throttled_second_half,
            t.calls_second_half,
            secs(Duration::from_millis(t.before_first_launch_ms)),
            secs(Duration::from_millis(t.launch_window_ms)),
            secs(run.wall),
            outcome(run)
        );
    }
    let _ = writeln!(md);

    let probe = report.pacer;
    let rate = |r: Option<f64>| r.map_or("none".to_owned(), |r| format!("{r:.2}/s"));
    let _ = writeln!(
        md,
        "The pacer itself (`drs_failback::pacing::Pacer` driven directly by the bench on a synthetic clock, no I/O):\n\n\
         | situation | pacer's rate |\n| --- | --- |\n\
         | after the first round: {BURST} admitted, {} throttled together | {} |\n\
         | admitted launches (at its own pace) to climb back to {RATE_PER_SECOND}/s | {} |\n\
         | then {} throttles arriving together | {} |\n",
        CONCURRENCY.saturating_sub(BURST as usize),
        rate(probe.after_first_round),
        match (probe.climb_calls, probe.climb_seconds) {
            (Some(calls), Some(seconds)) => format!("{calls} ({seconds:.1} s)"),
            _ => "does not get there".to_owned(),
        },
        probe.burst.len().saturating_sub(1),
        probe
            .burst
            .iter()
            .map(|r| rate(*r))
            .collect::<Vec<_>>()
            .join(" → ")
    );

    // Quota pressure detail.
    let _ = writeln!(md, "## Quota pressure\n");
    let _ = writeln!(
        md,
        "The function plans within the quotas it read, waits for capacity by polling DescribeJobs every \
         {POLL_SECONDS} s (`CAPACITY_POLL_SECONDS`, the smallest allowed), and launches the next wave when jobs \
         complete. The ideal knows exactly when a job completes; the poll adds up to {POLL_SECONDS} s (+ one call) per \
         wave.\n\n\
         | N | variant | waves | DescribeJobs (min) | 402 refused | wall (s) | ideal (s) | ratio | outcome |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for run in report
        .runs
        .iter()
        .filter(|r| r.profile == Profile::QuotaPressure)
    {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {:.2} | {} |",
            run.n,
            run.variant.name(),
            workload::waves(run.n),
            run.op(Operation::DescribeJobs).total,
            run.minimum.describe_jobs,
            run.op(Operation::StartFailbackLaunch).refused,
            secs(run.wall),
            secs(run.ideal),
            run.ratio(),
            outcome(run)
        );
    }
    let _ = writeln!(md);

    // Binary.
    let _ = writeln!(md, "## Start-up, memory and size of the release binary\n");
    match &report.binary {
        Err(e) => {
            let _ = writeln!(md, "Not measured: {e}\n");
        }
        Ok(b) => {
            let _ = writeln!(md, "Binary: `{}`.\n", b.path);
            let _ = writeln!(md, "| figure | value |\n| --- | --- |");
            let _ = writeln!(md, "| size as built | {} |", mb_text(b.size.bytes));
            if let Some(stripped) = b.size.stripped {
                let _ = writeln!(
                    md,
                    "| size after `strip --strip-all` | {} |",
                    mb_text(stripped)
                );
            }
            match &b.startup {
                Ok(s) if !s.times.is_empty() => {
                    let mut sorted = s.times.clone();
                    sorted.sort();
                    let p = |q| percentile(&sorted, q).map_or("—".into(), ms);
                    let _ = writeln!(
                        md,
                        "| start-up to first poll, {} cold starts | median {} ms, p90 {} ms, min {} ms, max {} ms{} |",
                        sorted.len(),
                        p(50.0),
                        p(90.0),
                        ms(sorted[0]),
                        ms(sorted[sorted.len() - 1]),
                        if s.failures > 0 {
                            format!(", {} starts never polled", s.failures)
                        } else {
                            String::new()
                        }
                    );
                    if !s.idle_rss_kb.is_empty() {
                        let mut idle = s.idle_rss_kb.clone();
                        idle.sort_unstable();
                        let _ = writeln!(
                            md,
                            "| resident at the first poll (median) | {} |",
                            mb_text(idle[idle.len() / 2] * 1024)
                        );
                    }
                    let all: Vec<String> = s.times.iter().map(|t| ms(*t)).collect();
                    let _ = writeln!(md, "| every start (ms, in order) | {} |", all.join(", "));
                    if let Ok(bare) = &b.startup_without_certificates
                        && !bare.times.is_empty()
                    {
                        let mut bare_sorted = bare.times.clone();
                        bare_sorted.sort();
                        let median = percentile(&sorted, 50.0).unwrap_or_default();
                        let bare_median = percentile(&bare_sorted, 50.0).unwrap_or_default();
                        let files = std::fs::read_dir("/etc/ssl/certs").map_or(0, |d| d.count());
                        let _ = writeln!(
                            md,
                            "| start-up with `SSL_CERT_FILE`/`SSL_CERT_DIR` pointed at nothing, {} cold starts | median {} ms, p90 {} ms: {} ms of the median ({:.0}%) is the SDK's HTTPS client reading and parsing the system's root certificates when the clients are built ({} entries in /etc/ssl/certs here, plus the bundle; Lambda's provided.al2023 image has its own bundle) |",
                            bare_sorted.len(),
                            ms(bare_median),
                            percentile(&bare_sorted, 90.0).map_or("—".into(), ms),
                            ms(median.saturating_sub(bare_median)),
                            100.0 * median.saturating_sub(bare_median).as_secs_f64()
                                / median.as_secs_f64().max(1e-9),
                            files
                        );
                    }
                }
                Ok(_) => {
                    let _ = writeln!(md, "| start-up | no start completed |");
                }
                Err(e) => {
                    let _ = writeln!(md, "| start-up | not measured: {e} |");
                }
            }
            for rss in &b.rss {
                match rss {
                    Ok(r) => {
                        let _ = writeln!(
                            md,
                            "| peak RSS, one invocation of N = {} | {} ({} launched in {} StartFailbackLaunch calls; invocation {} s) |",
                            r.n,
                            mb_text(r.peak_kb * 1024),
                            r.launched,
                            r.launches,
                            secs(r.invocation)
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(md, "| peak RSS | not measured: {e} |");
                    }
                }
            }
            match &b.arm64 {
                Arm64::Measured { bytes } => {
                    let _ = writeln!(
                        md,
                        "| arm64 `bootstrap` (`cargo lambda build --release --arm64`) | {} |",
                        mb_text(*bytes)
                    );
                }
                Arm64::NotMeasured { cause } => {
                    let _ = writeln!(md, "| arm64 `bootstrap` | not measured: {cause} |");
                }
            }
            let _ = writeln!(md);
        }
    }
    md
}

/// The tables for the terminal.
pub fn terminal(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<15} {:>5} {:<29} {:>8} {:>8} {:>6} {:>7} {:>7}  outcome",
        "profile", "N", "variant", "wall s", "ideal s", "ratio", "calls", "wasted"
    );
    for run in report.runs {
        let _ = writeln!(
            out,
            "{:<15} {:>5} {:<29} {:>8} {:>8} {:>6.2} {:>7} {:>7}  {}",
            run.profile.name(),
            run.n,
            run.variant.name(),
            secs(run.wall),
            secs(run.ideal),
            run.ratio(),
            run.total_calls(),
            pct(run.wasted_share()),
            outcome(run)
        );
    }
    let _ = writeln!(out);
    for t in targets(report) {
        let _ = writeln!(
            out,
            "{:<12} {}: {}",
            t.verdict.trim_matches('*'),
            t.name,
            t.measured
        );
    }
    out
}
