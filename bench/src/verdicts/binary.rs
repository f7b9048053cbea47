//! The release binary's targets: start-up, peak memory, the arm64 size.

use super::{ARM64_TARGET_MB, RSS_TARGETS, START_UP_TARGET_MS, Target, verdict};
use crate::binary::{Arm64, Size};
use crate::report::*;

/// The median cold start against its target.
pub(super) fn startup(report: &Report) -> Target {
    let binary = report.binary.as_ref().ok();
    let startup = binary.and_then(|b| b.startup.as_ref().ok());
    match startup {
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
                peer: "boto3 Python Lambda: see start-to-exit below (measured side by side)".into(),
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
    }
}

/// Peak memory at each N against its limit.
pub(super) fn rss(report: &Report) -> Vec<Target> {
    let binary = report.binary.as_ref().ok();
    RSS_TARGETS
        .into_iter()
        .map(|(n, limit)| {
            let rss = binary.and_then(|b| {
                b.rss
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .find(|r| r.n == n)
            });
            match rss {
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
            }
        })
        .collect()
}

/// The stripped arm64 `bootstrap` against its limit, or the nearest figure there is.
pub(super) fn arm64(report: &Report) -> Target {
    let binary = report.binary.as_ref().ok();
    match binary.map(|b| &b.arm64) {
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
                Some(Size {
                    stripped: Some(stripped),
                    bytes,
                }) => format!(
                    "nearest figure: the x86-64 release binary is {} as built and {} stripped ({} the 8 MB limit)",
                    mb_text(*bytes),
                    mb_text(*stripped),
                    if mb(*stripped) <= ARM64_TARGET_MB {
                        "within"
                    } else {
                        "over"
                    }
                ),
                Some(size) => format!(
                    "nearest figure: the x86-64 release binary is {}",
                    mb_text(size.bytes)
                ),
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
    }
}
